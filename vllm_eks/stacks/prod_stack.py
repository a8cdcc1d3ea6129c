"""VllmProdStack: the workloads. It depends on every other stack of the environment, so
`cdk deploy VllmProdStack` brings up the whole environment."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..config import EnvironmentConfig
from ..k8s_charts import InferenceNamespaceChart, InferenceNamespaceProps, render


class ProdStack(cdk.Stack):
    """Applies the Kubernetes workloads (cdk8s charts) to the cluster."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 cluster: eks.ICluster, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        namespace_chart = render(
            InferenceNamespaceChart,
            "inference-namespace",
            props=InferenceNamespaceProps(plan=config.plan),
        )
        eks.KubernetesManifest(
            self,
            "InferenceNamespace",
            cluster=cluster,
            manifest=namespace_chart.to_json(),
        )
        plan = config.plan
        cdk.CfnOutput(self, "Model", value=plan.model.key)
        cdk.CfnOutput(
            self,
            "Placement",
            value=f"{plan.instance_type} x1, TP {plan.tensor_parallel}, "
            f"max_model_len {plan.max_model_len}, {plan.capacity.value}",
        )
