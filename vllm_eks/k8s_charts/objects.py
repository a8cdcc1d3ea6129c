"""Custom resources in cdk8s charts: an ApiObject whose spec is set as one JSON patch (the
spec is validated against the upstream CRD in the tests)."""

from __future__ import annotations

import json

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct


def namespace_selector(name: str) -> k8s.LabelSelector:
    """A NetworkPolicy peer's namespace, by the name label Kubernetes sets on every one."""
    return k8s.LabelSelector(match_labels={"kubernetes.io/metadata.name": name})


def tcp_ports(port: int) -> list[k8s.NetworkPolicyPort]:
    return [k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(port), protocol="TCP")]


def dns_egress() -> k8s.NetworkPolicyEgressRule:
    """Out to the cluster DNS (CoreDNS in kube-system) on 53, UDP and TCP."""
    return k8s.NetworkPolicyEgressRule(
        to=[k8s.NetworkPolicyPeer(
            namespace_selector=namespace_selector("kube-system"),
            pod_selector=k8s.LabelSelector(match_labels={"k8s-app": "kube-dns"}))],
        ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(53), protocol=protocol)
               for protocol in ("UDP", "TCP")])


def custom_resource(scope: Construct, construct_id: str, *, api_version: str, kind: str,
                    name: str, spec: dict, labels: dict[str, str],
                    namespace: str | None = None) -> cdk8s.ApiObject:
    obj = cdk8s.ApiObject(scope, construct_id, api_version=api_version, kind=kind,
                          metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace,
                                                            labels=labels))
    obj.add_json_patch(cdk8s.JsonPatch.add("/spec", spec))
    return obj


def secret_provider_class(scope: Construct, construct_id: str, *, name: str,
                          labels: dict[str, str], objects: list[dict], region: str,
                          namespace: str | None = None) -> cdk8s.ApiObject:
    """Secrets Manager objects mounted as files by the Secrets Store CSI driver, read with
    the pod's own EKS Pod Identity role."""
    return custom_resource(
        scope, construct_id, api_version="secrets-store.csi.x-k8s.io/v1",
        kind="SecretProviderClass", name=name, namespace=namespace, labels=labels,
        spec={"provider": "aws", "parameters": {
            "objects": json.dumps(objects), "usePodIdentity": "true", "region": region}})


def surge_rollout() -> k8s.DeploymentStrategy:
    """A rolling update that starts a new pod before an old one goes: no capacity dip."""
    return k8s.DeploymentStrategy(
        type="RollingUpdate",
        rolling_update=k8s.RollingUpdateDeployment(
            max_surge=k8s.IntOrString.from_number(1),
            max_unavailable=k8s.IntOrString.from_number(0)))


def cluster_ip_service(scope: Construct, construct_id: str, *, metadata: k8s.ObjectMeta,
                       selector: dict[str, str], port: int,
                       port_name: str) -> k8s.KubeService:
    """A ClusterIP Service sending `port` to the selected pods' port named `port_name`."""
    return k8s.KubeService(
        scope, construct_id, metadata=metadata,
        spec=k8s.ServiceSpec(
            type="ClusterIP", selector=selector,
            ports=[k8s.ServicePort(name=port_name, port=port, protocol="TCP",
                                   target_port=k8s.IntOrString.from_string(port_name))]))
