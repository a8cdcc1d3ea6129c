"""VllmProdStack: the workloads. It depends on every other stack of the environment, so
`cdk deploy VllmProdStack` brings up the whole environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs.benchmark_gate import BenchmarkGate, BenchmarkGateProps
from ..constructs.chat_ui import ChatUi, ChatUiProps
from ..constructs.efa import efa_image_key, efa_vllm_image
from ..constructs.model_store import ModelStore
from ..constructs.smoke_test import SmokeTest, SmokeTestProps
from ..constructs.vllm_service import VllmService, VllmServiceProps
from ..constructs.waf import EndpointWaf, EndpointWafProps
from ..k8s_charts import InferenceNamespaceChart, InferenceNamespaceProps, render
from ..k8s_charts.chat_ui import CHAT_NAMESPACE, CHAT_POD_LABELS
from ..k8s_charts.router import PORT as ROUTER_PORT
from ..k8s_charts.router import router_url
from ..k8s_charts.tracing import TraceExport
from ..observability.alerts import AlertSettings


class ProdStack(cdk.Stack):
    """Applies the Kubernetes workloads (cdk8s charts) to the cluster: the inference
    namespace, then the VllmService (every model and the router) and its SmokeTest."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 cluster: eks.ICluster, store: ModelStore, vpc: ec2.IVpc, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        namespace_chart = render(
            InferenceNamespaceChart,
            "inference-namespace",
            props=InferenceNamespaceProps(plans=config.plans),
        )
        namespace = eks.KubernetesManifest(
            self,
            "InferenceNamespace",
            cluster=cluster,
            manifest=namespace_chart.to_json(),
        )
        # -c efa=true: built at deploy (needs Docker), pulled by the EFA models' nodes.
        efa_asset = efa_vllm_image(self, "EfaVllmImage") if config.efa else None
        # An internet-facing ALB gets a web ACL (README, "Public endpoints: WAF").
        self.waf = (EndpointWaf(self, "EndpointWaf", props=EndpointWafProps(
            environment_name=config.cluster.name, rate_limit=config.endpoint.waf_rate_limit))
            if config.endpoint.web_acl else None)
        # The chat UI shares the endpoint's ALB: the two Ingresses form one group.
        chat = config.chat_ui.enabled
        ingress_group = f"{config.cluster.name}-endpoint" if chat else None
        self.service = VllmService(
            self, "VllmService",
            props=VllmServiceProps(
                cluster=cluster, vpc=vpc, bucket=store.bucket,
                hf_token_secret=store.hf_token_secret, models=config.models,
                model_source=config.model_source, endpoint=config.endpoint,
                region=config.region,
                alerts=AlertSettings(ttft_slo_seconds=config.observability.ttft_slo_seconds),
                namespace=namespace_chart.props.namespace,
                image_cache_prefix=config.image_cache_prefix,
                gpu_limits={model.key: config.model_gpu_limit(model) for model in config.models},
                efa_models=frozenset(model.key for model in config.efa_models),
                efa_image=efa_asset.image_uri if efa_asset else None,
                efa_image_key=efa_image_key(efa_asset.asset_hash) if efa_asset else None,
                web_acl_arn=self.waf.web_acl_arn if self.waf else None,
                ingress_group=ingress_group,
                router_clients=((CHAT_NAMESPACE, dict(CHAT_POD_LABELS)),) if chat else (),
                benchmark=config.benchmark, compile_cache=config.compile_cache,
                tracing=(TraceExport(sampling_ratio=config.tracing.sampling_ratio)
                         if config.tracing.enabled else None),
                after=(namespace,),
            ),
        )
        if chat:
            self.chat_ui = ChatUi(self, "ChatUi", props=ChatUiProps(
                config=config.chat_ui, cluster=cluster, environment_name=config.cluster.name,
                region=config.region, hostname=config.endpoint.hostname,
                certificate_arn=config.endpoint.certificate_arn, api_key=self.service.api_key,
                router_url=router_url(namespace_chart.props.namespace),
                router_namespace=namespace_chart.props.namespace, router_port=ROUTER_PORT,
                load_balancer_cidrs=self.service.router_chart.props.load_balancer_cidrs,
                ingress_group=ingress_group, after=(namespace,)))
            cdk.CfnOutput(self, "ChatUiUrl", value=f"https://{config.endpoint.hostname}/",
                          description="Open WebUI; users sign in with the user pool below")
            cdk.CfnOutput(self, "ChatUiUserPoolId", value=self.chat_ui.user_pool.user_pool_id,
                          description="aws cognito-idp admin-create-user --user-pool-id <id> "
                          "--username <email>: adds a user of the chat UI")
        self.smoke_test = SmokeTest(self, "SmokeTest", props=SmokeTestProps(
            vpc=vpc, endpoint_url=self.service.endpoint_url, api_key=self.service.api_key,
            served_model_names=tuple(model.served_name for model in config.models),
            environment_name=config.cluster.name,
            invoker_account=config.smoke_test_invoker_account))
        # No DependsOn on the service: the function's URL references the ALB's hostname
        # (so it waits for that), and nothing invokes it before the stack is complete.
        self.smoke_test_output = cdk.CfnOutput(
            self, "SmokeTestFunctionArn", value=self.smoke_test.function.function_arn,
            description="aws lambda invoke --function-name <arn> out.json: health, models, "
            "one completion per model")
        self.benchmark_gate_output: cdk.CfnOutput | None = None
        if config.benchmark_gate is not None:
            self.benchmark_gate = BenchmarkGate(self, "BenchmarkGate", props=BenchmarkGateProps(
                gate=config.benchmark_gate, cluster=cluster, cluster_name=config.cluster.name,
                vpc=vpc, bucket=store.bucket, namespace=namespace_chart.props.namespace,
                invoker_account=config.smoke_test_invoker_account, after=(namespace,)))
            self.benchmark_gate_output = cdk.CfnOutput(
                self, "BenchmarkGateFunctionArn",
                value=self.benchmark_gate.function.function_arn,
                description="The pipeline's SLO gate: invoke with {\"action\": \"start\"}, "
                "then {\"action\": \"status\", \"job\": <job>}")
        cdk.CfnOutput(self, "Models", value=",".join(model.key for model in config.models),
                      description="Catalog keys of the models served")
        cdk.CfnOutput(
            self,
            "Placements",
            value="; ".join(
                f"{m.key}: {m.plan.instance_type} x{m.plan.nodes}, TP {m.plan.tensor_parallel}"
                + (f" x PP {m.plan.nodes}" if m.plan.multi_node else "") + ", "
                f"max_model_len {m.plan.max_model_len}, {m.plan.capacity.value}"
                for m in config.models),
        )
        cdk.CfnOutput(self, "LoadBalancerDnsName", value=self.service.load_balancer_dns_name,
                      description="Point -c endpoint_hostname (CNAME or alias) here")
        cdk.CfnOutput(self, "EndpointUrl", value=self.service.endpoint_url,
                      description="OpenAI-compatible API for every model: "
                      "<url>/v1/chat/completions with the model's name in `model`")
        cdk.CfnOutput(
            self, "ApiKeySecretArn", value=self.service.api_key.secret_arn,
            description="Read the key: aws secretsmanager get-secret-value --secret-id <arn> "
            "--query SecretString --output text",
        )
        cdk.CfnOutput(self, "ModelS3Uris",
                      value=" ".join(f"s3://{store.bucket.bucket_name}/{server.weights_prefix}"
                                     for server in self.service.models.values()),
                      description=f"Where each model's weights are staged (model_source="
                      f"{config.model_source.value})")
        cdk.CfnOutput(
            self, "UpdateKubeconfigCommand",
            value=f"aws eks update-kubeconfig --region {config.region} "
            f"--name {config.cluster.name}",
        )
