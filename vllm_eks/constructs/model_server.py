"""ModelServer: one model of the environment served by vLLM, with its AWS identities."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import BenchDataset, BenchmarkConfig, ConfigError, ModelConfig
from ..k8s_charts import render
from ..k8s_charts.benchmark import (
    SHAREGPT_KEY,
    TOKENIZER_FILES,
    BenchmarkChart,
    BenchmarkProps,
    benchmark_account,
    benchmark_results_prefix,
)
from ..k8s_charts.model_pods import server_account
from ..k8s_charts.tracing import TraceExport
from ..k8s_charts.vllm import VllmChart, VllmChartProps, app_name
from ..k8s_charts.vllm_lws import LWS_API_VERSION, VllmLwsChart
from ..k8s_charts.vllm_observability import VllmObservabilityChart, VllmObservabilityProps
from ..k8s_charts.weights_staging import WeightsStagingChart, WeightsStagingProps, stager_name
from ..models.sources import ModelSource
from ..naming import deployment_pods, group_pods, pascal_case
from ..observability.alerts import AlertSettings
from .model_store import model_prefix
from .observability import PROMETHEUS_URL
from .pod_identity import associate, pod_identity_role


@dataclass(frozen=True, kw_only=True)
class ModelServerProps:
    cluster: eks.ICluster  # the manifests and Pod Identity associations go here
    bucket: s3.IBucket  # the weights bucket: staged under the model's prefix, read from there
    hf_token_secret: secretsmanager.ISecret  # a Hugging Face token for gated models
    api_key: secretsmanager.ISecret  # the environment's API key, which vLLM enforces
    model: ModelConfig  # the model, its plan, revision and replica range
    model_source: ModelSource  # where vLLM loads weights from (S3 and EFS are staged first)
    region: str  # the pods' AWS region (they cannot reach the instance metadata service)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    prometheus_url: str = PROMETHEUS_URL  # KEDA's metrics source; default: the in-cluster one
    namespace: str = "inference"  # created by the inference-namespace chart
    # None: the vLLM image from Docker Hub; else the ECR pull-through cache's prefix.
    image_cache_prefix: str | None = None
    # The model's GPU limit (EnvironmentConfig.model_gpu_limit): its node affinity offers
    # its types within it. None: no limit.
    gpu_limit: int | None = None
    # With EFA (a multi-node model and -c efa=true): the EFA vLLM image and the interfaces
    # each pod requests. None / 0: the pinned vLLM image, TCP between nodes.
    efa_image: str | None = None
    efa_image_key: str | None = None  # its name in the compile cache (efa.efa_image_key)
    efa_interfaces: int = 0
    # Applied before the model (the namespace, its policies and the cache claim).
    after: tuple[Construct, ...] = ()
    # The benchmark CronJobs (None: none) and the router URL they send to.
    benchmark: BenchmarkConfig | None = None
    benchmark_url: str | None = None
    # Whether this model's staging Job also stages the environment's benchmark datasets
    # (one model's does: they are shared).
    stage_datasets: bool = False
    compile_cache: bool = True  # vLLM's torch.compile cache on EFS (VllmChartProps)
    tracing: TraceExport | None = None  # vLLM's traces to the collector; None: off


class ModelServer:
    """The vLLM and stager Pod Identity roles of one model, its weights-staging chart
    (S3 / EFS sources), its vLLM chart — the profile's `chart_class`, or `VllmChart` — and
    its monitoring, alerts and KEDA scaling (`VllmObservabilityChart`).

    Not a construct of its own: its resources are created in `scope` (the environment's
    `VllmService`) under IDs that name the model, so adding or removing a model adds or
    removes only that model's resources, and the manifests keep the logical IDs they had
    when an environment served one model (a manifest whose logical ID changes is applied
    again and then deleted by CloudFormation's cleanup, taking its objects with it).

    Hooks a subclass may override: `chart_class()`, `chart_props()`, `scale_target()`,
    `pod_pattern()`, `benchmark_props()`. Use the subclass
    through `VllmService.model_server_class()`.
    """

    def __init__(self, scope: Construct, *, props: ModelServerProps) -> None:
        self.scope = scope
        self.props = props
        model, hf_token_secret = props.model.plan.model, props.hf_token_secret
        self.name = app_name(model.key)
        # IAM is scoped to the model; each revision is staged under its own prefix, so a
        # new revision never overwrites weights that running replicas were loaded from.
        self.model_prefix = model_prefix(model.key)
        self.weights_prefix = f"{self.model_prefix}{props.model.revision}/"

        self.server_role = self._weights_role("ServerRole", f"vLLM serving {model.key}",
                                              write=False)
        props.api_key.grant_read(self.server_role)
        if props.model_source is ModelSource.HF:
            hf_token_secret.grant_read(self.server_role)
        server_identity = self._associate("ServerPodIdentity", server_account(model.key),
                                          self.server_role)

        previous: tuple[Construct, ...] = props.after
        self.staging: eks.KubernetesManifest | None = None
        if props.model_source is not ModelSource.HF:
            self.stager_role = self._weights_role("StagerRole", f"Stages {model.key} weights",
                                                  write=True)
            hf_token_secret.grant_read(self.stager_role)
            stager_identity = self._associate("StagerPodIdentity", stager_name(model.key),
                                              self.stager_role)
            staging = render(WeightsStagingChart, f"{self.name}-weights-staging",
                             props=WeightsStagingProps(
                model=model, model_source=props.model_source, region=props.region,
                weights_bucket=props.bucket.bucket_name, model_prefix=self.weights_prefix,
                hf_token_secret_arn=hf_token_secret.secret_arn,
                hf_revision=props.model.revision, namespace=props.namespace,
                image_cache_prefix=props.image_cache_prefix,
                stage_sharegpt=self.stages_sharegpt))
            if self.stages_sharegpt:
                self.stager_role.add_to_principal_policy(iam.PolicyStatement(
                    sid="StageBenchmarkDataset", actions=["s3:GetObject", "s3:PutObject"],
                    resources=[props.bucket.arn_for_objects(SHAREGPT_KEY)]))
                self.stager_role.add_to_principal_policy(iam.PolicyStatement(
                    sid="ListBenchmarkDataset", actions=["s3:ListBucket"],
                    resources=[props.bucket.bucket_arn],
                    conditions={"StringEquals": {"s3:prefix": [SHAREGPT_KEY]}}))
            self.staging = eks.KubernetesManifest(scope, self.model_id("WeightsStaging"),
                                                  cluster=props.cluster,
                                                  manifest=staging.to_json(), prune=True)
            # EKS gives a pod credentials only if its association (and the role's policies)
            # exist when the pod is admitted.
            self.staging.node.add_dependency(*previous, stager_identity, self.stager_role)
            previous = (self.staging,)

        self.chart = render(self.chart_class(), self.name, props=self.chart_props())
        self.manifest = eks.KubernetesManifest(scope, self.model_id("Server"),
                                               cluster=props.cluster,
                                               manifest=self.chart.to_json(), prune=True)
        self.manifest.node.add_dependency(*previous, server_identity, self.server_role)

        observability = render(VllmObservabilityChart, f"{self.name}-observability",
                               props=VllmObservabilityProps(
                                   model_key=model.key, served_name=model.name,
                                   prometheus_url=props.prometheus_url,
                                   alerts=dataclasses.replace(props.alerts,
                                                              pod_pattern=self.pod_pattern()),
                                   min_replicas=props.model.autoscaling.min_replicas,
                                   max_replicas=props.model.autoscaling.max_replicas,
                                   namespace=props.namespace,
                                   scale_target=self.scale_target()))
        self.observability = eks.KubernetesManifest(
            scope, self.model_id("Observability"), cluster=props.cluster,
            manifest=observability.to_json(), prune=True)
        self.observability.node.add_dependency(self.manifest)
        self.benchmark: eks.KubernetesManifest | None = None
        if props.benchmark is not None and props.benchmark_url is not None:
            self._benchmark(props.benchmark, props.benchmark_url)

    # -- hooks -------------------------------------------------------------------------

    def chart_class(self) -> type[VllmChart]:
        """The profile's chart, else VllmChart (one node) or VllmLwsChart (a multi-node
        plan)."""
        plan = self.props.model.plan
        chart = plan.model.chart_class or (VllmLwsChart if plan.multi_node else VllmChart)
        if plan.multi_node and not issubclass(chart, VllmLwsChart):
            raise ConfigError(
                f"model {plan.model.key} spans {plan.nodes} nodes, but its profile renders with "
                f"{chart.__name__}, a one-node chart; serve it on one node (-c nodes=1 or an "
                "instance type it fits), or make the profile's chart_class a subclass of "
                "vllm_eks.k8s_charts.vllm_lws.VllmLwsChart")
        return chart

    def scale_target(self) -> tuple[str, str]:
        """(apiVersion, kind) of what KEDA scales: the Deployment or the LeaderWorkerSet."""
        if self.props.model.plan.multi_node:
            return (LWS_API_VERSION, "LeaderWorkerSet")
        return ("apps/v1", "Deployment")

    def chart_props(self) -> VllmChartProps:
        props = self.props
        return VllmChartProps(
            plan=props.model.plan,
            model_source=props.model_source,
            region=props.region,
            weights_bucket=props.bucket.bucket_name,
            model_prefix=self.weights_prefix,
            api_key_secret_arn=props.api_key.secret_arn,
            hf_token_secret_arn=props.hf_token_secret.secret_arn,
            namespace=props.namespace,
            image_cache_prefix=props.image_cache_prefix,
            gpu_limit=props.gpu_limit,
            compile_cache=props.compile_cache,
            tracing=props.tracing,
            image=props.efa_image,
            image_key=props.efa_image_key,
            efa_interfaces=props.efa_interfaces,
        )

    def pod_pattern(self) -> str:
        """The names of the model's pods (an anchored regex, for its alerts)."""
        if self.props.model.plan.multi_node:
            return group_pods(self.name)
        return deployment_pods(self.name)

    @property
    def stages_sharegpt(self) -> bool:
        """Whether this model's staging Job stages ShareGPT: the first model's, when a
        benchmark uses it and weights are staged at all (with `-c model_source=hf` no
        staging Job runs, and the sharegpt workload is refused at parse time)."""
        benchmark = self.props.benchmark
        return (benchmark is not None and BenchDataset.SHAREGPT in benchmark.datasets
                and self.props.stage_datasets)

    def benchmark_props(self, benchmark: BenchmarkConfig, url: str) -> BenchmarkProps:
        props = self.props
        kind = self.scale_target()[1].lower()
        return BenchmarkProps(
            plan=props.model.plan, served_name=props.model.served_name, benchmark=benchmark,
            base_url=url, ttft_slo_ms=props.alerts.ttft_slo_seconds * 1000,
            region=props.region, weights_bucket=props.bucket.bucket_name,
            api_key_secret_arn=props.api_key.secret_arn,
            replicas_of=f"{kind}/{self.name}",
            tokenizer_prefix=(None if props.model_source is ModelSource.HF
                              else self.weights_prefix),
            hf_token_secret_arn=props.hf_token_secret.secret_arn,
            hf_revision=props.model.revision, namespace=props.namespace,
            image_cache_prefix=props.image_cache_prefix)

    # -- parts -------------------------------------------------------------------------

    def _benchmark(self, benchmark: BenchmarkConfig, url: str) -> None:
        """The benchmark's role (write its results prefix; read the tokenizer files, the
        staged ShareGPT file, the API key), its association and its chart."""
        props, key = self.props, self.props.model.plan.model.key
        bucket = props.bucket
        statements = [iam.PolicyStatement(
            sid="WriteResults", actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(f"{benchmark_results_prefix(key)}*")])]
        if props.model_source is not ModelSource.HF:
            statements.append(iam.PolicyStatement(
                sid="ReadTokenizer", actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{self.weights_prefix}{name}")
                           for name in TOKENIZER_FILES]))
        if BenchDataset.SHAREGPT in benchmark.datasets:
            statements.append(iam.PolicyStatement(
                sid="ReadDataset", actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(SHAREGPT_KEY)]))
        self.benchmark_role = pod_identity_role(
            self.scope, self.model_id("BenchmarkRole"),
            description=f"Benchmark of {key}: writes its results", statements=statements,
            wildcard_reason="Result files under this model's benchmarks/ prefix only: "
            "each run names its file by its start time.")
        props.api_key.grant_read(self.benchmark_role)
        if props.model_source is ModelSource.HF:
            props.hf_token_secret.grant_read(self.benchmark_role)
        identity = self._associate("BenchmarkPodIdentity", benchmark_account(key),
                                   self.benchmark_role)
        chart = render(BenchmarkChart, f"{self.name}-benchmark",
                       props=self.benchmark_props(benchmark, url))
        self.benchmark = eks.KubernetesManifest(self.scope, self.model_id("Benchmark"),
                                                cluster=props.cluster,
                                                manifest=chart.to_json(), prune=True)
        self.benchmark.node.add_dependency(*props.after, identity, self.benchmark_role)


    def model_id(self, role: str) -> str:
        """Construct ID of one of the model's resources: the role, then the model's key.
        Switching models replaces the resource, so CloudFormation deletes the old model's
        objects (kubectl's prune skips custom resources such as the ScaledObject)."""
        return role + pascal_case(self.props.model.key)

    def _read_weights_statements(self, *, write: bool) -> list[iam.PolicyStatement]:
        bucket, prefix = self.props.bucket, self.model_prefix
        actions = ["s3:GetObject"]
        if write:
            actions += ["s3:PutObject", "s3:AbortMultipartUpload"]
        return [
            iam.PolicyStatement(
                sid="ListModelPrefix", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}),
            iam.PolicyStatement(sid="ModelObjects", actions=actions,
                                resources=[bucket.arn_for_objects(f"{prefix}*")]),
        ]

    def _weights_role(self, role: str, description: str, *, write: bool) -> iam.Role:
        return pod_identity_role(
            self.scope, self.model_id(role), description=description,
            statements=self._read_weights_statements(write=write),
            wildcard_reason="Objects under this model's prefix only: weight shard names are "
            "not known before the model is staged.",
        )

    def _associate(self, construct_id: str, service_account: str,
                   role: iam.Role) -> eks.CfnPodIdentityAssociation:
        return associate(self.scope, self.model_id(construct_id), cluster=self.props.cluster,
                         namespace=self.props.namespace, service_account=service_account,
                         role=role)
