"""The vLLM chart's networking: the Service, the ALB Ingress and its annotations, the
NetworkPolicy that lets only the load balancer and Prometheus in, and `IngressSettings`
(the endpoint's settings).

`VllmNetworkingMixin` holds these as methods of `VllmChart` (vllm.py), which combines it
with `VllmPodSpecMixin` (vllm_pod.py: the port, health path and draining times used here).
Hook defined here: `ingress_annotations()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdk8s_plus_35 import k8s

from .model_pods import egress_to_aws_apis
from .vllm_pod import HEALTH_PATH, PORT, PORT_NAME, PRE_STOP_SECONDS, SHUTDOWN_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable

    from .vllm import VllmChartProps


@dataclass(frozen=True, kw_only=True)
class IngressSettings:
    scheme: str  # "internal" or "internet-facing"
    certificate_arn: str | None  # None: HTTP only
    allowed_cidrs: tuple[str, ...]
    idle_timeout_seconds: int = 900  # long non-streamed generations must not be cut


class VllmNetworkingMixin:
    """The Service, Ingress and NetworkPolicy of `VllmChart`, never used on its own: reads
    the `props`, `name` and `app_labels` that `VllmChart.__init__` sets and uses its
    `_metadata()`. Hook: `ingress_annotations()`."""

    props: VllmChartProps
    name: str
    app_labels: dict[str, str]
    _metadata: Callable[..., k8s.ObjectMeta]

    # -- hooks -------------------------------------------------------------------------

    def ingress_annotations(self) -> dict[str, str]:
        """AWS Load Balancer Controller settings of the endpoint."""
        ingress = self.props.ingress
        annotations = {
            "alb.ingress.kubernetes.io/scheme": ingress.scheme,
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(ingress.allowed_cidrs),
            "alb.ingress.kubernetes.io/healthcheck-path": HEALTH_PATH,
            "alb.ingress.kubernetes.io/success-codes": "200",
            "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join([
                f"idle_timeout.timeout_seconds={ingress.idle_timeout_seconds}",
                "routing.http.drop_invalid_header_fields.enabled=true",
            ]),
            # Streams in flight on a deregistered target run until vLLM's drain ends.
            "alb.ingress.kubernetes.io/target-group-attributes":
                "deregistration_delay.timeout_seconds="
                f"{PRE_STOP_SECONDS + SHUTDOWN_TIMEOUT_SECONDS}",
        }
        if ingress.certificate_arn:
            annotations.update({
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
                "alb.ingress.kubernetes.io/certificate-arn": ingress.certificate_arn,
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            })
        else:
            annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
        return annotations

    # -- objects -----------------------------------------------------------------------

    def _service(self) -> None:
        k8s.KubeService(
            self, "Service", metadata=self._metadata(),
            spec=k8s.ServiceSpec(
                type="ClusterIP", selector=self.app_labels,
                ports=[k8s.ServicePort(name=PORT_NAME, port=PORT, protocol="TCP",
                                       target_port=k8s.IntOrString.from_string(PORT_NAME))]),
        )

    def _ingress(self) -> None:
        backend = k8s.IngressBackend(service=k8s.IngressServiceBackend(
            name=self.name, port=k8s.ServiceBackendPort(name=PORT_NAME)))
        # Only the OpenAI API and the health check are routed. vLLM serves /invocations
        # without checking the API key; no rule matches it, so the load balancer answers
        # 404 and it never reaches a pod. No default backend, on purpose.
        k8s.KubeIngress(
            self, "Ingress",
            metadata=self._metadata(annotations=self.ingress_annotations()),
            spec=k8s.IngressSpec(
                ingress_class_name="alb",
                rules=[k8s.IngressRule(http=k8s.HttpIngressRuleValue(paths=[
                    k8s.HttpIngressPath(path="/v1", path_type="Prefix", backend=backend),
                    k8s.HttpIngressPath(path=HEALTH_PATH, path_type="Exact", backend=backend),
                ]))]),
        )

    def _network_policy(self) -> None:
        port = [k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(PORT), protocol="TCP")]
        load_balancer = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr))
                         for cidr in self.props.load_balancer_cidrs]
        prometheus = [k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(
            match_labels={"kubernetes.io/metadata.name": self.props.monitoring_namespace}))]
        k8s.KubeNetworkPolicy(
            self, "NetworkPolicy", metadata=self._metadata(),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=self.app_labels),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=load_balancer, ports=port),
                         k8s.NetworkPolicyIngressRule(from_=prometheus, ports=port)],
                egress=egress_to_aws_apis(),
            ),
        )
