"""Bottlerocket on GPU nodes: the settings (TOML user data) of Karpenter's GPU
EC2NodeClass and the size of its data volume. No CDK imports: `plan` and the cost
estimate use it without starting Node.js."""

from __future__ import annotations

import math

from .models.planner import DeploymentPlan
from .models.profile import GB, GIB

# dcgm-exporter reads GPU metrics through NVML without running privileged only when the
# NVIDIA runtime honours NVIDIA_VISIBLE_DEVICES for unprivileged containers (off by
# default on Bottlerocket since 1.19.2).
GPU_NODE_SETTINGS = """\
[settings.nvidia-container-runtime]
visible-devices-envvar-when-unprivileged = true
"""


# The vLLM image unpacked (~28 GB, vllm#27154) plus torch.compile / CUDA-graph caches.
VLLM_IMAGE_UNPACKED_GB = 35
# With `instanceStorePolicy: RAID0` Bottlerocket keeps containerd's images and the pods'
# ephemeral storage (emptyDir: the vLLM caches, a Hugging Face download) on the local NVMe
# RAID; the EBS data volume then holds only Bottlerocket's own small state.
GPU_DATA_VOLUME_ON_INSTANCE_STORE_GIB = 20
# Without instance store, the data volume holds the image, the caches and one copy of the
# weights (a Hugging Face download at start).
GPU_DATA_VOLUME_BASE_GIB = 100


def gpu_data_volume_gib(plan: DeploymentPlan) -> int:
    """The EBS data volume (/dev/xvdb) of a GPU node: small when every instance type of
    the pool has local NVMe for the image, caches and a copy of the weights; otherwise
    sized for them."""
    needed_gb = VLLM_IMAGE_UNPACKED_GB + plan.model.weight_bytes / GB
    if all(p.instance.nvme_gb >= needed_gb for p in (plan.chosen, *plan.alternatives)):
        return GPU_DATA_VOLUME_ON_INSTANCE_STORE_GIB
    weights_gib = plan.model.weight_bytes / GIB
    return int(math.ceil((GPU_DATA_VOLUME_BASE_GIB + weights_gib) / 50) * 50)
