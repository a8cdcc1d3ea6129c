"""Bottlerocket nodes: their volumes (OS and data, on system and GPU nodes), the settings
(TOML user data) of Karpenter's GPU EC2NodeClass and the size of a GPU node's data volume.
No CDK imports: `plan` and the cost estimate use it without starting Node.js."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .models.planner import DeploymentPlan
from .models.profile import GB, GIB

# dcgm-exporter reads GPU metrics through NVML without running privileged only when the
# NVIDIA runtime honours NVIDIA_VISIBLE_DEVICES for unprivileged containers (off by
# default on Bottlerocket since 1.19.2).
GPU_NODE_SETTINGS = """\
[settings.nvidia-container-runtime]
visible-devices-envvar-when-unprivileged = true
"""
# SOCI parallel pull/unpack (Bottlerocket >= 1.44; the pinned release is later): layers are
# fetched in chunks over several connections and unpacked in parallel (a single flow
# outside a placement group tops out at 5 Gbit/s). Boot-time settings: a node that
# changes snapshotter wipes its containerd storage, so Karpenter replaces the GPU nodes
# when this is toggled. Values: the 8 MiB chunk and 10 downloads per image SOCI's own
# docs suggest for ECR (awslabs/soci-snapshotter docs/parallel-mode.md).
SOCI_PARALLEL_PULL_SETTINGS = """\
[settings.container-runtime]
snapshotter = "soci"

[settings.container-runtime-plugins.soci-snapshotter]
pull-mode = "parallel-pull-unpack"

[settings.container-runtime-plugins.soci-snapshotter.parallel-pull-unpack]
max-concurrent-downloads-per-image = 10
concurrent-download-chunk-size = "8mb"
max-concurrent-unpacks-per-image = 3
"""


def gpu_node_settings(*, parallel_image_pull: bool) -> str:
    """The TOML user data of Karpenter's GPU EC2NodeClasses."""
    return GPU_NODE_SETTINGS + ("\n" + SOCI_PARALLEL_PULL_SETTINGS if parallel_image_pull else "")


# Bottlerocket keeps its OS on /dev/xvda and container images and ephemeral storage on the
# data volume /dev/xvdb, on every node (system node group and Karpenter's).
BOTTLEROCKET_OS_VOLUME = "/dev/xvda"
BOTTLEROCKET_DATA_VOLUME = "/dev/xvdb"
BOTTLEROCKET_OS_VOLUME_GIB = 4
# System nodes: controllers, monitoring, and the weights-staging Job's copy of the ~10 GB
# vLLM image.
SYSTEM_DATA_VOLUME_GIB = 100

# The vLLM image unpacked (~28 GB, vllm#27154) plus torch.compile / CUDA-graph caches.
VLLM_IMAGE_UNPACKED_GB = 35
# With `instanceStorePolicy: RAID0` Bottlerocket keeps containerd's images and the pods'
# ephemeral storage (emptyDir: the vLLM caches, a Hugging Face download) on the local NVMe
# RAID; the EBS data volume then holds only Bottlerocket's own small state.
GPU_DATA_VOLUME_ON_INSTANCE_STORE_GIB = 20
# Without instance store, the data volume holds the image, the caches and one copy of the
# weights (a Hugging Face download at start), with gp3 performance raised for the pulls.
GPU_DATA_VOLUME_BASE_GIB = 100
GPU_DATA_VOLUME_IOPS = 6000
GPU_DATA_VOLUME_THROUGHPUT_MIBPS = 500


def gpu_data_on_instance_store(plans: Iterable[DeploymentPlan]) -> bool:
    """Whether every instance type of the GPU pool has local NVMe for the image, the
    caches and a copy of the weights of any model it may run (then the RAID0 instance
    store holds them). The pool's nodes share one EC2NodeClass, so every model counts."""
    return all(p.instance.nvme_gb >= VLLM_IMAGE_UNPACKED_GB + plan.model.weight_bytes / GB
               for plan in plans for p in (plan.chosen, *plan.alternatives))


def gpu_data_volume_performance(plans: Iterable[DeploymentPlan]) -> dict[str, int]:
    """gp3 `iops` / `throughput` of the GPU data volume beyond the free baseline: none
    when the instance store does the work (it would cost ~$30 a node-month for nothing)."""
    if gpu_data_on_instance_store(plans):
        return {}
    return {"iops": GPU_DATA_VOLUME_IOPS, "throughput": GPU_DATA_VOLUME_THROUGHPUT_MIBPS}


def gpu_data_volume_gib(plans: Iterable[DeploymentPlan]) -> int:
    """The EBS data volume (/dev/xvdb) of a GPU node: small on instance store; otherwise
    sized for the image, the caches and a copy of the largest model's weights."""
    plans = tuple(plans)
    if gpu_data_on_instance_store(plans):
        return GPU_DATA_VOLUME_ON_INSTANCE_STORE_GIB
    weights_gib = max(plan.model.weight_bytes for plan in plans) / GIB
    return int(math.ceil((GPU_DATA_VOLUME_BASE_GIB + weights_gib) / 50) * 50)
