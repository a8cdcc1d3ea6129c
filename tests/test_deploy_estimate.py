"""The deploy estimate: the critical path through the synthesized templates."""

from __future__ import annotations

import re

from vllm_eks.deploy_estimate import (
    CREATE_SECONDS,
    DEFAULT_CREATE_SECONDS,
    NO_POD_RELEASE_SECONDS,
    STACK_OVERHEAD_SECONDS,
    create_seconds,
    deploy_estimate,
    first_token,
    load_templates,
    stack_estimate,
    stack_order,
    total_seconds,
)
from vllm_eks.models.catalog import get_model
from vllm_eks.models.instances import GPU_INSTANCES as INSTANCES
from vllm_eks.models.sources import ModelSource, cold_start

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
    # The critical path: the cluster, its system nodes, then one lane of releases (the
    # Secrets Store driver or provider, kube-prometheus-stack, dcgm-exporter), not eight.
    assert kinds.index("AWS::EKS::Cluster") < kinds.index("AWS::EKS::Nodegroup")
    charts = [resource["Properties"]["Chart"] for name, resource in
              load_templates(default_env.outdir)["VllmClusterStack"]["Resources"].items()
              if name in {n for n, _, _ in cluster.path}
              and resource["Type"] == "Custom::AWSCDK-EKS-HelmChart"]
    assert charts[-2:] == ["kube-prometheus-stack", "dcgm-exporter"]
    assert len(charts) == 3
    total = total_seconds(estimates)
    assert total == sum(e.seconds for e in estimates) + 4 * STACK_OVERHEAD_SECONDS
    assert 25 * 60 < total < 33 * 60


def test_releases_that_start_no_pod_take_as_long_as_a_manifest():
    def release(chart: str) -> dict:
        return {"Type": "Custom::AWSCDK-EKS-HelmChart", "Properties": {"Chart": chart}}

    assert create_seconds(release("dcgm-exporter")) == NO_POD_RELEASE_SECONDS
    assert create_seconds(release("karpenter-crd")) == NO_POD_RELEASE_SECONDS
    assert create_seconds(release("keda")) == CREATE_SECONDS["Custom::AWSCDK-EKS-HelmChart"]
    assert create_seconds(release("kube-prometheus-stack")) == 180


def test_first_token_counts_staging_and_the_node_side_by_side():
    model = get_model("deepseek-r1-distill-llama-8b")
    instance = INSTANCES["g6e.xlarge"]
    parts = first_token(1800, model, ModelSource.S3, instance)
    start = cold_start(model, ModelSource.S3, instance)
    assert parts.node == start.node_launch + start.image
    assert parts.load == start.warm_node + start.compile  # the first start compiles
    assert parts.total == 1800 + max(parts.staging, parts.node) + parts.load
    # From Hugging Face directly: nothing staged, the node alone counts.
    direct = first_token(1800, model, ModelSource.HF, instance)
    assert direct.staging == 0
    assert direct.total == 1800 + direct.node + direct.load
    # DeepSeek-R1 (688 GB): staging outlasts the node.
    r1 = first_token(1800, get_model("deepseek-r1"), ModelSource.S3, INSTANCES["p5en.48xlarge"])
    assert r1.staging > r1.node
    assert r1.total == 1800 + r1.staging + r1.load


def test_the_readme_states_the_estimate_the_code_makes(default_env, capsys):
    import runpy

    module = runpy.run_path(str(REPO / "scripts" / "deploy_estimate.py"), run_name="x")
    assert module["main"]([str(default_env.outdir)]) == 0
    printed = capsys.readouterr().out
    estimates = deploy_estimate(load_templates(default_env.outdir),
                                stack_order(default_env.outdir))
    deploy = f"{total_seconds(estimates) / 60:.1f}"
    first = re.search(r"Time to first token.*\n(?:.*\n)*?  total +([0-9.]+) min", printed)
    assert first, printed
    readme = (REPO / "README.md").read_text()
    for minutes in (deploy, first.group(1)):
        assert f"about {minutes} minutes" in readme, f"README should say: about {minutes} minutes"


def test_the_script_needs_a_synthesized_assembly(tmp_path, capsys):
    import runpy

    module = runpy.run_path(str(REPO / "scripts" / "deploy_estimate.py"), run_name="x")
    assert module["main"]([str(tmp_path)]) == 1
    assert "run `make synth` first" in capsys.readouterr().err
