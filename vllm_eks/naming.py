"""Names derived from keys (construct IDs are an external contract: derive them one way)."""


def app_name(model_key: str, suffix: str = "") -> str:
    """Kubernetes name of a model's objects (with an optional role suffix): a DNS-1035
    label, so models never collide in the shared namespace."""
    name = f"vllm-{model_key.replace('.', '-')}"
    if suffix:
        name = f"{name[:62 - len(suffix)].rstrip('-')}-{suffix}"
    return name[:63].rstrip("-")


def deployment_pods(name: str) -> str:
    """The pods of Deployment `name` as an anchored regex: `<name>-<template hash>-<5
    characters>`, so `vllm-deepseek-r1`'s does not match `vllm-deepseek-r1-distill-...`."""
    return f"{name}-[a-z0-9]+-[a-z0-9]{{5}}"


def group_pods(name: str) -> str:
    """The pods of LeaderWorkerSet `name` as an anchored regex: leaders `<name>-<group>`,
    workers `<name>-<group>-<index>`."""
    return f"{name}-[0-9]+(-[0-9]+)?"


# The weights bucket's prefix of benchmark results and datasets (models are staged
# under their keys, so no model may be called this).
BENCHMARKS_PREFIX = "benchmarks"

# The environment's router: its Deployment, Service, ServiceAccount and Ingress.
ROUTER_NAME = "vllm-router"


def pascal_case(name: str) -> str:
    """`aws-efs-csi-driver` -> `AwsEfsCsiDriver`; dots count as separators."""
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-"))
