"""SecretsStoreCsi: Secrets Manager secrets reach pods as files, never as manifests."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IDependable

from .. import versions
from .helm import pinned_chart

NAMESPACE = "kube-system"
# Every node, GPU nodes included (their taint would otherwise keep the DaemonSets off,
# and a vLLM pod mounting a secret would wait forever).
TOLERATE_EVERYTHING = [{"operator": "Exists"}]
ROTATION_POLL_INTERVAL = "2m"


@dataclass(frozen=True, kw_only=True)
class SecretsStoreCsiProps:
    cluster: eks.ICluster  # both charts are installed here, in kube-system
    region: str  # given to the AWS provider: its pods cannot reach the instance metadata service
    # Both charts install after these: nodes able to run pods. The driver's chart applies
    # its CRDs from a pre-install hook Job, and with no node a DaemonSet has no pods, so
    # Helm's wait would check nothing.
    after: tuple[IDependable, ...] = ()


class SecretsStoreCsi(Construct):
    """The Secrets Store CSI driver (secret rotation on, no syncing into Kubernetes
    Secrets) and its AWS provider, on every node. Pods read secrets through a
    SecretProviderClass with `usePodIdentity: "true"`, using their own Pod Identity role.

    Hooks a subclass may override: `driver_values()`, `provider_values()`.
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: SecretsStoreCsiProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        cluster = props.cluster
        self.driver = pinned_chart(
            self, "Driver", cluster=cluster, chart="secrets-store-csi-driver",
            release="csi-secrets-store",
            repository=versions.SECRETS_STORE_CSI_CHART_REPOSITORY,
            version=versions.SECRETS_STORE_CSI_CHART_VERSION, namespace=NAMESPACE,
            values=self.driver_values(),
        )
        self.provider = pinned_chart(
            self, "AwsProvider", cluster=cluster, chart="secrets-store-csi-driver-provider-aws",
            release="secrets-provider-aws",
            repository=versions.SECRETS_STORE_AWS_PROVIDER_CHART_REPOSITORY,
            version=versions.SECRETS_STORE_AWS_PROVIDER_CHART_VERSION, namespace=NAMESPACE,
            values=self.provider_values(),
        )
        # No order between the two: the provider registers its socket in a host directory
        # the driver reads when a pod mounts a volume, not at install, and neither chart
        # has a webhook.
        for chart in (self.driver, self.provider):
            if props.after:
                chart.node.add_dependency(*props.after)

    def driver_values(self) -> dict:
        return {
            # Secrets stay files in the pod: no copy into etcd as a Kubernetes Secret.
            "syncSecret": {"enabled": False},
            # A value changed in Secrets Manager reaches the mounted file within the poll
            # interval, without a redeploy.
            "enableSecretRotation": True,
            "rotationPollInterval": ROTATION_POLL_INTERVAL,
            # The AWS provider (since 2026-03) takes the pod's Pod Identity token from the
            # driver; without this audience every mount fails.
            "tokenRequests": [{"audience": "pods.eks.amazonaws.com"}],
            "linux": {"tolerations": TOLERATE_EVERYTHING},
        }

    def provider_values(self) -> dict:
        return {
            "secrets-store-csi-driver": {"install": False},  # installed above, pinned
            "awsRegion": self.props.region,  # the node's IMDS is out of reach (hop limit 1)
            "tolerations": TOLERATE_EVERYTHING,
        }
