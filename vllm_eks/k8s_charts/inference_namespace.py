"""The inference namespace and the published deployment plan."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
import cdk8s_plus_35 as kplus
from constructs import Construct

from ..models import DeploymentPlan

PLAN_CONFIGMAP = "vllm-eks-plan"


@dataclass(frozen=True, kw_only=True)
class InferenceNamespaceProps:
    plan: DeploymentPlan
    namespace: str = "inference"  # one shared namespace for every served model


class InferenceNamespaceChart(cdk8s.Chart):
    """The namespace vLLM workloads run in, under Pod Security admission, and a ConfigMap
    recording the deployment plan so `kubectl` shows what was planned and why.

    Hook a subclass may override: `pod_security_labels()`.
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
                labels={**self.pod_security_labels(), "app.kubernetes.io/part-of": "vllm-eks"},
            ),
        )
        kplus.ConfigMap(
            self,
            "Plan",
            metadata=cdk8s.ApiObjectMetadata(name=PLAN_CONFIGMAP, namespace=props.namespace),
            data={
                "plan.json": json.dumps(props.plan.as_dict(), indent=2, sort_keys=True),
                "summary.txt": props.plan.summary(),
            },
        )

    def pod_security_labels(self) -> dict[str, str]:
        """Pod Security admission: enforce `baseline` (no privileged pods, no host
        namespaces or hostPath), and warn and audit against `restricted`."""
        return {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        }


def render(chart_class: type[cdk8s.Chart], construct_id: str, **kwargs) -> cdk8s.Chart:
    """Build a chart in a fresh cdk8s.App, so charts never share a scope."""
    return chart_class(cdk8s.App(), construct_id, **kwargs)
