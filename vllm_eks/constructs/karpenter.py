"""Karpenter: every GPU node of the environment (there is no managed GPU node group), and
CPU nodes beyond the system node group."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

from .. import versions
from ..bottlerocket import gpu_data_volume_gib
from ..k8s_charts import render
from ..k8s_charts.karpenter_efa import EfaPoolSettings
from ..k8s_charts.karpenter_pools import KarpenterPoolsChart, KarpenterPoolsProps
from ..models import DeploymentPlan
from ..nag import acknowledge, acknowledge_wildcards
from ..labels import NODE_ROLE_LABEL
from .cluster import worker_node_role
from .helm import pinned_chart
from .karpenter_iam import controller_policy_statements
from .pod_identity import associate, pod_identity_role

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"

# EventBridge patterns Karpenter's interruption controller consumes. A misspelled
# detail-type never matches and fails silently.
INTERRUPTION_EVENTS: dict[str, events.EventPattern] = {
    "HealthEvents": events.EventPattern(source=["aws.health"], detail_type=["AWS Health Event"]),
    "SpotInterruption": events.EventPattern(
        source=["aws.ec2"], detail_type=["EC2 Spot Instance Interruption Warning"]),
    "RebalanceRecommendation": events.EventPattern(
        source=["aws.ec2"], detail_type=["EC2 Instance Rebalance Recommendation"]),
    "InstanceStateChange": events.EventPattern(
        source=["aws.ec2"], detail_type=["EC2 Instance State-change Notification"]),
    "CapacityReservationInterruption": events.EventPattern(
        source=["aws.ec2"], detail_type=["EC2 Capacity Reservation Instance Interruption Warning"]),
}


@dataclass(frozen=True, kw_only=True)
class KarpenterProps:
    cluster: eks.ICluster  # the charts, the node access entry and the NodePools go here
    # The cluster's name as plain text: Karpenter's settings, its IAM conditions and the
    # EC2NodeClasses' discovery tags use it.
    cluster_name: str
    pod_identity_agent: IDependable  # the eks-pod-identity-agent add-on, created first
    core_dns: IDependable  # the coredns add-on: the controller waits for it
    # Every model's plan (capacity types, data volume size) and the GPU NodePool's
    # instance types (every model's planned type and fallbacks).
    plans: tuple[DeploymentPlan, ...]
    gpu_instance_types: tuple[str, ...]
    efa: EfaPoolSettings | None = None  # -c efa=true: the EFA pool (its placement group)
    parallel_image_pull: bool = False  # -c parallel_image_pull: SOCI on the GPU nodes
    availability_zones: tuple[str, ...]  # the zones both NodePools launch into
    gpu_limit: int  # total nvidia.com/gpu Karpenter may add
    cpu_limit: int  # total vCPUs of the general pool


class Karpenter(Construct):
    """The Karpenter controller (CRD chart, then controller chart, on the system nodes),
    its Pod Identity role, the node role with its EC2_LINUX access entry, the
    interruption queue with its five EventBridge rules, and the EC2NodeClasses and
    NodePools rendered by `KarpenterPoolsChart` (the pools' hooks are there).

    Hook a subclass may override: `helm_values(cluster_name)`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: KarpenterProps) -> None:
        super().__init__(scope, construct_id)
        cluster, cluster_name = props.cluster, props.cluster_name

        self.node_role = worker_node_role(self, "NodeRole", "Nodes launched by Karpenter")
        # A separate role from the system node group's: EKS creates its access entry
        # itself, and a second entry for the same role would fail.
        node_access = eks.AccessEntry(
            self, "NodeAccessEntry", cluster=cluster, principal=self.node_role.role_arn,
            access_entry_type=eks.AccessEntryType.EC2_LINUX, access_policies=[],
        )

        self.queue = sqs.Queue(
            self, "InterruptionQueue",
            retention_period=cdk.Duration.seconds(300),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        for rule_id, pattern in INTERRUPTION_EVENTS.items():
            events.Rule(self, f"{rule_id}Rule", event_pattern=pattern,
                        targets=[targets.SqsQueue(self.queue)])

        self.controller_role = pod_identity_role(
            self, "ControllerRole",
            description=f"Karpenter controller of EKS cluster {cluster_name}")
        statements = controller_policy_statements(
            cluster_name=cluster_name, node_role=self.node_role, queue=self.queue)
        controller_policy = iam.Policy(self, "ControllerPolicy", statements=statements)
        controller_policy.attach_to_role(self.controller_role)
        identity = associate(self, "ControllerPodIdentity", cluster=cluster,
                             namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                             role=self.controller_role,
                             pod_identity_agent=props.pod_identity_agent)

        # CRDs only (no pods): installs while the system nodes start.
        self.crds = pinned_chart(
            self, "Crds", cluster=cluster, chart="karpenter-crd",
            repository=versions.KARPENTER_CRD_CHART_REPOSITORY,
            version=versions.KARPENTER_VERSION, namespace=NAMESPACE,
        )
        self.controller = pinned_chart(
            self, "Controller", cluster=cluster, chart="karpenter",
            repository=versions.KARPENTER_CHART_REPOSITORY,
            version=versions.KARPENTER_VERSION, namespace=NAMESPACE,
            skip_crds=True,  # the CRD chart owns them, so upgrades upgrade the CRDs
            values=self.helm_values(cluster_name),
        )
        self.controller.node.add_dependency(self.crds, identity, controller_policy, node_access,
                                            props.core_dns)

        pools = render(
            KarpenterPoolsChart, "karpenter-pools",
            props=KarpenterPoolsProps(
                cluster_name=cluster_name, node_role_name=self.node_role.role_name,
                plans=props.plans, gpu_instance_types=props.gpu_instance_types,
                availability_zones=props.availability_zones,
                gpu_limit=props.gpu_limit, cpu_limit=props.cpu_limit,
                gpu_data_volume_gib=gpu_data_volume_gib(props.plans), efa=props.efa,
                parallel_image_pull=props.parallel_image_pull,
            ),
        )
        self.pools = eks.KubernetesManifest(self, "NodePools", cluster=cluster,
                                            manifest=pools.to_json())
        # CRDs -> controller -> EC2NodeClass/NodePools: a NodePool is never applied before
        # its CRD exists, nor before the controller that validates it is up.
        self.pools.node.add_dependency(self.controller)
        self._acknowledge_nag_findings(controller_policy, statements)

    def helm_values(self, cluster_name: str) -> dict:
        """Values of the karpenter chart: two replicas on the system node group (never on
        nodes Karpenter manages), a PodDisruptionBudget, the interruption queue."""
        return {
            "settings": {
                "clusterName": cluster_name,
                "interruptionQueue": self.queue.queue_name,
            },
            "replicas": 2,
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "controller": {
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"memory": "1Gi"},
                },
            },
        }

    def _acknowledge_nag_findings(self, policy: iam.Policy,
                                  statements: list[iam.PolicyStatement]) -> None:
        acknowledge_wildcards(
            policy, statements,
            "Karpenter's upstream reference policy (v1.14): EC2 and instance-profile IDs "
            "are unknown until Karpenter creates them, so creating and destructive "
            "actions are scoped by the cluster/nodepool/nodeclass tag conditions; the "
            "'*' resources are read-only Describe/pricing/zonal-shift calls that take "
            "no resource ARN.",
        )
        acknowledge(
            self.queue, "AwsSolutions::AwsSolutions-SQS3",
            "Interruption notices are useful for minutes only (retention 300 s); a dead-"
            "letter queue would hold stale notices nobody acts on.",
        )
