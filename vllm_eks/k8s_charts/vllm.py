"""The vLLM chart: one model served by vLLM, from its profile and deployment plan.

`VllmChart` is built from one mixin per concern: `VllmPodSpecMixin` (vllm_pod.py: the
container, its arguments, environment, probes and resources, the volumes, the init
container, the pod spec) and `VllmNetworkingMixin` (vllm_networking.py: Service,
NetworkPolicy). This module creates the chart's objects, in order,
and defines the ServiceAccount, SecretProviderClass, Deployment and PodDisruptionBudget.
Every public name of the three modules is importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..models import DeploymentPlan
from ..models.sources import ModelSource
from ..vllm_cli import check_profile_args, check_server_args
from .model_pods import MODEL_SELECTOR, ROUTER_LABELS, app_name, server_account
from .objects import secret_provider_class, surge_rollout
from .tracing import TraceExport
from .vllm_networking import VllmNetworkingMixin
from .vllm_pod import (
    CACHE_DIR,
    HEALTH_PATH,
    NODE_SHARE,
    PORT,
    PORT_NAME,
    PRE_STOP_SECONDS,
    SECRETS_DIR,
    SECRETS_STORE_DRIVER,
    SHUTDOWN_TIMEOUT_SECONDS,
    STARTUP_PROBE_PERIOD_SECONDS,
    STREAMER_CONCURRENCY,
    STREAMER_MEMORY_LIMIT_BYTES,
    TERMINATION_GRACE_SECONDS,
    VllmPodSpecMixin,
)

__all__ = [
    "CACHE_DIR", "HEALTH_PATH", "NODE_SHARE", "PORT", "PORT_NAME", "PRE_STOP_SECONDS",
    "SECRETS_DIR", "SECRETS_STORE_DRIVER", "SHUTDOWN_TIMEOUT_SECONDS",
    "STARTUP_PROBE_PERIOD_SECONDS", "STREAMER_CONCURRENCY", "STREAMER_MEMORY_LIMIT_BYTES",
    "TERMINATION_GRACE_SECONDS", "VllmChart", "VllmChartProps",
    "VllmNetworkingMixin", "VllmPodSpecMixin", "app_name",
]


@dataclass(frozen=True, kw_only=True)
class VllmChartProps:
    plan: DeploymentPlan
    model_source: ModelSource
    region: str
    weights_bucket: str  # bucket name; may be a CDK token
    model_prefix: str  # S3 key prefix of the staged weights, "<key>/<revision>/"
    api_key_secret_arn: str  # Secrets Manager; may be a CDK token
    hf_token_secret_arn: str  # Secrets Manager; may be a CDK token
    namespace: str = "inference"
    monitoring_namespace: str = "monitoring"  # Prometheus scrapes /metrics from there
    # The router's pods (the only clients the NetworkPolicy lets in besides Prometheus).
    router_labels: dict[str, str] = field(default_factory=lambda: dict(ROUTER_LABELS))
    # None: the autoscaler owns the replica count (a fixed value would reset it on every
    # apply).
    replicas: int | None = None
    # None: the vLLM image from Docker Hub; else the ECR pull-through cache's prefix.
    image_cache_prefix: str | None = None
    # The vLLM container's image; None: the pinned vLLM image (through the cache when set).
    # With EFA, the pinned image plus the EFA libraries (constructs/efa.py).
    image: str | None = None
    # `image`'s name in the compile cache's path (its tag, or what identifies its build);
    # None: the pinned image's tag, or "custom" for an `image` without a key.
    image_key: str | None = None
    # EFA interfaces each pod of a multi-node model requests (its node type's all); 0: no EFA.
    efa_interfaces: int = 0
    # The model's GPU limit (EnvironmentConfig.model_gpu_limit): node types with more GPUs
    # are left out of the node affinity, and of the GPU pool. None: no limit.
    gpu_limit: int | None = None
    # vLLM's torch.compile cache on the shared EFS volume (a later replica of the same
    # placement skips compiling); False: in the pod's own cache volume.
    compile_cache: bool = True
    # vLLM's OpenTelemetry traces to the in-cluster collector (-c tracing=true); None: off.
    tracing: TraceExport | None = None


class VllmChart(VllmPodSpecMixin, VllmNetworkingMixin, cdk8s.Chart):
    """ServiceAccount, SecretProviderClass, Deployment, Service, PodDisruptionBudget and
    NetworkPolicy for one model (the environment's router, router.py, is its only client).

    Hooks a subclass may override (never `__init__`): `server_args()`, `env()`,
    `container()`, `resources()`, `volumes()`, `volume_mounts()`, `init_containers()`,
    `pod_spec()`, `model_location()`, `node_instance_types()`, `node_capacity_types()`
    (VllmPodSpecMixin, vllm_pod.py); `secret_objects()` (here). Point a profile's `chart_class` at the subclass; see
    examples/vllm-eks-tool-calling and the README ("Add a model").
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: VllmChartProps) -> None:
        super().__init__(scope, construct_id, namespace=props.namespace,
                         disable_resource_name_hashes=True)
        self.props = props
        self.plan = props.plan
        self.model = props.plan.model
        self.name = app_name(self.model.key)
        owner = f"model {self.model.key!r}"
        check_profile_args(self.model.extra_args, owner=owner)
        check_server_args(self.server_args()[1:], owner=owner)
        self.app_labels = {
            **MODEL_SELECTOR,
            "app.kubernetes.io/instance": self.name,
            "vllm-eks.io/model": self.model.key,
        }
        self._service_account()
        self._secret_provider_class()
        self._deployment()
        self._service()
        self._disruption_budget()
        self._network_policy()

    # -- hooks -------------------------------------------------------------------------

    def secret_objects(self) -> list[dict]:
        """Secrets Manager objects mounted as files under SECRETS_DIR."""
        objects = [{"objectName": self.props.api_key_secret_arn, "objectType": "secretsmanager",
                    "objectAlias": "api-key"}]
        if self.props.model_source is ModelSource.HF:
            objects.append({"objectName": self.props.hf_token_secret_arn,
                            "objectType": "secretsmanager", "objectAlias": "hf-token.json",
                            "jmesPath": [{"path": "token", "objectAlias": "hf-token"}]})
        return objects

    # -- objects -----------------------------------------------------------------------

    def _metadata(self, name: str | None = None, **extra) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name or self.name, labels=self.app_labels, **extra)

    def _service_account(self) -> None:
        # Its AWS role (S3 read on the model's prefix, the API key secret) comes from the
        # EKS Pod Identity association the CDK construct creates for this name.
        k8s.KubeServiceAccount(self, "ServiceAccount",
                               metadata=self._metadata(server_account(self.model.key)))

    def _secret_provider_class(self) -> None:
        secret_provider_class(self, "SecretProviderClass",
                              name=self.secret_provider_class_name, labels=self.app_labels,
                              objects=self.secret_objects(), region=self.props.region)

    def _deployment(self) -> None:
        k8s.KubeDeployment(
            self, "Deployment",
            metadata=self._metadata(),
            spec=k8s.DeploymentSpec(
                replicas=self.props.replicas,
                selector=k8s.LabelSelector(match_labels=self.app_labels),
                # A new replica is up before an old one goes: no capacity dip on rollout
                # (Karpenter adds a GPU node for the surge if needed).
                strategy=surge_rollout(),
                progress_deadline_seconds=self.startup_budget_seconds + 600,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=self.app_labels),
                    spec=self.pod_spec(),
                ),
            ),
        )

    def _disruption_budget(self) -> None:
        # maxUnavailable, not minAvailable: a single replica must still let a node drain
        # (Karpenter expiry, upgrades); with more replicas one goes at a time.
        k8s.KubePodDisruptionBudget(
            self, "DisruptionBudget", metadata=self._metadata(),
            spec=k8s.PodDisruptionBudgetSpec(
                max_unavailable=k8s.IntOrString.from_number(1),
                selector=k8s.LabelSelector(match_labels=self.app_labels)),
        )
