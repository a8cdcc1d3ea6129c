"""EC2 capacity the environment can use: vCPU quotas and instance type offerings per AZ."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..config import ModelConfig
from ..config.environment import gpu_nodes_for
from ..models import GPU_INSTANCES, CapacityType, GpuInstance
from .aws import CouldNotCheck, call, guarded
from .checks import Target
from .report import Row, Status


@dataclass(frozen=True)
class Quota:
    code: str
    name: str


# Service Quotas, service `ec2`, counted in vCPUs.
GPU_QUOTAS: dict[tuple[CapacityType, str], Quota] = {
    (CapacityType.ON_DEMAND, "P"): Quota("L-417A185B", "Running On-Demand P instances"),
    (CapacityType.ON_DEMAND, "G"): Quota("L-DB2E81BA", "Running On-Demand G and VT instances"),
    (CapacityType.SPOT, "P"): Quota("L-7212CCBC", "All P Spot Instance Requests"),
    (CapacityType.SPOT, "G"): Quota("L-3819A6DF", "All G and VT Spot Instance Requests"),
}
STANDARD_QUOTA = Quota("L-1216C47A",
                       "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
_STANDARD_FAMILIES = tuple("acdhimrtz")
# The system node group may grow to twice its size (constructs/cluster.py max_size).
SYSTEM_NODE_GROUP_GROWTH = 2


def quota_class(instance_type: str) -> str:
    """`P`, `G` (G and VT share a quota) or `Standard`."""
    family = instance_type.split(".", 1)[0]
    if family.startswith("p"):
        return "P"
    if family.startswith(("g", "vt")):
        return "G"
    return "Standard" if family.startswith(_STANDARD_FAMILIES) else family


def gpu_pool_instances(target: Target,
                       capacity: CapacityType | None = None) -> list[GpuInstance]:
    """The GPU NodePool's types (k8s_charts/karpenter_pools.py gpu_instance_types) of the
    models on `capacity` (None: every model): each model's planned type first, then the
    fallbacks within gpu_limit."""
    config = target.config
    models = [m for m in config.models if capacity in (None, m.plan.capacity)]
    types = dict.fromkeys(m.plan.instance_type for m in models)
    for model in models:
        types.update(dict.fromkeys(config.instance_types(model)))
    return [GPU_INSTANCES[t] for t in types]


def _planned_types(target: Target) -> set[str]:
    return {plan.instance_type for plan in target.config.plans}


def max_vcpus(instances: list[GpuInstance], gpu_limit: int) -> int:
    """The most vCPUs nodes of these types can hold within gpu_limit GPUs: Karpenter never
    launches a node that would take the pool past its limit (its scheduler's
    filterByRemainingResources), so this is a knapsack over the types."""
    best = [0] * (gpu_limit + 1)
    for gpus in range(1, gpu_limit + 1):
        best[gpus] = max([best[gpus - 1]] + [best[gpus - i.gpu_count] + i.vcpu
                                             for i in instances if i.gpu_count <= gpus])
    return best[gpu_limit]


def quota_value(target: Target, quota: Quota) -> int:
    """The account's applied value, or AWS's default when none is applied."""
    quotas = target.client("service-quotas")
    try:
        response = call(quotas, "get_service_quota", ServiceCode="ec2", QuotaCode=quota.code,
                        expected=("NoSuchResourceException",))
    except ClientError:
        response = call(quotas, "get_aws_default_service_quota", ServiceCode="ec2",
                        QuotaCode=quota.code)
    return int(response["Quota"]["Value"])


def _increase(target: Target, quota: Quota, vcpus: int) -> str:
    return (f"request a quota increase for {quota.name} ({quota.code}) to at least {vcpus} "
            f"vCPUs: aws service-quotas request-service-quota-increase --service-code ec2 "
            f"--quota-code {quota.code} --desired-value {vcpus} --region "
            f"{target.config.region}")


def check_gpu_quotas(target: Target) -> list[Row]:
    """One row per quota the GPU pool's types draw on (those of a planned type first).
    Every model's nodes of one quota class and capacity type count against one quota."""
    rows: list[Row] = []
    planned_types = _planned_types(target)
    for capacity in dict.fromkeys(plan.capacity for plan in target.config.plans):
        instances = gpu_pool_instances(target, capacity)
        classes = list(dict.fromkeys(quota_class(i.instance_type) for i in instances))
        for klass in classes:
            members = [i for i in instances if quota_class(i.instance_type) == klass]
            quota = GPU_QUOTAS.get((capacity, klass))
            if quota is None:
                rows.append(Row(Status.UNCHECKED, f"GPU quota {klass}",
                                f"no known vCPU quota for {members[0].instance_type}; check "
                                "it in the Service Quotas console"))
                continue
            planned = members[0].instance_type in planned_types
            rows += guarded(f"GPU quota {quota.code}",
                            lambda m=members, q=quota, p=planned, c=capacity:
                            _gpu_quota_row(target, m, q, p, c))
    return rows


def _gpu_quota_row(target: Target, members: list[GpuInstance], quota: Quota,
                   planned: bool, capacity: CapacityType) -> list[Row]:
    config = target.config
    what = f"GPU quota {quota.code}"
    value = quota_value(target, quota)
    smallest = members[0] if planned else min(members, key=lambda i: i.vcpu)
    one, least = smallest.vcpu, f"one {smallest.instance_type}"
    if planned:
        # Every model whose planned type draws on this quota starts its min_replicas.
        names = {i.instance_type for i in members}
        needs = [(gpu_nodes_for(m.autoscaling.min_replicas, m.plan),
                  GPU_INSTANCES[m.plan.instance_type]) for m in config.models
                 if m.plan.capacity is capacity and m.plan.instance_type in names]
        one = sum(nodes * instance.vcpu for nodes, instance in needs)
        if needs != [(1, smallest)]:
            least = "min_replicas: " + " + ".join(f"{nodes} x {instance.instance_type}"
                                                  for nodes, instance in needs)
    most = max(max_vcpus(members, config.gpu_limit), one)
    types = ", ".join(i.instance_type for i in members)
    head = (f"{quota.name} ({capacity.value}) is {value} vCPUs; {types} within gpu_limit "
            f"{config.gpu_limit} need {one} ({least}) to {most}")
    if value >= most:
        return [Row(Status.OK, what, head)]
    if value >= one:
        return [Row(Status.WARNING, what,
                    f"{head}: Karpenter stops at {value} vCPUs, short of gpu_limit "
                    "(instances already running in the account count too)",
                    _increase(target, quota, most))]
    if not planned:
        return [Row(Status.WARNING, what,
                    f"{head}: these fallback types can never launch",
                    _increase(target, quota, most))]
    if capacity is CapacityType.SPOT:
        on_demand = GPU_QUOTAS[(CapacityType.ON_DEMAND, quota_class(smallest.instance_type))]
        try:
            fallback = quota_value(target, on_demand)
        except CouldNotCheck:
            fallback = 0
        if fallback >= one:
            return [Row(Status.WARNING, what,
                        f"{head}: no spot node can launch; Karpenter falls back to "
                        f"on-demand ({on_demand.name}, {on_demand.code})",
                        _increase(target, quota, most))]
    if least.startswith("one "):
        short = f"not even one {smallest.instance_type} can launch, so no replica would ever start"
    else:
        short = ("the models' min_replicas cannot all launch, so some model would never "
                 "start")
    return [Row(Status.PROBLEM, what, f"{head}: {short}", _increase(target, quota, most))]


def check_standard_quota(target: Target) -> list[Row]:
    """The system node group (on-demand, must come up during the deploy) and Karpenter's
    general pool draw on the On-Demand Standard quota."""
    config = target.config
    cluster = config.cluster
    what = f"CPU quota {STANDARD_QUOTA.code}"
    if quota_class(cluster.system_instance_type) != "Standard":
        return [Row(Status.UNCHECKED, what,
                    f"{cluster.system_instance_type} is not a standard family; check its "
                    "quota in the Service Quotas console")]
    described = call(target.client("ec2"), "describe_instance_types",
                     InstanceTypes=[cluster.system_instance_type])
    vcpu = described["InstanceTypes"][0]["VCpuInfo"]["DefaultVCpus"]
    one = cluster.system_nodes * vcpu
    most = SYSTEM_NODE_GROUP_GROWTH * one + cluster.cpu_limit
    value = quota_value(target, STANDARD_QUOTA)
    head = (f"{STANDARD_QUOTA.name} is {value} vCPUs; the system node group needs {one} "
            f"({cluster.system_nodes} x {cluster.system_instance_type}), up to {most} with "
            f"its growth and the general pool's cpu_limit {cluster.cpu_limit}")
    if value >= most:
        return [Row(Status.OK, what, head)]
    if value >= one:
        return [Row(Status.WARNING, what, f"{head} (running instances count too)",
                    _increase(target, STANDARD_QUOTA, most))]
    return [Row(Status.PROBLEM, what,
                f"{head}: the system node group cannot launch and the cluster stack "
                "would roll back", _increase(target, STANDARD_QUOTA, most))]


def check_offerings(target: Target) -> list[Row]:
    """Whether each model's planned type is offered in the environment's zones."""
    rows: list[Row] = []
    several = len(target.config.models) > 1
    for model in target.config.models:
        rows += _offerings(target, model,
                           "AZ offerings" + (f" {model.key}" if several else ""))
    return rows


def _offerings(target: Target, model: ModelConfig, what: str) -> list[Row]:
    config = target.config
    planned = model.plan.instance_type
    types = list(config.instance_types(model))
    offered: dict[str, set[str]] = {t: set() for t in types}
    token = None
    while True:
        page = call(target.client("ec2"), "describe_instance_type_offerings",
                    LocationType="availability-zone",
                    Filters=[{"Name": "instance-type", "Values": types}],
                    **({"NextToken": token} if token else {}))
        for offering in page.get("InstanceTypeOfferings", []):
            offered.setdefault(offering["InstanceType"], set()).add(offering["Location"])
        token = page.get("NextToken")
        if not token:
            break
    zones = config.network.availability_zones
    missing = [z for z in zones if z not in offered[planned]]
    if not missing:
        return [Row(Status.OK, what, f"{planned} is offered in {', '.join(zones)}")]
    fallbacks = [t for t in types[1:] if offered[t] & set(zones)]
    also = (f"; fallbacks offered there: {', '.join(fallbacks)}" if fallbacks
            else "; no fallback type is offered there either" if types[1:]
            else "; the plan has no fallback type")
    # Zones that offer it, the configured ones first.
    candidates = sorted(offered[planned], key=lambda z: (z not in zones, z))
    if len(candidates) >= 3:
        fix = (f"pass -c availability_zones={','.join(candidates[:3])} (preflight: "
               f"--availability-zones {','.join(candidates[:3])})")
    else:
        fix = (f"only {len(candidates)} AZ(s) of {config.region} offer {planned}"
               + (f" ({', '.join(candidates)})" if candidates else "")
               + "; the VPC needs three: choose another region or --instance-type")
    if len(missing) == len(zones):
        return [Row(Status.PROBLEM, what,
                    f"{planned} is offered in none of {', '.join(zones)}{also}", fix)]
    if model in config.efa_models and zones[0] in missing:
        # The EFA pool (and its cluster placement group) is in the first zone only.
        return [Row(Status.PROBLEM, what,
                    f"{planned} is not offered in {zones[0]}, the one zone of the EFA node "
                    "pool, so no group of this model can launch",
                    f"list a zone that offers it first: -c availability_zones="
                    f"{','.join([*candidates[:1], *[z for z in zones if z != candidates[0]]][:3])}"
                    if candidates else "choose another region or instance type")]
    return [Row(Status.WARNING, what,
                f"{planned} is not offered in {', '.join(missing)}: Karpenter launches it "
                f"only in {', '.join(z for z in zones if z not in missing)}{also}", fix)]
