"""Account-wide checks: the CDK bootstrap, the pinned Bottlerocket AMI, the pinned EKS
add-on versions and the Lambda concurrency the deploy's custom resources need."""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import ClientError

from .. import versions
from ..config import EnvironmentConfig
from ..install_order import (
    KUBECTL_LAMBDA_EXECUTIONS,
    KUBECTL_RESOURCES_IN_FLIGHT,
    LAMBDA_CONCURRENCY_NEEDED,
    RELEASES_IN_FLIGHT,
)
from .aws import ClientFactory, CouldNotCheck, call
from .report import Row, Status

BOOTSTRAP_QUALIFIER = "hnb659fds"  # the CDK default; the app uses the default synthesizer
BOOTSTRAP_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
# Every synthesized template carries aws-cdk-lib's CheckBootstrapVersion rule, which
# refuses bootstrap stacks older than this ("CDK bootstrap stack version 6 required"), so
# CloudFormation would reject the first stack. A test reads the rule from the snapshots.
MIN_BOOTSTRAP_VERSION = 6

# Service Quotas, service `lambda`: "Concurrent executions".
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"

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


def check_lambda_concurrency(target: Target) -> list[Row]:
    """The account's Lambda concurrency against what the cluster stack's kubectl custom
    resources hold at once (vllm_eks/install_order.py). Reserved concurrency of other
    functions is not available to them: the unreserved value counts when AWS reports it."""
    what = "Lambda concurrency"
    region = target.config.region
    limit = call(target.client("lambda"), "get_account_settings").get("AccountLimit", {})
    total = limit.get("ConcurrentExecutions")
    if total is None:
        raise CouldNotCheck("lambda:GetAccountSettings returned no ConcurrentExecutions")
    unreserved = limit.get("UnreservedConcurrentExecutions")
    available = total if unreserved is None else unreserved
    have = (f"{available} concurrent executions" if unreserved is None
            else f"{available} unreserved concurrent executions (quota {total})")
    need = LAMBDA_CONCURRENCY_NEEDED
    if available < need:
        desired = total - available + need  # what other functions reserve stays reserved
        return [Row(Status.PROBLEM, what,
                    f"the account has {have} in {region}; the deploy needs {need}: the "
                    f"cluster stack installs up to {RELEASES_IN_FLIGHT} Helm releases at "
                    f"once and has up to {KUBECTL_RESOURCES_IN_FLIGHT} kubectl custom "
                    f"resources in flight, each holding {KUBECTL_LAMBDA_EXECUTIONS} "
                    "concurrent Lambda executions, so its custom resources would be "
                    "throttled and a Helm release would fail half-way",
                    f"request a quota increase for Concurrent executions "
                    f"({LAMBDA_CONCURRENCY_QUOTA}) to at least {desired}: aws service-quotas "
                    f"request-service-quota-increase --service-code lambda --quota-code "
                    f"{LAMBDA_CONCURRENCY_QUOTA} --desired-value {desired} --region {region}; "
                    "or free reserved concurrency of other functions (aws lambda "
                    "delete-function-concurrency --function-name <name>)")]
    return [Row(Status.OK, what, f"{have} in {region}; the deploy needs {need} (kubectl "
                                 "custom resources in flight at once)")]
