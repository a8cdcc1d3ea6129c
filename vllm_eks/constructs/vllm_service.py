"""VllmService: the environment's models served by vLLM behind one router and one load
balancer, with the API key they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import BenchmarkConfig, EndpointConfig, EndpointScheme, ModelConfig
from ..k8s_charts import render
from ..k8s_charts.router import (
    ROUTER_NAME,
    IngressSettings,
    RouterChart,
    RouterChartProps,
    router_url,
)
from ..k8s_charts.tracing import TraceExport
from ..models import GPU_INSTANCES
from ..models.instances import efa_interfaces
from ..models.sources import ModelSource
from ..observability.alerts import AlertSettings
from .model_server import ModelServer, ModelServerProps
from .observability import PROMETHEUS_URL
from .pod_identity import associate, pod_identity_role
from .secret import manually_rotated_secret, random_alphanumeric


@dataclass(frozen=True, kw_only=True)
class VllmServiceProps:
    cluster: eks.ICluster  # the manifests and Pod Identity associations go here
    vpc: ec2.IVpc  # the load balancer's subnets in it may reach the router (NetworkPolicy)
    bucket: s3.IBucket  # the weights bucket: staged under each model's prefix
    hf_token_secret: secretsmanager.ISecret  # a Hugging Face token for gated models
    models: tuple[ModelConfig, ...]  # the models, each with its plan and replica range
    model_source: ModelSource  # where vLLM loads weights from (S3 and EFS are staged first)
    endpoint: EndpointConfig  # the Ingress's scheme, certificate, CIDRs and hostname
    region: str  # the pods' AWS region (they cannot reach the instance metadata service)
    alerts: AlertSettings = field(default_factory=AlertSettings)  # default: its own defaults
    prometheus_url: str = PROMETHEUS_URL  # KEDA's metrics source; default: the in-cluster one
    namespace: str = "inference"  # created by the inference-namespace chart
    # None: the vLLM image from Docker Hub; else the prefix of the environment's ECR
    # pull-through cache (created in the cluster stack, which grants the nodes its use).
    image_cache_prefix: str | None = None
    # Each model's GPU limit (EnvironmentConfig.model_gpu_limit), by model key: its pods'
    # node affinity offers its types within it. A missing key: no limit.
    gpu_limits: dict[str, int] = field(default_factory=dict)
    # The models that talk over EFA, by key (-c efa=true), and the EFA vLLM image they run.
    efa_models: frozenset[str] = frozenset()
    efa_image: str | None = None
    efa_image_key: str | None = None  # its name in the compile cache (efa.efa_image_key)
    web_acl_arn: str | None = None  # the endpoint's AWS WAF web ACL; None: none
    # The ALB's Ingress group when another Ingress shares it (the chat UI); None: none.
    ingress_group: str | None = None
    # Pods of other namespaces that call the router, (namespace, labels): the chat UI.
    router_clients: tuple[tuple[str, dict[str, str]], ...] = ()
    # Applied before the service (the namespace, its policies and the cache claim).
    # (): no ordering within the stack.
    after: tuple[Construct, ...] = ()
    # Every model's benchmark CronJobs (README, "Benchmark the endpoint"); None: none.
    benchmark: BenchmarkConfig | None = None
    compile_cache: bool = True  # vLLM's torch.compile cache on EFS
    tracing: TraceExport | None = None  # vLLM's traces to the collector; None: off


class VllmService(Construct):
    """The environment's API key (Secrets Manager), one `ModelServer` per model (its
    roles, weights staging, vLLM chart, monitoring and scaling), the router
    (`RouterChart`: the one Ingress, routing by the request's `model`) with its Pod
    Identity role, and the endpoint URL read back from the Ingress.

    Hooks a subclass may override: `model_server_class()`, `router_props()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: VllmServiceProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        if not props.models:
            raise ValueError("VllmService needs at least one model")
        # One key for every model: the router learns each model's name from its pods'
        # /v1/models with it, and forwards the client's Authorization, which vLLM checks.
        self.api_key = manually_rotated_secret(
            self, "ApiKey",
            description="API key of the vllm-eks endpoint, for every model it serves "
            "(Authorization: Bearer <key>)",
            value=random_alphanumeric(48),
            rotation="The key is shared with API clients: rotating it is a coordinated change "
            "(put-secret-value, then a rollout restart; no redeploy), described in the README.",
        )
        server_class = self.model_server_class()
        self.models: dict[str, ModelServer] = {}
        for model in props.models:
            self.models[model.key] = server_class(self, props=ModelServerProps(
                cluster=props.cluster, bucket=props.bucket,
                hf_token_secret=props.hf_token_secret, api_key=self.api_key, model=model,
                model_source=props.model_source, region=props.region, alerts=props.alerts,
                prometheus_url=props.prometheus_url, namespace=props.namespace,
                image_cache_prefix=props.image_cache_prefix,
                gpu_limit=props.gpu_limits.get(model.key),
                **self._efa(model),
                benchmark=props.benchmark, benchmark_url=router_url(props.namespace),
                stage_datasets=model is props.models[0], compile_cache=props.compile_cache,
                tracing=props.tracing,
                after=props.after))

        self.router_role = pod_identity_role(
            self, "RouterRole", description="vLLM router: reads the API key it lists "
            "models with")
        self.api_key.grant_read(self.router_role)
        router_identity = associate(self, "RouterPodIdentity", cluster=props.cluster,
                                    namespace=props.namespace, service_account=ROUTER_NAME,
                                    role=self.router_role)
        self.router_chart = render(RouterChart, ROUTER_NAME, props=self.router_props())
        self.router = eks.KubernetesManifest(self, "Router", cluster=props.cluster,
                                             manifest=self.router_chart.to_json(), prune=True)
        self.router.node.add_dependency(*props.after, router_identity, self.router_role)

        hostname = eks.KubernetesObjectValue(
            self, "LoadBalancerHostname", cluster=props.cluster, object_type="ingress",
            object_name=ROUTER_NAME, object_namespace=props.namespace,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=cdk.Duration.minutes(10),
        )
        hostname.node.add_dependency(self.router)
        scheme = "https" if props.endpoint.https else "http"
        self.load_balancer_dns_name = hostname.value
        self.endpoint_url = f"{scheme}://{props.endpoint.hostname or hostname.value}"

    # -- hooks -------------------------------------------------------------------------

    def model_server_class(self) -> type[ModelServer]:
        """What serves each model (a subclass may override ModelServer's hooks)."""
        return ModelServer

    def router_props(self) -> RouterChartProps:
        props = self.props
        endpoint = props.endpoint
        return RouterChartProps(
            api_key_secret_arn=self.api_key.secret_arn,
            region=props.region,
            ingress=IngressSettings(scheme=endpoint.scheme.value,
                                    certificate_arn=endpoint.certificate_arn,
                                    allowed_cidrs=endpoint.allowed_cidrs,
                                    web_acl_arn=props.web_acl_arn,
                                    group=props.ingress_group),
            clients=props.router_clients,
            served_models=tuple(model.served_name for model in props.models),
            load_balancer_cidrs=self._load_balancer_cidrs(),
            namespace=props.namespace,
        )

    # -- parts -------------------------------------------------------------------------

    def _efa(self, model: ModelConfig) -> dict:
        """A model over EFA gets the EFA image and requests all its type's interfaces."""
        if model.key not in self.props.efa_models:
            return {}
        return {"efa_image": self.props.efa_image, "efa_image_key": self.props.efa_image_key,
                "efa_interfaces": efa_interfaces(GPU_INSTANCES[model.plan.instance_type])}

    def _load_balancer_cidrs(self) -> tuple[str, ...]:
        """The subnets the ALB's nodes live in (it sends to pods from there): public ones,
        or the isolated load-balancer subnets that hold no pods."""
        vpc = self.props.vpc
        subnets = (vpc.public_subnets
                   if self.props.endpoint.scheme is EndpointScheme.INTERNET_FACING
                   else vpc.isolated_subnets)
        return tuple(subnet.ipv4_cidr_block for subnet in subnets)
