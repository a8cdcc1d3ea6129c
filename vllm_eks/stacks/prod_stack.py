"""VllmProdStack: the workloads. It depends on every other stack of the environment, so
`cdk deploy VllmProdStack` brings up the whole environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs.benchmark_gate import BenchmarkGate, BenchmarkGateProps
from ..constructs.efa import efa_image_key, efa_vllm_image
from ..constructs.model_store import ModelStore
from ..constructs.smoke_test import SmokeTest, SmokeTestProps
from ..constructs.vllm_service import VllmService, VllmServiceProps
from ..k8s_charts import InferenceNamespaceChart, InferenceNamespaceProps, render
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
                benchmark=config.benchmark, compile_cache=config.compile_cache,
                after=(namespace,),
            ),
        )
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
