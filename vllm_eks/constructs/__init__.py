"""L3 constructs composed by the stacks, each configured by a frozen `...Props` dataclass:
Network, ModelStore, GpuCluster, Karpenter, StorageDrivers, SecretsStoreCsi, AlbController,
Observability, VllmService, SmokeTest, TeardownGuard."""

from .alb_controller import AlbController, AlbControllerProps
from .cluster import GpuCluster, GpuClusterProps
from .karpenter import Karpenter, KarpenterProps
from .model_store import ModelStore, ModelStoreProps
from .network import Network, NetworkProps
from .observability import Observability, ObservabilityProps
from .secrets_store import SecretsStoreCsi, SecretsStoreCsiProps
from .smoke_test import SmokeTest, SmokeTestProps
from .storage_drivers import StorageDrivers, StorageDriversProps
from .teardown import TeardownGuard, TeardownGuardProps
from .vllm_service import VllmService, VllmServiceProps

__all__ = [
    "AlbController", "AlbControllerProps",
    "GpuCluster", "GpuClusterProps",
    "Karpenter", "KarpenterProps",
    "ModelStore", "ModelStoreProps",
    "Network", "NetworkProps",
    "Observability", "ObservabilityProps",
    "SecretsStoreCsi", "SecretsStoreCsiProps",
    "SmokeTest", "SmokeTestProps",
    "StorageDrivers", "StorageDriversProps",
    "TeardownGuard", "TeardownGuardProps",
    "VllmService", "VllmServiceProps",
]
