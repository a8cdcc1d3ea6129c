"""Observability: Prometheus, Alertmanager and Grafana, GPU metrics, and KEDA."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import versions
from ..config import ObservabilityConfig
from ..k8s_charts import render
from ..k8s_charts.monitoring import (
    ALERTMANAGER_CONFIG_LABEL,
    DCGM_COUNTERS_CONFIGMAP,
    DCGM_COUNTERS_FILE,
    GRAFANA_SECRETS,
    GRAFANA_SECRETS_DIR,
    MONITORING_NAMESPACE,
    MonitoringChart,
    MonitoringContentChart,
    MonitoringContentProps,
    MonitoringProps,
)
from ..observability.alerts import AlertSettings
from ..k8s_charts.storage import GP3_STORAGE_CLASS
from ..labels import EFA_TAINT_KEY, GPU_TAINT_KEY, NODE_ROLE_LABEL
from .helm import pinned_chart
from .pod_identity import associate, pod_identity_addon, pod_identity_role
from .secret import manually_rotated_secret, random_alphanumeric

PROMETHEUS_RELEASE = "kube-prometheus-stack"
PROMETHEUS_URL = (f"http://{PROMETHEUS_RELEASE}-prometheus.{MONITORING_NAMESPACE}"
                  ".svc.cluster.local:9090")
GRAFANA_SERVICE = f"{PROMETHEUS_RELEASE}-grafana"
GRAFANA_SERVICE_ACCOUNT = "grafana"
KEDA_NAMESPACE = "keda"
CLOUDWATCH_SERVICE_ACCOUNT = "cloudwatch-agent"
SYSTEM_NODES = {NODE_ROLE_LABEL: "system"}


@dataclass(frozen=True, kw_only=True)
class ObservabilityProps:
    cluster: eks.ICluster  # the charts, Grafana's Pod Identity association and the add-on
    pod_identity_agent: IDependable  # the eks-pod-identity-agent add-on, created first
    config: ObservabilityConfig  # retention, volume size, CloudWatch, Grafana's ALB
    region: str  # where Grafana's SecretProviderClass reads its admin password
    vpc_cidr: str  # who may reach Grafana's internal ALB (with -c grafana_alb=true)
    efa: bool = False  # -c efa=true: dcgm-exporter also tolerates the EFA pool's taint
    # Installed before the monitoring namespace and kube-prometheus-stack: the
    # StorageClasses (Prometheus's and Alertmanager's volumes), the Secrets Store CSI
    # driver and its AWS provider (the namespace holds Grafana's SecretProviderClass;
    # Grafana mounts its password, and Helm waits for Grafana), and with grafana_alb the
    # ALB controller (its Ingress webhook has failurePolicy Fail).
    # (): no ordering beyond the Pod Identity agent.
    after: tuple[IDependable, ...] = ()


class Observability(Construct):
    """kube-prometheus-stack (Prometheus with gp3 storage and open ServiceMonitor /
    PodMonitor / PrometheusRule selectors, Alertmanager, Grafana with its admin password
    from Secrets Manager and the dashboards sidecar), dcgm-exporter on GPU nodes with the
    contract's counters, KEDA, and, with -c cloudwatch=true, Container Insights.

    Hooks a subclass may override: `prometheus_values()`, `dcgm_values()`, `keda_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: ObservabilityProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        cluster = props.cluster

        self.grafana_admin = manually_rotated_secret(
            self, "GrafanaAdminPassword",
            description="Grafana admin password (user admin) of vllm-eks",
            value=random_alphanumeric(32),
            rotation="Grafana reads the password at start; rotate with put-secret-value and "
            "a restart of the Grafana pod (README, 'See what it does').",
        )
        grafana_role = pod_identity_role(self, "GrafanaRole",
                                         description="Grafana: reads its admin password")
        self.grafana_admin.grant_read(grafana_role)
        grafana_identity = associate(self, "GrafanaPodIdentity", cluster=cluster,
                                     namespace=MONITORING_NAMESPACE,
                                     service_account=GRAFANA_SERVICE_ACCOUNT, role=grafana_role,
                                     pod_identity_agent=props.pod_identity_agent)

        monitoring = render(MonitoringChart, "monitoring", props=MonitoringProps(
            grafana_admin_secret_arn=self.grafana_admin.secret_arn, region=props.region))
        self.namespace = eks.KubernetesManifest(self, "Namespace", cluster=cluster,
                                                manifest=monitoring.to_json())
        self.namespace.node.add_dependency(*props.after)

        self.prometheus = pinned_chart(
            self, "PrometheusStack", cluster=cluster, chart="kube-prometheus-stack",
            release=PROMETHEUS_RELEASE,
            repository=versions.KUBE_PROMETHEUS_STACK_CHART_REPOSITORY,
            version=versions.KUBE_PROMETHEUS_STACK_CHART_VERSION,
            namespace=MONITORING_NAMESPACE, values=self.prometheus_values(),
        )
        self.prometheus.node.add_dependency(self.namespace, grafana_identity, grafana_role)
        content = render(MonitoringContentChart, "monitoring-content",
                         props=MonitoringContentProps(alerts=AlertSettings()))
        self.content = eks.KubernetesManifest(self, "DashboardsAndGpuAlerts", cluster=cluster,
                                              manifest=content.to_json())
        self.content.node.add_dependency(self.prometheus)  # PrometheusRule CRD
        self.dcgm = pinned_chart(
            self, "DcgmExporter", cluster=cluster, chart="dcgm-exporter",
            release="dcgm-exporter", repository=versions.DCGM_EXPORTER_CHART_REPOSITORY,
            version=versions.DCGM_EXPORTER_CHART_VERSION, namespace=MONITORING_NAMESPACE,
            values=self.dcgm_values(),
        )
        self.dcgm.node.add_dependency(self.prometheus)  # its ServiceMonitor needs the CRD
        self.keda = pinned_chart(
            self, "Keda", cluster=cluster, chart="keda", release="keda",
            repository=versions.KEDA_CHART_REPOSITORY, version=versions.KEDA_CHART_VERSION,
            namespace=KEDA_NAMESPACE, values=self.keda_values(),
        )
        # KEDA needs nothing above: its ScaledObjects come with the models, and its
        # webhooks have failurePolicy Ignore. The cluster stack puts it in a lane.
        if props.config.cloudwatch:
            self._container_insights()

    # -- hooks -------------------------------------------------------------------------

    def prometheus_values(self) -> dict:
        config = self.props.config

        def volume(gib: int) -> dict:
            return {"volumeClaimTemplate": {"spec": {
                "storageClassName": GP3_STORAGE_CLASS, "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{gib}Gi"}}}}}

        grafana = {
            "nodeSelector": SYSTEM_NODES,
            "serviceAccount": {"create": True, "name": GRAFANA_SERVICE_ACCOUNT},
            # The password file comes from Secrets Manager through the CSI driver; Grafana
            # expands $__file{} itself, so no Kubernetes Secret holds it and the chart
            # creates none.
            "env": {
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": f"$__file{{{GRAFANA_SECRETS_DIR}/admin-password}}",
            },
            "extraSecretMounts": [{
                "name": "admin-password", "mountPath": GRAFANA_SECRETS_DIR, "readOnly": True,
                "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                        "volumeAttributes": {"secretProviderClass": GRAFANA_SECRETS}},
            }],
            # Grafana rescans provisioned dashboard files every 30 s: the sidecar need not
            # call the reload API (which would need the admin password).
            "sidecar": {
                "dashboards": {"enabled": True, "label": "grafana_dashboard",
                               "labelValue": "1", "searchNamespace": "ALL",
                               "skipReload": True},
                "datasources": {"enabled": False},
            },
            # Provisioned from a file at start, not by a sidecar: datasources are not
            # rescanned, and a watching init container would never finish.
            "datasources": {"datasources.yaml": {"apiVersion": 1, "datasources": [{
                "name": "Prometheus", "type": "prometheus", "uid": "prometheus",
                "url": PROMETHEUS_URL, "access": "proxy", "isDefault": True,
                "jsonData": {"timeInterval": "15s"}}]}},
            # Dashboards are provisioned from ConfigMaps; nothing to persist.
            "persistence": {"enabled": False},
        }
        if config.grafana_alb:
            grafana["ingress"] = {
                "enabled": True, "ingressClassName": "alb", "path": "/", "pathType": "Prefix",
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internal",
                    "alb.ingress.kubernetes.io/target-type": "ip",
                    "alb.ingress.kubernetes.io/inbound-cidrs": self.props.vpc_cidr,
                    "alb.ingress.kubernetes.io/healthcheck-path": "/api/health",
                },
            }
        return {
            "fullnameOverride": PROMETHEUS_RELEASE,
            "crds": {"enabled": True},
            # The EKS control plane is not scrapeable: no targets, no rules for it.
            "kubeControllerManager": {"enabled": False},
            "kubeScheduler": {"enabled": False},
            "kubeEtcd": {"enabled": False},
            "kubeProxy": {"enabled": False},
            "defaultRules": {"create": True, "rules": {
                "etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False, "kubeProxy": False}},
            "prometheusOperator": {"nodeSelector": SYSTEM_NODES,
                                   "admissionWebhooks": {"patch": {"nodeSelector": SYSTEM_NODES}}},
            "prometheus": {"prometheusSpec": {
                "retention": f"{config.retention_days}d",
                # Leave headroom on the volume: TSDB compaction needs free space.
                "retentionSize": f"{int(config.storage_gib * 0.85)}GB",
                "storageSpec": volume(config.storage_gib),
                "nodeSelector": SYSTEM_NODES,
                # Select every ServiceMonitor, PodMonitor and PrometheusRule, not only those
                # labelled with this release.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                              "limits": {"memory": "6Gi"}},
            }},
            # Receivers come from AlertmanagerConfig objects labelled
            # vllm-eks.io/alertmanager-config=true (README): the chart's own config Secret
            # would be overwritten by every deploy.
            "alertmanager": {"alertmanagerSpec": {
                "nodeSelector": SYSTEM_NODES, "storage": volume(10),
                "alertmanagerConfigSelector": {"matchLabels": ALERTMANAGER_CONFIG_LABEL},
                "alertmanagerConfigNamespaceSelector": {},
                "alertmanagerConfigMatcherStrategy": {"type": "None"},
            }},
            "kube-state-metrics": {"nodeSelector": SYSTEM_NODES},
            "prometheus-node-exporter": {"tolerations": [{"operator": "Exists"}]},
            "grafana": grafana,
        }

    def dcgm_values(self) -> dict:
        counters_dir = "/etc/dcgm-exporter/vllm-eks"
        return {
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            # Every GPU node: the gpu pool's, and the EFA pool's (which has its own taint).
            "tolerations": [{"key": key, "operator": "Exists", "effect": "NoSchedule"}
                            for key in (GPU_TAINT_KEY, *([EFA_TAINT_KEY] if self.props.efa
                                                         else []))],
            # Not privileged and without SYS_ADMIN: Bottlerocket's
            # visible-devices-envvar-when-unprivileged setting (GPU node user data) lets
            # NVML see the GPUs; the profiling (DCGM_FI_PROF_*) fields that would need
            # SYS_ADMIN are not in the counters file. Root reads the kubelet's
            # pod-resources socket (which GPU serves which pod). Helm deep-merges maps but
            # replaces lists: the chart's default `capabilities.add: [SYS_ADMIN]` survives
            # unless `add` is set here, so it is set, to nothing.
            "securityContext": {"privileged": False, "runAsNonRoot": False, "runAsUser": 0,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"add": [], "drop": ["ALL"]}},
            "extraEnv": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}],
            "arguments": ["-f", f"{counters_dir}/{DCGM_COUNTERS_FILE}"],
            "extraConfigMapVolumes": [{"name": "vllm-eks-counters",
                                       "configMap": {"name": DCGM_COUNTERS_CONFIGMAP}}],
            "extraVolumeMounts": [{"name": "vllm-eks-counters", "mountPath": counters_dir,
                                   "readOnly": True}],
            "serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "10s",
                               "honorLabels": True,
                               "additionalLabels": {"release": PROMETHEUS_RELEASE}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
        }

    def keda_values(self) -> dict:
        return {"nodeSelector": SYSTEM_NODES}

    # -- parts -------------------------------------------------------------------------

    def _container_insights(self) -> None:
        role = pod_identity_role(
            self, "CloudWatchAgentRole", description="CloudWatch agent (Container Insights)",
            aws_managed_policy="CloudWatchAgentServerPolicy",
            managed_policy_reason="The policy AWS documents for the "
            "amazon-cloudwatch-observability add-on.")
        pod_identity_addon(self, cluster=self.props.cluster,
                           pod_identity_agent=self.props.pod_identity_agent,
                           name="amazon-cloudwatch-observability",
                           service_account=CLOUDWATCH_SERVICE_ACCOUNT, role=role)
