"""The monitoring namespace and what the monitoring charts need before they install."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..metrics import dcgm_counters_csv
from ..observability.alerts import AlertSettings, gpu_rule_groups, router_rule_groups
from ..observability.dashboards import DASHBOARDS
from .model_pods import ROUTER_NAME
from .objects import custom_resource, secret_provider_class
from .pod_security import pod_security_admission_labels
from .router_pod import MEMORY_LIMIT_BYTES as ROUTER_MEMORY_LIMIT_BYTES

MONITORING_NAMESPACE = "monitoring"
GRAFANA_SECRETS = "grafana-admin"  # SecretProviderClass
GRAFANA_SECRETS_DIR = "/etc/secrets/grafana"
DCGM_COUNTERS_CONFIGMAP = "vllm-eks-dcgm-counters"
DCGM_COUNTERS_FILE = "counters.csv"
# kube-prometheus-stack's Prometheus selects every monitor and rule (its selectors are
# opened); the release label also satisfies a stock selector.
PROMETHEUS_SELECTOR_LABELS = {"release": "kube-prometheus-stack"}
DASHBOARD_LABEL = {"grafana_dashboard": "1"}  # picked up by Grafana's sidecar
# AlertmanagerConfig objects with this label are merged into Alertmanager's routing.
ALERTMANAGER_CONFIG_LABEL = {"vllm-eks.io/alertmanager-config": "true"}


@dataclass(frozen=True, kw_only=True)
class MonitoringProps:
    grafana_admin_secret_arn: str  # may be a CDK token
    region: str  # of the secret, for Grafana's SecretProviderClass
    namespace: str = MONITORING_NAMESPACE  # default: where kube-prometheus-stack runs


class MonitoringChart(cdk8s.Chart):
    """The `monitoring` namespace (Pod Security `privileged`: node-exporter and
    dcgm-exporter read host paths), Grafana's admin password as a Secrets Store
    SecretProviderClass, and the dcgm-exporter counters file generated from the metric
    contract."""

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {"app.kubernetes.io/part-of": "vllm-eks"}
        security = pod_security_admission_labels(enforce="privileged", report="baseline")
        k8s.KubeNamespace(self, "Namespace", metadata=k8s.ObjectMeta(
            name=props.namespace, labels={**labels, **security}))
        secret_provider_class(
            self, "GrafanaSecrets", name=GRAFANA_SECRETS, namespace=props.namespace,
            labels=labels, region=props.region,
            objects=[{"objectName": props.grafana_admin_secret_arn,
                      "objectType": "secretsmanager", "objectAlias": "admin-password"}])
        k8s.KubeConfigMap(self, "DcgmCounters", metadata=k8s.ObjectMeta(
            name=DCGM_COUNTERS_CONFIGMAP, namespace=props.namespace, labels=labels),
            data={DCGM_COUNTERS_FILE: dcgm_counters_csv()})


@dataclass(frozen=True, kw_only=True)
class MonitoringContentProps:
    alerts: AlertSettings
    namespace: str = MONITORING_NAMESPACE


class MonitoringContentChart(cdk8s.Chart):
    """The cluster-wide dashboards (ConfigMaps for Grafana's sidecar) and GPU alert rules;
    applied once the Prometheus Operator's CRDs exist."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: MonitoringContentProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        labels = {"app.kubernetes.io/part-of": "vllm-eks"}
        for dashboard_id, build in DASHBOARDS.items():
            k8s.KubeConfigMap(
                self, f"Dashboard-{dashboard_id}",
                metadata=k8s.ObjectMeta(name=f"vllm-eks-dashboard-{dashboard_id}",
                                        namespace=props.namespace,
                                        labels={**labels, **DASHBOARD_LABEL}),
                data={f"{dashboard_id}.json": json.dumps(build(), indent=1, sort_keys=True)})
        custom_resource(
            self, "GpuRules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            name="vllm-eks-gpu-alerts", namespace=props.namespace,
            labels={**labels, **PROMETHEUS_SELECTOR_LABELS},
            spec={"groups": gpu_rule_groups(props.alerts)})
        custom_resource(
            self, "RouterRules", api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule", name="vllm-eks-router-alerts", namespace=props.namespace,
            labels={**labels, **PROMETHEUS_SELECTOR_LABELS},
            spec={"groups": router_rule_groups(props.alerts, ROUTER_NAME,
                                               ROUTER_MEMORY_LIMIT_BYTES)})
