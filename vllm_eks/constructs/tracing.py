"""Tracing: an OpenTelemetry collector that takes vLLM's traces and sends them to X-Ray."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from .. import versions
from ..k8s_charts.monitoring import MONITORING_NAMESPACE
from ..k8s_charts.tracing import COLLECTOR_NAME, OTLP_GRPC_PORT
from ..labels import NODE_ROLE_LABEL
from .helm import pinned_chart
from .pod_identity import associate, pod_identity_role

@dataclass(frozen=True, kw_only=True)
class TracingProps:
    cluster: eks.ICluster  # the release and its Pod Identity association go here
    region: str  # X-Ray's region: the environment's
    pod_identity_agent: IDependable  # the eks-pod-identity-agent add-on, created first
    after: tuple[IDependable, ...] = ()  # the monitoring namespace, and its place in a lane


class Tracing(Construct):
    """The `opentelemetry-collector` chart (pinned; the contrib image) as two replicas on
    the system nodes in `monitoring`: an OTLP receiver, then memory_limiter and batch,
    then the `awsxray` exporter, with its own Pod Identity role that may only put trace
    segments. Nothing else: none of the chart's default pipelines (logs and metrics to a
    debug exporter) or receivers (Jaeger, Zipkin, its own Prometheus scrape).

    Hook a subclass may override: `helm_values()`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TracingProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        statement = iam.PolicyStatement(
            sid="PutTraceSegments", actions=["xray:PutTraceSegments"], resources=["*"])
        self.role = pod_identity_role(
            self, "CollectorRole", description="OpenTelemetry collector: sends traces to X-Ray",
            statements=[statement],
            wildcard_reason="xray:PutTraceSegments has no resource to scope it to: X-Ray "
            "authorizes it on '*' only.")
        identity = associate(self, "CollectorPodIdentity", cluster=props.cluster,
                             namespace=MONITORING_NAMESPACE, service_account=COLLECTOR_NAME,
                             role=self.role, pod_identity_agent=props.pod_identity_agent)
        self.chart = pinned_chart(
            self, "Collector", cluster=props.cluster, chart="opentelemetry-collector",
            release=COLLECTOR_NAME, repository=versions.OTEL_COLLECTOR_CHART_REPOSITORY,
            version=versions.OTEL_COLLECTOR_CHART_VERSION, namespace=MONITORING_NAMESPACE,
            values=self.helm_values())
        self.chart.node.add_dependency(identity, self.role, *props.after)

    def helm_values(self) -> dict:
        """The collector's whole configuration in `alternateConfig`, which the chart uses
        instead of merging ours into its defaults (CDK drops null values, so the chart's
        default pipelines could not be removed from `config`)."""
        pod_ip = "${env:MY_POD_IP}"  # the collector's own variable syntax, not CloudFormation's
        return {
            "mode": "deployment",
            "fullnameOverride": COLLECTOR_NAME,
            "replicaCount": 2,
            "image": {"repository": versions.OTEL_COLLECTOR_IMAGE,
                      "tag": versions.OTEL_COLLECTOR_IMAGE_TAG},
            "serviceAccount": {"create": True, "name": COLLECTOR_NAME},
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
            "ports": {name: {"enabled": False} for name in (
                "jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin")},
            "alternateConfig": {
                "receivers": {"otlp": {"protocols": {
                    "grpc": {"endpoint": f"{pod_ip}:{OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"{pod_ip}:4318"}}}},
                # Memory bounded by the container's limit (80 %, spikes 25 %), then batches.
                "processors": {"memory_limiter": {"check_interval": "5s",
                                                  "limit_percentage": 80,
                                                  "spike_limit_percentage": 25},
                               "batch": {}},
                "exporters": {"awsxray": {"region": self.props.region}},
                # The chart's probes call it: it must stay.
                "extensions": {"health_check": {"endpoint": f"{pod_ip}:13133"}},
                "service": {
                    "extensions": ["health_check"],
                    "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {
                        "prometheus": {"host": pod_ip, "port": 8888}}}}]}},
                    "pipelines": {"traces": {"receivers": ["otlp"],
                                             "processors": ["memory_limiter", "batch"],
                                             "exporters": ["awsxray"]}},
                },
            },
        }
