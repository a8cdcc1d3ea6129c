"""The environment cost estimate: every line is count x a named list price, the totals are
the sum of the lines, and the sizes it prices are the ones the product code deploys.
No CDK synth: configs come from context dicts, as in test_config.py."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pytest

from vllm_eks.config import EnvironmentConfig
from vllm_eks.config.environment import gpu_nodes_for, replicas_per_node
from vllm_eks.models import prices as p
from vllm_eks.models.cost import (
    ALERTMANAGER_VOLUME_GIB,
    BOTTLEROCKET_OS_VOLUME_GIB,
    INTERFACE_ENDPOINTS,
    SYSTEM_DATA_VOLUME_GIB,
    CostEstimate,
    estimate_environment_cost,
    gpu_node_volumes,
    render_cost,
)
from vllm_eks.models.instances import GPU_INSTANCES, PRICE_REGION, PRICES_CHECKED
from vllm_eks.models.profile import GIB

from .conftest import CERTIFICATE_ARN

HOURS = p.HOURS_PER_MONTH


def parse(**context) -> EnvironmentConfig:
    return EnvironmentConfig.from_context(context.get)


def estimate(**context) -> CostEstimate:
    return estimate_environment_cost(parse(**context))


def item(est: CostEstimate, prefix: str):
    [match] = [i for i in est.items if i.name.startswith(prefix)]
    return match


def gp3_month(gib: int, iops: int = 3000, throughput: int = 125) -> float:
    return (gib * p.GP3_GB_MONTH.usd + (iops - 3000) * p.GP3_IOPS_MONTH.usd
            + (throughput - 125) * p.GP3_THROUGHPUT_MONTH.usd)


def test_default_model_lines_are_counts_times_list_prices():
    config = parse()
    est = estimate_environment_cost(config)
    assert est.placements == ("deepseek-r1-distill-llama-8b on g6e.xlarge (on-demand), 1-2 "
                              "replicas",)
    g6e = GPU_INSTANCES["g6e.xlarge"].on_demand_usd_per_hour
    gpu = item(est, "GPU nodes")
    assert (gpu.usd_per_hour, gpu.usd_per_hour_at_max) == (pytest.approx(g6e),
                                                          pytest.approx(2 * g6e))
    assert gpu.quantity == "1 x g6e.xlarge (2 at max)"
    data_gib = gpu_node_volumes(config.plans)[1].gib
    per_node = gp3_month(4) + gp3_month(data_gib)  # baseline gp3: NVMe holds the data
    volumes = item(est, "GPU node volumes")
    assert volumes.usd_per_month == pytest.approx(per_node)
    assert volumes.usd_per_month_at_max == pytest.approx(2 * per_node)
    assert item(est, "System nodes").usd_per_hour == pytest.approx(
        3 * p.SYSTEM_INSTANCE_USD_PER_HOUR["m7i.xlarge"])
    assert item(est, "System nodes").quantity == "3 x m7i.xlarge"
    assert item(est, "System node volumes").usd_per_month == pytest.approx(
        3 * (gp3_month(4) + gp3_month(100)))
    assert item(est, "EKS").usd_per_hour == p.EKS_CLUSTER.usd == 0.10
    assert item(est, "NAT").usd_per_hour == pytest.approx(3 * 0.045)
    assert item(est, "Public IPv4").usd_per_hour == pytest.approx(3 * p.PUBLIC_IPV4_HOUR.usd)
    assert item(est, "Interface VPC endpoints").usd_per_hour == pytest.approx(5 * 3 * 0.01)
    assert item(est, "Application Load Balancers").usd_per_hour == p.ALB_HOUR.usd
    weights_gib = config.models[0].plan.model.weight_bytes / GIB
    assert item(est, "S3 weights").usd_per_month == pytest.approx(weights_gib * 0.023)
    assert item(est, "Monitoring volumes").usd_per_month == pytest.approx((100 + 10) * 0.08)
    assert not [i for i in est.items if i.name.startswith("EFS")]
    assert est.unpriced == ()


@pytest.mark.parametrize("context", [{}, {"model": "deepseek-r1"},
                                     {"model_source": "efs", "max_replicas": "3"}])
def test_totals_are_the_sum_of_the_lines(context):
    est = estimate(**context)
    assert est.usd_per_hour == pytest.approx(sum(i.usd_per_hour for i in est.items))
    assert est.usd_per_hour_at_max == pytest.approx(
        sum(i.usd_per_hour_at_max for i in est.items))
    assert est.usd_per_month == pytest.approx(HOURS * est.usd_per_hour)
    assert est.usd_per_month_at_max == pytest.approx(
        sum(i.usd_per_month_at_max for i in est.items))
    # Only the GPU lines grow with replicas.
    grows = {i.name for i in est.items if i.usd_per_hour_at_max != i.usd_per_hour}
    key = parse(**context).models[0].key
    assert grows == {f"GPU nodes {key} (on-demand)", f"GPU node volumes {key} (gp3)"}


def test_deepseek_r1_is_one_p5en_per_replica():
    est = estimate(model="deepseek-r1")
    p5en = GPU_INSTANCES["p5en.48xlarge"].on_demand_usd_per_hour
    gpu = item(est, "GPU nodes")
    assert gpu.quantity == "1 x p5en.48xlarge (2 at max)"
    assert gpu.usd_per_month == pytest.approx(HOURS * p5en)
    assert gpu.usd_per_month_at_max == pytest.approx(2 * HOURS * p5en)
    assert item(est, "S3 weights").quantity.startswith("641.3 GiB")
    # Everything but the GPU nodes is the same environment as for the 8B model.
    small = estimate()
    fixed = [i.name for i in est.items if not i.name.startswith(("GPU", "S3"))]
    assert [item(est, n).usd_per_hour for n in fixed] == [item(small, n).usd_per_hour
                                                          for n in fixed]


def test_min_and_max_replicas_set_the_gpu_node_counts():
    config = parse(model="deepseek-r1", min_replicas="2", max_replicas="3")
    est = estimate_environment_cost(config)
    p5en = GPU_INSTANCES["p5en.48xlarge"].on_demand_usd_per_hour
    node_volumes = sum(v.usd_per_month for v in gpu_node_volumes(config.plans))
    gpu = item(est, "GPU nodes")
    assert (gpu.usd_per_hour, gpu.usd_per_hour_at_max) == (pytest.approx(2 * p5en),
                                                          pytest.approx(3 * p5en))
    assert est.placements == ("deepseek-r1 on p5en.48xlarge (on-demand), 2-3 replicas",)
    assert est.usd_per_hour_at_max - est.usd_per_hour == pytest.approx(
        p5en + node_volumes / HOURS)
    same = estimate(min_replicas="2", max_replicas="2")
    assert same.usd_per_hour == same.usd_per_hour_at_max


def test_replicas_that_share_a_node_are_packed():
    config = parse(model="deepseek-r1-distill-qwen-14b", max_replicas="4")
    per_node = replicas_per_node(config.models[0].plan)
    assert per_node > 1  # TP 2 of a 4-GPU g6e.12xlarge
    est = estimate_environment_cost(config)
    price = config.models[0].plan.chosen.instance.on_demand_usd_per_hour
    assert item(est, "GPU nodes").usd_per_hour_at_max == pytest.approx(
        math.ceil(4 / per_node) * price) == pytest.approx(gpu_nodes_for(4, config.models[0].plan) * price)
    assert any("share one g6e.12xlarge" in n for n in est.caveats)


def test_spot_is_priced_at_the_on_demand_list_price_as_an_upper_bound():
    est = estimate(capacity="spot")
    assert item(est, "GPU nodes").name == "GPU nodes deepseek-r1-distill-llama-8b (spot)"
    assert item(est, "GPU nodes").usd_per_hour == pytest.approx(
        GPU_INSTANCES["g6e.xlarge"].on_demand_usd_per_hour)
    assert any("on-demand list price as an upper bound" in n for n in est.caveats)
    assert not any("upper bound" in n for n in estimate().caveats)


def test_efs_adds_the_model_cache_and_hf_stores_nothing():
    config = parse(model_source="efs")
    est = estimate_environment_cost(config)
    weights_gib = config.models[0].plan.model.weight_bytes / GIB
    assert item(est, "EFS model cache").usd_per_month == pytest.approx(weights_gib * 0.30)
    assert item(est, "S3 weights")  # staged into S3 first
    assert est.usd_per_month == pytest.approx(estimate().usd_per_month + weights_gib * 0.30)
    assert any("EFS elastic throughput" in n for n in est.usage_based)
    hf = estimate(model_source="hf")
    assert not [i for i in hf.items if i.name.startswith(("S3", "EFS"))]
    assert any("at every replica start" in n for n in hf.usage_based)


def test_one_nat_gateway_costs_a_third():
    one, three = estimate(nat_gateways="1"), estimate()
    assert item(one, "NAT").usd_per_hour == pytest.approx(0.045)
    assert item(one, "Public IPv4").usd_per_hour == pytest.approx(0.005)
    saved = 2 * (0.045 + 0.005) * HOURS
    assert three.usd_per_month - one.usd_per_month == pytest.approx(saved)


def test_public_endpoint_and_grafana_alb_add_addresses_and_a_load_balancer():
    est = estimate(endpoint_scheme="internet-facing", certificate_arn=CERTIFICATE_ARN,
                   endpoint_allowed_cidrs="0.0.0.0/0", grafana_alb="true")
    assert item(est, "Public IPv4").quantity == "3 NAT + 3 ALB"
    assert item(est, "Public IPv4").usd_per_hour == pytest.approx(6 * 0.005)
    assert item(est, "Application Load Balancers").usd_per_hour == pytest.approx(2 * 0.0225)


def test_an_unlisted_system_type_is_unpriced_and_named_with_the_fix():
    est = estimate(system_instance_type="x2iedn.xlarge")
    system = item(est, "System nodes")
    assert system.usd_per_hour is None and system.usd_per_month is None
    assert est.unpriced == ("System nodes (on-demand)",)
    assert est.usd_per_hour == pytest.approx(
        estimate().usd_per_hour - 3 * p.SYSTEM_INSTANCE_USD_PER_HOUR["m7i.xlarge"])
    [note] = [n for n in est.caveats if "x2iedn.xlarge" in n]
    assert "SYSTEM_INSTANCE_USD_PER_HOUR in vllm_eks/models/prices.py" in note
    text = render_cost(est)
    assert re.search(r"System nodes \(on-demand\) +3 x x2iedn.xlarge +- +- +-\n", text)
    assert "not included (no list price): System nodes (on-demand)" in text


def test_other_regions_are_told_the_prices_are_us_east_1():
    assert any(f"{PRICE_REGION} list prices; eu-west-1 prices differ" in n
               for n in estimate(region="eu-west-1").caveats)
    assert not any("prices differ" in n for n in estimate().caveats)


def test_render_is_an_aligned_table_with_the_totals_line():
    est = estimate()
    text = render_cost(est)
    lines = text.splitlines()
    assert lines[0].startswith("vllm-eks cost: deepseek-r1-distill-llama-8b on g6e.xlarge "
                               f"(on-demand), 1-2 replicas; {PRICE_REGION} list prices of "
                               f"{PRICES_CHECKED}")
    table = lines[1:len(est.items) + 3]  # header, items, total
    assert table[-1].lstrip().startswith("total")
    assert len({len(line) for line in table}) == 1  # right-aligned money columns
    assert (f"about ${est.usd_per_hour:,.2f}/hour, ${est.usd_per_month:,.0f}/month at "
            f"min_replicas (up to ${est.usd_per_month_at_max:,.0f}/month at "
            "max_replicas)") in lines
    assert "  usage-based, not in the total:" in lines
    assert any("NAT data processing $0.045/GB" in line for line in lines)


def test_every_price_names_its_source_region_and_date():
    named = {k: v for k, v in vars(p).items() if isinstance(v, p.Price)}
    assert len(named) >= 15
    for name, price in named.items():
        assert price.usd > 0 and price.source and price.unit, name
        assert (price.region, price.checked) == (PRICE_REGION, PRICES_CHECKED), name
    assert p.system_instance_price("m7i.xlarge").usd == 0.2016
    assert p.system_instance_price("m7i.metal-48xl") is None


# -- the sizes priced are the sizes deployed ----------------------------------------------

@pytest.mark.parametrize("model", ["deepseek-r1-distill-llama-8b", "deepseek-r1"])
def test_gpu_volumes_are_the_karpenter_node_class_block_devices(model):
    from vllm_eks.k8s_charts import render
    from vllm_eks.bottlerocket import gpu_data_volume_gib
    from vllm_eks.k8s_charts.karpenter_pools import KarpenterPoolsChart, KarpenterPoolsProps

    config = parse(model=model)
    chart = render(KarpenterPoolsChart, "pools", props=KarpenterPoolsProps(
        cluster_name="c", node_role_name="r", plans=config.plans,
        gpu_instance_types=config.gpu_pool_instance_types,
        availability_zones=config.network.availability_zones, gpu_limit=config.gpu_limit,
        cpu_limit=64, gpu_data_volume_gib=gpu_data_volume_gib(config.plans)))
    [gpu_class] = [m for m in chart.to_json()
                   if m["kind"] == "EC2NodeClass" and m["metadata"]["name"] == "gpu"]
    devices = [d["ebs"] for d in gpu_class["spec"]["blockDeviceMappings"]]
    priced = gpu_node_volumes(config.plans)
    assert [d["volumeSize"] for d in devices] == [f"{v.gib}Gi" for v in priced]
    assert all(d["volumeType"] == "gp3" for d in devices)
    assert devices[0]["volumeSize"] == f"{BOTTLEROCKET_OS_VOLUME_GIB}Gi"
    # The catalog's GPU types all have NVMe: the data volume runs at the gp3 baseline.
    assert (priced[1].iops, priced[1].throughput_mibps) == (3000, 125)
    assert "iops" not in devices[1] and "throughput" not in devices[1]
    assert "iops" not in devices[0] and "throughput" not in devices[0]


def test_system_volumes_are_the_launch_template_sizes():
    from vllm_eks.constructs import cluster

    assert cluster.BOTTLEROCKET_OS_VOLUME_GIB == BOTTLEROCKET_OS_VOLUME_GIB
    assert cluster.SYSTEM_DATA_VOLUME_GIB == SYSTEM_DATA_VOLUME_GIB


def test_monitoring_volumes_are_the_chart_values():
    from vllm_eks.constructs.observability import Observability

    config = parse(prometheus_storage_gib="250")
    stub = SimpleNamespace(props=SimpleNamespace(config=config.observability,
                                                 vpc_cidr=config.network.cidr))
    values = Observability.prometheus_values(stub)

    def size(spec: dict) -> str:
        return spec["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]

    assert size(values["prometheus"]["prometheusSpec"]["storageSpec"]) == "250Gi"
    assert size(values["alertmanager"]["alertmanagerSpec"]["storage"]) == (
        f"{ALERTMANAGER_VOLUME_GIB}Gi")
    assert values["grafana"]["persistence"] == {"enabled": False}
    assert item(estimate_environment_cost(config), "Monitoring volumes").usd_per_month == (
        pytest.approx((250 + ALERTMANAGER_VOLUME_GIB) * 0.08))


def test_interface_endpoints_are_the_network_constructs():
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from vllm_eks.constructs.network import Network, NetworkProps

    stack = cdk.Stack(cdk.App(), "Net")
    Network(stack, "Network", props=NetworkProps(config=parse().network, cluster_name="c"))
    endpoints = [c for c in stack.node.find_all() if isinstance(c, ec2.InterfaceVpcEndpoint)]
    assert len(endpoints) == len(INTERFACE_ENDPOINTS)


@pytest.mark.parametrize("context", [{}, {"model": "deepseek-r1"}])
def test_docs_show_the_estimate_the_code_makes(context):
    from .support import REPO

    assert render_cost(estimate(**context)) in (REPO / "docs" / "cost.md").read_text()


def test_several_models_add_their_gpu_lines_and_share_the_rest():
    two = parse(models="deepseek-r1-distill-llama-8b,deepseek-r1-distill-qwen-1.5b",
                max_replicas="deepseek-r1-distill-qwen-1.5b:3")
    est = estimate_environment_cost(two)
    g6 = GPU_INSTANCES["g6.xlarge"].on_demand_usd_per_hour
    small = item(est, "GPU nodes deepseek-r1-distill-qwen-1.5b")
    assert (small.usd_per_hour, small.usd_per_hour_at_max) == (pytest.approx(g6),
                                                              pytest.approx(3 * g6))
    one = estimate()
    # One control plane, one load balancer, one set of system nodes for both models.
    for shared in ("EKS", "System nodes", "NAT", "Application Load Balancers"):
        assert item(est, shared).usd_per_hour == item(one, shared).usd_per_hour
    weights = sum(m.plan.model.weight_bytes for m in two.models) / GIB
    assert item(est, "S3 weights").usd_per_month == pytest.approx(weights * 0.023)
    assert est.usd_per_hour == pytest.approx(
        one.usd_per_hour + small.usd_per_hour
        + item(est, "GPU node volumes deepseek-r1-distill-qwen-1.5b").usd_per_hour
        + item(est, "S3 weights").usd_per_hour - item(one, "S3 weights").usd_per_hour)
    assert render_cost(est).splitlines()[0].startswith(
        "vllm-eks cost: deepseek-r1-distill-llama-8b on g6e.xlarge (on-demand), 1-2 replicas; "
        "deepseek-r1-distill-qwen-1.5b on g6.xlarge (on-demand), 1-3 replicas; ")
