"""Typed configuration of one environment, and its parsing from CDK context.

`app.py` is the only place that reads context; it hands the raw values to
`EnvironmentConfig.from_context`, which validates every key and fails at synth time
with a message that names the key, the bad value and the fix. A pipeline stage builds
the same `EnvironmentConfig` from its committed settings instead.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import (
    DEFAULT_MODEL_KEY,
    CapacityType,
    DeploymentPlan,
    PlanRequest,
    get_model,
    plan,
)
from .models.planner import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MIN_CONCURRENCY,
    MIN_MODEL_LEN,
)
from .models.sources import ModelSource


class ConfigError(ValueError):
    """A context value is malformed or inconsistent."""


_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Becomes an S3 key segment and a directory name: no slashes.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)

# Every key `-c` accepts, with a one-line meaning; the README lists the same keys.
CONTEXT_KEYS: dict[str, str] = {
    "model": "catalog key of the model to serve",
    "instance_type": "pin the GPU instance type (default: the planner's cheapest fit)",
    "tensor_parallel": "pin the tensor-parallel size (GPUs per replica)",
    "max_model_len": "context length to serve (default: the model's default)",
    "min_concurrency": "sequences at full context the KV cache must hold (default 8)",
    "gpu_memory_utilization": "fraction of GPU memory vLLM may use (default 0.90)",
    "capacity": "GPU capacity type: on-demand (default) or spot",
    "account": "AWS account ID to deploy to (default: the CLI's credentials)",
    "region": "AWS region (default us-east-1)",
    "availability_zones": "three comma-separated AZ names (default <region>a,b,c)",
    "vpc_cidr": "VPC CIDR block (default 10.0.0.0/16)",
    "nat_gateways": "NAT gateways: 3 = one per AZ (default), 1 for dev",
    "cluster_name": "EKS cluster name (default vllm-eks)",
    "api_allowed_cidrs": "comma-separated CIDRs allowed to the public API endpoint "
    "(default none: private endpoint only)",
    "admin_role_arn": "IAM role granted cluster-admin through an access entry",
    "system_instance_type": "instance type of the system node group (default m7i.xlarge)",
    "system_nodes": "system node group size (default 3: one per AZ; minimum 2)",
    "gpu_nodes_min": "GPU node group minimum size (default 1)",
    "gpu_nodes_max": "GPU node group maximum size (default 2)",
    "gpu_limit": "nvidia.com/gpu Karpenter may add in total (default: two nodes' worth)",
    "cpu_limit": "vCPUs of Karpenter's general CPU pool (default 64)",
    "model_source": "where vLLM loads weights from: s3 (default, streamed), efs or hf",
    "model_revision": "Hugging Face branch, tag or commit to serve (default main)",
    "endpoint_scheme": "load balancer scheme: internal (default) or internet-facing",
    "certificate_arn": "ACM certificate for HTTPS on the endpoint (HTTP is redirected)",
    "endpoint_hostname": "DNS name clients use for the endpoint (must match the certificate; "
    "you point it at the load balancer)",
    "endpoint_allowed_cidrs": "comma-separated CIDRs allowed to the endpoint "
    "(default: the VPC CIDR when internal; required when internet-facing)",
    "prometheus_retention_days": "days Prometheus keeps metrics (default 15)",
    "prometheus_storage_gib": "Prometheus volume size in GiB (default 100)",
    "ttft_slo_ms": "time-to-first-token p95 target in milliseconds (default 400)",
    "min_replicas": "fewest vLLM replicas the autoscaler keeps (default 1, at least 1)",
    "max_replicas": "most vLLM replicas the autoscaler runs (default 2)",
    "cloudwatch": "true adds the amazon-cloudwatch-observability add-on (default false)",
    "grafana_alb": "true puts Grafana behind an internal ALB (default false: port-forward)",
    "pipeline": "true synthesizes the delivery pipeline (VllmPipelineStack) instead",
    "pipeline_config": "path of the pipeline configuration (default pipeline.json)",
}


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The VPC: CIDR, the three AZs it spans, and how many NAT gateways."""

    cidr: str = "10.0.0.0/16"
    availability_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")
    nat_gateways: int = 3  # one per AZ: an AZ outage does not cut the others' egress


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """The EKS cluster and its managed node groups."""

    name: str = "vllm-eks"
    # Empty: the API endpoint is private only (reachable from the VPC).
    api_allowed_cidrs: tuple[str, ...] = ()
    admin_role_arn: str | None = None  # None: only the deploying CloudFormation role is admin
    system_instance_type: str = "m7i.xlarge"
    # One per AZ: monitoring keeps its data on zonal EBS volumes, and a volume's pod can
    # only run in that volume's zone.
    system_nodes: int = 3
    gpu_nodes_min: int = 1
    gpu_nodes_max: int = 2
    gpu_limit: int | None = None  # Karpenter GPU pool limit; None: two planned nodes' GPUs
    cpu_limit: int = 64  # Karpenter general pool limit, vCPUs


class EndpointScheme(enum.Enum):
    """Where the load balancer in front of vLLM is reachable from."""

    INTERNAL = "internal"  # from the VPC (and peered networks / VPN) only
    INTERNET_FACING = "internet-facing"


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """The HTTPS endpoint (an ALB) in front of the vLLM service."""

    scheme: EndpointScheme = EndpointScheme.INTERNAL
    certificate_arn: str | None = None  # None: HTTP only, allowed for internal endpoints
    allowed_cidrs: tuple[str, ...] = ()  # () with INTERNAL: the VPC CIDR
    # The name clients use (a CNAME/alias to the ALB you manage); None: the ALB's own DNS
    # name. With HTTPS it must match the certificate, or TLS clients refuse the endpoint.
    hostname: str | None = None

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


@dataclass(frozen=True, kw_only=True)
class ObservabilityConfig:
    """Prometheus, Grafana and the SLO the alerts watch."""

    retention_days: int = 15
    storage_gib: int = 100
    ttft_slo_seconds: float = 0.4
    cloudwatch: bool = False
    grafana_alb: bool = False


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """KEDA scaling of the vLLM Deployment on its queue."""

    # At least 1: the scaling signals are vLLM's own metrics, which do not exist while no
    # replica runs, so nothing could wake a model scaled to zero.
    min_replicas: int = 1
    max_replicas: int = 2


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything one environment (a CLI deploy or a pipeline stage) is built from."""

    plan: DeploymentPlan
    account: str | None = None  # None: resolved by the CLI from its credentials
    region: str = "us-east-1"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    model_source: ModelSource = ModelSource.S3
    model_revision: str = "main"
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)
    # The pipeline's (tooling) account, allowed to invoke the smoke test; None for CLI.
    smoke_test_invoker_account: str | None = None

    def with_smoke_test_invoker(self, account: str) -> "EnvironmentConfig":
        return dataclasses.replace(self, smoke_test_invoker_account=account)

    @property
    def gpu_limit(self) -> int:
        """nvidia.com/gpu Karpenter's GPU pool may hold: as configured, or two nodes of
        the planned instance type."""
        return resolved_gpu_limit(self.cluster, self.plan)

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> "EnvironmentConfig":
        """Build and validate a config from a context getter (`node.try_get_context`)."""
        return _parse(_ContextReader(get))


def resolved_gpu_limit(cluster: ClusterConfig, plan: DeploymentPlan) -> int:
    """Karpenter's GPU pool limit: as configured, or two nodes of the planned type."""
    if cluster.gpu_limit is not None:
        return cluster.gpu_limit
    return 2 * plan.chosen.instance.gpu_count


class _ContextReader:
    """Reads context values, which are strings from `-c` and JSON values from cdk.json."""

    def __init__(self, get: Callable[[str], Any]):
        self._get = get

    def raw(self, key: str) -> Any:
        if key not in CONTEXT_KEYS:  # a guard for our own code, not user input
            raise KeyError(f"context key {key!r} is not declared in CONTEXT_KEYS")
        value = self._get(key)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        return default if value is None else str(value)

    def integer(self, key: str, default: int | None, *, minimum: int = 1) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not re.fullmatch(r"\d+", str(value)):
            raise ConfigError(
                f"-c {key}={value!r} is not a whole number; pass e.g. -c {key}="
                f"{default if default is not None else minimum}"
            )
        number = int(str(value))
        if number < minimum:
            raise ConfigError(f"-c {key}={number} must be at least {minimum}")
        return number

    def fraction(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"-c {key}={value!r} is not a number; pass a fraction such as -c {key}={default}"
            ) from None
        if not 0 < number < 1:
            raise ConfigError(f"-c {key}={number} must be between 0 and 1, e.g. {default}")
        return number

    def number(self, key: str, default: float) -> float:
        """A positive number (context strings or JSON numbers)."""
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0 or number == float("inf"):
            raise ConfigError(
                f"-c {key}={value!r} is not a positive number; pass e.g. -c {key}={default:g}"
            )
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ConfigError(f"-c {key}={value!r} is not true or false; pass -c {key}=true")

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())


def _parse(ctx: _ContextReader) -> EnvironmentConfig:
    region = ctx.string("region", "us-east-1")
    if not _REGION.match(region):
        raise ConfigError(f"-c region={region!r} is not an AWS region name such as us-east-1")
    account = ctx.string("account")
    if account is not None and not _ACCOUNT.match(account):
        raise ConfigError(f"-c account={account!r} must be a 12-digit AWS account ID")
    plan = _parse_plan(ctx)
    network = _parse_network(ctx, region)
    cluster = _parse_cluster(ctx, plan)
    return EnvironmentConfig(
        plan=plan,
        account=account,
        region=region,
        network=network,
        cluster=cluster,
        model_source=_choice(ctx, "model_source", ModelSource, ModelSource.S3,
                             "a model source"),
        model_revision=_parse_revision(ctx),
        endpoint=_parse_endpoint(ctx, region, network),
        observability=_parse_observability(ctx),
        autoscaling=_parse_autoscaling(ctx, plan, cluster),
    )


def _parse_observability(ctx: _ContextReader) -> ObservabilityConfig:
    defaults = ObservabilityConfig()
    slo_ms = ctx.number("ttft_slo_ms", defaults.ttft_slo_seconds * 1000)
    return ObservabilityConfig(
        retention_days=ctx.integer("prometheus_retention_days", defaults.retention_days),
        storage_gib=ctx.integer("prometheus_storage_gib", defaults.storage_gib, minimum=10),
        ttft_slo_seconds=slo_ms / 1000,
        cloudwatch=ctx.boolean("cloudwatch", defaults.cloudwatch),
        grafana_alb=ctx.boolean("grafana_alb", defaults.grafana_alb),
    )


def _parse_autoscaling(ctx: _ContextReader, plan: DeploymentPlan,
                       cluster: ClusterConfig) -> AutoscalingConfig:
    defaults = AutoscalingConfig()
    minimum = ctx.integer("min_replicas", defaults.min_replicas, minimum=0)
    if minimum == 0:
        raise ConfigError(
            "-c min_replicas=0 (scale to zero) is not offered: KEDA scales on vLLM's own "
            "queue metrics, which do not exist while no replica runs, so no request could "
            "wake the model; pass -c min_replicas=1 or more"
        )
    maximum = ctx.integer("max_replicas", max(defaults.max_replicas, minimum))
    if minimum > maximum:
        raise ConfigError(
            f"-c min_replicas={minimum} is above -c max_replicas={maximum}; raise "
            f"-c max_replicas to at least {minimum}"
        )
    # Replicas beyond the GPUs the node group and Karpenter may ever hold stay Pending.
    node_gpus = plan.chosen.instance.gpu_count
    gpu_limit = resolved_gpu_limit(cluster, plan)
    capacity = (cluster.gpu_nodes_max * node_gpus + gpu_limit) // plan.gpus
    if maximum > capacity:
        raise ConfigError(
            f"-c max_replicas={maximum} needs {maximum * plan.gpus} GPUs, but the GPU node "
            f"group ({cluster.gpu_nodes_max} x {node_gpus}) and Karpenter's gpu_limit "
            f"({gpu_limit}) hold at most {capacity} replicas; raise -c gpu_limit or "
            f"-c gpu_nodes_max, or lower -c max_replicas"
        )
    return AutoscalingConfig(min_replicas=minimum, max_replicas=maximum)


def _parse_revision(ctx: _ContextReader) -> str:
    revision = ctx.string("model_revision", "main")
    if not _REVISION.match(revision):
        raise ConfigError(
            f"-c model_revision={revision!r} is not a Hugging Face branch, tag or commit "
            "name (letters, digits, '.', '_', '-'); pass e.g. -c model_revision=main or a "
            "40-character commit hash"
        )
    return revision


def _choice(ctx: _ContextReader, key: str, enum_type: type[enum.Enum], default: enum.Enum,
            what: str):
    value = ctx.string(key, default.value)
    try:
        return enum_type(value)
    except ValueError:
        raise ConfigError(
            f"-c {key}={value!r} is not {what}; pass -c {key}="
            f"<one of: {', '.join(member.value for member in enum_type)}>"
        ) from None


def _parse_endpoint(ctx: _ContextReader, region: str, network: NetworkConfig) -> EndpointConfig:
    scheme = _choice(ctx, "endpoint_scheme", EndpointScheme, EndpointScheme.INTERNAL,
                     "a load balancer scheme")
    certificate_arn = ctx.string("certificate_arn")
    if certificate_arn is not None:
        match = _CERTIFICATE_ARN.match(certificate_arn)
        if not match:
            raise ConfigError(
                f"-c certificate_arn={certificate_arn!r} is not an ACM certificate ARN; pass "
                "arn:aws:acm:<region>:<12-digit account>:certificate/<uuid>"
            )
        if match["region"] != region:
            raise ConfigError(
                f"-c certificate_arn is in {match['region']}, but the load balancer is in "
                f"{region}: an ALB only uses certificates of its own region; request or "
                f"import the certificate in {region}"
            )
    cidrs = tuple(
        str(_cidr("endpoint_allowed_cidrs", c)) for c in ctx.string_list("endpoint_allowed_cidrs")
    )
    if scheme is EndpointScheme.INTERNET_FACING:
        # An API key sent in clear text over the internet is a leaked key.
        if certificate_arn is None:
            raise ConfigError(
                "-c endpoint_scheme=internet-facing needs HTTPS: pass "
                "-c certificate_arn=arn:aws:acm:<region>:<account>:certificate/<uuid>"
            )
        if not cidrs:
            raise ConfigError(
                "-c endpoint_scheme=internet-facing needs -c endpoint_allowed_cidrs=<your "
                "clients' CIDRs> (pass 0.0.0.0/0 to accept the whole internet)"
            )
    hostname = ctx.string("endpoint_hostname")
    if hostname is not None and not _HOSTNAME.match(hostname):
        raise ConfigError(
            f"-c endpoint_hostname={hostname!r} is not a DNS name; pass e.g. "
            "-c endpoint_hostname=llm.example.com"
        )
    return EndpointConfig(
        scheme=scheme,
        certificate_arn=certificate_arn,
        allowed_cidrs=cidrs or (network.cidr,),
        hostname=hostname,
    )


def _parse_plan(ctx: _ContextReader) -> DeploymentPlan:
    capacity = _choice(ctx, "capacity", CapacityType, CapacityType.ON_DEMAND,
                       "a capacity type")
    instance_type = ctx.string("instance_type")
    if instance_type is not None and not _INSTANCE_TYPE.match(instance_type):
        raise ConfigError(
            f"-c instance_type={instance_type!r} is not an EC2 instance type such as g6e.xlarge"
        )
    return plan(
        PlanRequest(
            model=get_model(ctx.string("model", DEFAULT_MODEL_KEY)),
            instance_type=instance_type,
            tensor_parallel=ctx.integer("tensor_parallel", None),
            max_model_len=ctx.integer("max_model_len", None, minimum=MIN_MODEL_LEN),
            min_concurrency=ctx.integer("min_concurrency", DEFAULT_MIN_CONCURRENCY),
            gpu_memory_utilization=ctx.fraction(
                "gpu_memory_utilization", DEFAULT_GPU_MEMORY_UTILIZATION
            ),
            capacity=capacity,
        )
    )


def _parse_network(ctx: _ContextReader, region: str) -> NetworkConfig:
    cidr = ctx.string("vpc_cidr", NetworkConfig.cidr)
    network = _cidr("vpc_cidr", cidr)
    if network.prefixlen > 16:
        raise ConfigError(
            f"-c vpc_cidr={cidr} is too small: pods take VPC addresses (VPC CNI), so each "
            "AZ gets a /19 for nodes and pods plus /24s for load balancers; the VPC needs a "
            "/16, e.g. -c vpc_cidr=10.0.0.0/16"
        )
    zones = ctx.string_list("availability_zones") or tuple(f"{region}{s}" for s in "abc")
    if len(zones) != 3 or len(set(zones)) != 3:
        raise ConfigError(
            f"-c availability_zones={','.join(zones)!r} must name three distinct zones, "
            f"e.g. {region}a,{region}b,{region}c"
        )
    for zone in zones:
        if not (zone.startswith(region) and re.fullmatch(r"[a-z]", zone[len(region):])):
            raise ConfigError(
                f"-c availability_zones: {zone!r} is not a zone of region {region}; "
                f"pass names such as {region}a"
            )
    nat_gateways = ctx.integer("nat_gateways", 3)
    if nat_gateways > 3:
        raise ConfigError(
            f"-c nat_gateways={nat_gateways}: at most one per AZ (3); pass 3, or 1 for dev"
        )
    return NetworkConfig(cidr=str(network), availability_zones=zones, nat_gateways=nat_gateways)


def _parse_cluster(ctx: _ContextReader, plan: DeploymentPlan) -> ClusterConfig:
    defaults = ClusterConfig()
    name = ctx.string("cluster_name", defaults.name)
    if not _CLUSTER_NAME.match(name):
        raise ConfigError(
            f"-c cluster_name={name!r} must start with a letter or digit and hold only "
            "letters, digits, '-' and '_' (at most 100 characters)"
        )
    cidrs = tuple(str(_cidr("api_allowed_cidrs", c)) for c in ctx.string_list("api_allowed_cidrs"))
    admin_role_arn = ctx.string("admin_role_arn")
    if admin_role_arn is not None and not _ROLE_ARN.match(admin_role_arn):
        raise ConfigError(
            f"-c admin_role_arn={admin_role_arn!r} is not an IAM role ARN; pass "
            "arn:aws:iam::<12-digit account>:role/<name>"
        )
    system_instance_type = ctx.string("system_instance_type", defaults.system_instance_type)
    if not _INSTANCE_TYPE.match(system_instance_type):
        raise ConfigError(
            f"-c system_instance_type={system_instance_type!r} is not an EC2 instance type "
            "such as m7i.xlarge"
        )
    system_nodes = ctx.integer("system_nodes", defaults.system_nodes, minimum=2)
    gpu_min = ctx.integer("gpu_nodes_min", defaults.gpu_nodes_min, minimum=0)
    gpu_max = ctx.integer("gpu_nodes_max", max(defaults.gpu_nodes_max, gpu_min))
    if gpu_max < gpu_min:
        raise ConfigError(
            f"-c gpu_nodes_max={gpu_max} is below -c gpu_nodes_min={gpu_min}; raise the maximum"
        )
    node_gpus = plan.chosen.instance.gpu_count
    gpu_limit = ctx.integer("gpu_limit", None)
    if gpu_limit is not None and gpu_limit < node_gpus:
        raise ConfigError(
            f"-c gpu_limit={gpu_limit} is below the {node_gpus} GPUs of one "
            f"{plan.instance_type} node, so Karpenter could never add one; pass "
            f"-c gpu_limit={node_gpus} or more"
        )
    cpu_limit = ctx.integer("cpu_limit", defaults.cpu_limit, minimum=4)
    return ClusterConfig(
        gpu_limit=gpu_limit,
        cpu_limit=cpu_limit,
        name=name,
        api_allowed_cidrs=cidrs,
        admin_role_arn=admin_role_arn,
        system_instance_type=system_instance_type,
        system_nodes=system_nodes,
        gpu_nodes_min=gpu_min,
        gpu_nodes_max=gpu_max,
    )


def _cidr(key: str, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ConfigError(
            f"-c {key}: {value!r} is not a valid IPv4 CIDR ({error}); pass e.g. 203.0.113.0/24"
        ) from None

