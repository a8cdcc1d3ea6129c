"""VllmProdStack: the workloads. It depends on every other stack of the environment, so
`cdk deploy VllmProdStack` brings up the whole environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs.model_store import ModelStore
from ..constructs.smoke_test import SmokeTest, SmokeTestProps
from ..constructs.vllm_service import VllmService, VllmServiceProps
from ..k8s_charts import InferenceNamespaceChart, InferenceNamespaceProps, render
from ..observability.alerts import AlertSettings


class ProdStack(cdk.Stack):
    """Applies the Kubernetes workloads (cdk8s charts) to the cluster: the inference
    namespace, then the model's VllmService and its SmokeTest."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 cluster: eks.ICluster, store: ModelStore, vpc: ec2.IVpc, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        plan = config.plan
        namespace_chart = render(
            InferenceNamespaceChart,
            "inference-namespace",
            props=InferenceNamespaceProps(plan=plan),
        )
        namespace = eks.KubernetesManifest(
            self,
            "InferenceNamespace",
            cluster=cluster,
            manifest=namespace_chart.to_json(),
        )
        self.service = VllmService(
            self, "VllmService",
            props=VllmServiceProps(
                cluster=cluster, vpc=vpc, bucket=store.bucket,
                hf_token_secret=store.hf_token_secret, plan=plan,
                model_source=config.model_source, endpoint=config.endpoint,
                region=config.region, model_revision=config.model_revision,
                alerts=AlertSettings(ttft_slo_seconds=config.observability.ttft_slo_seconds),
                min_replicas=config.autoscaling.min_replicas,
                max_replicas=config.autoscaling.max_replicas,
                namespace=namespace_chart.props.namespace,
                image_cache_prefix=config.image_cache_prefix,
                gpu_limit=config.gpu_limit,
                after=(namespace,),
            ),
        )
        self.smoke_test = SmokeTest(self, "SmokeTest", props=SmokeTestProps(
            vpc=vpc, endpoint_url=self.service.endpoint_url, api_key=self.service.api_key,
            served_model_name=plan.model.name, environment_name=config.cluster.name,
            invoker_account=config.smoke_test_invoker_account))
        self.smoke_test.function.node.add_dependency(self.service)
        self.smoke_test_output = cdk.CfnOutput(
            self, "SmokeTestFunctionArn", value=self.smoke_test.function.function_arn,
            description="aws lambda invoke --function-name <arn> out.json: health, models, "
            "one completion")
        cdk.CfnOutput(self, "Model", value=plan.model.key)
        cdk.CfnOutput(
            self,
            "Placement",
            value=f"{plan.instance_type} x1, TP {plan.tensor_parallel}, "
            f"max_model_len {plan.max_model_len}, {plan.capacity.value}",
        )
        cdk.CfnOutput(self, "LoadBalancerDnsName", value=self.service.load_balancer_dns_name,
                      description="Point -c endpoint_hostname (CNAME or alias) here")
        cdk.CfnOutput(self, "EndpointUrl", value=self.service.endpoint_url,
                      description="OpenAI-compatible API: <url>/v1/chat/completions")
        cdk.CfnOutput(
            self, "ApiKeySecretArn", value=self.service.api_key.secret_arn,
            description="Read the key: aws secretsmanager get-secret-value --secret-id <arn> "
            "--query SecretString --output text",
        )
        cdk.CfnOutput(self, "ModelS3Uri",
                      value=f"s3://{store.bucket.bucket_name}/{self.service.weights_prefix}",
                      description=f"Where the weights are staged (model_source="
                      f"{config.model_source.value})")
        cdk.CfnOutput(
            self, "UpdateKubeconfigCommand",
            value=f"aws eks update-kubeconfig --region {config.region} "
            f"--name {config.cluster.name}",
        )
