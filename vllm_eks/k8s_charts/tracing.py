"""Where vLLM's traces go (-c tracing=true): the OpenTelemetry collector's name, port and
pod labels (constructs/tracing.py installs it), and what a model pod needs to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdk8s_plus_35 import k8s

from .monitoring import MONITORING_NAMESPACE
from .objects import namespace_selector, tcp_ports

COLLECTOR_NAME = "otel-collector"
OTLP_GRPC_PORT = 4317
# The collector's pods, as the chart labels them (fullnameOverride = COLLECTOR_NAME).
COLLECTOR_POD_LABELS = {"app.kubernetes.io/name": "opentelemetry-collector",
                        "app.kubernetes.io/instance": COLLECTOR_NAME}


@dataclass(frozen=True, kw_only=True)
class TraceExport:
    """A model's spans to the collector: OTLP over gRPC (vLLM's default protocol), plain
    inside the cluster, a share of requests sampled."""

    sampling_ratio: float
    namespace: str = MONITORING_NAMESPACE  # the collector's
    pod_labels: dict[str, str] = field(default_factory=lambda: dict(COLLECTOR_POD_LABELS))

    @property
    def endpoint(self) -> str:
        # The gRPC exporter treats an http:// endpoint as insecure (no TLS in-cluster).
        return f"http://{COLLECTOR_NAME}.{self.namespace}.svc:{OTLP_GRPC_PORT}"

    def env(self, service_name: str) -> dict[str, str]:
        """The OpenTelemetry SDK's own settings (vLLM builds its tracer without a sampler,
        so the SDK reads these)."""
        return {"OTEL_SERVICE_NAME": service_name,
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": f"{self.sampling_ratio:g}"}

    def egress(self) -> k8s.NetworkPolicyEgressRule:
        """The model pods' way out to the collector's OTLP port, nothing else there."""
        return k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(
                namespace_selector=namespace_selector(self.namespace),
                pod_selector=k8s.LabelSelector(match_labels=self.pod_labels))],
            ports=tcp_ports(OTLP_GRPC_PORT))
