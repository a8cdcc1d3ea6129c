"""A model larger than one node: a LeaderWorkerSet instead of a Deployment.

Each replica is a group of `plan.nodes` pods, one per node, every GPU of its node in
tensor parallel and the nodes in pipeline parallel. vLLM runs without Ray (the image has
none since v0.19): the leader runs `vllm serve ... --nnodes N --node-rank 0
--master-addr <leader>` and serves the API; each worker runs the same with its own
`--node-rank` and `--headless` (no API server). LeaderWorkerSet (LWS) creates the group's
pods together, gives each its rank (`LWS_WORKER_INDEX`, 0 on the leader) and the
leader's DNS name (`LWS_LEADER_ADDRESS`), restarts the whole group when one pod fails,
and scales by group (its scale subresource counts leaders: KEDA scales it like a
Deployment).

Only the leader carries the model's app labels: the router, the Service, the
PodMonitor and the alerts see one pod per replica, the one that answers HTTP. Workers
are labelled `<name>-worker` and answer nothing but their peers.
"""

from __future__ import annotations

import copy

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..models.sources import group_join_seconds
from ..labels import EFA_TAINT_KEY
from ..vllm_cli import check_server_args
from .karpenter_efa import EFA_POOL
from .model_pods import egress_to_aws_apis
from .objects import custom_resource
from .vllm import VllmChart, VllmChartProps

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
# The EFA device plugin's resource.
EFA_RESOURCE = "vpc.amazonaws.com/efa"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_KEY_LABEL = "leaderworkerset.sigs.k8s.io/group-key"
# torch.distributed's rendezvous on the leader (vLLM's default --master-port).
MASTER_PORT = 29501


def pod_template_json(labels: dict[str, str], spec: k8s.PodSpec) -> dict:
    """A pod template as plain JSON (a custom resource's spec takes no cdk8s structs)."""
    chart = cdk8s.Chart(cdk8s.App(), "template")
    k8s.KubePod(chart, "Pod", metadata=k8s.ObjectMeta(labels=labels), spec=spec)
    (pod,) = chart.to_json()
    return {"metadata": {"labels": labels}, "spec": pod["spec"]}


class VllmLwsChart(VllmChart):
    """`VllmChart` for a multi-node plan: the LeaderWorkerSet, the leader's Service, a
    PodDisruptionBudget over the groups' pods, the model's NetworkPolicy (leaders) and a
    NetworkPolicy that lets the ranks of a group reach each other.

    Hooks (besides VllmChart's, of which `env()` adds NCCL's init log): `worker_args()`,
    `worker_container()`, `group_affinity()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: VllmChartProps) -> None:
        if props.plan.nodes < 2:
            raise ValueError(f"{props.plan.model.key} is planned on one node: use VllmChart")
        super().__init__(scope, construct_id, props=props)  # checks the leader's flags
        check_server_args(self.worker_args()[1:], owner=f"model {self.model.key!r} (workers)")
        self._group_network_policy()

    # -- hooks -------------------------------------------------------------------------

    def server_args(self) -> list[str]:
        """The leader's `vllm serve` arguments: the single-node ones plus pipeline
        parallel over the group and the rendezvous on the leader."""
        nodes = str(self.plan.nodes)
        return super().server_args() + [
            "--pipeline-parallel-size", nodes,
            "--nnodes", nodes,
            "--node-rank", "0",
            # Expanded by the kubelet from the variable LWS injects into every pod.
            "--master-addr", "$(LWS_LEADER_ADDRESS)",
            "--master-port", str(MASTER_PORT),
        ]

    def env(self) -> list[k8s.EnvVar]:
        """VllmChart's environment, plus NCCL's init log: it names the transport between
        the nodes (`NET/Socket` = TCP, `NET/OFI` = EFA), printed once at start. With EFA,
        libfabric's EFA provider only (RDMA and fork safety are the OFI plugin's defaults
        since aws-ofi-nccl 1.7: aws-ofi-nccl's doc/efa-env-var.md)."""
        values = {"NCCL_DEBUG": "INFO", "NCCL_DEBUG_SUBSYS": "INIT,NET"}
        if self.props.efa_interfaces:
            values["FI_PROVIDER"] = "efa"
        return super().env() + [k8s.EnvVar(name=k, value=v) for k, v in values.items()]

    def resources(self) -> k8s.ResourceRequirements:
        """VllmChart's, plus every EFA interface of the node (with EFA)."""
        base = super().resources()
        if not self.props.efa_interfaces:
            return base
        efa = {EFA_RESOURCE: k8s.Quantity.from_number(self.props.efa_interfaces)}
        return k8s.ResourceRequirements(requests={**base.requests, **efa},
                                        limits={**base.limits, **efa})

    def worker_args(self) -> list[str]:
        """A worker's arguments: the leader's with its own rank, and no API server."""
        args = list(self.server_args())
        args[args.index("--node-rank") + 1] = "$(LWS_WORKER_INDEX)"
        return args + ["--headless"]

    def worker_container(self) -> k8s.Container:
        """The leader's container without port and probes (a headless worker serves no
        HTTP; LWS restarts the group when the leader's probes fail)."""
        leader = self.container()
        return k8s.Container(
            name=leader.name, image=leader.image, command=leader.command,
            args=self.worker_args(), env=leader.env, resources=leader.resources,
            security_context=leader.security_context, volume_mounts=leader.volume_mounts,
            lifecycle=leader.lifecycle)

    def group_affinity(self) -> k8s.PodAffinity:
        """Every pod of a group in one zone (cross-zone traffic between pipeline stages
        is slow and billed): pods attract the pods of their own group, told apart by the
        group key LWS puts on each (matchLabelKeys)."""
        return k8s.PodAffinity(required_during_scheduling_ignored_during_execution=[
            k8s.PodAffinityTerm(
                topology_key="topology.kubernetes.io/zone",
                label_selector=k8s.LabelSelector(match_labels={LWS_NAME_LABEL: self.name}),
                match_label_keys=[LWS_GROUP_KEY_LABEL])])

    # -- parts -------------------------------------------------------------------------

    @property
    def startup_budget_seconds(self) -> int:
        """The leader waits for its workers, whose nodes Karpenter may still be adding
        and whose image may still be pulling: their time is part of the leader's start."""
        return super().startup_budget_seconds + group_join_seconds(self.plan.nodes)

    @property
    def worker_labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "vllm-worker",
                "app.kubernetes.io/instance": f"{self.name}-worker",
                "app.kubernetes.io/part-of": "vllm-eks",
                "vllm-eks.io/model": self.model.key}

    def _pod_spec_with(self, container: k8s.Container) -> k8s.PodSpec:
        spec = self.pod_spec()
        node_affinity = spec.affinity.node_affinity
        tolerations = list(spec.tolerations)
        if self.props.efa_interfaces:  # the EFA pool only (karpenter_efa.py)
            (term,) = node_affinity.required_during_scheduling_ignored_during_execution \
                .node_selector_terms
            node_affinity = k8s.NodeAffinity(
                required_during_scheduling_ignored_during_execution=k8s.NodeSelector(
                    node_selector_terms=[k8s.NodeSelectorTerm(match_expressions=[
                        *term.match_expressions,
                        k8s.NodeSelectorRequirement(key="karpenter.sh/nodepool", operator="In",
                                                    values=[EFA_POOL])])]))
            tolerations.append(k8s.Toleration(key=EFA_TAINT_KEY, operator="Exists",
                                              effect="NoSchedule"))
        affinity = k8s.Affinity(node_affinity=node_affinity, pod_affinity=self.group_affinity())
        return k8s.PodSpec(
            service_account_name=spec.service_account_name,
            security_context=spec.security_context, init_containers=spec.init_containers,
            containers=[container], volumes=spec.volumes,
            termination_grace_period_seconds=spec.termination_grace_period_seconds,
            tolerations=tolerations, affinity=affinity)

    def _deployment(self) -> None:
        leader = pod_template_json(self.app_labels, self._pod_spec_with(self.container()))
        worker = pod_template_json(self.worker_labels,
                                   self._pod_spec_with(self.worker_container()))
        custom_resource(self, "LeaderWorkerSet", api_version=LWS_API_VERSION,
                        kind="LeaderWorkerSet", name=self.name, labels=self.app_labels,
                        spec={
            # No replicas: KEDA owns the count (a fixed value would reset it on apply).
            "leaderWorkerTemplate": {
                "size": self.plan.nodes,
                # A group is one vLLM engine: any pod lost means restarting all of them.
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": leader,
                "workerTemplate": worker,
            },
            # Workers start with the leader (LeaderReady would wait forever: the leader
            # is ready only once its workers have joined).
            "startupPolicy": "LeaderCreated",
            # One headless Service per group (`<name>-<group>`), which LWS_LEADER_ADDRESS
            # resolves through. The shared policy would want a headless Service named like
            # the LWS itself, which is the model's ClusterIP Service: LWS skips creating
            # one when the name is taken, and the leader's address would never resolve.
            "networkConfig": {"subdomainPolicy": "UniquePerReplica"},
            # A new group is up before an old one goes, as with the Deployment.
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdateConfiguration": {
                "maxUnavailable": 0, "maxSurge": 1}},
        })

    def _disruption_budget(self) -> None:
        # Over every pod of the model's groups: a voluntary disruption (a node drain)
        # takes one pod, hence at most one group, at a time.
        k8s.KubePodDisruptionBudget(
            self, "DisruptionBudget", metadata=self._metadata(),
            spec=k8s.PodDisruptionBudgetSpec(
                max_unavailable=k8s.IntOrString.from_number(1),
                selector=k8s.LabelSelector(match_labels={LWS_NAME_LABEL: self.name})))

    def _group_network_policy(self) -> None:
        """The ranks of a group exchange activations (NCCL, on ports it picks) and meet
        at the leader's rendezvous port: every port, between the model's own pods only.
        Workers also need the AWS APIs (each streams its own shards from S3)."""
        group = k8s.LabelSelector(match_labels={LWS_NAME_LABEL: self.name})
        peers = [k8s.NetworkPolicyPeer(pod_selector=copy.deepcopy(group))]
        k8s.KubeNetworkPolicy(
            self, "GroupNetworkPolicy", metadata=self._metadata(f"{self.name}-group"),
            spec=k8s.NetworkPolicySpec(
                pod_selector=group, policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=peers)],
                egress=[k8s.NetworkPolicyEgressRule(to=peers), *egress_to_aws_apis(),
                        *([self.props.tracing.egress()] if self.props.tracing else [])]))
