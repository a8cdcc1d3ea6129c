"""AlbController: the AWS Load Balancer Controller, which turns Ingresses into ALBs."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from .. import versions
from ..labels import NODE_ROLE_LABEL
from .alb_controller_iam import controller_policy_statements
from .cluster import GpuCluster
from .pod_identity import associate, pinned_chart, pod_identity_role

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"


class AlbController(Construct):
    """The controller chart (pinned in versions.py) with two replicas on the system node
    group, its upstream IAM policy through EKS Pod Identity, and the `alb` IngressClass.

    Hook a subclass may override: `helm_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, gpu_cluster: GpuCluster,
                 vpc: ec2.IVpc, region: str) -> None:
        super().__init__(scope, construct_id)
        cluster = gpu_cluster.cluster
        self.vpc, self.region = vpc, region
        self.cluster_name = gpu_cluster.props.config.name
        statements = controller_policy_statements()
        self.role = pod_identity_role(
            self, "ControllerRole",
            description=f"AWS Load Balancer Controller of EKS cluster {self.cluster_name}",
            statements=statements,
            wildcard_reason="The controller's upstream reference policy (v3.5.0): load "
            "balancers, target groups and rules get their IDs at creation, so mutating "
            "actions are limited by the elbv2.k8s.aws/cluster tag; '*' resources are "
            "Describe/Get calls and the ACM/WAF/Shield lookups, which take no resource ARN.",
        )
        identity = associate(self, "ControllerPodIdentity", cluster=cluster,
                             namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                             role=self.role)
        identity.node.add_dependency(gpu_cluster.pod_identity_addon)
        # `wait`: its webhooks must answer before any Ingress or Service is applied.
        self.chart = pinned_chart(
            self, "Chart", cluster=cluster, chart="aws-load-balancer-controller",
            release="aws-load-balancer-controller",
            repository=versions.ALB_CONTROLLER_CHART_REPOSITORY,
            version=versions.ALB_CONTROLLER_CHART_VERSION, namespace=NAMESPACE,
            values=self.helm_values(),
        )
        self.chart.node.add_dependency(identity, gpu_cluster.coredns_addon)

    def helm_values(self) -> dict:
        return {
            "clusterName": self.cluster_name,
            # Nodes keep the instance metadata service out of pods' reach (hop limit 1),
            # so the controller cannot discover its region and VPC: they are given.
            "region": self.region,
            "vpcId": self.vpc.vpc_id,
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "replicaCount": 2,
            "podDisruptionBudget": {"maxUnavailable": 1},
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "ingressClass": INGRESS_CLASS,
            "createIngressClassResource": True,
            "defaultSSLPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
        }
