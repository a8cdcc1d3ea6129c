"""The deploy estimate: the critical path through the synthesized templates."""

from __future__ import annotations

import pytest

from vllm_eks.deploy_estimate import (
    CREATE_SECONDS,
    DEFAULT_CREATE_SECONDS,
    STACK_OVERHEAD_SECONDS,
    deploy_estimate,
    load_templates,
    render,
    stack_estimate,
    stack_order,
    total_seconds,
)

from .support import REPO


def test_the_longest_chain_counts_depends_on_refs_getatts_and_subs():
    template = {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC"},
        "Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {"V": {"Ref": "Vpc"}}},
        "Quick": {"Type": "AWS::SQS::Queue", "DependsOn": "Vpc"},
        "Nodes": {"Type": "AWS::EKS::Nodegroup",
                  "Properties": {"C": {"Fn::GetAtt": ["Cluster", "Arn"]}}},
        "Chart": {"Type": "Custom::AWSCDK-EKS-HelmChart",
                  "Properties": {"Chart": "x", "S": {"Fn::Sub": "${Nodes.Arn}/${Quick}"}}},
    }}
    estimate = stack_estimate("S", template)
    assert [name for name, _, _ in estimate.path] == ["Vpc", "Cluster", "Nodes", "Chart"]
    assert estimate.seconds == (DEFAULT_CREATE_SECONDS + CREATE_SECONDS["AWS::EKS::Cluster"]
                                + CREATE_SECONDS["AWS::EKS::Nodegroup"]
                                + CREATE_SECONDS["Custom::AWSCDK-EKS-HelmChart"])


def test_the_default_environment_deploys_stack_after_stack(default_env):
    order = stack_order(default_env.outdir)
    assert order == ["VllmNetworkStack", "VllmModelStoreStack", "VllmClusterStack",
                     "VllmProdStack"]
    estimates = deploy_estimate(load_templates(default_env.outdir), order)
    cluster = estimates[2]
    kinds = [kind for _, kind, _ in cluster.path]
    # Today's critical path: the cluster, its system nodes, then the Helm releases in a row.
    assert kinds.index("AWS::EKS::Cluster") < kinds.index("AWS::EKS::Nodegroup")
    assert kinds.count("Custom::AWSCDK-EKS-HelmChart") >= 6
    total = total_seconds(estimates)
    assert total == sum(e.seconds for e in estimates) + 4 * STACK_OVERHEAD_SECONDS
    assert 30 * 60 < total < 45 * 60


def test_the_readme_states_the_estimate_the_code_makes(default_env):
    estimates = deploy_estimate(load_templates(default_env.outdir),
                                stack_order(default_env.outdir))
    total_line = render(estimates).splitlines()[-1].strip()
    assert total_line.startswith("total")
    readme = (REPO / "README.md").read_text()
    minutes = f"{total_seconds(estimates) / 60:.1f} minutes"
    assert f"about {minutes}" in readme, f"README should say: about {minutes}"


def test_the_script_needs_a_synthesized_assembly(tmp_path, capsys):
    import runpy

    module = runpy.run_path(str(REPO / "scripts" / "deploy_estimate.py"), run_name="x")
    assert module["main"]([str(tmp_path)]) == 1
    assert "run `make synth` first" in capsys.readouterr().err
