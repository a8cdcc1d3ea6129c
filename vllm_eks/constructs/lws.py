"""The LeaderWorkerSet controller: multi-node model replicas (k8s_charts/vllm_lws.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import versions
from ..labels import NODE_ROLE_LABEL
from .helm import pinned_chart

# The chart's webhook Service and the CRD's conversion webhook name this namespace.
NAMESPACE = "lws-system"


@dataclass(frozen=True, kw_only=True)
class LeaderWorkerSetProps:
    cluster: eks.ICluster  # the release goes here
    after: tuple[IDependable, ...] = ()  # installed after these (one Helm release at a time)


class LeaderWorkerSet(Construct):
    """The `lws` chart at `versions.LWS_VERSION` in `lws-system`, on the system nodes. Its
    webhooks (port 9443 on the controller pod, `failurePolicy: Fail`) admit
    LeaderWorkerSets and their pods, so it must run before any multi-node model.

    Hook a subclass may override: `helm_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: LeaderWorkerSetProps) -> None:
        super().__init__(scope, construct_id)
        self.chart = pinned_chart(
            self, "Controller", cluster=props.cluster, chart="lws", release="lws",
            repository=versions.LWS_CHART_REPOSITORY, version=versions.LWS_VERSION,
            namespace=NAMESPACE, values=self.helm_values())
        if props.after:
            self.chart.node.add_dependency(*props.after)

    def helm_values(self) -> dict:
        """The controller image pinned (the chart's source tree defaults to `:main`), on
        the system nodes, with a memory limit."""
        return {
            "image": {"manager": {"repository": "registry.k8s.io/lws/lws",
                                  "tag": versions.LWS_IMAGE_TAG,
                                  "pullPolicy": "IfNotPresent"}},
            "nodeSelector": {NODE_ROLE_LABEL: "system"},
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                          "limits": {"memory": "1Gi"}},
        }
