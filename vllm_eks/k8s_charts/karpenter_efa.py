"""The EFA node pool (`-c efa=true`): the GPU pool's node class and pool, narrowed to the
multi-node models' instance types, one zone and a cluster placement group, so a group's
nodes sit close together and get every EFA interface of their type.

A cluster placement group lives in one availability zone, so it cannot be on the `gpu`
node class that launches in every zone: EFA nodes have a node class and a pool of their
own, tainted so that only the EFA models' pods (which tolerate it) land there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..labels import EFA_TAINT_KEY

EFA_POOL = "gpu-efa"


@dataclass(frozen=True, kw_only=True)
class EfaPoolSettings:
    instance_types: tuple[str, ...]  # the EFA models' planned types and fallbacks
    zone: str  # the one zone of the placement group
    placement_group: str  # its name (may be a CDK token)
    gpu_limit: int  # nvidia.com/gpu the pool may hold


def efa_node_class(gpu_node_class: dict, settings: EfaPoolSettings) -> dict:
    """The GPU node class with the placement group (Karpenter adds all of a type's EFA
    interfaces when the pod requests `vpc.amazonaws.com/efa`)."""
    spec = copy.deepcopy(gpu_node_class)
    spec["placementGroupSelector"] = {"name": settings.placement_group}
    spec["tags"] = {**spec["tags"], "vllm-eks:pool": EFA_POOL}
    return spec


def efa_node_pool(gpu_pool: dict, settings: EfaPoolSettings) -> dict:
    """The GPU pool in the placement group's zone, for the EFA models' types, tainted."""
    spec = copy.deepcopy(gpu_pool)
    template = spec["template"]["spec"]
    template["nodeClassRef"] = {**template["nodeClassRef"], "name": EFA_POOL}
    overrides = {"node.kubernetes.io/instance-type": list(settings.instance_types),
                 "topology.kubernetes.io/zone": [settings.zone]}
    template["requirements"] = [{**r, "values": overrides.get(r["key"], r["values"])}
                                for r in template["requirements"]]
    template["taints"] = [*template["taints"],
                          {"key": EFA_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    spec["limits"] = {"nvidia.com/gpu": str(settings.gpu_limit)}
    spec["weight"] = spec["weight"] + 10  # before the gpu pool, for the pods that fit both
    return spec
