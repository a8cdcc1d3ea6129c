"""The `-c` keys: each key's default and meaning (the README's options table is generated
from `CONTEXT_OPTIONS`: `python -m vllm_eks options-table`), and how a value is read.

A default that is a dataclass default (environment.py) or a planner constant is rendered
from it, never written out again here.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..models import DEFAULT_MODEL_KEY
from ..models.planner import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MIN_CONCURRENCY,
    MAX_NODES,
    MIN_MODEL_LEN,
    PlanRequest,
)
from .environment import (
    WAF_RATE_LIMIT_RANGE,
    AutoscalingConfig,
    BenchmarkConfig,
    ChatUiConfig,
    TracingConfig,
    ClusterConfig,
    ConfigError,
    EndpointConfig,
    EnvironmentConfig,
    ModelConfig,
    NetworkConfig,
    ObservabilityConfig,
    field_default,
)

# An EC2 instance type name (-c instance_type, -c system_instance_type).
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")

# Without -c availability_zones: <region>a, <region>b, <region>c.
DEFAULT_ZONE_SUFFIXES = ("a", "b", "c")
MIN_SYSTEM_NODES = 2
DEFAULT_PIPELINE_CONFIG = "pipeline.json"


@dataclass(frozen=True)
class ContextOption:
    """One `-c` key: its default and its meaning, both Markdown (a README table row)."""

    key: str
    default: str
    meaning: str


def _code(value: Any) -> str:
    """A default value as the user types it, in Markdown code."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, enum.Enum):
        value = value.value
    return f"`{value}`"


# Keys whose value may differ per model: one value for every model, or
# `<model>:<value>,<model>:<value>` (config/models.py). Everything else is environment-wide.
PER_MODEL_KEYS = (
    "instance_type", "tensor_parallel", "nodes", "max_model_len", "min_concurrency",
    "gpu_memory_utilization", "capacity", "model_revision", "min_replicas", "max_replicas",
)

_CLUSTER = ClusterConfig()
_NETWORK = NetworkConfig()
_OBSERVABILITY = ObservabilityConfig()
_AUTOSCALING = AutoscalingConfig()
_BENCHMARK = BenchmarkConfig()
_CHAT_UI = ChatUiConfig()
_TRACING = TracingConfig()

CONTEXT_OPTIONS: tuple[ContextOption, ...] = (
    ContextOption("models", _code(DEFAULT_MODEL_KEY),
                  "comma-separated catalog keys of the models to serve behind one endpoint "
                  "(see \"Serve several models\")"),
    ContextOption("model", "see `models`", "one model: the same as `-c models=<key>`"),
    ContextOption("instance_type", "planner's choice",
                  "pin the GPU instance type (must be in the catalog)"),
    ContextOption("tensor_parallel", "planner's choice",
                  "pin the tensor-parallel size; must divide the attention heads"),
    ContextOption("nodes", "one node when one fits",
                  f"nodes one replica spans (pipeline parallel across them, every GPU of each "
                  f"node in tensor parallel; 1-{MAX_NODES}); see \"Serve a model larger than "
                  "one node\""),
    ContextOption("max_model_len", "the model's default",
                  f"context length to serve (at least {MIN_MODEL_LEN}, at most the model's "
                  "limit)"),
    ContextOption("min_concurrency", _code(DEFAULT_MIN_CONCURRENCY),
                  "sequences at full context the KV cache must hold"),
    ContextOption("gpu_memory_utilization", _code(f"{DEFAULT_GPU_MEMORY_UTILIZATION:.2f}"),
                  "fraction of GPU memory vLLM may use"),
    ContextOption("capacity", _code(field_default(PlanRequest, "capacity")),
                  "GPU capacity: `on-demand` or `spot`"),
    ContextOption("account", "the CLI's credentials", "12-digit AWS account ID"),
    ContextOption("region", _code(field_default(EnvironmentConfig, "region")), "AWS region"),
    ContextOption("availability_zones", _code("<region>" + ",".join(DEFAULT_ZONE_SUFFIXES)),
                  "three AZ names in the region"),
    ContextOption("vpc_cidr", _code(_NETWORK.cidr),
                  "VPC CIDR, a /16 (three /19s for nodes and pods, /24s for load balancers)"),
    ContextOption("nat_gateways", _code(_NETWORK.nat_gateways),
                  "NAT gateways: one per AZ; `1` for dev"),
    ContextOption("cluster_name", _code(_CLUSTER.name),
                  "EKS cluster name and the environment's name (1-40 lowercase letters, "
                  "digits, `-`); other than the default, stacks are named `<stack>-<name>`, "
                  "so environments can share an account and region"),
    ContextOption("api_allowed_cidrs", "none (private only)",
                  "comma-separated CIDRs allowed to reach the public API endpoint"),
    ContextOption("admin_role_arn", "none",
                  "IAM role given cluster-admin through an EKS access entry"),
    ContextOption("system_instance_type", _code(_CLUSTER.system_instance_type),
                  "system node group instance type"),
    ContextOption("system_nodes", _code(_CLUSTER.system_nodes),
                  f"system node group size (at least {MIN_SYSTEM_NODES}; default one per AZ, "
                  "so the zonal Prometheus and Alertmanager volumes always have a node in "
                  "their zone; it may grow to twice that)"),
    ContextOption("gpu_limit", "whole nodes for `max_replicas` + 1",
                  "total `nvidia.com/gpu` Karpenter's GPU pool may add (at least one node's "
                  "GPUs); the default leaves room for one surge replica during a rollout"),
    ContextOption("cpu_limit", _code(_CLUSTER.cpu_limit),
                  "total vCPUs of Karpenter's general CPU pool"),
    ContextOption("prometheus_retention_days", _code(_OBSERVABILITY.retention_days),
                  "days Prometheus keeps metrics (its volume also caps at 85 % of its size)"),
    ContextOption("prometheus_storage_gib", _code(_OBSERVABILITY.storage_gib),
                  "Prometheus volume (encrypted gp3)"),
    ContextOption("ttft_slo_ms", _code(f"{_OBSERVABILITY.ttft_slo_seconds * 1000:g}"),
                  "time-to-first-token p95 target the SLO alerts watch"),
    ContextOption("min_replicas", _code(_AUTOSCALING.min_replicas),
                  "fewest vLLM replicas KEDA keeps (at least 1: see \"Autoscaling\")"),
    ContextOption("max_replicas", _code(_AUTOSCALING.max_replicas),
                  "most vLLM replicas KEDA runs (each needs its GPUs: Karpenter adds nodes up "
                  "to `gpu_limit`)"),
    ContextOption("cloudwatch", _code(_OBSERVABILITY.cloudwatch),
                  "`true` adds the `amazon-cloudwatch-observability` add-on (Container "
                  "Insights)"),
    ContextOption("grafana_alb", _code(_OBSERVABILITY.grafana_alb),
                  "`true` puts Grafana behind an internal ALB (default: port-forward)"),
    ContextOption("pipeline", _code(False),
                  "`true` synthesizes the delivery pipeline `VllmPipelineStack` instead of the "
                  "CLI stacks (see \"Promote through accounts\")"),
    ContextOption("pipeline_config", _code(DEFAULT_PIPELINE_CONFIG),
                  "path of the pipeline's configuration"),
    ContextOption("model_revision", _code(field_default(ModelConfig, "revision")),
                  "Hugging Face branch, tag or commit to stage and serve; each revision gets "
                  "its own S3 prefix"),
    ContextOption("model_source", _code(field_default(EnvironmentConfig, "model_source")),
                  "where vLLM loads weights from: `s3` (staged once, streamed), `efs` "
                  "(staged, then synced to EFS) or `hf` (downloaded at every start); see below"),
    ContextOption("endpoint_scheme", _code(EndpointConfig().scheme),
                  "load balancer scheme: `internal` (reachable from the VPC) or "
                  "`internet-facing`"),
    ContextOption("certificate_arn", "none (HTTP)",
                  "ACM certificate of the endpoint's region: HTTPS on 443, HTTP redirected; "
                  "required for `internet-facing`"),
    ContextOption("endpoint_hostname", "the ALB's DNS name",
                  "the DNS name clients use (your CNAME/alias to the `LoadBalancerDnsName` "
                  "output); with HTTPS it must match the certificate"),
    ContextOption("endpoint_allowed_cidrs", "the VPC CIDR",
                  "comma-separated client CIDRs the load balancer accepts; required for "
                  "`internet-facing` (`0.0.0.0/0` to open it)"),
    ContextOption("endpoint_type", _code(EndpointConfig().type),
                  "`alb` (HTTP routing: only the API's paths reach the router; WAF; the chat "
                  "UI); `nlb` is refused until a path filter runs in front of the router (see "
                  "\"Public endpoints\")"),
    ContextOption("waf", _code(EndpointConfig().waf),
                  "an internet-facing ALB gets an AWS WAF web ACL (AWS managed common and "
                  "known-bad-inputs rules, a per-IP rate limit, logs to CloudWatch); `false`: "
                  "none"),
    ContextOption("waf_rate_limit", _code(EndpointConfig().waf_rate_limit),
                  f"requests per client IP per 5 minutes before WAF blocks it "
                  f"({WAF_RATE_LIMIT_RANGE[0]} at least)"),
    ContextOption("chat_ui", _code(_CHAT_UI.enabled),
                  "`true`: Open WebUI at the endpoint's hostname, signed in at the ALB "
                  "(needs `certificate_arn` and `endpoint_hostname`; see \"Chat UI and "
                  "sign-in\")"),
    ContextOption("oidc_issuer", "none (a Cognito user pool)",
                  "your OIDC identity provider's issuer URL: the chat UI's users sign in there "
                  "(federated through the stack's Cognito user pool)"),
    ContextOption("oidc_client_id", "none", "the client ID your identity provider issued"),
    ContextOption("oidc_client_secret_arn", "none",
                  "Secrets Manager ARN of that client's secret (read by CloudFormation)"),
    ContextOption("cognito_mfa", _code(_CHAT_UI.mfa),
                  "the user pool's MFA: `off`, `optional` or `required` (TOTP apps)"),
    ContextOption("tracing", _code(_TRACING.enabled),
                  "`true`: vLLM sends OpenTelemetry traces to an in-cluster collector that "
                  "exports to AWS X-Ray (see \"Traces\")"),
    ContextOption("tracing_sampling_ratio", _code(f"{_TRACING.sampling_ratio:g}"),
                  "share of requests traced (above 0, at most 1)"),
    ContextOption("efa", _code(field_default(EnvironmentConfig, "efa")),
                  "`true`: multi-node models talk over EFA (their own node pool in one zone "
                  "with a cluster placement group, the EFA device plugin, a vLLM image with "
                  "the EFA libraries built at deploy, which needs Docker); see \"Serve a model "
                  "larger than one node\""),
    ContextOption("docker_hub_secret_arn", "none (Docker Hub through NAT)",
                  "Secrets Manager secret `ecr-pullthroughcache/<name>` with Docker Hub "
                  "credentials: nodes pull the vLLM image through an ECR pull-through cache "
                  "of this environment"),
    ContextOption("compile_cache", _code(field_default(EnvironmentConfig, "compile_cache")),
                  "vLLM's torch.compile cache on the shared EFS volume, one directory per "
                  "placement: a later replica skips compiling; see \"Cold start\""),
    ContextOption("parallel_image_pull",
                  _code(field_default(EnvironmentConfig, "parallel_image_pull")),
                  "GPU nodes pull images with Bottlerocket's SOCI snapshotter in parallel "
                  "pull/unpack mode (`false`: containerd's plain pull); changing it replaces "
                  "the GPU nodes; see \"Cold start\""),
    ContextOption("bench_datasets", _code(",".join(d.value for d in _BENCHMARK.datasets)),
                  "benchmark workloads, one suspended CronJob per model each: `random`, "
                  "`prefix_repetition` (shared prefixes: the prefix cache), `sharegpt` (real "
                  "conversations; the staging Job stages them to S3); see \"Benchmark the "
                  "endpoint\""),
    ContextOption("bench_input_len", _code(_BENCHMARK.input_len),
                  "prompt tokens per benchmark request (random and prefix_repetition)"),
    ContextOption("bench_output_len", _code(_BENCHMARK.output_len),
                  "tokens generated per benchmark request"),
    ContextOption("bench_request_rate", _code(f"{_BENCHMARK.request_rate:g}"),
                  "benchmark requests per second (Poisson arrivals); `inf` sends them all "
                  "at once"),
    ContextOption("bench_max_concurrency", "the model's `min_concurrency`",
                  "most benchmark requests in flight at once"),
    ContextOption("bench_num_prompts", _code(_BENCHMARK.num_prompts),
                  "requests per benchmark run"),
)


def _per_model(option: ContextOption) -> ContextOption:
    if option.key not in PER_MODEL_KEYS:
        return option
    return ContextOption(option.key, option.default, f"{option.meaning}; per model: "
                         f"`<model>:<value>,...`")


CONTEXT_OPTIONS = tuple(_per_model(option) for option in CONTEXT_OPTIONS)

# Every key `-c` accepts, with its meaning.
CONTEXT_KEYS: dict[str, str] = {option.key: option.meaning for option in CONTEXT_OPTIONS}

# Keys earlier releases accepted, with what replaced them.
REMOVED_KEYS: dict[str, str] = {
    "gpu_nodes_min": "GPU nodes come only from Karpenter now (a managed GPU node group could "
    "roll back the cluster stack when GPU capacity or quota is short); keep warm replicas "
    "with -c min_replicas",
    "gpu_nodes_max": "GPU nodes come only from Karpenter now; cap them with -c gpu_limit",
}

# Context keys the CDK CLI and aws-cdk-lib set themselves (feature flags start with `@`,
# lookups and CLI settings contain `:`).
_CDK_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})


def check_context_keys(keys: Iterable[str]) -> None:
    """Refuse a `-c` key vllm-eks does not know (`-c modle=x` would otherwise deploy the
    default model), suggesting the nearest known key. CDK's own keys pass."""
    for key in sorted(keys):
        if key in CONTEXT_KEYS or key in _CDK_KEYS or key.startswith("@") or ":" in key:
            continue
        if key in REMOVED_KEYS:
            raise ConfigError(f"-c {key} was removed: {REMOVED_KEYS[key]}")
        nearest = difflib.get_close_matches(key, CONTEXT_KEYS, n=1, cutoff=0.6)
        hint = (f"did you mean -c {nearest[0]}?" if nearest else
                "see the options table in README.md (python -m vllm_eks options-table)")
        raise ConfigError(f"-c {key} is not an option of vllm-eks; {hint}")


class ContextReader:
    """Reads context values, which are strings from `-c` and JSON values from cdk.json."""

    def __init__(self, get: Callable[[str], Any]):
        self._get = get

    @property
    def raw_getter(self) -> Callable[[str], Any]:
        """The context getter as given (per-model values are split from it)."""
        return self._get

    def raw(self, key: str) -> Any:
        if key not in CONTEXT_KEYS:  # a guard for our own code, not user input
            raise KeyError(f"context key {key!r} is not declared in CONTEXT_OPTIONS")
        value = self._get(key)
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ConfigError(
                    f"-c {key}= has an empty value; pass a value (e.g. -c {key}=...) or "
                    "leave the key out for its default"
                )
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

    def choice(self, key: str, enum_type: type[enum.Enum], default: enum.Enum, what: str):
        """One of an enum's values."""
        value = self.string(key, default.value)
        try:
            return enum_type(value)
        except ValueError:
            raise ConfigError(
                f"-c {key}={value!r} is not {what}; pass -c {key}="
                f"<one of: {', '.join(member.value for member in enum_type)}>"
            ) from None

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())
