"""Karpenter: controller, IAM scoping, interruption handling, NodePools and EC2NodeClasses."""

from __future__ import annotations

import json

import jsonschema
import pytest

from vllm_eks import versions
from vllm_eks.config import ConfigError, EnvironmentConfig
from vllm_eks.k8s_charts.model_pods import app_name
from vllm_eks.stacks import CLUSTER_STACK_ID

from .crd_validation import has_crd, validate_custom_resource
from .support import render_intrinsics, synth_environment

CLUSTER = CLUSTER_STACK_ID
HELM = "Custom::AWSCDK-EKS-HelmChart"


def custom_resources(env) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in env.manifests()
            if o["apiVersion"].startswith("karpenter.")}


def helm_charts(env) -> dict[str, tuple[str, dict]]:
    return {r["Properties"]["Chart"]: (logical_id, r)
            for logical_id, r in env.resources(CLUSTER, HELM).items()}


def controller_statements(env) -> list[dict]:
    policies = env.resources(CLUSTER, "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("KarpenterControllerPolicy")]
    return policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_every_custom_resource_is_valid_against_its_upstream_crd(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    objects = [o for o in env.manifests() if o["apiVersion"].startswith("karpenter.")]
    assert {(o["kind"]) for o in objects} == {"EC2NodeClass", "NodePool"}
    for obj in objects:
        assert has_crd(obj), obj["kind"]
        validate_custom_resource(obj)


def test_crd_validation_rejects_a_misspelled_field(default_env):
    pool = custom_resources(default_env)[("NodePool", "gpu")]
    broken = json.loads(json.dumps(pool))
    broken["spec"]["disruption"]["consolidateAfer"] = broken["spec"]["disruption"].pop(
        "consolidateAfter")
    with pytest.raises(jsonschema.ValidationError, match="consolidateAfer"):
        validate_custom_resource(broken)


def test_gpu_node_pool_follows_the_plan(default_env):
    plan = default_env.config.models[0].plan
    pool = custom_resources(default_env)[("NodePool", "gpu")]["spec"]
    requirements = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    types = requirements["node.kubernetes.io/instance-type"]
    assert types[0] == plan.instance_type
    assert set(types[1:]) <= {p.instance.instance_type for p in plan.alternatives}
    assert len(types) > 1  # a shortage of one type falls back to the next
    assert requirements["karpenter.sh/capacity-type"] == ["on-demand"]
    assert pool["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert pool["limits"] == {"nvidia.com/gpu": str(default_env.config.gpu_limit)}
    assert pool["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert pool["disruption"]["budgets"] == [{"nodes": "1"}]
    assert pool["template"]["spec"]["expireAfter"] == "720h"
    assert pool["template"]["spec"]["nodeClassRef"]["name"] == "gpu"


def test_deepseek_gpu_pool_is_h200_only(deepseek_env):
    pool = custom_resources(deepseek_env)[("NodePool", "gpu")]["spec"]
    requirements = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ["p5en.48xlarge"]
    # max_replicas 2 plus one surge replica, 8 GPUs each.
    assert pool["limits"] == {"nvidia.com/gpu": "24"}


def test_spot_allows_spot_with_on_demand_fallback(tmp_path):
    env = synth_environment({"capacity": "spot"}, tmp_path)
    pool = custom_resources(env)[("NodePool", "gpu")]["spec"]
    requirements = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["spot", "on-demand"]


def test_gpu_node_class_is_pinned_bottlerocket_with_imdsv2_and_raid0(default_env):
    node_class = custom_resources(default_env)[("EC2NodeClass", "gpu")]["spec"]
    (term,) = node_class["amiSelectorTerms"]
    assert term == {"alias": f"bottlerocket@{versions.BOTTLEROCKET_VERSION}"}
    assert "latest" not in term["alias"]
    assert node_class["metadataOptions"]["httpTokens"] == "required"
    assert node_class["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert node_class["instanceStorePolicy"] == "RAID0"
    volumes = {v["deviceName"]: v["ebs"] for v in node_class["blockDeviceMappings"]}
    assert volumes["/dev/xvdb"]["encrypted"] is True
    # Images, caches and emptyDirs live on the NVMe RAID0: the EBS data volume stays small.
    assert volumes["/dev/xvdb"]["volumeSize"] == "20Gi"
    assert "visible-devices-envvar-when-unprivileged = true" in node_class["userData"]
    cluster = default_env.config.cluster.name
    assert node_class["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]
    assert node_class["role"].startswith("${Ref:KarpenterNodeRole")


def test_controller_charts_are_pinned_and_ordered(default_env):
    charts = helm_charts(default_env)
    crd_id, crds = charts["karpenter-crd"]
    controller_id, controller = charts["karpenter"]
    for chart in (crds, controller):
        assert chart["Properties"]["Version"] == versions.KARPENTER_VERSION
        assert chart["Properties"]["Namespace"] == "kube-system"
    assert controller["Properties"]["SkipCrds"] is True
    assert crd_id in controller["DependsOn"]
    resources = default_env.templates[CLUSTER]["Resources"]
    (pools_id,) = [k for k, r in resources.items()
                   if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
                   and k.startswith("KarpenterNodePools")]
    assert controller_id in resources[pools_id]["DependsOn"]


def test_helm_values_name_the_cluster_and_the_queue(default_env):
    _, controller = helm_charts(default_env)["karpenter"]
    values = json.loads(render_intrinsics(controller["Properties"]["Values"]))
    (queue_id,) = default_env.resources(CLUSTER, "AWS::SQS::Queue")
    assert values["settings"] == {"clusterName": default_env.config.cluster.name,
                                  "interruptionQueue": f"${{GetAtt:{queue_id}.QueueName}}"}
    assert values["replicas"] == 2
    assert values["nodeSelector"] == {"vllm-eks.io/node-role": "system"}
    assert values["podDisruptionBudget"]["maxUnavailable"] == 1


def test_destructive_ec2_actions_are_tag_scoped(default_env):
    for statement in controller_statements(default_env):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [
            statement["Resource"]]
        mutating = [a for a in actions if a.startswith("ec2:") and not a.startswith(
            "ec2:Describe")]
        if any(r == "*" for r in resources):
            assert not mutating, statement["Sid"]
        if {"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate", "ec2:CreateTags"} & set(
                actions):
            condition = json.dumps(statement["Condition"])
            assert "karpenter.sh/nodepool" in condition, statement["Sid"]
            assert f"kubernetes.io/cluster/{default_env.config.cluster.name}" in condition


def test_pass_role_only_for_the_karpenter_node_role(default_env):
    pass_role = [s for s in controller_statements(default_env)
                 if "iam:PassRole" in json.dumps(s["Action"])]
    assert len(pass_role) == 1
    assert pass_role[0]["Resource"]["Fn::GetAtt"][0].startswith("KarpenterNodeRole")
    assert pass_role[0]["Action"] == "iam:PassRole"


def test_controller_identity_is_pod_identity(default_env):
    (association,) = [
        a for a in default_env.resources(CLUSTER, "AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == "karpenter"]
    assert association["Properties"]["Namespace"] == "kube-system"
    role_id = association["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    trust = default_env.templates[CLUSTER]["Resources"][role_id]["Properties"][
        "AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": ["sts:AssumeRole", "sts:TagSession"], "Effect": "Allow",
                      "Principal": {"Service": "pods.eks.amazonaws.com"}}]


def test_node_role_is_registered_as_ec2_linux(default_env):
    entries = [r["Properties"] for r in default_env.resources(
        CLUSTER, "AWS::EKS::AccessEntry").values()]
    (node_entry,) = [e for e in entries if e.get("Type") == "EC2_LINUX"]
    assert node_entry["PrincipalArn"]["Fn::GetAtt"][0].startswith("KarpenterNodeRole")


def test_interruption_queue_and_the_five_rules(default_env):
    (queue,) = default_env.resources(CLUSTER, "AWS::SQS::Queue").values()
    assert queue["Properties"]["MessageRetentionPeriod"] == 300
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policy = json.dumps(default_env.resources(CLUSTER, "AWS::SQS::QueuePolicy"))
    assert '"aws:SecureTransport": "false"' in policy and "events.amazonaws.com" in policy
    patterns = sorted(
        (r["Properties"]["EventPattern"]["source"][0],
         r["Properties"]["EventPattern"]["detail-type"][0])
        for r in default_env.resources(CLUSTER, "AWS::Events::Rule").values())
    assert patterns == [
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.health", "AWS Health Event"),
    ]


# -- bad input -------------------------------------------------------------------------


def test_gpu_limit_below_one_node_is_rejected():
    with pytest.raises(ConfigError, match=r"-c gpu_limit=4 is below the 8 GPUs of one "
                       r"p5en.48xlarge node.*pass -c gpu_limit=8"):
        EnvironmentConfig.from_context({"model": "deepseek-r1", "gpu_limit": "4"}.get)


def test_gpu_limit_must_be_a_number():
    with pytest.raises(ConfigError, match=r"-c gpu_limit='lots' is not a whole number"):
        EnvironmentConfig.from_context({"gpu_limit": "lots"}.get)


def test_gpu_data_volume_is_small_on_instance_store_and_sized_without_it():
    import dataclasses

    from vllm_eks.bottlerocket import gpu_data_volume_gib
    from vllm_eks.models import PlanRequest, get_model, plan

    r1 = plan(PlanRequest(model=get_model("deepseek-r1")))
    assert gpu_data_volume_gib([r1]) == 20  # 30 TB of NVMe per p5en
    no_nvme = dataclasses.replace(r1.chosen.instance, nvme_gb=0)
    without = dataclasses.replace(r1, chosen=dataclasses.replace(r1.chosen, instance=no_nvme))
    assert gpu_data_volume_gib([without]) >= 100 + 688e9 / 2**30  # image + weights
    # One EC2NodeClass serves every model: the largest model's weights size it.
    small = plan(PlanRequest(model=get_model("deepseek-r1-distill-qwen-1.5b")))
    assert gpu_data_volume_gib([small, without]) == gpu_data_volume_gib([without])


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env", "options_env"])
def test_the_gpu_pool_offers_exactly_the_types_the_pods_accept(env_fixture, request):
    """A type in the pool that no pod accepts would launch for nothing; a type a pod
    accepts that the pool never offers is a fallback that cannot happen. The pool offers
    every model's instance types within gpu_limit, each model's pods accept their own,
    and every one hosts the replica as it is (same TP)."""
    env = request.getfixturevalue(env_fixture)
    pool = custom_resources(env)[("NodePool", "gpu")]["spec"]
    requirements = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    offered = requirements["node.kubernetes.io/instance-type"]
    accepted_by_all: list[str] = []
    for model in env.config.models:
        (deployment,) = [o for o in env.manifests() if o["kind"] == "Deployment"
                         and o["metadata"]["name"] == app_name(model.key)]
        (term,) = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        expressions = {e["key"]: e["values"] for e in term["matchExpressions"]}
        accepted = expressions["node.kubernetes.io/instance-type"]
        assert accepted == list(env.config.instance_types(model))
        assert set(expressions["karpenter.sh/capacity-type"]) <= set(
            requirements["karpenter.sh/capacity-type"])
        accepted_by_all += [t for t in accepted if t not in accepted_by_all]
        plan = model.plan
        for placement in (plan.chosen, *plan.alternatives):
            assert placement.tensor_parallel == plan.tensor_parallel
            if placement.instance.instance_type in accepted:
                assert placement.instance.gpu_count <= env.config.model_gpu_limit(model)
                assert env.config.model_gpu_limit(model) <= env.config.gpu_limit
    assert offered == accepted_by_all


@pytest.mark.parametrize("pool", ["gpu", "general"])
def test_karpenter_tags_what_it_creates_with_the_environment(default_env, pool):
    node_class = custom_resources(default_env)[("EC2NodeClass", pool)]["spec"]
    assert node_class["tags"] == {"vllm-eks:pool": pool, "vllm-eks:environment": "vllm-eks"}
