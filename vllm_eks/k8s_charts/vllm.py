"""The vLLM chart: one model served by vLLM, from its profile and deployment plan."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..labels import GPU_TAINT_KEY
from ..models import DeploymentPlan
from ..models.profile import GIB
from ..models.sources import ModelSource, startup_budget_seconds
from ..vllm_cli import check_profile_args, check_server_args
from .inference_namespace import MODEL_CACHE_CLAIM
from .model_pods import (
    EFS_MOUNT,
    app_name,
    efs_model_dir,
    egress_to_aws_apis,
    scripts_configmap,
    stage_script_container,
    vllm_image,
    vllm_image_container,
)
from .objects import secret_provider_class
from .pod_security import pod_security_context

PORT = 8000
PORT_NAME = "http"
HEALTH_PATH = "/health"
SECRETS_DIR = "/var/run/secrets/vllm-eks"
CACHE_DIR = "/cache"
SECRETS_STORE_DRIVER = "secrets-store.csi.k8s.io"

# Draining: the preStop pause lets the load balancer deregister the pod before vLLM stops
# taking requests; vLLM then finishes in-flight streams for up to SHUTDOWN_TIMEOUT.
PRE_STOP_SECONDS = 15
SHUTDOWN_TIMEOUT_SECONDS = 600
TERMINATION_GRACE_SECONDS = PRE_STOP_SECONDS + SHUTDOWN_TIMEOUT_SECONDS + 30
STARTUP_PROBE_PERIOD_SECONDS = 10
# Share of the node's vCPUs and memory (pro rata to the GPUs a replica takes) requested
# by vLLM; the rest is left to the kubelet and the DaemonSets.
NODE_SHARE = 0.75
# Run:ai streamer: 16 concurrent S3 range reads, host buffer capped at 5 GiB.
STREAMER_CONCURRENCY = 16
STREAMER_MEMORY_LIMIT_BYTES = 5 * GIB


@dataclass(frozen=True, kw_only=True)
class IngressSettings:
    scheme: str  # "internal" or "internet-facing"
    certificate_arn: str | None  # None: HTTP only
    allowed_cidrs: tuple[str, ...]
    idle_timeout_seconds: int = 900  # long non-streamed generations must not be cut


@dataclass(frozen=True, kw_only=True)
class VllmChartProps:
    plan: DeploymentPlan
    model_source: ModelSource
    region: str
    weights_bucket: str  # bucket name; may be a CDK token
    model_prefix: str  # S3 key prefix of the staged weights, "<key>/<revision>/"
    api_key_secret_arn: str  # Secrets Manager; may be a CDK token
    hf_token_secret_arn: str  # Secrets Manager; may be a CDK token
    ingress: IngressSettings
    load_balancer_cidrs: tuple[str, ...]  # subnets the load balancer sends from
    namespace: str = "inference"
    monitoring_namespace: str = "monitoring"  # Prometheus scrapes /metrics from there
    # None: the autoscaler owns the replica count (a fixed value would reset it on every
    # apply).
    replicas: int | None = None
    # None: the vLLM image from Docker Hub; else the ECR pull-through cache's prefix.
    image_cache_prefix: str | None = None
    # Karpenter's GPU pool limit: node types with more GPUs are left out of the node
    # affinity, as they are out of the pool. None: no limit.
    gpu_limit: int | None = None


class VllmChart(cdk8s.Chart):
    """ServiceAccount, SecretProviderClass, Deployment, Service, PodDisruptionBudget,
    Ingress and NetworkPolicy for one model.

    Hooks a subclass may override (never `__init__`): `server_args()`, `env()`,
    `container()`, `resources()`, `volumes()`, `volume_mounts()`, `init_containers()`,
    `pod_spec()`, `secret_objects()`, `ingress_annotations()`, `model_location()`,
    `node_instance_types()`. Point a profile's `chart_class` at the subclass; see
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
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/part-of": "vllm-eks",
            "vllm-eks.io/model": self.model.key,
        }
        self._service_account()
        self._secret_provider_class()
        self._deployment()
        self._service()
        self._disruption_budget()
        self._ingress()
        self._network_policy()

    # -- derived numbers ---------------------------------------------------------------

    @property
    def secret_provider_class_name(self) -> str:
        return f"{self.name}-secrets"

    @property
    def startup_budget_seconds(self) -> int:
        return startup_budget_seconds(self.model, self.props.model_source)

    def model_location(self) -> str:
        """What `vllm serve` is given as the model: an s3:// URI, a path on the EFS
        mount, or the Hugging Face id."""
        source = self.props.model_source
        if source is ModelSource.S3:
            return f"s3://{self.props.weights_bucket}/{self.props.model_prefix}"
        if source is ModelSource.EFS:
            return efs_model_dir(self.props.model_prefix)
        return self.model.hf_id

    def node_instance_types(self) -> list[str]:
        """The planned type and the fallbacks on which this replica fits, within the GPU
        pool's limit: the types the GPU NodePool offers (DeploymentPlan.instance_types)."""
        return list(self.plan.instance_types(self.props.gpu_limit))

    # -- hooks -------------------------------------------------------------------------

    def server_args(self) -> list[str]:
        """`vllm serve` arguments: the model, then flags from the plan and the profile."""
        plan = self.plan
        args = [
            self.model_location(),
            "--served-model-name", self.model.name,
            "--port", str(PORT),
            "--tensor-parallel-size", str(plan.tensor_parallel),
            "--max-model-len", str(plan.max_model_len),
            "--gpu-memory-utilization", f"{plan.gpu_memory_utilization:.2f}",
            "--shutdown-timeout", str(SHUTDOWN_TIMEOUT_SECONDS),
            "--disable-uvicorn-access-log",  # probes every 10 s would drown the logs
        ]
        if self.model.mixture_of_experts and plan.tensor_parallel > 1:
            args.append("--enable-expert-parallel")
        if self.props.model_source is ModelSource.S3:
            loader = {"concurrency": STREAMER_CONCURRENCY,
                      "memory_limit": STREAMER_MEMORY_LIMIT_BYTES}
            if plan.tensor_parallel > 1:
                loader["distributed"] = True  # each rank streams only its own shards
            args += ["--load-format", "runai_streamer",
                     "--model-loader-extra-config", json.dumps(loader, separators=(",", ":"))]
        return args + list(self.model.extra_args)

    def env(self) -> list[k8s.EnvVar]:
        """Environment of the vLLM container. The root filesystem is read-only, so every
        cache points into the writable cache volume."""
        values = {
            "AWS_REGION": self.props.region,
            "AWS_DEFAULT_REGION": self.props.region,
            "HOME": CACHE_DIR,  # exists (a mount point); ~/.cache etc. are created in it
            "XDG_CACHE_HOME": CACHE_DIR,
            "XDG_CONFIG_HOME": f"{CACHE_DIR}/config",
            "HF_HOME": f"{CACHE_DIR}/huggingface",
            "TRITON_CACHE_DIR": f"{CACHE_DIR}/triton",
            "TMPDIR": "/tmp",
            # torch looks the user up by UID unless these are set.
            "USER": "vllm",
            "LOGNAME": "vllm",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        if self.props.model_source is not ModelSource.HF:
            values["HF_HUB_OFFLINE"] = "1"  # everything comes from S3 / EFS
        return [k8s.EnvVar(name=k, value=v) for k, v in values.items()]

    def secret_objects(self) -> list[dict]:
        """Secrets Manager objects mounted as files under SECRETS_DIR."""
        objects = [{"objectName": self.props.api_key_secret_arn, "objectType": "secretsmanager",
                    "objectAlias": "api-key"}]
        if self.props.model_source is ModelSource.HF:
            objects.append({"objectName": self.props.hf_token_secret_arn,
                            "objectType": "secretsmanager", "objectAlias": "hf-token.json",
                            "jmesPath": [{"path": "token", "objectAlias": "hf-token"}]})
        return objects

    def volumes(self) -> list[k8s.Volume]:
        weights_gib = math.ceil(self.model.weight_bytes / GIB)
        cache_gib = 50 + (weights_gib if self.props.model_source is ModelSource.HF else 0)
        volumes = [
            # NCCL and vLLM's worker message queues use shared memory.
            k8s.Volume(name="dshm", empty_dir=k8s.EmptyDirVolumeSource(
                medium="Memory",
                size_limit=k8s.Quantity.from_string(
                    "2Gi" if self.plan.tensor_parallel == 1 else "16Gi"))),
            k8s.Volume(name="cache", empty_dir=k8s.EmptyDirVolumeSource(
                size_limit=k8s.Quantity.from_string(f"{cache_gib}Gi"))),
            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(
                size_limit=k8s.Quantity.from_string("10Gi"))),
            k8s.Volume(name="secrets", csi=k8s.CsiVolumeSource(
                driver=SECRETS_STORE_DRIVER, read_only=True,
                volume_attributes={"secretProviderClass": self.secret_provider_class_name})),
        ]
        if self.props.model_source is not ModelSource.HF:
            volumes.append(k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                name=scripts_configmap(self.model.key))))
        if self.props.model_source is ModelSource.EFS:
            volumes.append(k8s.Volume(
                name="model-cache",
                persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
                    claim_name=MODEL_CACHE_CLAIM, read_only=True)))
        return volumes

    def volume_mounts(self) -> list[k8s.VolumeMount]:
        mounts = [
            k8s.VolumeMount(name="dshm", mount_path="/dev/shm"),
            k8s.VolumeMount(name="cache", mount_path=CACHE_DIR),
            k8s.VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.VolumeMount(name="secrets", mount_path=SECRETS_DIR, read_only=True),
        ]
        if self.props.model_source is ModelSource.EFS:
            mounts.append(k8s.VolumeMount(name="model-cache", mount_path=EFS_MOUNT,
                                          read_only=True))
        return mounts

    def container(self) -> k8s.Container:
        budget = self.startup_budget_seconds
        # The key is read from the mounted secret into the environment of `vllm serve`
        # only: never a manifest, a ConfigMap or a Kubernetes Secret. `exec` makes vLLM
        # PID 1, so it receives SIGTERM and drains.
        # An empty key would switch authentication off: fail closed instead.
        steps = [
            "set -eu",
            f'VLLM_API_KEY="$(cat {SECRETS_DIR}/api-key)"',
            '[ -n "$VLLM_API_KEY" ] || { echo "vllm-eks: the API key file is empty" >&2; '
            'exit 1; }',
            "export VLLM_API_KEY",
        ]
        if self.props.model_source is ModelSource.HF:
            steps.append(f'HF_TOKEN="$(cat {SECRETS_DIR}/hf-token)"; '
                         'if [ -n "$HF_TOKEN" ]; then export HF_TOKEN; fi')
        launcher = "; ".join(steps) + '; exec vllm serve "$@"'
        http = k8s.HttpGetAction(path=HEALTH_PATH, port=k8s.IntOrString.from_string(PORT_NAME))
        return vllm_image_container(
            name="vllm", image=vllm_image(self.props.image_cache_prefix),
            command=["/bin/sh", "-c", launcher, "vllm-serve"],
            args=self.server_args(),
            env=self.env(),
            ports=[k8s.ContainerPort(name=PORT_NAME, container_port=PORT, protocol="TCP")],
            resources=self.resources(),
            # Loading takes minutes (hours for the largest models from Hugging Face):
            # the budget grows with the weights and the load path.
            startup_probe=k8s.Probe(
                http_get=http, period_seconds=STARTUP_PROBE_PERIOD_SECONDS, timeout_seconds=5,
                failure_threshold=math.ceil(budget / STARTUP_PROBE_PERIOD_SECONDS)),
            readiness_probe=k8s.Probe(http_get=http, period_seconds=10, timeout_seconds=5,
                                      failure_threshold=3),
            liveness_probe=k8s.Probe(http_get=http, period_seconds=15, timeout_seconds=10,
                                     failure_threshold=4),
            lifecycle=k8s.Lifecycle(pre_stop=k8s.LifecycleHandler(
                sleep=k8s.SleepAction(seconds=PRE_STOP_SECONDS))),
            volume_mounts=self.volume_mounts(),
        )

    def resources(self) -> k8s.ResourceRequirements:
        """GPUs = the placement's tensor-parallel size; CPU and memory pro rata."""
        instance = self.plan.chosen.instance
        share = self.plan.gpus / instance.gpu_count * NODE_SHARE
        cpu = max(1, math.floor(instance.vcpu * share))
        memory = max(8, math.floor(instance.memory_gib * share))
        gpus = k8s.Quantity.from_string(str(self.plan.gpus))
        return k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string(str(cpu)),
                      "memory": k8s.Quantity.from_string(f"{memory}Gi"),
                      "nvidia.com/gpu": gpus},
            # No CPU limit (throttling stalls the scheduler loop); memory limited so a
            # leak cannot take the node.
            limits={"memory": k8s.Quantity.from_string(f"{memory}Gi"),
                    "nvidia.com/gpu": gpus},
        )

    def init_containers(self) -> list[k8s.Container]:
        """S3 / EFS: wait until the staging Job has finished, so vLLM never starts on
        half-staged weights."""
        if self.props.model_source is ModelSource.HF:
            return []
        env = {"AWS_REGION": self.props.region,
               "WEIGHTS_BUCKET": self.props.weights_bucket,
               "MODEL_PREFIX": self.props.model_prefix,
               "HOME": "/tmp"}
        mounts = [k8s.VolumeMount(name="tmp", mount_path="/tmp")]
        if self.props.model_source is ModelSource.EFS:
            env["EFS_MODEL_DIR"] = efs_model_dir(self.props.model_prefix)
            mounts.append(k8s.VolumeMount(name="model-cache", mount_path=EFS_MOUNT,
                                          read_only=True))
        return [stage_script_container(name="wait-for-weights",
                                       image=vllm_image(self.props.image_cache_prefix),
                                       mode="wait", env=env,
                                       cpu="100m", memory="256Mi", memory_limit="512Mi",
                                       volume_mounts=mounts)]

    def pod_spec(self) -> k8s.PodSpec:
        selector = k8s.LabelSelector(match_labels=self.app_labels)
        return k8s.PodSpec(
            service_account_name=self.name,
            security_context=pod_security_context(),
            init_containers=self.init_containers() or None,
            containers=[self.container()],
            volumes=self.volumes(),
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            tolerations=[k8s.Toleration(key=GPU_TAINT_KEY, operator="Exists",
                                        effect="NoSchedule")],
            affinity=k8s.Affinity(node_affinity=k8s.NodeAffinity(
                required_during_scheduling_ignored_during_execution=k8s.NodeSelector(
                    node_selector_terms=[k8s.NodeSelectorTerm(match_expressions=[
                        k8s.NodeSelectorRequirement(
                            key="node.kubernetes.io/instance-type", operator="In",
                            values=self.node_instance_types()),
                    ])]))),
            # Replicas in different zones survive an AZ outage; GPU capacity is scarce, so
            # a zone without it does not block scheduling.
            topology_spread_constraints=[k8s.TopologySpreadConstraint(
                max_skew=1, topology_key="topology.kubernetes.io/zone",
                when_unsatisfiable="ScheduleAnyway", label_selector=selector)],
        )

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

    def _metadata(self, name: str | None = None, **extra) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name or self.name, labels=self.app_labels, **extra)

    def _service_account(self) -> None:
        # Its AWS role (S3 read on the model's prefix, the API key secret) comes from the
        # EKS Pod Identity association the CDK construct creates for this name.
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=self._metadata())

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
                strategy=k8s.DeploymentStrategy(
                    type="RollingUpdate",
                    rolling_update=k8s.RollingUpdateDeployment(
                        max_surge=k8s.IntOrString.from_number(1),
                        max_unavailable=k8s.IntOrString.from_number(0))),
                progress_deadline_seconds=self.startup_budget_seconds + 600,
                template=k8s.PodTemplateSpec(
                    metadata=k8s.ObjectMeta(labels=self.app_labels),
                    spec=self.pod_spec(),
                ),
            ),
        )

    def _service(self) -> None:
        k8s.KubeService(
            self, "Service", metadata=self._metadata(),
            spec=k8s.ServiceSpec(
                type="ClusterIP", selector=self.app_labels,
                ports=[k8s.ServicePort(name=PORT_NAME, port=PORT, protocol="TCP",
                                       target_port=k8s.IntOrString.from_string(PORT_NAME))]),
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

