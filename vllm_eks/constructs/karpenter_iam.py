"""IAM for the Karpenter controller, after Karpenter's upstream reference policy
(`website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml`
of aws/karpenter-provider-aws on main; at the pinned tag v1.14.1 the same file is
`website/content/en/docs/getting-started/getting-started-with-karpenter/cloudformation.yaml`),
scoped by the cluster, nodepool and nodeclass tags. Its five controller policies become one
policy here, with the template's substitutions resolved (partition, region, account,
cluster name, node role and interruption queue). A verbatim copy is
`tests/fixtures/iam/karpenter_cloudformation.yaml`, and
`test_karpenter_controller_policy_matches_upstream` (tests/test_iam.py) compares the
synthesized policy with it, Sid by Sid.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

CLUSTER_TAG = "kubernetes.io/cluster/{cluster}"
EKS_CLUSTER_NAME_TAG = "eks:eks-cluster-name"
NODEPOOL_TAG = "karpenter.sh/nodepool"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"
REGION_TAG = "topology.kubernetes.io/region"


def controller_policy_statements(
    *, cluster_name: str, node_role: iam.IRole, queue: sqs.IQueue,
    partition: str = cdk.Aws.PARTITION, region: str = cdk.Aws.REGION,
    account: str = cdk.Aws.ACCOUNT_ID,
) -> list[iam.PolicyStatement]:
    """Every statement the controller needs: node lifecycle, IAM integration, EKS
    integration, zonal shift, interruption and resource discovery. Destructive and creating EC2 actions
    carry tag conditions; only ec2:Describe*, pricing and SSM public parameters are
    unscoped (they take no resource ARNs)."""
    cluster_tag = CLUSTER_TAG.format(cluster=cluster_name)

    def ec2_arn(resource: str, *, account_scoped: bool = True) -> str:
        return f"arn:{partition}:ec2:{region}:{'*' if account_scoped else ''}:{resource}"

    created_by_us = [
        ec2_arn("fleet/*"), ec2_arn("instance/*"), ec2_arn("volume/*"),
        ec2_arn("network-interface/*"), ec2_arn("launch-template/*"),
        ec2_arn("spot-instances-request/*"),
    ]
    instance_profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    cluster_arn = f"arn:{partition}:eks:{region}:{account}:cluster/{cluster_name}"
    return [
        # -- node lifecycle ------------------------------------------------------------
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[
                ec2_arn("image/*", account_scoped=False),
                ec2_arn("snapshot/*", account_scoped=False),
                ec2_arn("security-group/*"),
                ec2_arn("subnet/*"),
                ec2_arn("capacity-reservation/*"),
                ec2_arn("placement-group/*"),
            ],
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[ec2_arn("launch-template/*")],
            conditions={
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            resources=created_by_us,
            conditions={
                "StringEquals": {
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name,
                },
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=created_by_us,
            conditions={
                "StringEquals": {
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=[ec2_arn("instance/*")],
            conditions={
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
                "StringEqualsIfExists": {
                    f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name,
                },
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [EKS_CLUSTER_NAME_TAG, "karpenter.sh/nodeclaim", "Name"],
                },
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[ec2_arn("instance/*"), ec2_arn("launch-template/*")],
            conditions={
                "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                "StringLike": {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"},
            },
        ),
        # -- IAM integration -------------------------------------------------------------
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[node_role.role_arn],
            conditions={"StringEquals": {
                "iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name,
                    f"aws:RequestTag/{REGION_TAG}": region,
                },
                "StringLike": {f"aws:RequestTag/{NODECLASS_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{cluster_tag}": "owned",
                    f"aws:ResourceTag/{REGION_TAG}": region,
                    f"aws:RequestTag/{cluster_tag}": "owned",
                    f"aws:RequestTag/{EKS_CLUSTER_NAME_TAG}": cluster_name,
                    f"aws:RequestTag/{REGION_TAG}": region,
                },
                "StringLike": {
                    f"aws:ResourceTag/{NODECLASS_TAG}": "*",
                    f"aws:RequestTag/{NODECLASS_TAG}": "*",
                },
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=[
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{cluster_tag}": "owned",
                    f"aws:ResourceTag/{REGION_TAG}": region,
                },
                "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowInstanceProfileReadActions",
            actions=["iam:GetInstanceProfile"],
            resources=[instance_profiles],
        ),
        iam.PolicyStatement(
            sid="AllowUnscopedInstanceProfileListAction",
            actions=["iam:ListInstanceProfiles"],
            resources=["*"],
        ),
        # -- EKS integration -------------------------------------------------------------
        iam.PolicyStatement(
            sid="AllowAPIServerEndpointDiscovery",
            actions=["eks:DescribeCluster"],
            resources=[cluster_arn],
        ),
        # -- zonal shift: read the cluster's ARC zonal-shift status -----------------------
        iam.PolicyStatement(
            sid="AllowZonalShiftStatusReadOnly",
            actions=["arc-zonal-shift:GetManagedResource"],
            resources=["*"],
            conditions={"StringEquals": {
                "arc-zonal-shift:ResourceIdentifier": cluster_arn}},
        ),
        # -- interruption ----------------------------------------------------------------
        iam.PolicyStatement(
            sid="AllowInterruptionQueueActions",
            actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[queue.queue_arn],
        ),
        # -- resource discovery (read-only; these actions take no resource ARNs) ---------
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            actions=[
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions",
            actions=["ssm:GetParameter"],
            resources=[f"arn:{partition}:ssm:{region}::parameter/aws/service/*"],
        ),
        iam.PolicyStatement(
            sid="AllowPricingReadActions",
            actions=["pricing:GetProducts"],
            resources=["*"],
        ),
    ]

