"""GPU instance catalog: the EC2 instance types the planner may place a model on.

Prices are Linux on-demand, us-east-1, USD per hour, read 2026-11 from a catalog built
from the AWS Price List API (after AWS's June 2025 P4/P5 price cut). They rank placements
and estimate cost; they are not a bill. Spot capacity is priced by the market, so the
planner ranks spot placements by the same on-demand figures. p5e.48xlarge has no public
on-demand price (it is sold through EC2 Capacity Blocks and Savings Plans), and Karpenter
1.14 never launches an offering without a price (`offering/base_resolver.go`): it is in
the catalog so that pinning it gets a clear refusal, never a placement or a fallback.

GPU memory is what the driver reports (nvidia-smi "Total", MiB), not the marketing
figure: an "80 GB" H100 reports 81,559 MiB, a "24 GB" A10G 23,028 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED = "2026-11"
PRICE_REGION = "us-east-1"


@dataclass(frozen=True, kw_only=True)
class Gpu:
    """A GPU model and the memory its driver reports."""

    name: str
    memory_mib: int
    marketing_gb: int

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 2**20


A10G = Gpu(name="NVIDIA A10G", memory_mib=23_028, marketing_gb=24)
L4 = Gpu(name="NVIDIA L4", memory_mib=23_034, marketing_gb=24)
L40S = Gpu(name="NVIDIA L40S", memory_mib=46_068, marketing_gb=48)
A100_40 = Gpu(name="NVIDIA A100 40GB", memory_mib=40_960, marketing_gb=40)
A100_80 = Gpu(name="NVIDIA A100 80GB", memory_mib=81_920, marketing_gb=80)
H100 = Gpu(name="NVIDIA H100", memory_mib=81_559, marketing_gb=80)
H200 = Gpu(name="NVIDIA H200", memory_mib=143_771, marketing_gb=141)


@dataclass(frozen=True, kw_only=True)
class GpuInstance:
    """One EC2 GPU instance type."""

    instance_type: str
    gpu: Gpu
    gpu_count: int
    vcpu: int
    memory_gib: int
    nvme_gb: int  # local instance-store NVMe, total; 0 when the type has none
    efa: bool  # supports Elastic Fabric Adapter
    # None: no public on-demand price (Capacity Blocks only); never chosen unless pinned.
    on_demand_usd_per_hour: float | None
    spot: bool = True  # offered as spot capacity

    @property
    def launchable(self) -> bool:
        """Whether Karpenter can launch it: only offerings with a price are available."""
        return self.on_demand_usd_per_hour is not None

    @property
    def family(self) -> str:
        return self.instance_type.split(".", 1)[0]


def _family(
    family: str,
    gpu: Gpu,
    sizes: tuple[tuple[str, int, int, int, int, bool, float | None], ...],
    *,
    spot: bool = True,
) -> dict[str, GpuInstance]:
    """Rows of (size, GPUs, vCPU, RAM GiB, NVMe GB, EFA, $/h) -> instances by type name."""
    return {
        f"{family}.{size}": GpuInstance(
            instance_type=f"{family}.{size}",
            gpu=gpu,
            gpu_count=gpus,
            vcpu=vcpu,
            memory_gib=ram,
            nvme_gb=nvme,
            efa=efa,
            on_demand_usd_per_hour=price,
            spot=spot,
        )
        for size, gpus, vcpu, ram, nvme, efa, price in sizes
    }


# Specifications: Amazon EC2 accelerated computing instance specifications.
GPU_INSTANCES: dict[str, GpuInstance] = {
    **_family(
        "g5",
        A10G,
        (
            ("xlarge", 1, 4, 16, 250, False, 1.006),
            ("2xlarge", 1, 8, 32, 450, False, 1.212),
            ("4xlarge", 1, 16, 64, 600, False, 1.624),
            ("8xlarge", 1, 32, 128, 900, True, 2.448),
            ("12xlarge", 4, 48, 192, 3800, True, 5.672),
            ("16xlarge", 1, 64, 256, 1900, True, 4.096),
            ("24xlarge", 4, 96, 384, 3800, True, 8.144),
            ("48xlarge", 8, 192, 768, 7600, True, 16.288),
        ),
    ),
    **_family(
        "g6",
        L4,
        (
            ("xlarge", 1, 4, 16, 250, False, 0.8048),
            ("2xlarge", 1, 8, 32, 450, False, 0.9776),
            ("4xlarge", 1, 16, 64, 600, False, 1.3232),
            ("8xlarge", 1, 32, 128, 900, True, 2.0144),
            ("12xlarge", 4, 48, 192, 3760, True, 4.6016),
            ("16xlarge", 1, 64, 256, 1880, True, 3.3968),
            ("24xlarge", 4, 96, 384, 3760, True, 6.6752),
            ("48xlarge", 8, 192, 768, 7520, True, 13.3504),
        ),
    ),
    **_family(
        "g6e",
        L40S,
        (
            ("xlarge", 1, 4, 32, 250, False, 1.861),
            ("2xlarge", 1, 8, 64, 450, False, 2.24208),
            ("4xlarge", 1, 16, 128, 600, False, 3.00424),
            ("8xlarge", 1, 32, 256, 900, True, 4.52856),
            ("12xlarge", 4, 48, 384, 3800, True, 10.49264),
            ("16xlarge", 1, 64, 512, 1900, True, 7.57719),
            ("24xlarge", 4, 96, 768, 3800, True, 15.06559),
            ("48xlarge", 8, 192, 1536, 7600, True, 30.13118),
        ),
    ),
    **_family("p4d", A100_40, (("24xlarge", 8, 96, 1152, 8000, True, 21.96),)),
    **_family("p4de", A100_80, (("24xlarge", 8, 96, 1152, 8000, True, 27.45),)),
    **_family(
        "p5",
        H100,
        (
            ("4xlarge", 1, 16, 256, 3840, False, 6.88),
            ("48xlarge", 8, 192, 2048, 30720, True, 55.04),
        ),
    ),
    **_family("p5e", H200, (("48xlarge", 8, 192, 2048, 30720, True, None),), spot=False),
    **_family("p5en", H200, (("48xlarge", 8, 192, 2048, 30720, True, 63.296),)),
}

# EFA interfaces per type (`vpc.amazonaws.com/efa`: EC2's MaximumEfaInterfaces, which is
# what Karpenter advertises and attaches). Source: Karpenter v1.14.1's generated
# instance-type reference (website/content/en/docs/reference/instance-types.md); types
# with `efa=True` and no entry here have 1.
EFA_INTERFACES: dict[str, int] = {
    "p5.48xlarge": 32, "p5en.48xlarge": 16,
    "p4d.24xlarge": 4, "p4de.24xlarge": 4,
    "g6e.24xlarge": 2, "g6e.48xlarge": 4,
}


# Network bandwidth, Gbit/s. Baseline: Karpenter v1.14.1's generated instance-type
# reference (website/content/en/docs/reference/instance-types.md), the label
# `karpenter.k8s.aws/instance-network-bandwidth` (Mbps), which is EC2's baseline.
NETWORK_BASELINE_GBPS: dict[str, float] = {
    "g5.xlarge": 2.5, "g5.2xlarge": 5, "g5.4xlarge": 10, "g5.8xlarge": 25,
    "g5.12xlarge": 40, "g5.16xlarge": 25, "g5.24xlarge": 50, "g5.48xlarge": 100,
    "g6.xlarge": 2.5, "g6.2xlarge": 5, "g6.4xlarge": 10, "g6.8xlarge": 25,
    "g6.12xlarge": 40, "g6.16xlarge": 25, "g6.24xlarge": 50, "g6.48xlarge": 100,
    "g6e.xlarge": 2.5, "g6e.2xlarge": 5, "g6e.4xlarge": 20, "g6e.8xlarge": 25,
    "g6e.12xlarge": 100, "g6e.16xlarge": 35, "g6e.24xlarge": 200, "g6e.48xlarge": 400,
    "p4d.24xlarge": 400, "p4de.24xlarge": 400, "p5.4xlarge": 100,
    "p5.48xlarge": 3200, "p5e.48xlarge": 3200, "p5en.48xlarge": 3200,
}
# The "up to" figure of types that burst above their baseline with network I/O credits
# ("typically from 5 to 60 minutes", EC2 user guide, "Amazon EC2 instance network
# bandwidth"): one model load is far shorter. g5: the EC2 accelerated-computing network
# table (awsdocs/amazon-ec2-user-guide, 2023); g6 and g6e: the AWS G6 / G6e product pages
# (not in that snapshot of the guide).
NETWORK_BURST_GBPS: dict[str, float] = {
    "g5.xlarge": 10, "g5.2xlarge": 10, "g5.4xlarge": 25,
    "g6.xlarge": 10, "g6.2xlarge": 10, "g6.4xlarge": 25,
    "g6e.xlarge": 20, "g6e.2xlarge": 20,
}


def network_gbps(instance: GpuInstance, *, sustained: bool) -> float:
    """The type's bandwidth: its baseline when `sustained` (what a budget may count on),
    else what one load gets (the burst figure where the type bursts)."""
    baseline = NETWORK_BASELINE_GBPS[instance.instance_type]
    return baseline if sustained else NETWORK_BURST_GBPS.get(instance.instance_type, baseline)


def efa_interfaces(instance: GpuInstance) -> int:
    """EFA interfaces of a type (0 without EFA): a pod that wants them all requests this."""
    if not instance.efa:
        return 0
    return EFA_INTERFACES.get(instance.instance_type, 1)
