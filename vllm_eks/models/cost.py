"""What a whole environment costs an hour and a month (730 h), item by item, at list prices:
each model's GPU nodes at its min_replicas and max_replicas with their volumes, system nodes, the EKS
control plane, NAT, public IPv4, interface endpoints, load balancers, weights in S3 / EFS
and monitoring volumes. Charges that follow traffic are notes with unit prices, never in
a total. A price the tables lack (an unlisted system type, a GPU type without a public
price) shows as "-", is left out of the totals and named in a note: an estimate never
stops a synth."""

from __future__ import annotations

from dataclasses import dataclass

from ..bottlerocket import (
    BOTTLEROCKET_OS_VOLUME_GIB,
    SYSTEM_DATA_VOLUME_GIB,
    gpu_data_volume_gib,
    gpu_data_volume_performance,
)
from collections.abc import Iterable

from ..config import EndpointScheme, EnvironmentConfig, ModelConfig
from ..config.environment import gpu_nodes_for, replicas_per_node
from . import prices as p
from .instances import PRICE_REGION, PRICES_CHECKED
from .planner import CapacityType, DeploymentPlan
from .profile import GB, GIB
from .sources import ModelSource

# Literals of the product code that no function returns, mirrored here (importing the
# constructs loads aws-cdk); tests/test_cost.py pins each against its source. Node volume
# sizes come from vllm_eks/bottlerocket.py itself.
ALERTMANAGER_VOLUME_GIB = 10  # constructs/observability.py; Grafana persists nothing
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "ec2", "logs")  # constructs/network.py


@dataclass(frozen=True)
class Gp3Volume:
    """One gp3 volume: size, and IOPS / throughput (the free baseline unless raised)."""

    gib: int
    iops: int = p.GP3_FREE_IOPS
    throughput_mibps: int = p.GP3_FREE_THROUGHPUT_MIBPS

    @property
    def usd_per_month(self) -> float:
        return p.gp3_usd_per_month(self.gib, self.iops, self.throughput_mibps)

    @property
    def text(self) -> str:
        if self.iops == p.GP3_FREE_IOPS and self.throughput_mibps == p.GP3_FREE_THROUGHPUT_MIBPS:
            return f"{self.gib} GiB"
        return f"{self.gib} GiB/{self.iops} IOPS/{self.throughput_mibps} MiB/s"


def gpu_node_volumes(plans: Iterable[DeploymentPlan]) -> tuple[Gp3Volume, ...]:
    """The EBS volumes of one Karpenter GPU node of an environment serving `plans` (one
    EC2NodeClass for all): OS, and data (raised performance only without instance
    store)."""
    plans = tuple(plans)
    performance = gpu_data_volume_performance(plans)
    data = Gp3Volume(gpu_data_volume_gib(plans), **({
        "iops": performance["iops"], "throughput_mibps": performance["throughput"]}
        if performance else {}))
    return (Gp3Volume(BOTTLEROCKET_OS_VOLUME_GIB), data)


def system_node_volumes() -> tuple[Gp3Volume, ...]:
    """The EBS volumes of one system node (its launch template): OS and data."""
    return (Gp3Volume(BOTTLEROCKET_OS_VOLUME_GIB), Gp3Volume(SYSTEM_DATA_VOLUME_GIB))


def _month(usd_per_hour: float | None) -> float | None:
    return None if usd_per_hour is None else usd_per_hour * p.HOURS_PER_MONTH


@dataclass(frozen=True, kw_only=True)
class LineItem:
    """One line of the estimate. usd_per_hour None: no list price ("-"), not totalled."""

    name: str
    quantity: str
    usd_per_hour: float | None  # at min_replicas
    usd_per_hour_at_max: float | None  # at max_replicas; the same unless it scales with them

    @property
    def usd_per_month(self) -> float | None:
        return _month(self.usd_per_hour)

    @property
    def usd_per_month_at_max(self) -> float | None:
        return _month(self.usd_per_hour_at_max)


@dataclass(frozen=True, kw_only=True)
class CostEstimate:
    """Line items, their totals at every model's min and max replicas, and what the
    totals leave out."""

    # Each model's placement: "<key> on <type> (<capacity>), <min>-<max> replicas".
    placements: tuple[str, ...]
    region: str  # the environment's region; the prices are PRICE_REGION's
    items: tuple[LineItem, ...]
    usage_based: tuple[str, ...]  # charges that follow traffic: unit prices, not totalled
    caveats: tuple[str, ...]  # spot, other regions, unpriced items, packing
    price_region: str = PRICE_REGION
    prices_checked: str = PRICES_CHECKED

    @property
    def usd_per_hour(self) -> float:  # at min_replicas; priced items only
        return sum(i.usd_per_hour or 0.0 for i in self.items)

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * p.HOURS_PER_MONTH

    @property
    def usd_per_hour_at_max(self) -> float:
        return sum(i.usd_per_hour_at_max or 0.0 for i in self.items)

    @property
    def usd_per_month_at_max(self) -> float:
        return self.usd_per_hour_at_max * p.HOURS_PER_MONTH

    @property
    def unpriced(self) -> tuple[str, ...]:  # names of the items left out of the totals
        return tuple(i.name for i in self.items if i.usd_per_hour is None)


def _item(name: str, quantity: str, usd_per_hour: float | None,
          usd_per_hour_at_max: float | None = None, *, monthly: bool = False) -> LineItem:
    """A line from an hourly price, or from a monthly one (monthly=True)."""
    at_max = usd_per_hour if usd_per_hour_at_max is None else usd_per_hour_at_max
    if monthly:
        usd_per_hour, at_max = usd_per_hour / p.HOURS_PER_MONTH, at_max / p.HOURS_PER_MONTH
    return LineItem(name=name, quantity=quantity, usd_per_hour=usd_per_hour,
                    usd_per_hour_at_max=at_max)


def _placement(model: ModelConfig) -> str:
    plan, scaling = model.plan, model.autoscaling
    replicas = (f"{scaling.min_replicas}" if scaling.min_replicas == scaling.max_replicas
                else f"{scaling.min_replicas}-{scaling.max_replicas}")
    nodes = f"{plan.nodes} x " if plan.multi_node else ""
    return (f"{model.key} on {nodes}{plan.instance_type} ({plan.capacity.value}), "
            f"{replicas} replicas")


def _gpu_items(config: EnvironmentConfig, model: ModelConfig,
               caveats: list[str]) -> list[LineItem]:
    plan, instance = model.plan, model.plan.chosen.instance
    # A replica takes TP whole GPUs of one node; replicas_per_node of them share a node.
    low = gpu_nodes_for(model.autoscaling.min_replicas, plan)
    high = gpu_nodes_for(model.autoscaling.max_replicas, plan)
    price = instance.on_demand_usd_per_hour
    if price is None:
        caveats.append(f"{instance.instance_type} has no public on-demand price (Capacity "
                       "Blocks / Savings Plans): GPU nodes are left out of the totals")
    elif plan.capacity is CapacityType.SPOT:
        caveats.append("GPU nodes are spot: priced at the on-demand list price as an upper "
                       "bound (spot prices vary, usually well below it)")
    if replicas_per_node(plan) > 1:
        caveats.append(f"{replicas_per_node(plan)} replicas (TP {plan.tensor_parallel}) share "
                       f"one {instance.instance_type} of {instance.gpu_count} GPUs: the "
                       "fewest nodes; replicas spread over zones may take one node each")
    volumes = gpu_node_volumes(config.plans)
    per_node = sum(v.usd_per_month for v in volumes)
    nodes = f"{low} x {instance.instance_type}" + (f" ({high} at max)" if high != low else "")
    return [
        LineItem(name=f"GPU nodes {model.key} ({plan.capacity.value})", quantity=nodes,
                 usd_per_hour=None if price is None else low * price,
                 usd_per_hour_at_max=None if price is None else high * price),
        _item(f"GPU node volumes {model.key} (gp3)",
              f"{low} x ({' + '.join(v.text for v in volumes)})",
              low * per_node, high * per_node, monthly=True),
    ]


def _system_items(config: EnvironmentConfig, caveats: list[str]) -> list[LineItem]:
    count, instance_type = config.cluster.system_nodes, config.cluster.system_instance_type
    price = p.system_instance_price(instance_type)
    if price is None:
        caveats.append(f"no list price for system_instance_type {instance_type!r}: system "
                       "nodes are left out of the totals; add its on-demand price to "
                       "SYSTEM_INSTANCE_USD_PER_HOUR in vllm_eks/models/prices.py")
    volumes = system_node_volumes()
    return [
        _item("System nodes (on-demand)", f"{count} x {instance_type}",
              None if price is None else count * price.usd),
        _item("System node volumes (gp3)", f"{count} x ({' + '.join(v.text for v in volumes)})",
              count * sum(v.usd_per_month for v in volumes), monthly=True),
    ]


def _platform_items(config: EnvironmentConfig) -> list[LineItem]:
    nat, zones = config.network.nat_gateways, len(config.network.availability_zones)
    public_alb = config.endpoint.scheme is EndpointScheme.INTERNET_FACING
    albs = 1 + int(config.observability.grafana_alb)
    endpoints = len(INTERFACE_ENDPOINTS)
    return [
        _item("EKS control plane", "1 cluster, standard support", p.EKS_CLUSTER.usd),
        _item("NAT gateways", f"{nat}", nat * p.NAT_GATEWAY_HOUR.usd),
        _item("Public IPv4 addresses", f"{nat} NAT" + (f" + {zones} ALB" if public_alb else ""),
              (nat + (zones if public_alb else 0)) * p.PUBLIC_IPV4_HOUR.usd),
        _item("Interface VPC endpoints", f"{endpoints} x {zones} AZs",
              endpoints * zones * p.INTERFACE_ENDPOINT_AZ_HOUR.usd),
        _item("Application Load Balancers", "1 API" + (" + 1 Grafana" if albs > 1 else ""),
              albs * p.ALB_HOUR.usd),
    ]


def _storage_items(config: EnvironmentConfig) -> list[LineItem]:
    weights_gib = sum(plan.model.weight_bytes for plan in config.plans) / GIB
    revisions = "one revision" if len(config.models) == 1 else "one revision of each model"
    items = []
    if config.model_source is not ModelSource.HF:  # hf: nothing is staged
        items.append(_item("S3 weights (Standard)", f"{weights_gib:.1f} GiB, {revisions}",
                           weights_gib * p.S3_STANDARD_GB_MONTH.usd, monthly=True))
    if config.model_source is ModelSource.EFS:
        items.append(_item("EFS model cache (Standard)", f"{weights_gib:.1f} GiB",
                           weights_gib * p.EFS_STANDARD_GB_MONTH.usd, monthly=True))
    prometheus, alertmanager = config.observability.storage_gib, ALERTMANAGER_VOLUME_GIB
    return items + [_item("Monitoring volumes (gp3)",
                          f"Prometheus {prometheus} + Alertmanager {alertmanager} GiB",
                          p.gp3_usd_per_month(prometheus + alertmanager), monthly=True)]


def _usage_based(config: EnvironmentConfig) -> list[str]:
    weights_gb = sum(plan.model.weight_bytes for plan in config.plans) / GB
    nat = p.NAT_GATEWAY_GB.usd
    when = ("at every replica start" if config.model_source is ModelSource.HF
            else "once, when staged")
    notes = [
        f"NAT data processing ${nat}/GB (the {weights_gb:.1f} GB of weights pass NAT "
        f"{when}: about ${weights_gb * nat:,.2f})",
        _surge_note(config.plans),
        f"interface endpoint data ${p.INTERFACE_ENDPOINT_GB.usd}/GB (image pulls, logs)",
        f"ALB capacity units ${p.ALB_LCU_HOUR.usd}/LCU-hour per load balancer",
    ]
    if config.model_source is ModelSource.EFS:
        notes.append(f"EFS elastic throughput ${p.EFS_ELASTIC_READ_GB.usd}/GB read, "
                     f"${p.EFS_ELASTIC_WRITE_GB.usd}/GB written (each replica start reads "
                     f"the weights: about ${weights_gb * p.EFS_ELASTIC_READ_GB.usd:,.2f})")
    insights = ", Container Insights" if config.observability.cloudwatch else ""
    return notes + [
        f"CloudWatch Logs ${p.CLOUDWATCH_LOGS_INGEST_GB.usd:.2f}/GB ingested, "
        f"${p.CLOUDWATCH_LOGS_STORED_GB_MONTH.usd}/GB-month stored (VPC flow logs, "
        f"control-plane logs{insights})",
        f"Karpenter's general pool: CPU nodes (up to {config.cluster.cpu_limit} vCPUs) when "
        "the system nodes are full, e.g. for the weights-staging Job",
        f"S3 requests and 30 days of old versions, data transfer out, Secrets Manager "
        f"(${p.SECRET_MONTH.usd:.2f}/secret-month), the KMS key "
        f"(${p.KMS_KEY_MONTH.usd:.2f}/month): a few dollars a month",
    ]


def _surge_note(plans: tuple[DeploymentPlan, ...]) -> str:
    """A rolling update adds one replica of the model it updates, on nodes of its type."""
    def replica(plan: DeploymentPlan) -> str:
        node = plan.chosen.instance
        count = f"{plan.nodes} x " if plan.multi_node else ""
        price = (node.on_demand_usd_per_hour or 0) * plan.nodes
        return f"{count}{node.instance_type} (${price:,.2f}/hour)"

    if len(plans) == 1:
        return (f"a rolling update surges one replica: possibly one more "
                f"{replica(plans[0])} while it runs")
    return ("a rolling update surges one replica of each model it updates: possibly one more "
            + ", ".join(replica(plan) for plan in plans) + " while it runs")


def estimate_environment_cost(config: EnvironmentConfig) -> CostEstimate:
    """The estimate of one environment: line items at min_replicas (and the GPU ones at
    max_replicas, per model), the usage-based charges as notes, and the caveats."""
    caveats: list[str] = []
    gpu = [item for model in config.models for item in _gpu_items(config, model, caveats)]
    items = [*gpu, *_system_items(config, caveats),
             *_platform_items(config), *_storage_items(config)]
    if config.region != PRICE_REGION:
        caveats.append(f"prices are {PRICE_REGION} list prices; {config.region} prices differ")
    caveats.append(f"EKS at the standard-support price; ${p.EKS_CLUSTER_EXTENDED_SUPPORT.usd:.2f}"
                   "/hour once the cluster's Kubernetes version is in extended support")
    return CostEstimate(
        placements=tuple(_placement(model) for model in config.models), region=config.region,
        items=tuple(items), usage_based=tuple(_usage_based(config)), caveats=tuple(caveats),
    )


def _money(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def render_cost(estimate: CostEstimate) -> str:
    """The estimate as an aligned text table, a totals line, and the notes."""
    e = estimate
    header = ["item", "quantity", "$/hour", "$/month", "$/month at max_replicas"]
    rows = [[i.name, i.quantity, _money(i.usd_per_hour, 3), _money(i.usd_per_month, 2),
             _money(i.usd_per_month_at_max, 2)] for i in e.items]
    rows.append(["total", "", _money(e.usd_per_hour, 3), _money(e.usd_per_month, 2),
                 _money(e.usd_per_month_at_max, 2)])
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    table = ["  " + "  ".join(cell.ljust(widths[c]) if c < 2 else cell.rjust(widths[c])
                              for c, cell in enumerate(row)).rstrip()
             for row in [header, *rows]]
    total = (f"about ${e.usd_per_hour:,.2f}/hour, ${e.usd_per_month:,.0f}/month at "
             f"min_replicas (up to ${e.usd_per_month_at_max:,.0f}/month at max_replicas)")
    if e.unpriced:
        total += f"; not included (no list price): {', '.join(e.unpriced)}"
    return "\n".join([
        f"vllm-eks cost: {'; '.join(e.placements)}; "
        f"{e.price_region} list prices of {e.prices_checked}, 730 hours a month",
        *table, total,
        "  usage-based, not in the total:", *(f"  - {n}" for n in e.usage_based),
        "  notes:", *(f"  - {n}" for n in e.caveats),
    ])
