"""The typed configuration of one environment: what the stacks are built from.

Each dataclass default is the default of its `-c` key: the parser and the README's
options table read it from here, so it is stated once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..models import DeploymentPlan
from ..models.sources import ModelSource



class ConfigError(ValueError):
    """A context value is malformed or inconsistent."""


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The VPC: CIDR, the three AZs it spans, and how many NAT gateways."""

    cidr: str = "10.0.0.0/16"
    availability_zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")
    nat_gateways: int = 3  # one per AZ: an AZ outage does not cut the others' egress


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """The EKS cluster, its system node group and Karpenter's pool limits."""

    name: str = "vllm-eks"
    # Empty: the API endpoint is private only (reachable from the VPC).
    api_allowed_cidrs: tuple[str, ...] = ()
    admin_role_arn: str | None = None  # None: only the deploying CloudFormation role is admin
    system_instance_type: str = "m7i.xlarge"
    # One per AZ: monitoring keeps its data on zonal EBS volumes, and a volume's pod can
    # only run in that volume's zone.
    system_nodes: int = 3
    # Karpenter GPU pool limit; None: whole planned nodes for every model's max_replicas
    # plus one surge replica each.
    gpu_limit: int | None = None
    cpu_limit: int = 64  # Karpenter general pool limit, vCPUs


class EndpointScheme(enum.Enum):
    """Where the load balancer in front of vLLM is reachable from."""

    INTERNAL = "internal"  # from the VPC (and peered networks / VPN) only
    INTERNET_FACING = "internet-facing"


class EndpointType(enum.Enum):
    """The load balancer in front of the router."""

    ALB = "alb"  # HTTP routing: only the API's paths reach the router; WAF; the chat UI
    # TLS at layer 4. Refused for now (config/context.py): every path would reach the
    # router, which answers /sleep and /engines without the client's key.
    NLB = "nlb"


# AWS WAF's rate-based rules count requests per IP over 5 minutes; the smallest limit
# WAF accepts (AWS::WAFv2::WebACL RateBasedStatement.Limit) and the largest.
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """The HTTPS endpoint (an ALB, or an NLB) in front of the vLLM service."""

    scheme: EndpointScheme = EndpointScheme.INTERNAL
    certificate_arn: str | None = None  # None: HTTP only, allowed for internal endpoints
    allowed_cidrs: tuple[str, ...] = ()  # () with INTERNAL: the VPC CIDR
    # The name clients use (a CNAME/alias to the ALB you manage); None: the ALB's own DNS
    # name. With HTTPS it must match the certificate, or TLS clients refuse the endpoint.
    hostname: str | None = None
    type: EndpointType = EndpointType.ALB
    # An internet-facing ALB gets an AWS WAF web ACL (managed rules and a per-IP rate
    # limit, requests per 5 minutes); False: none.
    waf: bool = True
    waf_rate_limit: int = 2000

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None

    @property
    def web_acl(self) -> bool:
        """Whether the endpoint's load balancer gets the web ACL."""
        return (self.waf and self.scheme is EndpointScheme.INTERNET_FACING
                and self.type is EndpointType.ALB)


class CognitoMfa(enum.Enum):
    """Multi-factor sign-in of the chat UI's Cognito user pool (TOTP apps)."""

    OFF = "off"
    OPTIONAL = "optional"  # each user may enrol
    REQUIRED = "required"


@dataclass(frozen=True, kw_only=True)
class ChatUiConfig:
    """Open WebUI behind the endpoint's ALB, signed in at the load balancer: a Cognito user
    pool of the stack, or the user's OIDC provider federated into it."""

    enabled: bool = False
    oidc_issuer: str | None = None  # None: the pool's own users (admins create them)
    oidc_client_id: str | None = None
    oidc_client_secret_arn: str | None = None  # Secrets Manager; read by CloudFormation
    mfa: CognitoMfa = CognitoMfa.OFF


@dataclass(frozen=True, kw_only=True)
class TracingConfig:
    """vLLM's OpenTelemetry traces through an in-cluster collector to AWS X-Ray."""

    enabled: bool = False
    sampling_ratio: float = 0.1  # of requests traced (parent-based, trace ID ratio)


@dataclass(frozen=True, kw_only=True)
class ObservabilityConfig:
    """Prometheus, Grafana and the SLO the alerts watch."""

    retention_days: int = 15
    storage_gib: int = 100
    ttft_slo_seconds: float = 0.4
    cloudwatch: bool = False
    grafana_alb: bool = False


class BenchDataset(enum.Enum):
    """The workloads of the in-cluster benchmark (`vllm bench serve --dataset-name`)."""

    # Random token prompts of a fixed input and output length: throughput and latency at
    # a known shape.
    RANDOM = "random"
    # Prompts sharing a few long prefixes: what the prefix cache saves (system prompts,
    # few-shot examples, RAG context repeated across requests).
    PREFIX_REPETITION = "prefix_repetition"
    # Real conversations (ShareGPT), staged to S3 by the staging Job: the length mix of
    # chat traffic.
    SHAREGPT = "sharegpt"


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """The in-cluster benchmark of every model: one suspended CronJob per model and
    workload (README, "Benchmark the endpoint")."""

    datasets: tuple[BenchDataset, ...] = (BenchDataset.RANDOM, BenchDataset.PREFIX_REPETITION)
    input_len: int = 1024  # prompt tokens (random; prefix + suffix for prefix_repetition)
    output_len: int = 256  # tokens generated per request (exactly: --ignore-eos)
    request_rate: float = 2.0  # requests/s, Poisson arrivals; inf: all at once
    # None: the model's min_concurrency (the sequences its placement is planned to hold
    # at full context), so the benchmark loads a replica as far as it was sized for.
    max_concurrency: int | None = None
    num_prompts: int = 200


@dataclass(frozen=True, kw_only=True)
class BenchmarkGateConfig:
    """A pipeline stage's SLO gate: after the smoke test passes, one run of a model's
    benchmark CronJob (at the stage's bench_* settings); the promotion stops when its p95
    TTFT exceeds `ttft_slo_ms` or a request failed (README, "Promote through accounts")."""

    model_key: str  # a model of the stage
    workload: BenchDataset  # one of the stage's bench_datasets
    ttft_slo_ms: float
    timeout_minutes: int = 30  # the run, from the Job's creation to its result


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """KEDA scaling of one model's vLLM Deployment on its queue."""

    # At least 1: the scaling signals are vLLM's own metrics, which do not exist while no
    # replica runs, so nothing could wake a model scaled to zero.
    min_replicas: int = 1
    max_replicas: int = 2


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """One model of the environment: its plan (placement), the Hugging Face revision it
    serves, and KEDA's replica range for it."""

    plan: DeploymentPlan
    revision: str = "main"  # Hugging Face branch, tag or commit to stage and serve
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)

    @property
    def key(self) -> str:
        return self.plan.model.key

    @property
    def served_name(self) -> str:
        """The name clients put in a request's `model` field."""
        return self.plan.model.name


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    """Everything one environment (a CLI deploy or a pipeline stage) is built from: its
    models (each with its own plan) and the settings they share."""

    models: tuple[ModelConfig, ...]  # at least one; served behind one router
    account: str | None = None  # None: resolved by the CLI from its credentials
    region: str = "us-east-1"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    model_source: ModelSource = ModelSource.S3
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    # The pipeline's (tooling) account, allowed to invoke the smoke test; None for CLI.
    smoke_test_invoker_account: str | None = None
    # A pipeline stage's SLO gate (its function, invokable by the pipeline account);
    # None: no gate (CLI deploys, stages without "benchmark").
    benchmark_gate: BenchmarkGateConfig | None = None
    # Multi-node models talk over EFA: their own node pool in one zone with a cluster
    # placement group, the EFA device plugin and a vLLM image with the EFA libraries.
    efa: bool = False
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    chat_ui: ChatUiConfig = field(default_factory=ChatUiConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)
    # vLLM's torch.compile cache shared on EFS, per placement (README, "Cold start").
    compile_cache: bool = True
    # GPU nodes pull images with Bottlerocket's SOCI snapshotter in parallel pull/unpack
    # mode (README, "Cold start"). Its state directory lands on the RAID0 instance store
    # like containerd's: Karpenter >= 1.12 binds every allowed directory for Bottlerocket
    # >= 1.46 (aws/karpenter-provider-aws#8478), /var/lib/soci-snapshotter included.
    parallel_image_pull: bool = True
    # Docker Hub credentials (Secrets Manager, name `ecr-pullthroughcache/...`) for an ECR
    # pull-through cache of the vLLM image; None: nodes pull from Docker Hub through NAT.
    docker_hub_secret_arn: str | None = None

    @property
    def image_cache_prefix(self) -> str | None:
        """The ECR repository prefix of the environment's Docker Hub pull-through cache
        (per environment: a prefix is unique in an account and region)."""
        if self.docker_hub_secret_arn is None:
            return None
        return bounded_name(self.cluster.name, "docker-hub", ECR_PREFIX_MAX)

    def with_smoke_test_invoker(self, account: str) -> "EnvironmentConfig":
        return dataclasses.replace(self, smoke_test_invoker_account=account)

    def with_benchmark_gate(self, gate: BenchmarkGateConfig) -> "EnvironmentConfig":
        return dataclasses.replace(self, benchmark_gate=gate)

    @property
    def efa_models(self) -> tuple[ModelConfig, ...]:
        """The models whose nodes talk over EFA (multi-node ones, with -c efa=true)."""
        return tuple(m for m in self.models if self.efa and m.plan.multi_node)

    @property
    def multi_node(self) -> bool:
        """Whether any model's replica spans nodes (the LeaderWorkerSet controller)."""
        return any(model.plan.multi_node for model in self.models)

    @property
    def plans(self) -> tuple[DeploymentPlan, ...]:
        """Each model's plan, in the models' order."""
        return tuple(model.plan for model in self.models)

    @property
    def gpu_limit(self) -> int:
        """nvidia.com/gpu Karpenter's GPU pool may hold: as configured, or enough whole
        nodes for every model's max_replicas plus one surge replica each."""
        return resolved_gpu_limit(self.cluster, self.models)

    def model_gpu_limit(self, model: ModelConfig) -> int:
        """The GPUs a node of one model's may have: the pool's limit when configured,
        else the model's own share of the default (its surge_gpus). Per model, so adding
        a model never changes another model's instance types, and with them its pods."""
        if self.cluster.gpu_limit is not None:
            return self.cluster.gpu_limit
        return surge_gpus(model)

    def instance_types(self, model: ModelConfig) -> tuple[str, ...]:
        """One model's planned instance type and fallbacks within its GPU limit: its
        pods' node affinity names exactly these."""
        return model.plan.instance_types(self.model_gpu_limit(model))

    @property
    def gpu_pool_instance_types(self) -> tuple[str, ...]:
        """The `gpu` NodePool's types: every model's `instance_types`, in model order, but
        the EFA models' (they have the `gpu-efa` pool; if every model is one, its types,
        under a limit of 0)."""
        efa = {model.key for model in self.efa_models}
        types: dict[str, None] = {}
        for model in [m for m in self.models if m.key not in efa] or self.models:
            types.update(dict.fromkeys(self.instance_types(model)))
        return tuple(types)

    @property
    def efa_gpu_limit(self) -> int:
        """The `gpu-efa` pool's share of gpu_limit: its models' whole groups (0 without)."""
        return min(sum(surge_gpus(model) for model in self.efa_models), self.gpu_limit)

    @property
    def gpu_pool_gpu_limit(self) -> int:
        """The `gpu` pool's share: gpu_limit less the EFA pool's, so the two pools together
        never hold more than gpu_limit."""
        return self.gpu_limit - self.efa_gpu_limit

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> "EnvironmentConfig":
        """Build and validate a config from a context getter (`node.try_get_context`)."""
        # Imported here: the parser builds this class, so it imports this module.
        from .context import parse_context

        return parse_context(get)


# ECR repository prefixes of pull-through cache rules: at most 30 characters.
ECR_PREFIX_MAX = 30


def bounded_name(name: str, suffix: str, limit: int) -> str:
    """`<name>-<suffix>`, or, when that is longer than `limit`, the name cut short with
    six hex digits of its hash before the suffix: distinct names stay distinct."""
    full = f"{name}-{suffix}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{name[:keep].rstrip('-')}-{digest}-{suffix}"


def replicas_per_node(plan: DeploymentPlan) -> int:
    """vLLM replicas one node of the planned type holds (each takes TP whole GPUs; a
    multi-node replica's pods take every GPU of their nodes)."""
    return plan.chosen.instance.gpu_count // plan.gpus


def gpu_nodes_for(replicas: int, plan: DeploymentPlan) -> int:
    """Nodes of the planned type that `replicas` replicas occupy (whole groups of
    `plan.nodes` nodes for a multi-node replica)."""
    return -(-replicas // replicas_per_node(plan)) * plan.nodes


def surge_gpus(model: ModelConfig) -> int:
    """GPUs of the whole nodes one model occupies at max_replicas plus one replica, so a
    rolling update (surge 1, never below max) can still place its new pod."""
    plan = model.plan
    return gpu_nodes_for(model.autoscaling.max_replicas + 1, plan) * plan.chosen.instance.gpu_count


def resolved_gpu_limit(cluster: ClusterConfig, models: tuple[ModelConfig, ...]) -> int:
    """Karpenter's GPU pool limit: as configured, or the sum of every model's surge_gpus
    (each model's replicas get whole GPUs of their own nodes' type)."""
    if cluster.gpu_limit is not None:
        return cluster.gpu_limit
    return sum(surge_gpus(model) for model in models)


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass field `name` of `cls` (a factory is called)."""
    for each in dataclasses.fields(cls):
        if each.name == name:
            if each.default is not dataclasses.MISSING:
                return each.default
            if each.default_factory is not dataclasses.MISSING:
                return each.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")
