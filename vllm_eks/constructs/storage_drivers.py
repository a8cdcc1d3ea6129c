"""StorageDrivers: the EFS and EBS CSI drivers, their identities, and the StorageClasses.

No Mountpoint-for-S3 driver: vLLM streams weights from S3 itself (Run:ai streamer) and
the staging Job uses the S3 API, so a node-wide read grant on the bucket would serve
nothing."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from ..k8s_charts import render
from ..k8s_charts.storage import StorageClassesChart, StorageClassesProps
from .pod_identity import pod_identity_addon, pod_identity_role

EFS_CONTROLLER_SERVICE_ACCOUNT = "efs-csi-controller-sa"
EBS_CONTROLLER_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
ACCESS_POINT_TAG = "efs.csi.aws.com/cluster"


@dataclass(frozen=True, kw_only=True)
class StorageDriversProps:
    # The add-ons and StorageClasses go here; its security group (on every node, managed
    # or Karpenter's) is allowed NFS to the file system.
    cluster: eks.ICluster
    pod_identity_agent: IDependable  # the eks-pod-identity-agent add-on, created first
    file_system: efs.IFileSystem  # the model cache: EFS access points, the StorageClass
    file_system_security_group: ec2.ISecurityGroup  # the file system's: NFS is opened on it
    # Tags the EBS volumes the gp3 StorageClass creates (they outlive a teardown).
    environment_name: str | None = None


class StorageDrivers(Construct):
    """`aws-efs-csi-driver` and `aws-ebs-csi-driver` as pinned EKS add-ons with EKS Pod
    Identity roles (EFS scoped to this environment's file system), NFS from the cluster's nodes to the file system (a rule in the
    cluster's stack, so the store never references the cluster), and the
    `efs-model-cache` and `gp3-encrypted` StorageClasses (`StorageClassesChart`).
    No hook is meant to be overridden."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: StorageDriversProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        cluster = props.cluster
        # Nodes (managed groups and Karpenter's) carry the cluster security group.
        self.nfs_rule = ec2.CfnSecurityGroupIngress(
            self, "NfsFromCluster",
            group_id=props.file_system_security_group.security_group_id,
            source_security_group_id=cluster.cluster_security_group.security_group_id,
            ip_protocol="tcp", from_port=2049, to_port=2049,
            description="NFS from the EKS cluster's nodes (managed and Karpenter)",
        )

        efs_role = pod_identity_role(
            self, "EfsCsiRole", description="EFS CSI controller: access points",
            statements=self._efs_statements(),
            wildcard_reason="AmazonEFSCSIDriverPolicy narrowed to this file system: Describe calls take no "
            "ARN; access point IDs exist only after creation, so deleting and tagging is "
            "limited to access points tagged by the driver.")
        self.efs_addon = pod_identity_addon(
            self, cluster=cluster, pod_identity_agent=props.pod_identity_agent,
            name="aws-efs-csi-driver",
            service_account=EFS_CONTROLLER_SERVICE_ACCOUNT, role=efs_role)

        ebs_role = pod_identity_role(
            self, "EbsCsiRole", description="EBS CSI controller: volumes for monitoring",
            aws_managed_policy="service-role/AmazonEBSCSIDriverPolicy",
            managed_policy_reason="AWS's policy for the EBS CSI driver: volume IDs are only "
            "known at run time and AWS keeps the tag-scoped statements in step with the "
            "driver.")
        self.ebs_addon = pod_identity_addon(
            self, cluster=cluster, pod_identity_agent=props.pod_identity_agent,
            name="aws-ebs-csi-driver",
            service_account=EBS_CONTROLLER_SERVICE_ACCOUNT, role=ebs_role)

        storage_classes = render(
            StorageClassesChart, "storage-classes",
            props=StorageClassesProps(file_system_id=props.file_system.file_system_id,
                                      environment_name=props.environment_name),
        )
        self.storage_classes = eks.KubernetesManifest(
            self, "StorageClasses", cluster=cluster, manifest=storage_classes.to_json())
        self.storage_classes.node.add_dependency(self.efs_addon, self.ebs_addon)

    def _efs_statements(self) -> list[iam.PolicyStatement]:
        """AmazonEFSCSIDriverPolicy, narrowed to this environment's file system and
        access points. Creating a tagged access point is authorized twice: CreateAccessPoint
        on the file system and TagResource on the new access point."""
        stack = cdk.Stack.of(self)
        access_points = stack.format_arn(
            service="elasticfilesystem", resource="access-point", resource_name="*")
        only_driver_tag = {
            "Null": {f"aws:RequestTag/{ACCESS_POINT_TAG}": "false"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ACCESS_POINT_TAG},
        }
        return [
            iam.PolicyStatement(
                sid="DescribeFileSystems",
                actions=["elasticfilesystem:DescribeAccessPoints",
                         "elasticfilesystem:DescribeFileSystems",
                         "elasticfilesystem:DescribeMountTargets",
                         "ec2:DescribeAvailabilityZones"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CreateAccessPoints", actions=["elasticfilesystem:CreateAccessPoint"],
                resources=[self.props.file_system.file_system_arn], conditions=only_driver_tag),
            iam.PolicyStatement(
                sid="TagNewAccessPoints", actions=["elasticfilesystem:TagResource"],
                resources=[access_points],
                conditions={**only_driver_tag, "StringEquals": {
                    "elasticfilesystem:CreateAction": "CreateAccessPoint"}}),
            iam.PolicyStatement(
                sid="DeleteOwnAccessPoints", actions=["elasticfilesystem:DeleteAccessPoint"],
                resources=[access_points],
                conditions={"Null": {f"aws:ResourceTag/{ACCESS_POINT_TAG}": "false"}}),
        ]
