"""GpuCluster: EKS with a Bottlerocket system node group. GPU nodes are not part of it:
Karpenter launches them when vLLM pods ask (constructs/karpenter.py), so no resource that
CloudFormation waits on needs GPU capacity or GPU quota."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .. import versions
from ..config import ClusterConfig
from ..bottlerocket import (
    BOTTLEROCKET_DATA_VOLUME,
    BOTTLEROCKET_OS_VOLUME,
    BOTTLEROCKET_OS_VOLUME_GIB,
    SYSTEM_DATA_VOLUME_GIB,
)
from ..labels import NODE_ROLE_LABEL
from ..nag import acknowledge
from ..naming import pascal_case



NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",  # Bottlerocket's control container is reached via SSM
)


def worker_node_role(scope: Construct, construct_id: str, description: str) -> iam.Role:
    """An EC2 role with the AWS managed policies EKS documents for worker nodes."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        description=description,
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_MANAGED_POLICIES
        ],
    )
    for policy in NODE_MANAGED_POLICIES:
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            f"{policy}]",
            "The AWS managed policies EKS documents for worker nodes; AWS keeps them in "
            "step with what the kubelet and the VPC CNI need.",
        )
    return role


@dataclass(frozen=True, kw_only=True)
class GpuClusterProps:
    vpc: ec2.IVpc  # the control plane and the system node group use its private subnets
    config: ClusterConfig  # name, API endpoint access, admin role, system node group size


class GpuCluster(Construct):
    """An EKS cluster (aws_eks_v2, Kubernetes from versions.py) with KMS-encrypted
    secrets, all control-plane logs, pinned managed add-ons and a system node group.

    No hooks: GPU node labels and taints are Karpenter's GPU NodePool's
    (k8s_charts/karpenter_pools.py).
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: GpuClusterProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        config = props.config
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {config.name}",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=config.name,
            version=versions.KUBERNETES_VERSION,
            vpc=props.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            # Self-managed Karpenter and a managed system node group, not EKS Auto Mode.
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            # The managed add-ons below replace the unmanaged defaults EKS would install.
            bootstrap_self_managed_addons=False,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=versions.KUBECTL_LAYER(self, "KubectlLayer"),
            ),
            secrets_encryption_key=self.secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            endpoint_access=self._endpoint_access(config),
        )
        if config.admin_role_arn:
            self.cluster.grant_cluster_admin("AdminAccess", config.admin_role_arn)

        self.node_role = self._node_role()
        networking_addons = [self._addon("vpc-cni", {"enableNetworkPolicy": "true"}),
                             self._addon("kube-proxy")]
        self.system_nodegroup = self._system_nodegroup()
        # Nodes stay NotReady (and the node group fails to create) without the CNI.
        for addon in networking_addons:
            self.system_nodegroup.node.add_dependency(addon)
        # CoreDNS and the Pod Identity agent need nodes to run on before they turn ACTIVE.
        self.coredns_addon = self._addon("coredns")
        self.pod_identity_addon = self._addon("eks-pod-identity-agent")
        for addon in (self.coredns_addon, self.pod_identity_addon):
            addon.node.add_dependency(self.system_nodegroup)
        self._acknowledge_nag_findings()

    # -- parts -------------------------------------------------------------------------

    @staticmethod
    def _endpoint_access(config: ClusterConfig) -> eks.EndpointAccess:
        if not config.api_allowed_cidrs:
            return eks.EndpointAccess.PRIVATE
        return eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.api_allowed_cidrs)

    def _addon(self, name: str, configuration: dict | None = None) -> eks.Addon:
        addon = eks.Addon(
            self,
            pascal_case(name) + "Addon",
            cluster=self.cluster,
            addon_name=name,
            addon_version=versions.EKS_ADDON_VERSIONS[name],
            configuration_values=configuration,
            preserve_on_delete=False,
        )
        return addon

    def _acknowledge_nag_findings(self) -> None:
        acknowledge(
            self.cluster.role,
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonEKSClusterPolicy]",
            "The cluster service role must carry AmazonEKSClusterPolicy (EKS requirement).",
        )
        self._acknowledge_kubectl_provider()

    def _acknowledge_kubectl_provider(self) -> None:
        """The kubectl provider is aws-cdk-lib's own custom resource: its Lambda runtime,
        execution roles and invoke permission are the library's choice, not ours."""
        provider = self.cluster.node.find_child("KubectlProvider")
        stack = cdk.Stack.of(self)
        handler = provider.node.find_child("Handler")
        has_ecr_public = stack.resolve(
            stack.get_logical_id(handler.node.find_child("HasEcrPublic"))
        )
        handler_arn = stack.resolve(stack.get_logical_id(handler.node.default_child))
        managed = "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        ecr_public = (
            '{"Fn::If":["' + has_ecr_public + '",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},'
            '":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},'
            '{"Ref":"AWS::NoValue"}]}'
        )
        findings = [
            f"{managed}service-role/AWSLambdaBasicExecutionRole]",
            f"{managed}service-role/AWSLambdaVPCAccessExecutionRole]",
            f"{managed}AmazonEC2ContainerRegistryReadOnly]",
            f"AwsSolutions::AwsSolutions-IAM4[Policy::{ecr_public}]",
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{handler_arn}.Arn>:*]",
            "AwsSolutions::AwsSolutions-L1",
        ]
        for finding in findings:
            acknowledge(
                provider,
                finding,
                "aws-cdk-lib's kubectl provider (a deploy-time custom resource): its Lambda "
                "execution roles, layer pulls and invoke permission on the handler's "
                "versions are defined by the library.",
            )

    def _node_role(self) -> iam.Role:
        return worker_node_role(self, "NodeRole", "EKS worker nodes (system node group)")

    def _launch_template(self, construct_id: str, data_volume_gib: int, *,
                         throughput: int) -> ec2.LaunchTemplate:
        # A managed node group's diskSize resizes Bottlerocket's OS device, not its data
        # volume: both are sized here.
        def volume(size: int, **extra) -> ec2.BlockDeviceVolume:
            return ec2.BlockDeviceVolume.ebs(
                size, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3,
                delete_on_termination=True, **extra,
            )

        return ec2.LaunchTemplate(
            self,
            construct_id,
            block_devices=[
                ec2.BlockDevice(device_name=BOTTLEROCKET_OS_VOLUME,
                                volume=volume(BOTTLEROCKET_OS_VOLUME_GIB)),
                ec2.BlockDevice(device_name=BOTTLEROCKET_DATA_VOLUME,
                                volume=volume(data_volume_gib, throughput=throughput)),
            ],
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            # Pods use EKS Pod Identity, never the node's role: a hop limit of 1 keeps the
            # instance metadata service out of their reach.
            http_put_response_hop_limit=1,
        )

    def _system_nodegroup(self) -> eks.Nodegroup:
        config = self.props.config
        template = self._launch_template("SystemLaunchTemplate", SYSTEM_DATA_VOLUME_GIB,
                                         throughput=125)
        return self.cluster.add_nodegroup_capacity(
            "SystemNodes",
            ami_type=eks.NodegroupAmiType.BOTTLEROCKET_X86_64,
            capacity_type=eks.CapacityType.ON_DEMAND,
            instance_types=[ec2.InstanceType(config.system_instance_type)],
            min_size=config.system_nodes,
            desired_size=config.system_nodes,
            max_size=config.system_nodes * 2,
            # Spread over the private subnets of all three AZs.
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            labels={NODE_ROLE_LABEL: "system"},
            node_role=self.node_role,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template_id, version=template.latest_version_number
            ),
            enable_node_auto_repair=True,
        )
