"""Node labels and taints shared by the managed node groups and Karpenter's NodePools, so
a workload's nodeSelector or toleration matches both kinds of node."""

NODE_ROLE_LABEL = "vllm-eks.io/node-role"  # values: system, gpu, general
GPU_TAINT_KEY = "nvidia.com/gpu"  # taint value "true", effect NoSchedule
