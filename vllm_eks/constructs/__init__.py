"""L3 constructs composed by the stacks: Network, GpuCluster, ..."""

from .cluster import GpuCluster, GpuClusterProps
from .network import Network, NetworkProps

__all__ = ["GpuCluster", "GpuClusterProps", "Network", "NetworkProps"]
