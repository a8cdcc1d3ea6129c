"""Thin stacks composing the constructs, and the function that builds them all."""

from .environment import (
    CLUSTER_STACK_ID,
    MODEL_STORE_STACK_ID,
    NETWORK_STACK_ID,
    PROD_STACK_ID,
    EnvironmentStacks,
    build_environment,
    stack_id,
)

__all__ = [
    "CLUSTER_STACK_ID",
    "MODEL_STORE_STACK_ID",
    "NETWORK_STACK_ID",
    "PROD_STACK_ID",
    "EnvironmentStacks",
    "build_environment",
    "stack_id",
]
