"""Model profiles, the model catalog, the GPU instance catalog and the placement planner."""

from .catalog import (
    DEFAULT_MODEL_KEY,
    CatalogError,
    UnknownModelError,
    catalog,
    get_model,
    register,
)
from .instances import GPU_INSTANCES, GpuInstance
from .planner import (
    CapacityType,
    DeploymentPlan,
    Placement,
    PlanError,
    PlanRequest,
    candidate_placements,
    plan,
)
from .profile import AttentionType, ModelProfile, ProfileError

__all__ = [
    "DEFAULT_MODEL_KEY",
    "GPU_INSTANCES",
    "AttentionType",
    "CapacityType",
    "CatalogError",
    "DeploymentPlan",
    "GpuInstance",
    "ModelProfile",
    "Placement",
    "PlanError",
    "PlanRequest",
    "ProfileError",
    "UnknownModelError",
    "candidate_placements",
    "catalog",
    "get_model",
    "plan",
    "register",
]
