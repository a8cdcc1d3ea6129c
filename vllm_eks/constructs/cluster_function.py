"""A Lambda function that talks to the cluster's Kubernetes API (handlers in
cluster_handlers/, client in kube.py): the teardown guard and the pipeline's benchmark
gate. Both run like aws-cdk-lib's kubectl provider (its runtime, the private subnets, the
cluster security group) and reach Kubernetes through an access entry with no AWS access
policy, only a Kubernetes group, which their own RBAC objects give exactly what they do."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

HANDLER_DIR = Path(__file__).parent / "cluster_handlers"


def cluster_function(scope: Construct, *, function_name: str, handler: str,
                     cluster: eks.ICluster, vpc: ec2.IVpc, timeout: cdk.Duration,
                     description: str, environment: dict[str, str] | None = None
                     ) -> lambda_.Function:
    """The function (construct ID `Function`, its log group `Logs`, under `scope`)."""
    return lambda_.Function(
        scope, "Function",
        function_name=function_name,
        # The kubectl provider's runtime (aws-cdk-lib's latest Python for Lambda).
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler=handler,
        code=lambda_.Code.from_asset(
            str(HANDLER_DIR), exclude=["__init__.py", "__pycache__", "*.pyc"]),
        timeout=timeout,
        memory_size=256,
        # Like the kubectl provider: the private API endpoint is reached from the
        # private subnets through the cluster security group.
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        security_groups=[cluster.cluster_security_group],
        environment=environment,
        # Lambda's default name, so `aws logs tail /aws/lambda/<function>` follows it.
        log_group=logs.LogGroup(scope, "Logs", log_group_name=f"/aws/lambda/{function_name}",
                                retention=logs.RetentionDays.ONE_MONTH,
                                removal_policy=cdk.RemovalPolicy.DESTROY),
        description=description,
    )


def kubernetes_access(scope: Construct, *, cluster: eks.ICluster, role: iam.IRole,
                      group: str, rbac: list[dict]
                      ) -> tuple[eks.CfnAccessEntry, eks.KubernetesManifest]:
    """A STANDARD access entry mapping `role` to `group` (no AWS access policy; the L1,
    as aws_eks_v2.AccessEntry has no kubernetesGroups), and the RBAC objects that give the
    group its rights (construct IDs `AccessEntry`, `Rbac`)."""
    entry = eks.CfnAccessEntry(scope, "AccessEntry", cluster_name=cluster.cluster_name,
                               principal_arn=role.role_arn, type="STANDARD",
                               kubernetes_groups=[group])
    return entry, eks.KubernetesManifest(scope, "Rbac", cluster=cluster, manifest=rbac)
