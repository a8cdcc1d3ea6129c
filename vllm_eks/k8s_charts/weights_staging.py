"""The weights-staging Job: Hugging Face -> S3 (-> EFS), once per model."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from importlib import resources

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .. import versions
from ..models import ModelProfile
from ..models.profile import GIB
from ..models.sources import ModelSource
from .benchmark import SHAREGPT_FILE, SHAREGPT_KEY, SHAREGPT_REPO
from .inference_namespace import MODEL_CACHE_CLAIM
from .model_pods import (
    EFS_MOUNT,
    STAGE_SCRIPT,
    app_name,
    cpu_nodes_only,
    efs_model_dir,
    egress_to_aws_apis,
    scripts_configmap,
    stage_script_container,
    vllm_image,
)
from .pod_security import pod_security_context

# One shard at a time passes through local disk (safetensors shards are <= ~10 GB).
SCRATCH_GIB = 20


def stager_name(model_key: str) -> str:
    """The staging ServiceAccount (and its NetworkPolicy) of one model (renamed from
    `-stager` for the reason model_pods.server_account gives)."""
    return app_name(model_key, "staging")


def stage_script() -> str:
    return resources.files(__package__).joinpath("scripts", STAGE_SCRIPT).read_text()


@dataclass(frozen=True, kw_only=True)
class WeightsStagingProps:
    model: ModelProfile
    model_source: ModelSource  # S3 or EFS (HF needs no staging)
    region: str
    weights_bucket: str  # may be a CDK token
    model_prefix: str  # "<key>/<revision>/"
    hf_token_secret_arn: str  # may be a CDK token
    hf_revision: str = "main"  # branch, tag or commit of the Hugging Face repository
    namespace: str = "inference"
    # None: the vLLM image from Docker Hub; else the ECR pull-through cache's prefix.
    image_cache_prefix: str | None = None
    # Also stage the ShareGPT benchmark dataset (-c bench_datasets names `sharegpt`).
    stage_sharegpt: bool = False


class WeightsStagingChart(cdk8s.Chart):
    """The staging script (ConfigMap), the stager's ServiceAccount (its AWS role writes
    only under the model's prefix), the Job, and the Job's NetworkPolicy.

    The Job's name carries a hash of its spec: Jobs are immutable, so a changed spec
    becomes a new Job, and the previous one is pruned."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: WeightsStagingProps) -> None:
        super().__init__(scope, construct_id, namespace=props.namespace,
                         disable_resource_name_hashes=True)
        self.props = props
        name = stager_name(props.model.key)
        labels = {"app.kubernetes.io/name": "weights-stager",
                  "app.kubernetes.io/part-of": "vllm-eks",
                  "vllm-eks.io/model": props.model.key}
        script = stage_script()
        k8s.KubeConfigMap(self, "Scripts",
                          metadata=k8s.ObjectMeta(name=scripts_configmap(props.model.key),
                                                  labels=labels),
                          data={STAGE_SCRIPT: script})
        k8s.KubeServiceAccount(self, "ServiceAccount",
                               metadata=k8s.ObjectMeta(name=name, labels=labels))
        spec = self._job_spec(labels)
        # Everything that shapes the Job except CDK tokens (bucket and secret names are
        # fixed for the life of an environment).
        identity = [props.model.key, props.model.hf_id, props.hf_revision, props.model_prefix,
                    props.model_source.value, versions.VLLM_IMAGE, script, name]
        if props.image_cache_prefix:  # only when set: the default Job keeps its name
            identity.append(props.image_cache_prefix)
        if props.stage_sharegpt:  # likewise
            identity.append(SHAREGPT_KEY)
        digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:8]
        k8s.KubeJob(
            self, "Job",
            metadata=k8s.ObjectMeta(name=f"stage-{app_name(props.model.key)}-{digest}"[:63],
                                    labels=labels),
            spec=spec,
        )
        k8s.KubeNetworkPolicy(
            self, "NetworkPolicy",
            metadata=k8s.ObjectMeta(name=name, labels=labels),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=labels),
                policy_types=["Egress"],
                egress=egress_to_aws_apis(),
            ),
        )

    def _job_spec(self, labels: dict[str, str]) -> k8s.JobSpec:
        props = self.props
        env = {
            "AWS_REGION": props.region,
            "HF_MODEL_ID": props.model.hf_id,
            "HF_REVISION": props.hf_revision,
            "WEIGHTS_BUCKET": props.weights_bucket,
            "MODEL_PREFIX": props.model_prefix,
            "HF_TOKEN_SECRET_ARN": props.hf_token_secret_arn,
            "HOME": "/scratch",
            "HF_HOME": "/scratch/huggingface",
            "TMPDIR": "/scratch",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        if props.stage_sharegpt:
            env.update(DATASET_S3_KEY=SHAREGPT_KEY, DATASET_REPO=SHAREGPT_REPO,
                       DATASET_FILE=SHAREGPT_FILE)
        mounts = [k8s.VolumeMount(name="scratch", mount_path="/scratch")]
        volumes = [
            k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                name=scripts_configmap(props.model.key))),
            k8s.Volume(name="scratch", empty_dir=k8s.EmptyDirVolumeSource(
                size_limit=k8s.Quantity.from_string(f"{SCRATCH_GIB}Gi"))),
        ]
        if props.model_source is ModelSource.EFS:
            env["EFS_MODEL_DIR"] = efs_model_dir(props.model_prefix)
            mounts.append(k8s.VolumeMount(name="model-cache", mount_path=EFS_MOUNT))
            volumes.append(k8s.Volume(
                name="model-cache",
                persistent_volume_claim=k8s.PersistentVolumeClaimVolumeSource(
                    claim_name=MODEL_CACHE_CLAIM)))
        # Hours for the largest models through NAT; the Job gives up after four times
        # the estimate at 100 MB/s (and retries, resuming, up to the backoff limit).
        deadline = 4 * (3600 + math.ceil(props.model.weight_bytes / GIB / 0.1))
        return k8s.JobSpec(
            backoff_limit=6,
            active_deadline_seconds=deadline,
            template=k8s.PodTemplateSpec(
                # Karpenter must not consolidate the CPU node away mid-copy (hours for
                # the largest models): the copy would restart from its last object.
                metadata=k8s.ObjectMeta(labels=labels,
                                        annotations={"karpenter.sh/do-not-disrupt": "true"}),
                spec=k8s.PodSpec(
                    service_account_name=stager_name(props.model.key),
                    restart_policy="OnFailure",
                    security_context=pod_security_context(),
                    # CPU nodes only: a GPU node would sit under a copy job (and a replica
                    # sharing it might not fit next to it).
                    affinity=cpu_nodes_only(),
                    containers=[stage_script_container(
                        name="stage", image=vllm_image(props.image_cache_prefix),
                        mode="stage", env=env, cpu="1", memory="4Gi",
                        memory_limit="8Gi", volume_mounts=mounts)],
                    volumes=volumes,
                ),
            ),
        )
