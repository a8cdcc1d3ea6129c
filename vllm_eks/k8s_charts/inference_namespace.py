"""The inference namespace and the published deployment plan."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
import cdk8s_plus_35 as kplus
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..models import DeploymentPlan
from .objects import dns_egress
from .pod_security import pod_security_admission_labels
from .storage import EFS_STORAGE_CLASS

PLAN_CONFIGMAP = "vllm-eks-plan"
MODEL_CACHE_CLAIM = "model-cache"


@dataclass(frozen=True, kw_only=True)
class InferenceNamespaceProps:
    plans: tuple[DeploymentPlan, ...]  # every model's plan, published in vllm-eks-plan
    namespace: str = "inference"  # one shared namespace for every served model


class InferenceNamespaceChart(cdk8s.Chart):
    """The namespace vLLM workloads run in, under Pod Security admission; its baseline
    NetworkPolicies (deny everything, then allow DNS); the shared EFS model-cache claim;
    and a ConfigMap recording every model's deployment plan so `kubectl` shows what was planned.

    Hooks a subclass may override: `pod_security_labels()`, `namespace_labels()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: InferenceNamespaceProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.props = props
        kplus.Namespace(
            self,
            "Namespace",
            metadata=cdk8s.ApiObjectMetadata(
                name=props.namespace,
                labels={**self.pod_security_labels(), **self.namespace_labels()},
            ),
        )
        self._network_policies()
        k8s.KubePersistentVolumeClaim(
            self, "ModelCache",
            metadata=k8s.ObjectMeta(name=MODEL_CACHE_CLAIM, namespace=props.namespace,
                                    labels={"app.kubernetes.io/part-of": "vllm-eks"}),
            spec=k8s.PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name=EFS_STORAGE_CLASS,
                # EFS is elastic: the size is required by the API, not enforced.
                resources=k8s.VolumeResourceRequirements(
                    requests={"storage": k8s.Quantity.from_string("1Ti")}),
            ),
        )
        kplus.ConfigMap(
            self,
            "Plan",
            metadata=cdk8s.ApiObjectMetadata(name=PLAN_CONFIGMAP, namespace=props.namespace),
            data={
                "plan.json": json.dumps({plan.model.key: plan.as_dict() for plan in props.plans},
                                        indent=2, sort_keys=True),
                "summary.txt": "\n\n".join(plan.summary() for plan in props.plans),
            },
        )

    def pod_security_labels(self) -> dict[str, str]:
        """Pod Security admission: enforce `restricted` (non-root, no privilege
        escalation, no capabilities, RuntimeDefault seccomp, no hostPath), pinned to the
        cluster's Kubernetes minor so an upgrade never changes the rules silently."""
        return pod_security_admission_labels(enforce="restricted", report="restricted")

    def namespace_labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/part-of": "vllm-eks",
            # The AWS Load Balancer Controller holds a rolling update until the new pod
            # is healthy in the ALB's target group: no 5xx window during rollouts.
            "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
        }

    def _network_policies(self) -> None:
        """Default deny, both directions, for every pod of the namespace; DNS allowed.
        Each workload's chart opens exactly what it needs."""
        everything = k8s.LabelSelector()
        meta = dict(namespace=self.props.namespace,
                    labels={"app.kubernetes.io/part-of": "vllm-eks"})
        k8s.KubeNetworkPolicy(
            self, "DefaultDeny", metadata=k8s.ObjectMeta(name="default-deny", **meta),
            spec=k8s.NetworkPolicySpec(pod_selector=everything,
                                       policy_types=["Ingress", "Egress"]),
        )
        k8s.KubeNetworkPolicy(
            self, "AllowDns", metadata=k8s.ObjectMeta(name="allow-dns", **meta),
            spec=k8s.NetworkPolicySpec(
                pod_selector=everything, policy_types=["Egress"],
                egress=[dns_egress()]),
        )


def render(chart_class: type[cdk8s.Chart], construct_id: str, **kwargs) -> cdk8s.Chart:
    """Build a chart in a fresh cdk8s.App, so charts never share a scope."""
    return chart_class(cdk8s.App(), construct_id, **kwargs)
