"""Karpenter EC2NodeClasses and NodePools: GPU capacity for every model's deployment plan,
and a general CPU pool for everything else."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from .. import versions
from ..bottlerocket import (
    BOTTLEROCKET_DATA_VOLUME,
    BOTTLEROCKET_OS_VOLUME,
    BOTTLEROCKET_OS_VOLUME_GIB,
    gpu_data_volume_performance,
    gpu_node_settings,
)
from ..labels import ENVIRONMENT_TAG, GPU_TAINT_KEY, NODE_ROLE_LABEL
from ..models import CapacityType, DeploymentPlan
from .karpenter_efa import EFA_POOL, EfaPoolSettings, efa_node_class, efa_node_pool
from .objects import custom_resource

GPU_POOL = "gpu"
GENERAL_POOL = "general"



@dataclass(frozen=True, kw_only=True)
class KarpenterPoolsProps:
    cluster_name: str  # subnets and security groups are discovered by its tag
    node_role_name: str  # may be a CDK token; resolved in the template
    # Every model's plan: the GPU pool's capacity types and data volume.
    plans: tuple[DeploymentPlan, ...]
    # Every model's planned type and fallbacks within its GPU limit, in model order
    # (EnvironmentConfig.gpu_pool_instance_types).
    gpu_instance_types: tuple[str, ...]
    availability_zones: tuple[str, ...]  # the zones both pools launch into
    gpu_limit: int  # nvidia.com/gpu the GPU pool may hold in total
    cpu_limit: int  # vCPUs the general pool may hold in total
    gpu_data_volume_gib: int  # a GPU node's EBS data volume (gpu_data_volume_gib(plans))
    general_data_volume_gib: int = 100  # room for the vLLM image the staging Job uses
    efa: EfaPoolSettings | None = None  # -c efa=true: the EFA node class and pool
    parallel_image_pull: bool = False  # -c parallel_image_pull: SOCI on the GPU nodes


class KarpenterPoolsChart(cdk8s.Chart):
    """Two EC2NodeClasses (gpu, general) and two NodePools (gpu, general), and with
    `efa` a third of each (gpu-efa: karpenter_efa.py).

    Hooks a subclass may override: `gpu_requirements()`, `gpu_disruption()`,
    `gpu_instance_types()`, `gpu_capacity_types()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: KarpenterPoolsProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        self.props = props
        self._api_object("GpuNodeClass", "karpenter.k8s.aws/v1", "EC2NodeClass", GPU_POOL,
                         self._node_class(props.gpu_data_volume_gib, gpu=True))
        self._api_object("GeneralNodeClass", "karpenter.k8s.aws/v1", "EC2NodeClass",
                         GENERAL_POOL,
                         self._node_class(props.general_data_volume_gib, gpu=False))
        self._api_object("GpuNodePool", "karpenter.sh/v1", "NodePool", GPU_POOL,
                         self._gpu_pool())
        self._api_object("GeneralNodePool", "karpenter.sh/v1", "NodePool", GENERAL_POOL,
                         self._general_pool())
        if props.efa is not None:
            gpu_class = self._node_class(props.gpu_data_volume_gib, gpu=True)
            self._api_object("EfaNodeClass", "karpenter.k8s.aws/v1", "EC2NodeClass", EFA_POOL,
                             efa_node_class(gpu_class, props.efa))
            self._api_object("EfaNodePool", "karpenter.sh/v1", "NodePool", EFA_POOL,
                             efa_node_pool(self._gpu_pool(), props.efa))

    # -- hooks -------------------------------------------------------------------------

    def gpu_instance_types(self) -> list[str]:
        """Each model's planned type, then its fallbacks that fit it within its GPU limit,
        so a shortage of one type falls back to the next (each model's pods name their own
        in their node affinity)."""
        return list(self.props.gpu_instance_types)

    def gpu_capacity_types(self) -> list[str]:
        """Spot when a model may run on it; on-demand always (a spot model falls back to
        it, and pods of on-demand models require it in their node affinity)."""
        spot = any(plan.capacity is CapacityType.SPOT for plan in self.props.plans)
        return ["spot", "on-demand"] if spot else ["on-demand"]

    def gpu_requirements(self) -> list[dict]:
        capacity = self.gpu_capacity_types()
        return [
            {"key": "node.kubernetes.io/instance-type", "operator": "In",
             "values": self.gpu_instance_types()},
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
            {"key": "topology.kubernetes.io/zone", "operator": "In",
             "values": list(self.props.availability_zones)},
        ]

    def gpu_disruption(self) -> dict:
        """GPU nodes are never consolidated out from under running replicas: only empty
        nodes go (after 10 minutes, so a scale-down/scale-up blip keeps the warm node),
        and at most one GPU node is disrupted at a time."""
        return {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "10m",
            "budgets": [{"nodes": "1"}],
        }

    # -- parts -------------------------------------------------------------------------

    def _api_object(self, construct_id: str, api_version: str, kind: str, name: str,
                    spec: dict) -> None:
        custom_resource(self, construct_id, api_version=api_version, kind=kind, name=name,
                        spec=spec, labels={"app.kubernetes.io/part-of": "vllm-eks"})

    def _node_class(self, data_volume_gib: int, *, gpu: bool) -> dict:
        discovery = {"karpenter.sh/discovery": self.props.cluster_name}

        def volume(device: str, size: int, **extra) -> dict:
            return {"deviceName": device, "ebs": {
                "volumeSize": f"{size}Gi", "volumeType": "gp3", "encrypted": True,
                "deleteOnTermination": True, **extra}}

        spec = {
            "amiSelectorTerms": [{"alias": f"bottlerocket@{versions.BOTTLEROCKET_VERSION}"}],
            "role": self.props.node_role_name,
            "subnetSelectorTerms": [{"tags": discovery}],
            # The cluster security group EKS creates carries this tag.
            "securityGroupSelectorTerms": [
                {"tags": {"aws:eks:cluster-name": self.props.cluster_name}}
            ],
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpTokens": "required",
                # Pods use EKS Pod Identity, never the node role.
                "httpPutResponseHopLimit": 1,
                "httpProtocolIPv6": "disabled",
            },
            "blockDeviceMappings": [
                volume(BOTTLEROCKET_OS_VOLUME, BOTTLEROCKET_OS_VOLUME_GIB),
                volume(BOTTLEROCKET_DATA_VOLUME, data_volume_gib,
                       **(gpu_data_volume_performance(self.props.plans) if gpu else {})),
            ],
            # The environment's tag on every instance, volume and launch template
            # Karpenter creates, so a teardown can be checked by it (docs/teardown.md).
            "tags": {"vllm-eks:pool": GPU_POOL if gpu else GENERAL_POOL,
                     ENVIRONMENT_TAG: self.props.cluster_name},
        }
        if gpu:
            # Every planned GPU type has local NVMe: striped, it holds container images
            # and emptyDir volumes at NVMe speed.
            spec["instanceStorePolicy"] = "RAID0"
            spec["userData"] = gpu_node_settings(
                parallel_image_pull=self.props.parallel_image_pull)
        return spec

    def _gpu_pool(self) -> dict:
        return {
            "template": {
                "metadata": {"labels": {NODE_ROLE_LABEL: "gpu",
                                        "nvidia.com/gpu.present": "true"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                     "name": GPU_POOL},
                    "requirements": self.gpu_requirements(),
                    "taints": [{"key": GPU_TAINT_KEY, "value": "true",
                                "effect": "NoSchedule"}],
                    # Replaced monthly so nodes pick up the pinned AMI's successors and
                    # kernel patches when BOTTLEROCKET_VERSION moves; never mid-stream:
                    # draining waits up to terminationGracePeriod for replicas to finish.
                    "expireAfter": "720h",
                    "terminationGracePeriod": "1h",
                },
            },
            "disruption": self.gpu_disruption(),
            "limits": {"nvidia.com/gpu": str(self.props.gpu_limit)},
            # Preferred over the general pool whenever a pod tolerates the GPU taint.
            "weight": 50,
        }

    def _general_pool(self) -> dict:
        return {
            "template": {
                "metadata": {"labels": {NODE_ROLE_LABEL: "general"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                     "name": GENERAL_POOL},
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-category", "operator": "In",
                         "values": ["c", "m", "r"]},
                        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt",
                         "values": ["5"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": ["spot", "on-demand"]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In",
                         "values": list(self.props.availability_zones)},
                    ],
                    "expireAfter": "720h",
                },
            },
            # CPU workloads are stateless: pack them tightly.
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized",
                           "consolidateAfter": "5m", "budgets": [{"nodes": "10%"}]},
            "limits": {"cpu": str(self.props.cpu_limit)},
            "weight": 10,
        }
