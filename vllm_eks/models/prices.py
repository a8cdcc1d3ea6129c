"""List prices of everything in the environment except the GPU instances (those are in
instances.py): the control plane, the network, storage and the system nodes.

Every price is a us-east-1 (PRICE_REGION) list price in USD, read in PRICES_CHECKED from
the AWS pricing page named in its `source`, without free tiers, Savings Plans or
Reserved Instances. Other regions differ. A month is 730 hours, as on AWS's pricing pages.
They estimate; they are not a bill.
"""

from __future__ import annotations

from dataclasses import dataclass

from .instances import PRICE_REGION, PRICES_CHECKED

HOURS_PER_MONTH = 730


@dataclass(frozen=True, kw_only=True)
class Price:
    """One list price: USD per `unit`, as read from `source` in `checked`."""

    usd: float
    unit: str
    source: str  # the AWS pricing page (and the row on it)
    region: str = PRICE_REGION
    checked: str = PRICES_CHECKED


# -- Amazon EKS pricing ------------------------------------------------------------------
EKS_CLUSTER = Price(usd=0.10, unit="cluster-hour",
                    source="Amazon EKS pricing: cluster in standard support")
EKS_CLUSTER_EXTENDED_SUPPORT = Price(usd=0.60, unit="cluster-hour",
                                     source="Amazon EKS pricing: cluster in extended support")

# -- Amazon VPC pricing ------------------------------------------------------------------
NAT_GATEWAY_HOUR = Price(usd=0.045, unit="NAT gateway-hour",
                         source="Amazon VPC pricing: NAT gateway, hourly charge")
NAT_GATEWAY_GB = Price(usd=0.045, unit="GB processed",
                       source="Amazon VPC pricing: NAT gateway, data processing")
PUBLIC_IPV4_HOUR = Price(usd=0.005, unit="public IPv4 address-hour",
                         source="Amazon VPC pricing: public IPv4 address (in use or idle)")

# -- AWS PrivateLink pricing -------------------------------------------------------------
INTERFACE_ENDPOINT_AZ_HOUR = Price(usd=0.01, unit="endpoint-hour per AZ",
                                   source="AWS PrivateLink pricing: interface endpoint")
INTERFACE_ENDPOINT_GB = Price(usd=0.01, unit="GB processed (first PB a month)",
                              source="AWS PrivateLink pricing: interface endpoint data")

# -- Elastic Load Balancing pricing ------------------------------------------------------
ALB_HOUR = Price(usd=0.0225, unit="ALB-hour",
                 source="Elastic Load Balancing pricing: Application Load Balancer")
ALB_LCU_HOUR = Price(usd=0.008, unit="LCU-hour",
                     source="Elastic Load Balancing pricing: Application Load Balancer LCU")

# -- Amazon EBS pricing ------------------------------------------------------------------
GP3_GB_MONTH = Price(usd=0.08, unit="GB-month", source="Amazon EBS pricing: gp3 storage")
GP3_IOPS_MONTH = Price(usd=0.005, unit="provisioned IOPS-month above the free 3,000",
                       source="Amazon EBS pricing: gp3 IOPS")
GP3_THROUGHPUT_MONTH = Price(usd=0.04, unit="provisioned MiB/s-month above the free 125",
                             source="Amazon EBS pricing: gp3 throughput")
GP3_FREE_IOPS = 3000  # every gp3 volume includes these
GP3_FREE_THROUGHPUT_MIBPS = 125


def gp3_usd_per_month(gib: int, iops: int = GP3_FREE_IOPS,
                      throughput_mibps: int = GP3_FREE_THROUGHPUT_MIBPS) -> float:
    """A gp3 volume a month: its size, plus IOPS and throughput above the free baseline."""
    return (gib * GP3_GB_MONTH.usd
            + max(0, iops - GP3_FREE_IOPS) * GP3_IOPS_MONTH.usd
            + max(0, throughput_mibps - GP3_FREE_THROUGHPUT_MIBPS) * GP3_THROUGHPUT_MONTH.usd)


# -- Amazon S3 pricing -------------------------------------------------------------------
S3_STANDARD_GB_MONTH = Price(usd=0.023, unit="GB-month (first 50 TB)",
                             source="Amazon S3 pricing: S3 Standard storage")

# -- Amazon EFS pricing ------------------------------------------------------------------
EFS_STANDARD_GB_MONTH = Price(usd=0.30, unit="GB-month",
                              source="Amazon EFS pricing: Standard storage (Regional)")
EFS_ELASTIC_READ_GB = Price(usd=0.03, unit="GB read",
                            source="Amazon EFS pricing: Elastic Throughput reads")
EFS_ELASTIC_WRITE_GB = Price(usd=0.06, unit="GB written",
                             source="Amazon EFS pricing: Elastic Throughput writes")

# -- Amazon CloudWatch pricing -----------------------------------------------------------
CLOUDWATCH_LOGS_INGEST_GB = Price(usd=0.50, unit="GB ingested",
                                  source="Amazon CloudWatch pricing: Logs, standard ingestion")
CLOUDWATCH_LOGS_STORED_GB_MONTH = Price(usd=0.03, unit="GB-month stored",
                                        source="Amazon CloudWatch pricing: Logs, archival")

# -- AWS Secrets Manager / AWS KMS pricing -----------------------------------------------
SECRET_MONTH = Price(usd=0.40, unit="secret-month", source="AWS Secrets Manager pricing")
KMS_KEY_MONTH = Price(usd=1.00, unit="customer managed key-month", source="AWS KMS pricing")

# -- Amazon EC2 On-Demand pricing (Linux), system node group types -----------------------
SYSTEM_INSTANCE_SOURCE = "Amazon EC2 On-Demand pricing: Linux"
# USD per instance-hour. A type not listed is priced "-" (left out of the totals, with a
# note); add its on-demand price here.
SYSTEM_INSTANCE_USD_PER_HOUR: dict[str, float] = {
    "m7i.large": 0.1008,
    "m7i.xlarge": 0.2016,
    "m7i.2xlarge": 0.4032,
    "m7i.4xlarge": 0.8064,
    "m7a.large": 0.11592,
    "m7a.xlarge": 0.23184,
    "m7a.2xlarge": 0.46368,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384,
    "m6a.xlarge": 0.1728,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "c7i.xlarge": 0.1785,
    "c7i.2xlarge": 0.357,
    "r7i.xlarge": 0.2646,
    "r7i.2xlarge": 0.5292,
}


def system_instance_price(instance_type: str) -> Price | None:
    """The on-demand price of a system node type, or None when the table lacks it."""
    usd = SYSTEM_INSTANCE_USD_PER_HOUR.get(instance_type)
    if usd is None:
        return None
    return Price(usd=usd, unit="instance-hour", source=f"{SYSTEM_INSTANCE_SOURCE}, {instance_type}")
