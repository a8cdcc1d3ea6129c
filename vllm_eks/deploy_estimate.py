"""How long `cdk deploy VllmProdStack` takes on a new account: the critical path of the
synthesized templates, from typical create times per resource type.

CloudFormation creates a resource once everything it depends on exists: its DependsOn,
and the resources its properties reference (Ref, Fn::GetAtt, Fn::Sub). A stack's create
time is its longest such chain. `cdk deploy` deploys the stacks one after another in
dependency order (its default `--concurrency 1`), so the environment's deploy time is the
sum of its stacks' chains plus a per-stack overhead. No CDK imports: it reads templates.

Every time is a named constant; they are typical figures observed on us-east-1 (the
multi-model issue's estimates: EKS cluster ~9 min, managed node group ~4 min, NAT gateway
~1.5 min, EFS mount target ~1.5 min, a Helm release that waits for its pods ~1.5 min,
kube-prometheus-stack ~3 min), not guarantees.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models.profile import ModelProfile
from .models.sources import ModelSource, cold_start, staging_seconds
from .models.instances import GpuInstance

# Seconds to create one resource of a type, by CloudFormation type (typical, us-east-1).
CREATE_SECONDS: dict[str, int] = {
    "AWS::EKS::Cluster": 540,
    "AWS::EKS::Nodegroup": 240,
    "AWS::EC2::NatGateway": 90,
    "AWS::EFS::MountTarget": 90,
    "AWS::EKS::Addon": 60,
    "AWS::EC2::VPCEndpoint": 60,
    "AWS::EFS::FileSystem": 10,
    "AWS::Lambda::Function": 10,
    "AWS::IAM::Role": 15,
    "AWS::IAM::Policy": 15,
    "AWS::EKS::PodIdentityAssociation": 10,
    "AWS::EKS::AccessEntry": 10,
    "Custom::AWSCDK-EKS-HelmChart": 90,  # a release that waits for its pods
    "Custom::AWSCDK-EKS-KubernetesResource": 15,  # kubectl apply
    "Custom::AWSCDK-EKS-KubernetesObjectValue": 120,  # waits for the ALB's hostname
    "Custom::VllmTeardownGuard": 10,
}
# Anything else (subnets, routes, security groups, secrets, log groups...): seconds.
DEFAULT_CREATE_SECONDS = 5
# Helm releases that take another time than the default (the chart name in their
# properties): kube-prometheus-stack waits for Grafana, the operator, kube-state-metrics
# and node-exporter; the others start no pod while the environment deploys (CRDs only, or
# DaemonSets on GPU nodes, of which there is none yet), so Helm's wait returns once the
# objects are applied, like a manifest.
NO_POD_RELEASE_SECONDS = 20
HELM_CHART_SECONDS: dict[str, int] = {
    "kube-prometheus-stack": 180,
    "karpenter-crd": NO_POD_RELEASE_SECONDS,
    "dcgm-exporter": NO_POD_RELEASE_SECONDS,
    "aws-efa-k8s-device-plugin": NO_POD_RELEASE_SECONDS,
}
# Per stack: CloudFormation's changeset, the CDK CLI's asset publishing and polling.
STACK_OVERHEAD_SECONDS = 60

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


@dataclass(frozen=True)
class StackEstimate:
    """One stack's longest chain of creates: its seconds and the resources on it."""

    stack: str
    seconds: int
    path: tuple[tuple[str, str, int], ...]  # (logical ID, type, seconds), in create order


def create_seconds(resource: dict) -> int:
    """The typical create time of one template resource."""
    kind = resource.get("Type", "")
    if kind == "Custom::AWSCDK-EKS-HelmChart":
        chart = resource.get("Properties", {}).get("Chart", "")
        return HELM_CHART_SECONDS.get(chart, CREATE_SECONDS[kind])
    return CREATE_SECONDS.get(kind, DEFAULT_CREATE_SECONDS)


def dependencies(resource: dict, resources: dict[str, Any]) -> set[str]:
    """The resources of the same template this one waits for: DependsOn, Ref, GetAtt
    and the ${...} of Fn::Sub."""
    found: set[str] = set()
    depends = resource.get("DependsOn", [])
    found.update([depends] if isinstance(depends, str) else depends)

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Ref" in value and isinstance(value["Ref"], str):
                found.add(value["Ref"])
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                found.add(target[0] if isinstance(target, list) else target.split(".")[0])
            if "Fn::Sub" in value:
                text = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
                found.update(_REFERENCE.findall(text))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(resource.get("Properties", {}))
    return {name for name in found if name in resources}


def stack_estimate(stack: str, template: dict) -> StackEstimate:
    """The longest chain of creates in one template (a DAG: CloudFormation refuses cycles)."""
    resources = template.get("Resources", {})
    finish: dict[str, tuple[int, tuple[tuple[str, str, int], ...]]] = {}

    def done(name: str) -> tuple[int, tuple[tuple[str, str, int], ...]]:
        if name not in finish:
            resource = resources[name]
            before = max((done(dep) for dep in dependencies(resource, resources)),
                         default=(0, ()), key=lambda item: item[0])
            own = create_seconds(resource)
            finish[name] = (before[0] + own, (*before[1], (name, resource["Type"], own)))
        return finish[name]

    longest = max((done(name) for name in resources), default=(0, ()),
                  key=lambda item: item[0])
    return StackEstimate(stack=stack, seconds=longest[0], path=longest[1])


def deploy_estimate(templates: dict[str, dict], order: list[str]) -> list[StackEstimate]:
    """Every stack's estimate, in the order `cdk deploy` creates them."""
    return [stack_estimate(stack, templates[stack]) for stack in order]


def total_seconds(estimates: list[StackEstimate]) -> int:
    return sum(e.seconds + STACK_OVERHEAD_SECONDS for e in estimates)


def render(estimates: list[StackEstimate], *, top: int = 6) -> str:
    """A line per stack (and its slowest resources on the path), then the total."""
    lines = ["vllm-eks deploy estimate (critical path, typical create times, stacks one "
             "after another):"]
    for e in estimates:
        lines.append(f"  {e.stack:<22} {e.seconds / 60:5.1f} min  (+{STACK_OVERHEAD_SECONDS} s "
                     "stack overhead)")
        helm = sum(kind == "Custom::AWSCDK-EKS-HelmChart" for _, kind, _ in e.path)
        if helm > 1:
            lines.append(f"      {helm} Helm releases one after another on this path")
        slowest = sorted(e.path, key=lambda item: -item[2])[:top]
        for name, kind, seconds in sorted(slowest, key=e.path.index):
            lines.append(f"      {seconds / 60:4.1f} min  {kind}  {name}")
    lines.append(f"  total                  {total_seconds(estimates) / 60:5.1f} min")
    return "\n".join(lines)


def load_templates(outdir: Path) -> dict[str, dict]:
    return {p.name.removesuffix(".template.json"): json.loads(p.read_text())
            for p in sorted(outdir.glob("*.template.json"))}


def stack_order(outdir: Path) -> list[str]:
    """The stacks of a cloud assembly in the order `cdk deploy` creates them (each after
    the stacks it depends on; asset artifacts left out)."""
    artifacts = json.loads((outdir / "manifest.json").read_text())["artifacts"]
    stacks = {name: [d for d in artifact.get("dependencies", []) if d in artifacts
                     and artifacts[d]["type"] == "aws:cloudformation:stack"]
              for name, artifact in artifacts.items()
              if artifact["type"] == "aws:cloudformation:stack"}
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dependency in stacks[name]:
                visit(dependency)
            order.append(name)

    for name in sorted(stacks):
        visit(name)
    return order


@dataclass(frozen=True, kw_only=True)
class FirstToken:
    """A new environment's time to first token in parts (seconds): the deploy, then the
    staging Job and the first GPU node side by side (both start when the prod stack
    applies the model), then the replica's load on that node."""

    deploy: int
    staging: int  # Hugging Face -> S3 (and EFS), 0 for -c model_source=hf
    node: int  # Karpenter's GPU node: launch, then the vLLM image
    load: int  # pod start, weights, engine start with an empty compile cache

    @property
    def total(self) -> int:
        return self.deploy + max(self.staging, self.node) + self.load


def first_token(deploy_seconds: int, model: ModelProfile, source: ModelSource,
                instance: GpuInstance, nodes: int = 1, *,
                parallel_image_pull: bool = False) -> FirstToken:
    """Typical figures from models/sources.py; the first start of a placement compiles
    (its compile cache is empty)."""
    parts = cold_start(model, source, instance, nodes, parallel_image_pull=parallel_image_pull)
    return FirstToken(deploy=deploy_seconds, staging=staging_seconds(model, source),
                      node=parts.node_launch + parts.image,
                      load=parts.warm_node + parts.compile)


def render_first_token(model_key: str, instance_type: str, parts: FirstToken) -> str:
    def minutes(seconds: int) -> str:
        return f"{seconds / 60:5.1f} min"

    waits = "staging" if parts.staging >= parts.node else "GPU node and image"
    return "\n".join([
        f"Time to first token of a new environment ({model_key} on {instance_type}):",
        f"  deploy (above)           {minutes(parts.deploy)}",
        f"  weights staging          {minutes(parts.staging)}  (side by side with the "
        "GPU node:",
        f"  GPU node, vLLM image     {minutes(parts.node)}   the {waits} counts)",
        f"  load, first compile      {minutes(parts.load)}",
        f"  total                    {minutes(parts.total)}",
    ])


def prerequisites(template: dict) -> dict[str, set[str]]:
    """Every resource of a template with all the resources it waits for, directly or
    through others (the transitive closure of `dependencies`)."""
    resources = template.get("Resources", {})
    direct = {name: dependencies(resource, resources) for name, resource in resources.items()}
    closure: dict[str, set[str]] = {}

    def before(name: str) -> set[str]:
        if name not in closure:
            found: set[str] = set()
            for dep in direct[name]:
                found |= {dep, *before(dep)}
            closure[name] = found
        return closure[name]

    for name in resources:
        before(name)
    return closure


def max_in_flight(template: dict, types: set[str]) -> int:
    """The most resources of `types` CloudFormation can ever create at once in a template,
    whatever their create times: the largest set of them none of which waits for another
    (by Dilworth's theorem, their count minus a maximum matching of "a before b")."""
    after = prerequisites(template)
    resources = template.get("Resources", {})
    chosen = [name for name in resources if resources[name]["Type"] in types]
    later = {a: [b for b in chosen if a in after[b]] for a in chosen}
    matched: dict[str, str] = {}  # b -> the a matched to it

    def augment(a: str, seen: set[str]) -> bool:
        for b in later[a]:
            if b not in seen:
                seen.add(b)
                if b not in matched or augment(matched[b], seen):
                    matched[b] = a
                    return True
        return False

    return len(chosen) - sum(augment(a, set()) for a in chosen)
