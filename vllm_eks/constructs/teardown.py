"""TeardownGuard: when the cluster stack is deleted, remove the load balancers and the
Karpenter nodes the controllers created, before the controllers themselves go."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from ..nag import acknowledge, acknowledge_vpc_lambda_role
from .cluster_function import HANDLER_DIR, cluster_function, kubernetes_access  # noqa: F401

RESOURCE_TYPE = "Custom::VllmTeardownGuard"
# The Kubernetes group the handler's role is mapped to by its access entry, and the
# ClusterRole (and binding) that gives that group exactly what the handler does.
KUBERNETES_GROUP = "vllm-eks-teardown"
CLUSTER_ROLE = "vllm-eks-teardown"
VERBS = ["get", "list", "watch", "delete"]
RBAC_RULES = [
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": VERBS},
    {"apiGroups": [""], "resources": ["services"], "verbs": VERBS},
    {"apiGroups": ["karpenter.sh"], "resources": ["nodepools", "nodeclaims"], "verbs": VERBS},
]
# The handler stops waiting at 13 of its 15 minutes and answers; CloudFormation gives up
# a little after the Lambda could have answered (its default would be an hour).
HANDLER_TIMEOUT = cdk.Duration.minutes(15)
SERVICE_TIMEOUT = cdk.Duration.minutes(16)


def teardown_function_name(environment_name: str) -> str:
    """A fixed name (per environment), so an operator can follow the guard during a
    deletion: aws logs tail /aws/lambda/<name> --follow."""
    return f"{environment_name}-teardown-guard"[:64]


@dataclass(frozen=True, kw_only=True)
class TeardownGuardProps:
    cluster: eks.ICluster  # its endpoint and CA are given to the handler; access goes here
    # The cluster's name as plain text: the EKS token names it (x-k8s-aws-id), and the
    # function's name is derived from it.
    cluster_name: str
    vpc: ec2.IVpc  # the handler runs in its private subnets with the cluster security group
    # What must still run while the guard cleans up: the Karpenter controller chart, the
    # NodePools manifest, the AWS Load Balancer Controller chart. The guard is created
    # after them, so CloudFormation deletes it before them (reverse dependency order).
    after: tuple[IDependable, ...]


class TeardownGuard(Construct):
    """A Lambda-backed custom resource that does nothing on Create/Update and, on stack
    deletion, deletes every Ingress and LoadBalancer Service and waits until they are
    gone, then every NodePool and NodeClaim and waits until no NodeClaim is left; it fails
    the delete, naming what is left, if that takes longer than its 13 minutes (handler:
    cluster_handlers/, CloudFormation and AWS in index.py, the teardown in cleanup.py).
    Its role reaches Kubernetes through an access entry with no access policy, mapped to
    a ClusterRole allowing exactly that. No hook is meant to be overridden."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: TeardownGuardProps) -> None:
        super().__init__(scope, construct_id)
        cluster = props.cluster
        function_name = teardown_function_name(props.cluster_name)
        self.function = cluster_function(
            self, function_name=function_name, handler="index.handler", cluster=cluster,
            vpc=props.vpc, timeout=HANDLER_TIMEOUT,
            description="vllm-eks teardown guard: on stack deletion, removes load "
            "balancers and Karpenter nodes before their controllers")
        role = self.function.role
        # A Delete outside a stack deletion (the guard removed from the template, an
        # update rolled back) must remove nothing: the handler reads its stack's status.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cloudformation:DescribeStacks"], resources=[cdk.Aws.STACK_ID]))

        self.access_entry, self.rbac = kubernetes_access(
            self, cluster=cluster, role=role, group=KUBERNETES_GROUP, rbac=self.rbac_manifest())

        self.resource = cdk.CustomResource(
            self, "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            service_timeout=SERVICE_TIMEOUT,
            properties={
                "ClusterName": props.cluster_name,
                "ClusterEndpoint": cluster.cluster_endpoint,
                "CertificateAuthorityData": cluster.cluster_certificate_authority_data,
            },
        )
        # Created after its access and the controllers, so deleted before them: while the
        # guard runs its Delete, both controllers still remove what they own.
        self.resource.node.add_dependency(self.access_entry, self.rbac, *props.after)
        self._acknowledge_nag_findings()

    @staticmethod
    def rbac_manifest() -> list[dict]:
        labels = {"app.kubernetes.io/name": "teardown-guard",
                  "app.kubernetes.io/part-of": "vllm-eks"}
        return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": CLUSTER_ROLE, "labels": labels},
                "rules": RBAC_RULES,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": CLUSTER_ROLE, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": CLUSTER_ROLE},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                              "name": KUBERNETES_GROUP}],
            },
        ]

    def _acknowledge_nag_findings(self) -> None:
        acknowledge_vpc_lambda_role(
            self.function, "beyond them the role may only describe its own stack.")
        acknowledge(self.function, "AwsSolutions::AwsSolutions-L1",
                    "Pinned to python3.13, the runtime aws-cdk-lib's kubectl provider runs "
                    "in the same subnets; the handler uses only the standard library and "
                    "the runtime's boto3.")
