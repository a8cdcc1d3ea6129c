"""Parsing `-c` context into an EnvironmentConfig: every key is validated, and a bad value
fails synth with a message that names the key, the value and the fix."""

from __future__ import annotations

import difflib
import enum
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from ..models import GPU_INSTANCES
from ..models.sources import ModelSource
from ..regions import KNOWN_REGIONS
from .environment import (
    AutoscalingConfig,
    BenchDataset,
    WAF_RATE_LIMIT_RANGE,
    BenchmarkConfig,
    ChatUiConfig,
    ClusterConfig,
    CognitoMfa,
    ConfigError,
    EndpointConfig,
    EndpointScheme,
    EndpointType,
    EnvironmentConfig,
    ModelConfig,
    NetworkConfig,
    ObservabilityConfig,
    TracingConfig,
    field_default,
    resolved_gpu_limit,
    surge_gpus,
)
from .models import parse_models
from .options import DEFAULT_ZONE_SUFFIXES, INSTANCE_TYPE, MIN_SYSTEM_NODES, ContextReader

_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# The environment's name: it names the EKS cluster, the stacks (`VllmProdStack-<name>`),
# Lambda functions (`<name>-teardown-guard`, 64 characters at most) and the ECR cache
# prefix (lowercase only). Lowercase and short, so no derived name is cut or collides.
MAX_CLUSTER_NAME = 40
_CLUSTER_NAME = re.compile(rf"^[a-z0-9]([a-z0-9-]{{0,{MAX_CLUSTER_NAME - 2}}}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$"
)
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[\w/+=.@-]+$")
_ISSUER = re.compile(r"^https://[a-z0-9.-]+(:\d+)?(/[\w./~%-]*)?$", re.IGNORECASE)
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
    models = parse_models(ctx.raw_getter)
    network = _parse_network(ctx, region)
    cluster = _parse_cluster(ctx, models)
    model_source = ctx.choice("model_source", ModelSource,
                              field_default(EnvironmentConfig, "model_source"), "a model source")
    return EnvironmentConfig(
        models=models,
        account=account,
        region=region,
        network=network,
        cluster=cluster,
        model_source=model_source,
        endpoint=(endpoint := _parse_endpoint(ctx, region, network)),
        chat_ui=_parse_chat_ui(ctx, region, endpoint),
        tracing=_parse_tracing(ctx),
        observability=_parse_observability(ctx),
        docker_hub_secret_arn=_parse_docker_hub_secret(ctx, region),
        efa=_parse_efa(ctx, models),
        benchmark=_parse_benchmark(ctx, model_source),
        compile_cache=ctx.boolean("compile_cache", field_default(EnvironmentConfig,
                                                                 "compile_cache")),
        parallel_image_pull=ctx.boolean("parallel_image_pull", field_default(
            EnvironmentConfig, "parallel_image_pull")),
    )


def _parse_benchmark(ctx: ContextReader, model_source: ModelSource) -> BenchmarkConfig:
    defaults = BenchmarkConfig()
    names = ctx.string_list("bench_datasets") or tuple(d.value for d in defaults.datasets)
    known = [d.value for d in BenchDataset]
    datasets = []
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"-c bench_datasets: {name!r} is not a benchmark workload; {hint}pass a "
                f"comma-separated list of {', '.join(known)}")
        if BenchDataset(name) in datasets:
            raise ConfigError(f"-c bench_datasets names {name!r} twice; name it once")
        datasets.append(BenchDataset(name))
    if BenchDataset.SHAREGPT in datasets and model_source is ModelSource.HF:
        raise ConfigError(
            "-c bench_datasets=...sharegpt needs the staging Job, which stages ShareGPT to "
            "S3, but -c model_source=hf stages nothing; use -c model_source=s3 (or efs), or "
            "drop sharegpt from -c bench_datasets")
    rate = ctx.raw("bench_request_rate")
    if rate is None:
        request_rate = defaults.request_rate
    elif str(rate).lower() == "inf":
        request_rate = float("inf")
    else:
        request_rate = ctx.number("bench_request_rate", defaults.request_rate)
    return BenchmarkConfig(
        datasets=tuple(datasets),
        input_len=ctx.integer("bench_input_len", defaults.input_len),
        output_len=ctx.integer("bench_output_len", defaults.output_len),
        request_rate=request_rate,
        max_concurrency=ctx.integer("bench_max_concurrency", defaults.max_concurrency),
        num_prompts=ctx.integer("bench_num_prompts", defaults.num_prompts),
    )


def _parse_efa(ctx: ContextReader, models: tuple[ModelConfig, ...]) -> bool:
    efa = ctx.boolean("efa", field_default(EnvironmentConfig, "efa"))
    if not efa:
        return False
    spanning = [model for model in models if model.plan.multi_node]
    if not spanning:
        raise ConfigError(
            "-c efa=true: no model spans nodes, and EFA only carries the traffic between the "
            "nodes of one replica; drop -c efa, or serve a model on several nodes "
            "(-c nodes=2, or an instance type it needs two of)"
        )
    for model in spanning:
        without = [t for t in model.plan.instance_types() if not GPU_INSTANCES[t].efa]
        if without:
            with_efa = sorted(t for t, i in GPU_INSTANCES.items()
                              if i.efa and i.gpu_count >= 8 and i.launchable)
            raise ConfigError(
                f"-c efa=true: {model.key} may run on {', '.join(without)}, "
                f"{'which has no' if len(without) == 1 else 'none of which has'} EFA; "
                f"pass -c instance_type=<one with EFA: {', '.join(with_efa)}> or drop -c efa"
            )
    return True


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


def _parse_endpoint(ctx: ContextReader, region: str, network: NetworkConfig) -> EndpointConfig:
    scheme = ctx.choice("endpoint_scheme", EndpointScheme, EndpointConfig().scheme,
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
    endpoint_type = ctx.choice("endpoint_type", EndpointType, EndpointConfig().type,
                               "a load balancer type")
    waf = ctx.boolean("waf", EndpointConfig().waf)
    low, high = WAF_RATE_LIMIT_RANGE
    rate_limit = ctx.integer("waf_rate_limit", EndpointConfig().waf_rate_limit, minimum=1)
    if not low <= rate_limit <= high:
        raise ConfigError(
            f"-c waf_rate_limit={rate_limit} is outside what AWS WAF accepts ({low} to "
            f"{high:,} requests per IP per 5 minutes); pass e.g. -c waf_rate_limit=2000")
    if endpoint_type is EndpointType.NLB:
        # An NLB forwards every path. The router answers /sleep itself, with its own API
        # key (any client could put a model to sleep), and /engines, /metrics and
        # /v1/models (the weights' location) without a key; it has no setting to turn
        # them off. Until a path filter runs in front of it, an NLB is refused.
        raise ConfigError(
            "-c endpoint_type=nlb is refused for now: an NLB cannot filter paths, and the "
            "router answers /sleep (with its own key: anyone could put a model to sleep), "
            "/engines, /metrics and /v1/models without the API key (README, \"Public "
            "endpoints\"); use -c endpoint_type=alb, whose listener forwards only the API's "
            "paths (long streams: its idle timeout is 900 s between bytes)")
    return EndpointConfig(
        scheme=scheme,
        certificate_arn=certificate_arn,
        allowed_cidrs=cidrs or (network.cidr,),
        hostname=hostname,
        type=endpoint_type,
        waf=waf,
        waf_rate_limit=rate_limit,
    )


def _parse_chat_ui(ctx: ContextReader, region: str, endpoint: EndpointConfig) -> ChatUiConfig:
    enabled = ctx.boolean("chat_ui", ChatUiConfig().enabled)
    issuer, client_id = ctx.string("oidc_issuer"), ctx.string("oidc_client_id")
    secret_arn = ctx.string("oidc_client_secret_arn")
    mfa = ctx.choice("cognito_mfa", CognitoMfa, ChatUiConfig().mfa, "an MFA setting")
    given = [key for key, value in (("oidc_issuer", issuer), ("oidc_client_id", client_id),
                                    ("oidc_client_secret_arn", secret_arn)) if value]
    if not enabled:
        if given or mfa is not CognitoMfa.OFF:
            key = given[0] if given else "cognito_mfa"
            raise ConfigError(f"-c {key} configures the chat UI's sign-in; add -c chat_ui=true "
                              "or leave it out")
        return ChatUiConfig()
    if endpoint.type is not EndpointType.ALB:
        raise ConfigError("-c chat_ui=true signs users in at an ALB: use -c endpoint_type=alb")
    if endpoint.certificate_arn is None or endpoint.hostname is None:
        raise ConfigError(
            "-c chat_ui=true needs HTTPS on a name of yours (sign-in redirects back to it): "
            "pass -c certificate_arn=arn:aws:acm:<region>:<account>:certificate/<uuid> and "
            "-c endpoint_hostname=<a name the certificate covers>")
    if given and issuer is None:
        raise ConfigError(f"-c {given[0]} needs -c oidc_issuer=https://<your identity "
                          "provider's issuer URL>")
    if issuer is not None:
        if not _ISSUER.match(issuer):
            raise ConfigError(f"-c oidc_issuer={issuer!r} is not an https:// issuer URL; pass "
                              "e.g. -c oidc_issuer=https://login.example.com/realms/main")
        if client_id is None:
            raise ConfigError("-c oidc_issuer needs -c oidc_client_id=<the client ID your "
                              "identity provider issued for this UI>")
        if secret_arn is None:
            raise ConfigError("-c oidc_issuer needs -c oidc_client_secret_arn=<the Secrets "
                              "Manager ARN of the client secret>")
        match = _SECRET_ARN.match(secret_arn)
        if not match:
            raise ConfigError(f"-c oidc_client_secret_arn={secret_arn!r} is not a Secrets "
                              "Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:"
                              "secret:<name>)")
        if match["region"] != region:
            raise ConfigError(f"-c oidc_client_secret_arn is in {match['region']}; "
                              f"CloudFormation reads it from {region}: copy the secret there")
        if mfa is not CognitoMfa.OFF:
            raise ConfigError("-c cognito_mfa applies to the user pool's own users; with -c "
                              "oidc_issuer your identity provider asks for MFA: leave it out")
    return ChatUiConfig(enabled=True, oidc_issuer=issuer, oidc_client_id=client_id,
                        oidc_client_secret_arn=secret_arn, mfa=mfa)


def _parse_tracing(ctx: ContextReader) -> TracingConfig:
    enabled = ctx.boolean("tracing", TracingConfig().enabled)
    ratio = ctx.number("tracing_sampling_ratio", TracingConfig().sampling_ratio)
    if ratio > 1:
        raise ConfigError(f"-c tracing_sampling_ratio={ratio:g} is a share of requests: pass a "
                          "number above 0 and at most 1, e.g. 0.1")
    if not enabled and ctx.raw("tracing_sampling_ratio") is not None:
        raise ConfigError("-c tracing_sampling_ratio needs -c tracing=true")
    return TracingConfig(enabled=enabled, sampling_ratio=ratio)


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


def _parse_cluster(ctx: ContextReader, models: tuple[ModelConfig, ...]) -> ClusterConfig:
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
    if not INSTANCE_TYPE.match(system_instance_type):
        raise ConfigError(
            f"-c system_instance_type={system_instance_type!r} is not an EC2 instance type "
            "such as m7i.xlarge"
        )
    system_nodes = ctx.integer("system_nodes", defaults.system_nodes, minimum=MIN_SYSTEM_NODES)
    gpu_limit = ctx.integer("gpu_limit", None)
    cpu_limit = ctx.integer("cpu_limit", defaults.cpu_limit, minimum=4)
    cluster = ClusterConfig(
        gpu_limit=gpu_limit,
        cpu_limit=cpu_limit,
        name=name,
        api_allowed_cidrs=cidrs,
        admin_role_arn=admin_role_arn,
        system_instance_type=system_instance_type,
        system_nodes=system_nodes,
    )
    _check_gpu_limit(cluster, models)
    return cluster


def _check_gpu_limit(cluster: ClusterConfig, models: tuple[ModelConfig, ...]) -> None:
    """Replicas beyond the GPUs Karpenter may ever hold stay Pending. Each replica gets
    whole GPUs on one node of its model's type, so count whole nodes per model; and a
    rolling update at max_replicas (surge 1, never below the count) needs room for one
    replica more, or it stalls."""
    limit = resolved_gpu_limit(cluster, models)
    for model in models:
        node_gpus = model.plan.chosen.instance.gpu_count
        if limit < node_gpus:
            raise ConfigError(
                f"-c gpu_limit={limit} is below the {node_gpus} GPUs of one "
                f"{model.plan.instance_type} node ({model.key}), so Karpenter could never "
                f"add one; pass -c gpu_limit={node_gpus} or more"
            )
    needed = sum(surge_gpus(model) for model in models)
    if limit < needed:
        parts = ", ".join(
            f"{model.key} {surge_gpus(model)} ({model.autoscaling.max_replicas}+1 replicas "
            f"on {model.plan.instance_type})" for model in models)
        raise ConfigError(
            f"-c gpu_limit={limit} is too small: max_replicas plus the one surge replica of "
            f"a rolling update need {needed} GPUs in whole nodes ({parts}); pass "
            f"-c gpu_limit={needed} or lower -c max_replicas"
        )


def _cidr(key: str, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ConfigError(
            f"-c {key}: {value!r} is not a valid IPv4 CIDR ({error}); pass e.g. 203.0.113.0/24"
        ) from None

