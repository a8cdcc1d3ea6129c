"""What Prometheus, Grafana and KEDA need to watch and scale one vLLM model."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from .. import metrics as m
from ..observability.alerts import AlertSettings, serving_rule_groups
from .monitoring import MONITORING_NAMESPACE, PROMETHEUS_SELECTOR_LABELS
from .objects import custom_resource
from .model_pods import app_name
from .vllm import PORT_NAME

SCRAPE_INTERVAL = "15s"


@dataclass(frozen=True, kw_only=True)
class VllmObservabilityProps:
    model_key: str  # names the objects and selects the model's pods
    served_name: str  # the model_name label of the model's vLLM metrics
    prometheus_url: str  # KEDA's Prometheus triggers query it
    alerts: AlertSettings  # SLO and thresholds of the alert rules
    min_replicas: int = 1  # at least 1 (see config.AutoscalingConfig)
    max_replicas: int = 2  # KEDA's ceiling
    waiting_per_replica: int = 4  # target queue length per replica (KEDA AverageValue)
    kv_cache_target: float = 0.85  # scale out before the KV cache forces preemptions
    namespace: str = "inference"  # the model's namespace (the inference-namespace chart's)
    # What KEDA scales: the model's Deployment, or its LeaderWorkerSet (multi-node).
    scale_target: tuple[str, str] = ("apps/v1", "Deployment")


class VllmObservabilityChart(cdk8s.Chart):
    """PodMonitor for the model's pods, the model's alert rules and the KEDA ScaledObject
    of its Deployment (dashboards and GPU alerts are cluster-wide: `Observability`).

    Hooks a subclass may override: `scaling_triggers()`, `scaling_behavior()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: VllmObservabilityProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.props = props
        self.name = app_name(props.model_key)
        self.common_labels = {"app.kubernetes.io/part-of": "vllm-eks",
                       "vllm-eks.io/model": props.model_key}
        self._pod_monitor()
        self._rules()
        self._scaled_object()

    # -- hooks -------------------------------------------------------------------------

    def scaling_triggers(self) -> list[dict]:
        """Scale on the queue (waiting requests per replica) and on KV-cache pressure.
        `ignoreNullValues: false`: a query with no data is an error, so KEDA's fallback
        replicas apply instead of scaling on a silent zero."""
        model = f'{m.MODEL_LABEL}="{self.props.served_name}"'
        common = {"serverAddress": self.props.prometheus_url, "ignoreNullValues": "false"}
        return [
            {"type": "prometheus", "name": "queue", "metricType": "AverageValue",
             "metadata": {**common,
                          "query": f"sum({m.NUM_REQUESTS_WAITING.series}{{{model}}})",
                          "threshold": str(self.props.waiting_per_replica)}},
            {"type": "prometheus", "name": "kv-cache", "metricType": "Value",
             "metadata": {**common,
                          "query": f"avg({m.KV_CACHE_USAGE.series}{{{model}}})",
                          "threshold": f"{self.props.kv_cache_target}"}},
        ]

    def scaling_behavior(self) -> dict:
        """Add a replica at once; remove one at most every 5 minutes after 10 quiet
        minutes (a replica costs a cold start to bring back)."""
        return {
            "scaleUp": {"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 600,
                          "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
        }

    # -- objects -----------------------------------------------------------------------

    def _api_object(self, construct_id: str, api_version: str, kind: str, name: str,
                    namespace: str, spec: dict, labels: dict | None = None) -> None:
        custom_resource(self, construct_id, api_version=api_version, kind=kind, name=name,
                        namespace=namespace, spec=spec,
                        labels={**self.common_labels, **(labels or {})})

    def _pod_monitor(self) -> None:
        self._api_object(
            "PodMonitor", "monitoring.coreos.com/v1", "PodMonitor", self.name,
            self.props.namespace, labels=PROMETHEUS_SELECTOR_LABELS, spec={
                "selector": {"matchLabels": {"app.kubernetes.io/instance": self.name}},
                "podMetricsEndpoints": [{"port": PORT_NAME, "path": "/metrics",
                                         "interval": SCRAPE_INTERVAL}],
            })

    def _rules(self) -> None:
        self._api_object(
            "Rules", "monitoring.coreos.com/v1", "PrometheusRule", f"{self.name}-alerts",
            MONITORING_NAMESPACE, labels=PROMETHEUS_SELECTOR_LABELS,
            spec={"groups": serving_rule_groups(self.props.alerts, self.props.served_name)})

    def _scaled_object(self) -> None:
        props = self.props
        self._api_object(
            "ScaledObject", "keda.sh/v1alpha1", "ScaledObject", self.name, props.namespace,
            spec={
                "scaleTargetRef": {"apiVersion": props.scale_target[0],
                                   "kind": props.scale_target[1], "name": self.name},
                "minReplicaCount": props.min_replicas,
                "maxReplicaCount": props.max_replicas,
                "pollingInterval": 15,
                # Prometheus unreachable or a query without data: never scale down blind;
                # keep what runs, or at least the minimum.
                "fallback": {"failureThreshold": 3, "replicas": props.min_replicas,
                             "behavior": "currentReplicasIfHigher"},
                "advanced": {"horizontalPodAutoscalerConfig": {
                    "behavior": self.scaling_behavior()}},
                "triggers": self.scaling_triggers(),
            })
