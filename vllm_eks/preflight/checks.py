"""Account-wide checks: the CDK bootstrap, the pinned Bottlerocket AMI and the pinned EKS
add-on versions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .. import versions
from ..config import EnvironmentConfig
from .aws import ClientFactory, CouldNotCheck, call
from .report import Row, Status

BOOTSTRAP_QUALIFIER = "hnb659fds"  # the CDK default; the app uses the default synthesizer
BOOTSTRAP_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# Every synthesized template carries aws-cdk-lib's CheckBootstrapVersion rule, which
# refuses bootstrap stacks older than this ("CDK bootstrap stack version 6 required"), so
# CloudFormation would reject the first stack. A test reads the rule from the snapshots.
MIN_BOOTSTRAP_VERSION = 6

# Add-ons installed only with a -c option; the others are always installed.
CONDITIONAL_ADDONS = {
    "amazon-cloudwatch-observability": lambda config: config.observability.cloudwatch,
}


@dataclass(frozen=True)
class Target:
    """What the checks look at: the environment, the clients and the caller's account."""

    config: EnvironmentConfig
    clients: ClientFactory
    account: str

    def client(self, service: str):
        return self.clients.client(service)


def check_bootstrap(target: Target) -> list[Row]:
    what = "CDK bootstrap"
    where = f"aws://{target.account}/{target.config.region}"
    fix = f"npx cdk bootstrap {where} (from this repository, so the pinned CDK CLI runs)"
    try:
        response = call(target.client("ssm"), "get_parameter", Name=BOOTSTRAP_PARAMETER,
                        expected=("ParameterNotFound",))
    except ClientError:
        return [Row(Status.PROBLEM, what,
                    f"{where} is not bootstrapped ({BOOTSTRAP_PARAMETER} does not exist): "
                    "cdk deploy has no assets bucket or deploy roles", fix)]
    value = response["Parameter"]["Value"]
    if not value.isdigit() or int(value) < MIN_BOOTSTRAP_VERSION:
        return [Row(Status.PROBLEM, what,
                    f"{where} has bootstrap version {value}; the templates require at least "
                    f"{MIN_BOOTSTRAP_VERSION} (CheckBootstrapVersion rule)", fix)]
    return [Row(Status.OK, what, f"{where} bootstrapped, version {value} "
                                 f"(at least {MIN_BOOTSTRAP_VERSION} required)")]


def bottlerocket_ami_parameter(release: str) -> str:
    """The public SSM parameter of the NVIDIA x86_64 AMI of a Bottlerocket release. The
    path segment has no `v` (Karpenter trims it the same way when it resolves the
    `bottlerocket@v1.68.1` alias)."""
    return (f"/aws/service/bottlerocket/aws-k8s-{versions.KUBERNETES_MINOR}-nvidia/x86_64/"
            f"{release.removeprefix('v')}/image_id")


def check_bottlerocket_ami(target: Target) -> list[Row]:
    what = "Bottlerocket AMI"
    release = versions.BOTTLEROCKET_VERSION
    name = bottlerocket_ami_parameter(release)
    ssm = target.client("ssm")
    try:
        response = call(ssm, "get_parameter", Name=name, expected=("ParameterNotFound",))
    except ClientError:
        newest = ""
        try:
            latest = call(ssm, "get_parameter", Name=name.replace(
                f"/{release.removeprefix('v')}/image_id", "/latest/image_version"))
            newest = f" (newest published: {latest['Parameter']['Value']})"
        except CouldNotCheck:
            pass
        return [Row(Status.PROBLEM, what,
                    f"Bottlerocket {release} has no aws-k8s-{versions.KUBERNETES_MINOR}-nvidia "
                    f"x86_64 AMI in {target.config.region} ({name} does not exist): Karpenter "
                    "could not launch any GPU node",
                    f"set BOTTLEROCKET_VERSION in vllm_eks/versions.py to a published "
                    f"release{newest}")]
    return [Row(Status.OK, what, f"Bottlerocket {release} aws-k8s-{versions.KUBERNETES_MINOR}"
                                 f"-nvidia x86_64: {response['Parameter']['Value']}")]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def check_addons(target: Target) -> list[Row]:
    what = "EKS add-ons"
    minor = versions.KUBERNETES_MINOR
    eks = target.client("eks")
    pinned = {name: version for name, version in versions.EKS_ADDON_VERSIONS.items()
              if CONDITIONAL_ADDONS.get(name, lambda _config: True)(target.config)}
    missing = []
    for name, version in pinned.items():
        published: list[str] = []
        token = None
        while True:
            page = call(eks, "describe_addon_versions", kubernetesVersion=minor,
                        addonName=name, **({"nextToken": token} if token else {}))
            published += [v["addonVersion"] for addon in page.get("addons", [])
                          for v in addon.get("addonVersions", [])]
            token = page.get("nextToken")
            if not token:
                break
        if version not in published:
            newest = (f"newest for {minor}: {max(published, key=_version_key)}" if published
                      else f"not published for {minor} at all")
            missing.append(f"{name} {version} ({newest})")
    if missing:
        return [Row(Status.PROBLEM, what,
                    f"not published for Kubernetes {minor} in {target.config.region}: "
                    + "; ".join(missing) + ": the cluster stack would fail creating it",
                    "pin a published version in EKS_ADDON_VERSIONS (vllm_eks/versions.py); "
                    f"list them with aws eks describe-addon-versions --kubernetes-version "
                    f"{minor} --addon-name <name>")]
    return [Row(Status.OK, what, f"all {len(pinned)} pinned versions are published for "
                                 f"Kubernetes {minor}: {', '.join(pinned)}")]
