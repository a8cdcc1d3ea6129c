"""VllmService: one model served by vLLM behind an ALB, with its AWS identities."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import EndpointConfig, EndpointScheme
from ..k8s_charts import render
from ..k8s_charts.vllm import IngressSettings, VllmChart, VllmChartProps, app_name
from ..k8s_charts.weights_staging import (
    WeightsStagingChart,
    WeightsStagingProps,
    stager_name,
)
from ..k8s_charts.vllm_observability import VllmObservabilityChart, VllmObservabilityProps
from ..models import DeploymentPlan
from ..observability.alerts import AlertSettings
from ..models.sources import ModelSource
from ..naming import pascal_case
from .model_store import model_prefix
from .observability import PROMETHEUS_URL
from .pod_identity import associate, pod_identity_role
from .secret import manually_rotated_secret, random_alphanumeric


@dataclass(frozen=True, kw_only=True)
class VllmServiceProps:
    cluster: eks.ICluster  # the manifests and Pod Identity associations go here
    vpc: ec2.IVpc  # the load balancer's subnets in it may reach vLLM (NetworkPolicy)
    bucket: s3.IBucket  # the weights bucket: staged under the model's prefix, read from there
    hf_token_secret: secretsmanager.ISecret  # a Hugging Face token for gated models
    plan: DeploymentPlan  # the model and its placement
    model_source: ModelSource  # where vLLM loads weights from (S3 and EFS are staged first)
    endpoint: EndpointConfig  # the Ingress's scheme, certificate, CIDRs and hostname
    region: str  # the pods' AWS region (they cannot reach the instance metadata service)
    model_revision: str = "main"  # Hugging Face branch, tag or commit to stage
    alerts: AlertSettings = field(default_factory=AlertSettings)  # default: its own defaults
    min_replicas: int = 1  # KEDA, at least 1
    max_replicas: int = 2  # KEDA's ceiling
    prometheus_url: str = PROMETHEUS_URL  # KEDA's metrics source; default: the in-cluster one
    namespace: str = "inference"  # created by the inference-namespace chart
    # None: the vLLM image from Docker Hub; else the prefix of the environment's ECR
    # pull-through cache (created in the cluster stack, which grants the nodes its use).
    image_cache_prefix: str | None = None
    # Karpenter's GPU pool limit (the node affinity offers the pool's types only).
    gpu_limit: int | None = None
    # Applied before the service (the namespace, its policies and the cache claim).
    # (): no ordering within the stack.
    after: tuple[Construct, ...] = ()


class VllmService(Construct):
    """The API key (Secrets Manager), the vLLM and stager Pod Identity roles, the
    weights-staging chart (S3 / EFS sources), the model's vLLM chart — the profile's
    `chart_class`, or `VllmChart` —, its monitoring, alerts, dashboards and KEDA scaling
    (`VllmObservabilityChart`), and the endpoint URL read back from the Ingress.

    Hooks a subclass may override: `chart_class()`, `chart_props()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: VllmServiceProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        model, hf_token_secret = props.plan.model, props.hf_token_secret
        self.name = app_name(model.key)
        # IAM is scoped to the model; each revision is staged under its own prefix, so a
        # new revision never overwrites weights that running replicas were loaded from.
        self.model_prefix = model_prefix(model.key)
        self.weights_prefix = f"{self.model_prefix}{props.model_revision}/"

        self.api_key = manually_rotated_secret(
            self, "ApiKey",
            description=f"API key of the vLLM endpoint serving {model.key} "
            "(Authorization: Bearer <key>)",
            value=random_alphanumeric(48),
            rotation="The key is shared with API clients: rotating it is a coordinated change "
            "(put-secret-value, then a rollout restart; no redeploy), described in the README.",
        )

        self.server_role = self._weights_role("ServerRole", f"vLLM serving {model.key}",
                                              write=False)
        self.api_key.grant_read(self.server_role)
        if props.model_source is ModelSource.HF:
            hf_token_secret.grant_read(self.server_role)
        server_identity = self._associate("ServerPodIdentity", self.name, self.server_role)

        previous: tuple[Construct, ...] = props.after
        if props.model_source is not ModelSource.HF:
            self.stager_role = self._weights_role("StagerRole", f"Stages {model.key} weights",
                                                  write=True)
            hf_token_secret.grant_read(self.stager_role)
            stager_identity = self._associate("StagerPodIdentity", stager_name(model.key),
                                              self.stager_role)
            staging = render(WeightsStagingChart, "weights-staging", props=WeightsStagingProps(
                model=model, model_source=props.model_source, region=props.region,
                weights_bucket=props.bucket.bucket_name, model_prefix=self.weights_prefix,
                hf_token_secret_arn=hf_token_secret.secret_arn,
                hf_revision=props.model_revision, namespace=props.namespace,
                image_cache_prefix=props.image_cache_prefix))
            self.staging = eks.KubernetesManifest(self, self._model_id("WeightsStaging"),
                                                  cluster=props.cluster,
                                                  manifest=staging.to_json(), prune=True)
            # EKS gives a pod credentials only if its association (and the role's policies)
            # exist when the pod is admitted.
            self.staging.node.add_dependency(*previous, stager_identity, self.stager_role)
            previous = (self.staging,)

        self.chart = render(self.chart_class(), self.name, props=self.chart_props())
        self.manifest = eks.KubernetesManifest(self, self._model_id("Server"),
                                               cluster=props.cluster,
                                               manifest=self.chart.to_json(), prune=True)
        self.manifest.node.add_dependency(*previous, server_identity, self.server_role)

        observability = render(VllmObservabilityChart, f"{self.name}-observability",
                               props=VllmObservabilityProps(
                                   model_key=model.key, served_name=model.name,
                                   prometheus_url=props.prometheus_url,
                                   alerts=dataclasses.replace(props.alerts,
                                                              pod_prefix=self.name),
                                   min_replicas=props.min_replicas,
                                   max_replicas=props.max_replicas,
                                   namespace=props.namespace))
        self.observability = eks.KubernetesManifest(
            self, self._model_id("Observability"), cluster=props.cluster,
            manifest=observability.to_json(), prune=True)
        self.observability.node.add_dependency(self.manifest)

        hostname = eks.KubernetesObjectValue(
            self, "LoadBalancerHostname", cluster=props.cluster, object_type="ingress",
            object_name=self.name, object_namespace=props.namespace,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=cdk.Duration.minutes(10),
        )
        hostname.node.add_dependency(self.manifest)
        scheme = "https" if props.endpoint.https else "http"
        self.load_balancer_dns_name = hostname.value
        self.endpoint_url = f"{scheme}://{props.endpoint.hostname or hostname.value}"

    # -- hooks -------------------------------------------------------------------------

    def chart_class(self) -> type[VllmChart]:
        return self.props.plan.model.chart_class or VllmChart

    def chart_props(self) -> VllmChartProps:
        props = self.props
        endpoint = props.endpoint
        return VllmChartProps(
            plan=props.plan,
            model_source=props.model_source,
            region=props.region,
            weights_bucket=props.bucket.bucket_name,
            model_prefix=self.weights_prefix,
            api_key_secret_arn=self.api_key.secret_arn,
            hf_token_secret_arn=props.hf_token_secret.secret_arn,
            ingress=IngressSettings(scheme=endpoint.scheme.value,
                                    certificate_arn=endpoint.certificate_arn,
                                    allowed_cidrs=endpoint.allowed_cidrs),
            load_balancer_cidrs=self._load_balancer_cidrs(),
            namespace=props.namespace,
            image_cache_prefix=props.image_cache_prefix,
            gpu_limit=props.gpu_limit,
        )

    # -- parts -------------------------------------------------------------------------

    def _model_id(self, role: str) -> str:
        """Construct ID of a manifest that holds the model's objects. It names the model:
        switching models replaces the resource, so CloudFormation deletes the old model's
        objects (kubectl's prune skips custom resources such as the ScaledObject)."""
        return role + pascal_case(self.props.plan.model.key)

    def _load_balancer_cidrs(self) -> tuple[str, ...]:
        """The subnets the ALB's nodes live in (it sends to pods from there): public ones,
        or the isolated load-balancer subnets that hold no pods."""
        vpc = self.props.vpc
        subnets = (vpc.public_subnets
                   if self.props.endpoint.scheme is EndpointScheme.INTERNET_FACING
                   else vpc.isolated_subnets)
        return tuple(subnet.ipv4_cidr_block for subnet in subnets)

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

    def _weights_role(self, construct_id: str, description: str, *, write: bool) -> iam.Role:
        return pod_identity_role(
            self, construct_id, description=description,
            statements=self._read_weights_statements(write=write),
            wildcard_reason="Objects under this model's prefix only: weight shard names are "
            "not known before the model is staged.",
        )

    def _associate(self, construct_id: str, service_account: str,
                   role: iam.Role) -> eks.CfnPodIdentityAssociation:
        return associate(self, construct_id, cluster=self.props.cluster,
                         namespace=self.props.namespace, service_account=service_account,
                         role=role)
