"""Helm releases: every chart the cluster runs is installed through `pinned_chart`."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct


def pinned_chart(scope: Construct, construct_id: str, *, cluster: eks.ICluster, chart: str,
                 repository: str, version: str, namespace: str, values: dict | None = None,
                 release: str | None = None, skip_crds: bool = False) -> eks.HelmChart:
    """A Helm release at a pinned version (from versions.py) that deploys only once it is
    up (`wait`), within 10 of the kubectl Lambda's 15 minutes. A namespace other than
    kube-system is created with the release."""
    return eks.HelmChart(
        scope, construct_id, cluster=cluster, chart=chart, release=release,
        repository=repository, version=version, namespace=namespace,
        create_namespace=namespace != "kube-system", skip_crds=skip_crds,
        wait=True, timeout=cdk.Duration.minutes(10), values=values,
    )
