"""Bottlerocket settings (TOML user data) shared by the managed GPU node group and
Karpenter's GPU EC2NodeClass."""

# dcgm-exporter reads GPU metrics through NVML without running privileged only when the
# NVIDIA runtime honours NVIDIA_VISIBLE_DEVICES for unprivileged containers (off by
# default on Bottlerocket since 1.19.2).
GPU_NODE_SETTINGS = """\
[settings.nvidia-container-runtime]
visible-devices-envvar-when-unprivileged = true
"""
