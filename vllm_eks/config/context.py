"""Parsing `-c` context into an EnvironmentConfig: every key is validated, and a bad value
fails synth with a message that names the key, the value and the fix."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from ..models import (
    DEFAULT_MODEL_KEY,
    CapacityType,
    DeploymentPlan,
    PlanRequest,
    get_model,
    plan,
)
from ..models.planner import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MIN_CONCURRENCY,
    MIN_MODEL_LEN,
)
from ..models.sources import ModelSource
from ..regions import KNOWN_REGIONS
from .environment import (
    AutoscalingConfig,
    ClusterConfig,
    ConfigError,
    EndpointConfig,
    EndpointScheme,
    EnvironmentConfig,
    NetworkConfig,
    ObservabilityConfig,
    field_default,
    gpu_nodes_for,
    replicas_per_node,
    resolved_gpu_limit,
)
from .options import DEFAULT_ZONE_SUFFIXES, MIN_SYSTEM_NODES, ContextReader

_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# The environment's name: it names the EKS cluster, the stacks (`VllmProdStack-<name>`),
# Lambda functions (`<name>-teardown-guard`, 64 characters at most) and the ECR cache
# prefix (lowercase only). Lowercase and short, so no derived name is cut or collides.
MAX_CLUSTER_NAME = 40
_CLUSTER_NAME = re.compile(rf"^[a-z0-9]([a-z0-9-]{{0,{MAX_CLUSTER_NAME - 2}}}[a-z0-9])?$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Becomes an S3 key segment and a directory name: no slashes.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)
# ECR accepts upstream credentials only from secrets named `ecr-pullthroughcache/...`.
_PULL_THROUGH_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:"
    r"ecr-pullthroughcache/[\w/+=.@-]+$"
)


def parse_context(get: Callable[[str], Any]) -> EnvironmentConfig:
    """Build and validate a config from a context getter (`node.try_get_context`)."""
    return _parse(ContextReader(get))


def _parse(ctx: ContextReader) -> EnvironmentConfig:
    region = ctx.string("region", field_default(EnvironmentConfig, "region"))
    if region not in KNOWN_REGIONS:
        raise ConfigError(
            f"-c region={region!r} is not an AWS region vllm-eks knows; pass one of "
            f"{', '.join(sorted(KNOWN_REGIONS))} (vllm_eks/regions.py lists them)"
        )
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
        model_source=_choice(ctx, "model_source", ModelSource,
                             field_default(EnvironmentConfig, "model_source"), "a model source"),
        model_revision=_parse_revision(ctx),
        endpoint=_parse_endpoint(ctx, region, network),
        observability=_parse_observability(ctx),
        autoscaling=_parse_autoscaling(ctx, plan, cluster),
        docker_hub_secret_arn=_parse_docker_hub_secret(ctx, region),
    )


def _parse_docker_hub_secret(ctx: ContextReader, region: str) -> str | None:
    arn = ctx.string("docker_hub_secret_arn")
    if arn is None:
        return None
    match = _PULL_THROUGH_SECRET_ARN.match(arn)
    if not match:
        raise ConfigError(
            f"-c docker_hub_secret_arn={arn!r} is not the ARN of a Secrets Manager secret "
            "named ecr-pullthroughcache/<name> (ECR reads upstream credentials only from "
            "such secrets); create one holding {\"username\": ..., \"accessToken\": ...} "
            "and pass its ARN"
        )
    if match["region"] != region:
        raise ConfigError(
            f"-c docker_hub_secret_arn is in {match['region']}, but the environment is in "
            f"{region}; ECR needs the secret in the cache's region: create it in {region}"
        )
    return arn


def _parse_observability(ctx: ContextReader) -> ObservabilityConfig:
    defaults = ObservabilityConfig()
    slo_ms = ctx.number("ttft_slo_ms", defaults.ttft_slo_seconds * 1000)
    return ObservabilityConfig(
        retention_days=ctx.integer("prometheus_retention_days", defaults.retention_days),
        storage_gib=ctx.integer("prometheus_storage_gib", defaults.storage_gib, minimum=10),
        ttft_slo_seconds=slo_ms / 1000,
        cloudwatch=ctx.boolean("cloudwatch", defaults.cloudwatch),
        grafana_alb=ctx.boolean("grafana_alb", defaults.grafana_alb),
    )


def _parse_autoscaling(ctx: ContextReader, plan: DeploymentPlan,
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
    # Replicas beyond the GPUs Karpenter may ever hold stay Pending. Each replica gets
    # whole GPUs on one node, so count per node; and a rolling update at max_replicas
    # (surge 1, never below the count) needs room for one replica more, or it stalls.
    node_gpus = plan.chosen.instance.gpu_count
    gpu_limit = resolved_gpu_limit(cluster, plan, maximum)
    capacity = (gpu_limit // node_gpus) * replicas_per_node(plan)
    if maximum + 1 > capacity:
        needed = gpu_nodes_for(maximum + 1, plan) * node_gpus
        raise ConfigError(
            f"-c max_replicas={maximum} plus the one surge replica of a rolling update need "
            f"{needed} GPUs of {plan.instance_type} nodes ({node_gpus} each), but "
            f"Karpenter's gpu_limit ({gpu_limit}) holds {capacity} replicas; pass "
            f"-c gpu_limit={needed} or lower -c max_replicas"
        )
    return AutoscalingConfig(min_replicas=minimum, max_replicas=maximum)


def _parse_revision(ctx: ContextReader) -> str:
    revision = ctx.string("model_revision", field_default(EnvironmentConfig, "model_revision"))
    if not _REVISION.match(revision):
        raise ConfigError(
            f"-c model_revision={revision!r} is not a Hugging Face branch, tag or commit "
            "name (letters, digits, '.', '_', '-'); pass e.g. -c model_revision=main or a "
            "40-character commit hash"
        )
    return revision


def _choice(ctx: ContextReader, key: str, enum_type: type[enum.Enum], default: enum.Enum,
            what: str):
    value = ctx.string(key, default.value)
    try:
        return enum_type(value)
    except ValueError:
        raise ConfigError(
            f"-c {key}={value!r} is not {what}; pass -c {key}="
            f"<one of: {', '.join(member.value for member in enum_type)}>"
        ) from None


def _parse_endpoint(ctx: ContextReader, region: str, network: NetworkConfig) -> EndpointConfig:
    scheme = _choice(ctx, "endpoint_scheme", EndpointScheme, EndpointConfig().scheme,
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


def _parse_plan(ctx: ContextReader) -> DeploymentPlan:
    capacity = _choice(ctx, "capacity", CapacityType, field_default(PlanRequest, "capacity"),
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


def _parse_network(ctx: ContextReader, region: str) -> NetworkConfig:
    defaults = NetworkConfig()
    cidr = ctx.string("vpc_cidr", defaults.cidr)
    network = _cidr("vpc_cidr", cidr)
    if network.prefixlen != 16:
        raise ConfigError(
            f"-c vpc_cidr={cidr} is a /{network.prefixlen}: the subnet layout (a /19 per AZ "
            "for nodes and pods, since the VPC CNI gives pods VPC addresses, and /24s for "
            "load balancers) is cut from exactly a /16; pass e.g. -c vpc_cidr=10.0.0.0/16"
        )
    zones = (ctx.string_list("availability_zones")
             or tuple(f"{region}{suffix}" for suffix in DEFAULT_ZONE_SUFFIXES))
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
    nat_gateways = ctx.integer("nat_gateways", defaults.nat_gateways)
    if nat_gateways > 3:
        raise ConfigError(
            f"-c nat_gateways={nat_gateways}: at most one per AZ (3); pass 3, or 1 for dev"
        )
    return NetworkConfig(cidr=str(network), availability_zones=zones, nat_gateways=nat_gateways)


def _parse_cluster(ctx: ContextReader, plan: DeploymentPlan) -> ClusterConfig:
    defaults = ClusterConfig()
    name = ctx.string("cluster_name", defaults.name)
    if not _CLUSTER_NAME.match(name):
        raise ConfigError(
            f"-c cluster_name={name!r} must be 1-{MAX_CLUSTER_NAME} lowercase letters, "
            "digits and '-', starting and ending with a letter or digit (it names the "
            "cluster, the stacks, functions and image cache of the environment); pass "
            "e.g. -c cluster_name=team-b"
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
    system_nodes = ctx.integer("system_nodes", defaults.system_nodes, minimum=MIN_SYSTEM_NODES)
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
    )


def _cidr(key: str, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ConfigError(
            f"-c {key}: {value!r} is not a valid IPv4 CIDR ({error}); pass e.g. 203.0.113.0/24"
        ) from None

