"""Where vLLM loads a model's weights from, and how long a cold start takes from there.

The startup probe of the vLLM pod gets a budget derived from these numbers: a 688 GB
model streamed from S3 is not given the same ten minutes as a 16 GB one.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .profile import GB, ModelProfile


class ModelSource(enum.Enum):
    """The `-c model_source=` choices."""

    # Weights staged once into s3://<bucket>/<model>/ and streamed straight into GPU
    # memory by the Run:ai model streamer (`--load-format runai_streamer`).
    S3 = "s3"
    # Weights staged into S3, then synced to the shared EFS volume; vLLM reads them as
    # files (safetensors) from a read-only mount.
    EFS = "efs"
    # vLLM downloads from Hugging Face at every start (no staging; needs internet egress).
    HF = "hf"


@dataclass(frozen=True, kw_only=True)
class LoadPath:
    """Sustained read throughput of one node from a source, as assumed for budgets."""

    gb_per_second: float
    assumption: str


# Conservative sustained figures per node (not peaks), so budgets hold on the smallest
# planned instance; the README repeats them.
LOAD_PATHS: dict[ModelSource, LoadPath] = {
    ModelSource.S3: LoadPath(
        gb_per_second=1.0,
        assumption="Run:ai streamer from S3 through the gateway endpoint, 16 concurrent "
        "range reads: ~1 GB/s sustained on a 25 Gbit/s node (more on 100+ Gbit/s nodes)",
    ),
    ModelSource.EFS: LoadPath(
        gb_per_second=0.5,
        assumption="EFS elastic throughput, one NFS client: ~0.5 GB/s per node",
    ),
    ModelSource.HF: LoadPath(
        gb_per_second=0.1,
        assumption="download from Hugging Face through NAT: ~100 MB/s, then a local load",
    ),
}

# Engine start after the weights are in: CUDA context, NCCL init for TP > 1,
# torch.compile and CUDA-graph capture (the compile cache is per pod, so every start pays).
ENGINE_START_SECONDS = 300
# The probe budget is this multiple of the estimate: a slow S3 prefix or a busy NAT must
# not kill a replica that is still loading (a killed start restarts from zero).
STARTUP_SAFETY_FACTOR = 2


def cold_start_seconds(model: ModelProfile, source: ModelSource) -> int:
    """Estimated seconds from container start to ready: weights over the load path's
    throughput, plus the engine start."""
    weights_gb = model.weight_bytes / GB
    return int(math.ceil(weights_gb / LOAD_PATHS[source].gb_per_second)) + ENGINE_START_SECONDS


def startup_budget_seconds(model: ModelProfile, source: ModelSource) -> int:
    """How long the startup probe lets a replica load before Kubernetes restarts it."""
    return STARTUP_SAFETY_FACTOR * cold_start_seconds(model, source)


# -- the first deploy of a model: what happens before the first replica starts loading --

# Copying weights from Hugging Face into S3 (the staging Job, through NAT), and for EFS
# then from S3 onto the file system: the same sustained figures as the load paths.
STAGING_GB_PER_SECOND = LOAD_PATHS[ModelSource.HF].gb_per_second
# Karpenter's decision, EC2 launch and the node joining the cluster; 8-GPU instances take
# longest (minutes of firmware and driver initialisation).
GPU_NODE_LAUNCH_SECONDS = 600
# The ~12 GB (compressed) vLLM image from Docker Hub through NAT, then unpacking ~28 GB.
IMAGE_PULL_SECONDS = 600


def staging_seconds(model: ModelProfile, source: ModelSource) -> int:
    """How long the staging Job takes on a first deploy: nothing for `hf` (no staging),
    Hugging Face -> S3 for `s3`, and S3 -> EFS on top for `efs`."""
    if source is ModelSource.HF:
        return 0
    weights_gb = model.weight_bytes / GB
    seconds = weights_gb / STAGING_GB_PER_SECOND
    if source is ModelSource.EFS:
        seconds += weights_gb / LOAD_PATHS[ModelSource.EFS].gb_per_second
    return int(math.ceil(seconds))


def group_join_seconds(nodes: int) -> int:
    """How long the leader of a multi-node replica may wait for its workers: their nodes
    launched and the image pulled there (nothing on one node)."""
    return GPU_NODE_LAUNCH_SECONDS + IMAGE_PULL_SECONDS if nodes > 1 else 0


def first_ready_seconds(model: ModelProfile, source: ModelSource, nodes: int = 1) -> int:
    """Upper bound from `cdk deploy` finishing to the first replica serving, on a new
    environment: staging, a GPU node launched by Karpenter, the image pulled, then the
    startup budget (the estimated cold start with its safety factor), which for a replica
    over several nodes includes its workers joining."""
    return (staging_seconds(model, source) + GPU_NODE_LAUNCH_SECONDS + IMAGE_PULL_SECONDS
            + startup_budget_seconds(model, source) + group_join_seconds(nodes))
