"""Two environments in one account and region never touch each other: `-c cluster_name`
derives every stack name and every explicit physical name, and the default environment
keeps the stack names users deploy by (`cdk deploy VllmProdStack`)."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from vllm_eks.config import EnvironmentConfig
from vllm_eks.nag import enable_nag
from vllm_eks.stacks import build_environment

from .support import project_context, render_intrinsics

DEFAULT_STACKS = {"VllmNetworkStack", "VllmModelStoreStack", "VllmClusterStack",
                  "VllmProdStack"}


def physical_names(template: dict) -> set[str]:
    """Every name a resource asks AWS for: properties named `...Name` (or `Name`), as
    their text; a name built with intrinsics (`Fn::Join` of a Ref and a literal) as its
    rendered text (two environments' differ in the literal part, or share it)."""
    names: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if key.endswith("Name") and key not in NOT_NAMES:
            rendered = render_intrinsics(value)
            if isinstance(rendered, str):
                # A bare reference (`{"Ref": "GpuCluster"}`) names another resource of
                # the same environment, not a name chosen here.
                if re.sub(r"\$\{[^}]+\}", "", rendered):
                    names.add(rendered)
                return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)

    for resource in template["Resources"].values():
        walk(resource.get("Properties", {}))
    return names


# Property keys ending in "Name" that are not physical names of this environment's
# resources (Kubernetes objects live in the environment's own cluster; AWS names of
# things we do not create; values that are the same everywhere by design).
NOT_NAMES = {
    "AddonName", "ServiceName", "DeviceName", "AttributeName", "MetricName",
    "PolicyName",  # an inline policy's name, unique only within its own role
    "iam:AWSServiceName",  # a condition value: the AWS service, not a resource
    "ObjectName",  # a Kubernetes object, in the environment's own cluster
}


@pytest.fixture(scope="module")
def two_environments(tmp_path_factory):
    app = cdk.App(context=project_context(), outdir=str(tmp_path_factory.mktemp("two")))
    configs = [EnvironmentConfig.from_context({}.get),
               EnvironmentConfig.from_context({"cluster_name": "team-b"}.get)]
    stacks = [build_environment(app, config) for config in configs]
    enable_nag(app)
    assembly = app.synth()
    return stacks, assembly


def test_the_default_environment_keeps_its_stack_names(two_environments):
    (default, _), _ = two_environments
    assert {stack.stack_name for stack in default.all()} == DEFAULT_STACKS


def test_another_environment_has_stacks_of_its_own(two_environments):
    (default, team_b), _ = two_environments
    names = {stack.stack_name for stack in team_b.all()}
    assert names == {f"{name}-team-b" for name in DEFAULT_STACKS}
    assert not names & {stack.stack_name for stack in default.all()}


def test_no_physical_name_is_shared(two_environments):
    (default, team_b), assembly = two_environments

    def names_of(env) -> set[str]:
        found: set[str] = set()
        for stack in env.all():
            template = assembly.get_stack_by_name(stack.stack_name).template
            found |= physical_names(template)
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    found.add(export)
        return found

    first, second = names_of(default), names_of(team_b)
    assert "vllm-eks" in first and "team-b" in second  # the cluster names were seen
    assert not first & second, first & second


def test_the_name_check_sees_a_shared_name():
    template = {"Resources": {
        "A": {"Properties": {"FunctionName": "shared"}},
        "B": {"Properties": {"AddonName": "vpc-cni"}},
        "C": {"Properties": {"LogGroupName": {"Fn::Join": ["", ["/aws/", {"Ref": "X"}]]}}}}}
    assert physical_names(template) == {"shared", "/aws/${Ref:X}"}
