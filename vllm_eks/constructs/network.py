"""Network: the VPC the cluster, its nodes and the model stores live in."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..config import NetworkConfig

# Tags the AWS Load Balancer Controller reads to place internet-facing and internal ALBs.
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
# Tag Karpenter's EC2NodeClass selects subnets and security groups by.
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    config: NetworkConfig  # the CIDR, the three AZs and how many NAT gateways
    cluster_name: str  # value of the Karpenter discovery tag on the private subnets
    # How long VPC flow logs are kept; default: one year.
    flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR


class Network(Construct):
    """A VPC over three explicit AZs: public subnets for internet-facing load balancers
    and NAT, private subnets for nodes and pods, isolated subnets for internal load
    balancers only, VPC endpoints for the AWS APIs nodes call at boot, and flow logs.
    No hook is meant to be overridden; compose instead."""

    def __init__(self, scope: Construct, construct_id: str, *, props: NetworkProps) -> None:
        super().__init__(scope, construct_id)
        config = props.config
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.cidr),
            # Explicit zone names: no lookup at synth time, identical templates everywhere.
            availability_zones=list(config.availability_zones),
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                # /19 per AZ: the VPC CNI gives every pod a VPC address, and a GPU node with
                # prefix delegation can hold hundreds.
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19
                ),
                # Internal load balancers only, and nothing else: no node or pod ever gets
                # an address here, so a NetworkPolicy that admits these CIDRs admits the
                # load balancer and not every pod of the cluster.
                ec2.SubnetConfiguration(
                    name="LoadBalancer", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=24,
                ),
            ],
            restrict_default_security_group=True,
        )
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=props.flow_log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self._add_endpoints(config.cidr)
        for subnet in self.vpc.public_subnets:
            cdk.Tags.of(subnet).add(PUBLIC_ELB_TAG, "1")
        for subnet in self.vpc.isolated_subnets:
            cdk.Tags.of(subnet).add(INTERNAL_ELB_TAG, "1")
        for subnet in self.vpc.private_subnets:
            cdk.Tags.of(subnet).add(KARPENTER_DISCOVERY_TAG, props.cluster_name)
            # aws-cdk-lib's eks.Cluster tags every private subnet for internal load
            # balancers; ours live in the isolated subnets only (no pod addresses there).
            cdk.Tags.of(subnet).remove(INTERNAL_ELB_TAG, priority=1000)

    def _add_endpoints(self, cidr: str) -> None:
        # Weights (staging writes, the Run:ai streamer's reads) and ECR image layers (ECR
        # serves layers from S3) stay off the NAT gateways, which bill per GB. The vLLM
        # image itself comes from Docker Hub through NAT (~12 GB per new node).
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        interface_services = {
            "EcrApiEndpoint": ec2.InterfaceVpcEndpointAwsService.ECR,
            "EcrDockerEndpoint": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
            "StsEndpoint": ec2.InterfaceVpcEndpointAwsService.STS,
            "Ec2Endpoint": ec2.InterfaceVpcEndpointAwsService.EC2,
            "LogsEndpoint": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
        }
        # One security group for all interface endpoints: HTTPS from inside the VPC only.
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from the VPC to the AWS API interface endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        for endpoint_id, service in interface_services.items():
            self.vpc.add_interface_endpoint(
                endpoint_id,
                service=service,
                private_dns_enabled=True,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=[self.endpoint_security_group],
                open=False,
            )
