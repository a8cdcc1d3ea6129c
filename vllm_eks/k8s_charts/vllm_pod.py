"""The vLLM chart's pod: the vLLM container (launcher, `vllm serve` arguments, environment,
probes, draining, resources), its volumes and mounts, the wait-for-weights init container,
and the pod spec (security context, GPU toleration, node affinity, zone spread).

`VllmPodSpecMixin` holds these as methods of `VllmChart` (vllm.py), which combines it with
`VllmNetworkingMixin` (vllm_networking.py). Hooks defined here: `server_args()`, `env()`,
`container()`, `resources()`, `volumes()`, `volume_mounts()`, `init_containers()`,
`pod_spec()`, `model_location()`, `node_instance_types()`, `node_capacity_types()`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from cdk8s_plus_35 import k8s

from .. import versions
from ..labels import GPU_TAINT_KEY
from ..models import CapacityType
from ..models.profile import GIB
from ..models.sources import STREAMER_CONCURRENCY, ModelSource, startup_budget_seconds
from .inference_namespace import MODEL_CACHE_CLAIM
from .model_pods import (
    EFS_MOUNT,
    efs_model_dir,
    scripts_configmap,
    server_account,
    stage_script_container,
    vllm_image,
    vllm_image_container,
)
from .pod_security import pod_security_context

if TYPE_CHECKING:
    from ..models import DeploymentPlan, ModelProfile
    from .vllm import VllmChartProps

PORT = 8000
PORT_NAME = "http"
HEALTH_PATH = "/health"
SECRETS_DIR = "/var/run/secrets/vllm-eks"
CACHE_DIR = "/cache"
# VLLM_CACHE_ROOT (torch.compile, Inductor, FlashInfer autotuning caches) on the EFS claim,
# under COMPILE_CACHE_PREFIX/<placement>.
COMPILE_CACHE_DIR = "/compile-cache"
COMPILE_CACHE_PREFIX = "compile-cache"
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
# Run:ai streamer: concurrent S3 range reads as its benchmark's best (sources.py), host
# buffer capped at 5 GiB.
STREAMER_MEMORY_LIMIT_BYTES = 5 * GIB


class VllmPodSpecMixin:
    """The pod of `VllmChart`, never used on its own: reads the `props`, `plan`, `model`,
    `name` and `app_labels` that `VllmChart.__init__` sets. Hooks: `server_args()`,
    `env()`, `container()`, `resources()`, `volumes()`, `volume_mounts()`,
    `init_containers()`, `pod_spec()`, `model_location()`, `node_instance_types()`,
    `node_capacity_types()`."""

    props: VllmChartProps
    plan: DeploymentPlan
    model: ModelProfile
    name: str
    app_labels: dict[str, str]

    # -- derived numbers ---------------------------------------------------------------

    @property
    def secret_provider_class_name(self) -> str:
        return f"{self.name}-secrets"

    @property
    def startup_budget_seconds(self) -> int:
        return startup_budget_seconds(self.model, self.props.model_source,
                                      self.plan.chosen.instance, self.plan.nodes)

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
        """The planned type and the fallbacks on which this replica fits, within the
        model's GPU limit: the types the GPU NodePool offers for this model
        (EnvironmentConfig.instance_types)."""
        return list(self.plan.instance_types(self.props.gpu_limit))

    def node_capacity_types(self) -> list[str]:
        """On-demand, or spot first with on-demand as the fallback: the GPU pool offers
        both when any model of the environment runs on spot, so each model's pods name
        their own."""
        if self.plan.capacity is CapacityType.SPOT:
            return ["spot", "on-demand"]
        return ["on-demand"]

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
        if self.props.tracing is not None:
            args += ["--otlp-traces-endpoint", self.props.tracing.endpoint]
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
        if self.props.compile_cache:
            values["VLLM_CACHE_ROOT"] = COMPILE_CACHE_DIR
        if self.props.tracing is not None:
            values.update(self.props.tracing.env(service_name=self.name))
        return [k8s.EnvVar(name=k, value=v) for k, v in values.items()]

    @property
    def compile_cache_path(self) -> str:
        """This placement's directory of the shared compile cache, relative to the EFS
        claim: one per vLLM image, GPU type, model and parallelism (vLLM hashes these into
        its own subdirectories too; the path keeps placements apart for people and for
        cleanup). vLLM 0.33 writes its artifacts to a temporary file and renames it, so
        replicas starting at once are safe: each compiles, the last rename wins."""
        plan = self.plan
        image = self.props.image_key or (
            "custom" if self.props.image else versions.VLLM_IMAGE.rsplit(":", 1)[-1])
        gpu = plan.chosen.instance.gpu.name.removeprefix("NVIDIA ").lower().replace(" ", "-")
        return (f"{COMPILE_CACHE_PREFIX}/{image}/{gpu}/"
                f"{self.model.key}/tp{plan.tensor_parallel}-pp{plan.nodes}")

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
        if self.props.compile_cache:
            # The same claim, writable, but mounted at this placement's directory only.
            volumes.append(k8s.Volume(
                name="compile-cache",
                persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
                    claim_name=MODEL_CACHE_CLAIM)))
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
        if self.props.compile_cache:
            mounts.append(k8s.VolumeMount(name="compile-cache", mount_path=COMPILE_CACHE_DIR,
                                          sub_path=self.compile_cache_path))
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
            name="vllm", image=self.props.image or vllm_image(self.props.image_cache_prefix),
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
                                       image=self.props.image or vllm_image(
                                           self.props.image_cache_prefix),
                                       mode="wait", env=env,
                                       cpu="100m", memory="256Mi", memory_limit="512Mi",
                                       volume_mounts=mounts)]

    def pod_spec(self) -> k8s.PodSpec:
        selector = k8s.LabelSelector(match_labels=self.app_labels)
        return k8s.PodSpec(
            service_account_name=server_account(self.model.key),
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
                        k8s.NodeSelectorRequirement(
                            key="karpenter.sh/capacity-type", operator="In",
                            values=self.node_capacity_types()),
                    ])]))),
            # Replicas in different zones survive an AZ outage; GPU capacity is scarce, so
            # a zone without it does not block scheduling.
            topology_spread_constraints=[k8s.TopologySpreadConstraint(
                max_skew=1, topology_key="topology.kubernetes.io/zone",
                when_unsatisfiable="ScheduleAnyway", label_selector=selector)],
        )
