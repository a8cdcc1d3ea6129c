"""Node labels and taints shared by the system node group and Karpenter's NodePools, so
a workload's nodeSelector or toleration matches every kind of node."""

NODE_ROLE_LABEL = "vllm-eks.io/node-role"  # values: system, gpu, general
GPU_TAINT_KEY = "nvidia.com/gpu"  # taint value "true", effect NoSchedule
# The EFA node pool's nodes (-c efa=true): only multi-node models over EFA tolerate it.
EFA_TAINT_KEY = "vllm-eks.io/efa"  # taint value "true", effect NoSchedule

# The AWS tag on every resource of an environment (the stacks', Karpenter's instances and
# volumes, the monitoring volumes): what a teardown is checked by.
ENVIRONMENT_TAG = "vllm-eks:environment"
