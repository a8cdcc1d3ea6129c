"""VllmClusterStack: EKS, its node groups and cluster-wide add-ons."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs import GpuCluster, GpuClusterProps
from ..constructs.karpenter import Karpenter, KarpenterProps


class ClusterStack(cdk.Stack):
    """Holds the GpuCluster; later layers (Karpenter, controllers) attach here too."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 vpc: ec2.IVpc, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.gpu_cluster = GpuCluster(
            self,
            "GpuCluster",
            props=GpuClusterProps(vpc=vpc, config=config.cluster, plan=config.plan),
        )
        self.karpenter = Karpenter(
            self,
            "Karpenter",
            props=KarpenterProps(
                gpu_cluster=self.gpu_cluster, plan=config.plan,
                availability_zones=config.network.availability_zones,
                gpu_limit=config.gpu_limit, cpu_limit=config.cluster.cpu_limit,
            ),
        )
        cluster = self.gpu_cluster.cluster
        cdk.CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        cdk.CfnOutput(
            self,
            "UpdateKubeconfigCommand",
            description="Run this to point kubectl at the cluster",
            value=f"aws eks update-kubeconfig --region {self.region} "
            f"--name {cluster.cluster_name}",
        )
