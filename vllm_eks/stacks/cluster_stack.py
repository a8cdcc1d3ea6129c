"""VllmClusterStack: EKS, its system node group, Karpenter and cluster-wide add-ons."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs import (
    AlbController,
    AlbControllerProps,
    GpuCluster,
    GpuClusterProps,
    Karpenter,
    KarpenterProps,
    Observability,
    ObservabilityProps,
    SecretsStoreCsi,
    SecretsStoreCsiProps,
    StorageDrivers,
    StorageDriversProps,
    TeardownGuard,
    TeardownGuardProps,
)
from ..constructs.efa import EfaDevicePlugin, EfaDevicePluginProps
from ..constructs.image_cache import ImageCache, ImageCacheProps
from ..install_order import in_lane
from ..constructs.lws import LeaderWorkerSet, LeaderWorkerSetProps
from ..constructs.tracing import Tracing, TracingProps
from ..constructs.model_store import ModelStore
from ..constructs.observability import GRAFANA_SERVICE
from ..k8s_charts.karpenter_efa import EfaPoolSettings
from ..k8s_charts.monitoring import MONITORING_NAMESPACE
from ..labels import ENVIRONMENT_TAG


class ClusterStack(cdk.Stack):
    """The GpuCluster and everything cluster-wide: Karpenter, the storage drivers and
    StorageClass, the Secrets Store CSI driver, the AWS Load Balancer Controller,
    Observability and the TeardownGuard. It wires them: each construct gets the cluster,
    the add-ons it waits for and the store's resources it uses."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 vpc: ec2.IVpc, store: ModelStore, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.gpu_cluster = GpuCluster(
            self,
            "GpuCluster",
            props=GpuClusterProps(vpc=vpc, config=config.cluster),
        )
        cluster = self.gpu_cluster.cluster
        cluster_name = config.cluster.name
        pod_identity_agent = self.gpu_cluster.pod_identity_addon
        core_dns = self.gpu_cluster.coredns_addon
        efa = self._efa_pool(config) if config.efa else None
        self.karpenter = Karpenter(
            self,
            "Karpenter",
            props=KarpenterProps(
                cluster=cluster, cluster_name=cluster_name,
                pod_identity_agent=pod_identity_agent, core_dns=core_dns, plans=config.plans,
                gpu_instance_types=config.gpu_pool_instance_types,
                availability_zones=config.network.availability_zones,
                gpu_limit=config.gpu_pool_gpu_limit, cpu_limit=config.cluster.cpu_limit,
                efa=efa, parallel_image_pull=config.parallel_image_pull,
            ),
        )
        self.storage = StorageDrivers(
            self, "StorageDrivers",
            props=StorageDriversProps(
                cluster=cluster, pod_identity_agent=pod_identity_agent,
                file_system=store.file_system,
                file_system_security_group=store.file_system_security_group,
                environment_name=cluster_name,
            ),
        )
        # Pods of the releases below need nodes and cluster DNS: CoreDNS turns ACTIVE
        # only once it runs on the system node group.
        workloads_ready = core_dns
        self.secrets_store = SecretsStoreCsi(
            self, "SecretsStoreCsi",
            props=SecretsStoreCsiProps(cluster=cluster, region=config.region,
                                       after=(workloads_ready,)),
        )
        self.alb_controller = AlbController(
            self, "AlbController",
            props=AlbControllerProps(
                cluster=cluster, cluster_name=cluster_name, vpc=vpc, region=config.region,
                pod_identity_agent=pod_identity_agent, core_dns=core_dns,
            ),
        )
        grafana_ingress = (self.alb_controller.chart,) if config.observability.grafana_alb else ()
        self.observability = Observability(
            self, "Observability",
            props=ObservabilityProps(
                cluster=cluster, pod_identity_agent=pod_identity_agent,
                config=config.observability,
                region=config.region, vpc_cidr=config.network.cidr, efa=config.efa,
                after=(self.storage.storage_classes, self.secrets_store.driver,
                       self.secrets_store.provider, *grafana_ingress),
            ),
        )
        if config.efa:
            self.efa_device_plugin = EfaDevicePlugin(
                self, "EfaDevicePlugin",
                props=EfaDevicePluginProps(cluster=cluster, after=(workloads_ready,)))
        if config.multi_node:
            # Only when a model spans nodes: one more controller for nothing otherwise.
            self.lws = LeaderWorkerSet(self, "LeaderWorkerSet", props=LeaderWorkerSetProps(
                cluster=cluster, after=(workloads_ready,)))
        if config.tracing.enabled:
            self.tracing = Tracing(self, "Tracing", props=TracingProps(
                cluster=cluster, region=config.region, pod_identity_agent=pod_identity_agent,
                after=(self.observability.namespace,)))
        # On `cdk destroy`, removes the load balancers and Karpenter nodes the
        # controllers created, before the controllers go (docs/teardown.md).
        self.teardown_guard = TeardownGuard(
            self, "TeardownGuard",
            props=TeardownGuardProps(
                cluster=cluster, cluster_name=cluster_name, vpc=vpc,
                after=(self.karpenter.controller, self.karpenter.pools,
                       self.alb_controller.chart),
            ),
        )
        self._install_in_lanes(config)
        if config.image_cache_prefix:
            self.image_cache = ImageCache(self, "ImageCache", props=ImageCacheProps(
                prefix=config.image_cache_prefix,
                docker_hub_secret_arn=config.docker_hub_secret_arn,
                node_roles=(self.gpu_cluster.node_role, self.karpenter.node_role)))
        cdk.CfnOutput(
            self, "GrafanaAdminSecretArn",
            value=self.observability.grafana_admin.secret_arn,
            description="Grafana user admin; read the password with aws secretsmanager "
            "get-secret-value --secret-id <arn>",
        )
        cdk.CfnOutput(
            self, "GrafanaPortForwardCommand",
            value=f"kubectl -n {MONITORING_NAMESPACE} port-forward svc/{GRAFANA_SERVICE} "
            "3000:80",
            description="Then open http://localhost:3000",
        )
        cdk.CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        cdk.CfnOutput(
            self,
            "UpdateKubeconfigCommand",
            description="Run this to point kubectl at the cluster",
            value=f"aws eks update-kubeconfig --region {self.region} "
            f"--name {cluster.cluster_name}",
        )

    def _install_in_lanes(self, config: EnvironmentConfig) -> None:
        """At most three Helm releases install at once (install_order.RELEASES_IN_FLIGHT:
        the Lambda concurrency of new accounts), in three lanes:
          - the Secrets Store driver, then monitoring, all for real reasons (the namespace
            and kube-prometheus-stack need the driver, dcgm-exporter the ServiceMonitor
            CRD): the longest lane, so nothing else is put in it;
          - the TeardownGuard's RBAC manifest and the Karpenter CRDs (no pods: both apply
            while the nodes start), the Secrets Store AWS provider (the first lane's kube-prometheus-stack waits for it), the
            Karpenter controller, the EFA device plugin;
          - the ALB controller (the models' Ingress waits for it), KEDA, LeaderWorkerSet,
            the OpenTelemetry collector.
        """
        in_lane(self.teardown_guard.rbac, self.karpenter.crds, self.secrets_store.provider,
                self.karpenter.controller,
                *([self.efa_device_plugin.chart] if config.efa else []))
        in_lane(self.alb_controller.chart, self.observability.keda,
                *([self.lws.chart] if config.multi_node else []),
                *([self.tracing.chart] if config.tracing.enabled else []))

    def _efa_pool(self, config: EnvironmentConfig) -> EfaPoolSettings:
        """A cluster placement group in the environment's first zone, for the EFA pool:
        a group's nodes close together on the network."""
        group = ec2.CfnPlacementGroup(
            self, "EfaPlacementGroup", strategy="cluster",
            tags=[cdk.CfnTag(key=ENVIRONMENT_TAG, value=config.cluster.name)])
        types: dict[str, None] = {}
        for model in config.efa_models:
            types.update(dict.fromkeys(config.instance_types(model)))
        return EfaPoolSettings(instance_types=tuple(types),
                               zone=config.network.availability_zones[0],
                               placement_group=group.ref, gpu_limit=config.efa_gpu_limit)
