"""EFA for multi-node models (`-c efa=true`): the device plugin that advertises the
nodes' EFA interfaces, and the vLLM image with EFA's user-space stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import versions
from ..labels import EFA_TAINT_KEY, GPU_TAINT_KEY, NODE_ROLE_LABEL
from .helm import pinned_chart

# The Dockerfile of the EFA vLLM image (package data of vllm_eks).
EFA_IMAGE_DIR = Path(__file__).resolve().parent.parent / "images" / "vllm-efa"


@dataclass(frozen=True, kw_only=True)
class EfaDevicePluginProps:
    cluster: eks.ICluster  # the release goes here
    after: tuple[IDependable, ...] = ()  # installed after these (one Helm release at a time)


class EfaDevicePlugin(Construct):
    """The `aws-efa-k8s-device-plugin` chart in kube-system (it runs privileged with host
    paths, which only kube-system's Pod Security allows), on GPU nodes only: it advertises
    `vpc.amazonaws.com/efa`, which the EFA models' pods request.

    Hook a subclass may override: `helm_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: EfaDevicePluginProps) -> None:
        super().__init__(scope, construct_id)
        self.chart = pinned_chart(
            self, "Chart", cluster=props.cluster, chart="aws-efa-k8s-device-plugin",
            repository=versions.EFA_DEVICE_PLUGIN_CHART_REPOSITORY,
            version=versions.EFA_DEVICE_PLUGIN_CHART_VERSION, namespace="kube-system",
            values=self.helm_values())
        if props.after:
            self.chart.node.add_dependency(*props.after)

    def helm_values(self) -> dict:
        """The image tag pinned; on GPU nodes, whose taints it tolerates (the chart's own
        affinity already limits it to types with EFA)."""
        return {
            "image": {"tag": versions.EFA_DEVICE_PLUGIN_IMAGE_TAG},
            "nodeSelector": {NODE_ROLE_LABEL: "gpu"},
            "tolerations": [
                {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
                {"key": EFA_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
            ],
        }


def efa_image_key(asset_hash: str) -> str:
    """The EFA image's name in the compile cache's path: the vLLM tag it is built from and
    its asset hash (its URI is only known at deploy), so a rebuilt image starts a new
    cache."""
    return f"{versions.VLLM_IMAGE.rsplit(':', 1)[-1]}-efa-{asset_hash[:12]}"


def efa_vllm_image(scope: Construct, construct_id: str) -> ecr_assets.DockerImageAsset:
    """The pinned vLLM image plus the EFA installer's libfabric and OFI NCCL plugin,
    built by `cdk deploy` (which then needs Docker) and pushed to the CDK assets
    repository, which the nodes' role may pull from."""
    return ecr_assets.DockerImageAsset(
        scope, construct_id, directory=str(EFA_IMAGE_DIR),
        platform=ecr_assets.Platform.LINUX_AMD64,
        build_args={"VLLM_IMAGE": versions.VLLM_IMAGE,
                    "EFA_INSTALLER_VERSION": versions.EFA_INSTALLER_VERSION})
