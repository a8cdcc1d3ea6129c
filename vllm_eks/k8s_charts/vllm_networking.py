"""The vLLM chart's networking: the Service the router sends to, and the NetworkPolicy
that lets only the router and Prometheus in (the load balancer reaches the router, never
a model: router.py).

`VllmNetworkingMixin` holds these as methods of `VllmChart` (vllm.py), which combines it
with `VllmPodSpecMixin` (vllm_pod.py: the port used here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdk8s_plus_35 import k8s

from .model_pods import egress_to_aws_apis
from .objects import cluster_ip_service, namespace_selector
from .vllm_pod import PORT, PORT_NAME

if TYPE_CHECKING:
    from collections.abc import Callable

    from .vllm import VllmChartProps


class VllmNetworkingMixin:
    """The Service and NetworkPolicy of `VllmChart`, never used on its own: reads the
    `props`, `name` and `app_labels` that `VllmChart.__init__` sets and uses its
    `_metadata()`."""

    props: VllmChartProps
    name: str
    app_labels: dict[str, str]
    _metadata: Callable[..., k8s.ObjectMeta]

    # -- objects -----------------------------------------------------------------------

    def _service(self) -> None:
        cluster_ip_service(self, "Service", metadata=self._metadata(), selector=self.app_labels,
                           port=PORT, port_name=PORT_NAME)

    def _network_policy(self) -> None:
        port = [k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(PORT), protocol="TCP")]
        # Clients reach a model only through the router, which the API key's holders
        # reach through the load balancer; /invocations and /metrics stay in-cluster.
        router = [k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(
            match_labels=self.props.router_labels))]
        prometheus = [k8s.NetworkPolicyPeer(
            namespace_selector=namespace_selector(self.props.monitoring_namespace))]
        k8s.KubeNetworkPolicy(
            self, "NetworkPolicy", metadata=self._metadata(),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=self.app_labels),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=router, ports=port),
                         k8s.NetworkPolicyIngressRule(from_=prometheus, ports=port)],
                egress=[*egress_to_aws_apis(),
                        *([self.props.tracing.egress()] if self.props.tracing else [])],
            ),
        )
