"""Where vLLM loads a model's weights from, and how long a cold start takes from there.

Every figure is a named constant with its source (or marked an assumption). Two uses:
`plan` shows the typical cold start in parts (burst bandwidth, the compile cache
filled); the startup probe's budget takes the worst case (baseline bandwidth, an empty
compile cache) times a safety factor, so a 688 GB model streamed from S3 is not given
the same minutes as a 16 GB one, and a small node not those of a 3200 Gbit/s one.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from .instances import GpuInstance, network_gbps
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
    """How fast one node reads weights from a source: the lower of what its network
    carries (`link_share` of the node's bandwidth) and the source's own ceiling."""

    ceiling_gb_per_second: float
    link_share: float
    assumption: str


# The Run:ai streamer's published S3 benchmark (run-ai/runai-model-streamer
# docs/src/benchmarks.md, tag 0.15.9): Llama-3-8B (15 GB) from S3 to an A10G of a
# g5.12xlarge (40 Gbit/s) in 4.88 s at concurrency 32 (3.07 GB/s: 61 % of the link,
# ~0.096 GB/s per stream), 8.45 s at 16. vLLM passes `concurrency` from
# --model-loader-extra-config (vllm_pod.STREAMER_CONCURRENCY).
S3_GB_PER_SECOND_PER_STREAM = 0.096
S3_LINK_SHARE = 0.6
STREAMER_CONCURRENCY = 32

LOAD_PATHS: dict[ModelSource, LoadPath] = {
    ModelSource.S3: LoadPath(
        ceiling_gb_per_second=STREAMER_CONCURRENCY * S3_GB_PER_SECOND_PER_STREAM,
        link_share=S3_LINK_SHARE,
        assumption=f"Run:ai streamer, {STREAMER_CONCURRENCY} range reads from S3 through the "
        "gateway endpoint: 0.6 of the node's bandwidth, at most 3.1 GB/s (its published "
        "benchmark)",
    ),
    ModelSource.EFS: LoadPath(
        ceiling_gb_per_second=0.5, link_share=S3_LINK_SHARE,
        assumption="EFS elastic throughput, one NFS client: at most ~0.5 GB/s per node",
    ),
    ModelSource.HF: LoadPath(
        ceiling_gb_per_second=0.1, link_share=S3_LINK_SHARE,
        assumption="download from Hugging Face through NAT (~100 MB/s), then a local load",
    ),
}

# Engine start once the weights are in, with the torch.compile cache on EFS filled by an
# earlier replica of the same placement: ~18 s of engine start in the streamer benchmark
# above (vLLM ready 23.18 s, of which 4.88 s loading), plus loading the compiled graph.
# An assumption until measured with `vllm bench startup` in the pinned image.
ENGINE_START_SECONDS = 30
# The first start of a placement compiles (torch.compile and Inductor autotuning; vLLM
# logs "torch.compile takes N s in total"); later starts read the cache. Assumption.
COMPILE_SECONDS = 90
# Scheduling, the CSI mounts (API key, EFS) and the wait-for-weights init container.
POD_START_SECONDS = 10
# The probe budget is this multiple of the estimate: a slow S3 prefix or a busy NAT must
# not kill a replica that is still loading (a killed start restarts from zero).
STARTUP_SAFETY_FACTOR = 2
# ...and never less than this: the estimate's figures are typical, not measured here.
MIN_STARTUP_BUDGET_SECONDS = 600


def load_gb_per_second(source: ModelSource, instance: GpuInstance, *, sustained: bool) -> float:
    """What one node of `instance` reads from `source`, in GB/s."""
    path = LOAD_PATHS[source]
    link = network_gbps(instance, sustained=sustained) / 8 * path.link_share
    return min(link, path.ceiling_gb_per_second)


def load_seconds(model: ModelProfile, source: ModelSource, instance: GpuInstance,
                 nodes: int = 1, *, sustained: bool = False) -> int:
    """Seconds to read the weights: each node of a replica reads its own share."""
    weights_gb = model.weight_bytes / GB / nodes
    return int(math.ceil(weights_gb / load_gb_per_second(source, instance,
                                                          sustained=sustained)))


def cold_start_seconds(model: ModelProfile, source: ModelSource, instance: GpuInstance,
                       nodes: int = 1, *, compiled: bool = True,
                       sustained: bool = False) -> int:
    """Estimated seconds from pod start to ready on a node that has the image: the pod's
    start, the weights, the engine start (and the compile when the cache is empty)."""
    return (POD_START_SECONDS + load_seconds(model, source, instance, nodes, sustained=sustained)
            + ENGINE_START_SECONDS + (0 if compiled else COMPILE_SECONDS))


def startup_budget_seconds(model: ModelProfile, source: ModelSource, instance: GpuInstance,
                           nodes: int = 1) -> int:
    """How long the startup probe lets a replica load before Kubernetes restarts it: the
    worst case (baseline bandwidth, an empty compile cache) with its safety factor."""
    return max(MIN_STARTUP_BUDGET_SECONDS,
               STARTUP_SAFETY_FACTOR * cold_start_seconds(model, source, instance, nodes,
                                                          compiled=False, sustained=True))


# -- the first deploy of a model: what happens before the first replica starts loading --

# Copying weights from Hugging Face into S3 (the staging Job, through NAT), and for EFS
# then from S3 onto the file system: the sources' ceilings.
STAGING_GB_PER_SECOND = LOAD_PATHS[ModelSource.HF].ceiling_gb_per_second
EFS_WRITE_GB_PER_SECOND = LOAD_PATHS[ModelSource.EFS].ceiling_gb_per_second
# Budgets (upper bounds): Karpenter's decision, EC2 launch and the node joining the
# cluster, 8-GPU instances slowest (minutes of firmware and driver initialisation); the
# vLLM image pulled without help.
GPU_NODE_LAUNCH_SECONDS = 600
IMAGE_PULL_SECONDS = 600

# Typical figures (the cold start `plan` shows). A GPU node from Karpenter's decision to
# Ready: CPU nodes take 30-40 s (Karpenter maintainers, aws/karpenter-provider-aws#6165);
# GPU instances boot slower (awslabs/amazon-eks-ami#1099) and load the NVIDIA driver.
# Assumption.
GPU_NODE_LAUNCH_TYPICAL_SECONDS = 180
# The vLLM image: ~12 GB compressed, ~28 GB unpacked (vllm#27154).
IMAGE_COMPRESSED_GB = 12
IMAGE_UNPACKED_GB = 28
# A plain containerd pull of an image this size: "15-20 GB can take 4-6 minutes per
# instance" (AWS ML blog, "Reducing container cold start times using SOCI index").
IMAGE_PULL_TYPICAL_SECONDS = 300
# With SOCI parallel pull/unpack (-c parallel_image_pull): the download at the node's
# bandwidth, then the unpack, bound by decompression and the data volume's writes
# (gp3 at 500 MiB/s, bottlerocket.GPU_DATA_VOLUME_THROUGHPUT_MIBPS). Assumption.
IMAGE_UNPACK_GB_PER_SECOND = 0.25


def image_pull_seconds(instance: GpuInstance, *, parallel: bool) -> int:
    """Typical seconds to pull the vLLM image onto a new node of `instance`."""
    if not parallel:
        return IMAGE_PULL_TYPICAL_SECONDS
    download = IMAGE_COMPRESSED_GB / (network_gbps(instance, sustained=False) / 8 * S3_LINK_SHARE)
    return int(math.ceil(download + IMAGE_UNPACKED_GB / IMAGE_UNPACK_GB_PER_SECOND))


@dataclass(frozen=True, kw_only=True)
class ColdStart:
    """A new replica's cold start in parts (seconds), on a node that already ran the model
    (warm: the image is cached) and on a new node."""

    node_launch: int
    image: int
    pod_start: int
    weights: int
    weights_gb_per_second: float
    engine: int
    compile: int  # only a placement's first start ever (the cache is on EFS)

    @property
    def warm_node(self) -> int:
        return self.pod_start + self.weights + self.engine

    @property
    def new_node(self) -> int:
        return self.node_launch + self.image + self.warm_node


def cold_start(model: ModelProfile, source: ModelSource, instance: GpuInstance,
               nodes: int = 1, *, parallel_image_pull: bool = False) -> ColdStart:
    return ColdStart(
        node_launch=GPU_NODE_LAUNCH_TYPICAL_SECONDS,
        image=image_pull_seconds(instance, parallel=parallel_image_pull),
        pod_start=POD_START_SECONDS,
        weights=load_seconds(model, source, instance, nodes),
        weights_gb_per_second=load_gb_per_second(source, instance, sustained=False),
        engine=ENGINE_START_SECONDS, compile=COMPILE_SECONDS)


def staging_seconds(model: ModelProfile, source: ModelSource) -> int:
    """How long the staging Job takes on a first deploy: nothing for `hf` (no staging),
    Hugging Face -> S3 for `s3`, and S3 -> EFS on top for `efs`."""
    if source is ModelSource.HF:
        return 0
    weights_gb = model.weight_bytes / GB
    seconds = weights_gb / STAGING_GB_PER_SECOND
    if source is ModelSource.EFS:
        seconds += weights_gb / EFS_WRITE_GB_PER_SECOND
    return int(math.ceil(seconds))


def group_join_seconds(nodes: int) -> int:
    """How long the leader of a multi-node replica may wait for its workers: their nodes
    launched and the image pulled there (nothing on one node)."""
    return GPU_NODE_LAUNCH_SECONDS + IMAGE_PULL_SECONDS if nodes > 1 else 0


def first_ready_seconds(model: ModelProfile, source: ModelSource, instance: GpuInstance,
                        nodes: int = 1) -> int:
    """Upper bound from `cdk deploy` finishing to the first replica serving, on a new
    environment: staging, a GPU node launched by Karpenter, the image pulled, then the
    startup budget (the estimated cold start with its safety factor), which for a replica
    over several nodes includes its workers joining."""
    return (staging_seconds(model, source) + GPU_NODE_LAUNCH_SECONDS + IMAGE_PULL_SECONDS
            + startup_budget_seconds(model, source, instance, nodes)
            + group_join_seconds(nodes))
