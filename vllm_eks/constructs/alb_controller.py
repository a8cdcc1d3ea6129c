"""AlbController: the AWS Load Balancer Controller, which turns Ingresses into ALBs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import versions
from ..labels import NODE_ROLE_LABEL
from .alb_controller_iam import controller_policy_statements
from .helm import pinned_chart
from .pod_identity import associate, pod_identity_role

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"


@dataclass(frozen=True, kw_only=True)
class AlbControllerProps:
    cluster: eks.ICluster  # the chart, its Pod Identity association and IngressClass go here
    # The cluster's name as plain text: the controller tags and finds its load balancers
    # by it, and it is named in the role's description.
    cluster_name: str
    # The VPC and region are given to the controller: nodes keep the instance metadata
    # service out of pods' reach, so it cannot discover them.
    vpc: ec2.IVpc
    region: str
    pod_identity_agent: IDependable  # the eks-pod-identity-agent add-on, created first
    core_dns: IDependable  # the coredns add-on: the chart waits for it (its pods resolve AWS APIs)


class AlbController(Construct):
    """The controller chart (pinned in versions.py) with two replicas on the system node
    group, its upstream IAM policy through EKS Pod Identity, and the `alb` IngressClass.

    Hook a subclass may override: `helm_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: AlbControllerProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        cluster = props.cluster
        statements = controller_policy_statements()
        self.role = pod_identity_role(
            self, "ControllerRole",
            description=f"AWS Load Balancer Controller of EKS cluster {props.cluster_name}",
            statements=statements,
            wildcard_reason="The controller's upstream reference policy (v3.5.0): load "
            "balancers, target groups and rules get their IDs at creation, so mutating "
            "actions are limited by the elbv2.k8s.aws/cluster tag; '*' resources are "
            "Describe/Get calls and the ACM/WAF/Shield lookups, which take no resource ARN.",
        )
        identity = associate(self, "ControllerPodIdentity", cluster=cluster,
                             namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                             role=self.role, pod_identity_agent=props.pod_identity_agent)
        # `wait`: its Ingress webhook (failurePolicy Fail) must answer before any Ingress
        # is applied. (Its pod webhook is Ignore by default, and limited to namespaces
        # labelled for readiness gates.)
        self.chart = pinned_chart(
            self, "Chart", cluster=cluster, chart="aws-load-balancer-controller",
            release="aws-load-balancer-controller",
            repository=versions.ALB_CONTROLLER_CHART_REPOSITORY,
            version=versions.ALB_CONTROLLER_CHART_VERSION, namespace=NAMESPACE,
            values=self.helm_values(),
        )
        self.chart.node.add_dependency(identity, props.core_dns)

    def helm_values(self) -> dict:
        return {
            "clusterName": self.props.cluster_name,
            # Nodes keep the instance metadata service out of pods' reach (hop limit 1),
            # so the controller cannot discover its region and VPC: they are given.
            "region": self.props.region,
            "vpcId": self.props.vpc.vpc_id,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "replicaCount": 2,
            "podDisruptionBudget": {"maxUnavailable": 1},
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "ingressClass": INGRESS_CLASS,
            "createIngressClassResource": True,
            "defaultSSLPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            # The Service webhook (failurePolicy Fail) would admit every Service created in
            # the cluster, so every other release would have to wait for this one. It only
            # gives LoadBalancer Services to this controller, and the environment creates
            # none (its endpoint is an Ingress).
            "enableServiceMutatorWebhook": False,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
        }
