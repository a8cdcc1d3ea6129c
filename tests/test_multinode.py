"""A model larger than one node: DeepSeek-R1 on two p5.48xlarge (8x H100 each) as a
LeaderWorkerSet, read from the synthesized environment."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from vllm_eks import versions
from vllm_eks.k8s_charts.router import MODEL_SELECTOR, ROUTER_LABELS
from vllm_eks.k8s_charts.vllm_lws import LWS_GROUP_KEY_LABEL, LWS_NAME_LABEL
from vllm_eks.models import get_model
from vllm_eks.models.sources import (
    GPU_NODE_LAUNCH_SECONDS,
    IMAGE_PULL_SECONDS,
    ModelSource,
    startup_budget_seconds,
)
from vllm_eks.naming import app_name
from vllm_eks.stacks import CLUSTER_STACK_ID
from vllm_eks.vllm_cli import check_server_args

from .crd_validation import validate_custom_resource

NAME = app_name("deepseek-r1")
HELM = "Custom::AWSCDK-EKS-HelmChart"


def objects(env) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in env.manifests()}


@pytest.fixture(scope="module")
def lws(multinode_env) -> dict:
    return objects(multinode_env)[("LeaderWorkerSet", NAME)]


def template(lws: dict, role: str) -> dict:
    return lws["spec"]["leaderWorkerTemplate"][f"{role}Template"]


def container(lws: dict, role: str) -> dict:
    (found,) = template(lws, role)["spec"]["containers"]
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_plan_is_two_h100_nodes_in_tensor_and_pipeline_parallel(multinode_env):
    (model,) = multinode_env.config.models
    plan = model.plan
    assert (plan.instance_type, plan.nodes, plan.tensor_parallel) == ("p5.48xlarge", 2, 8)
    # max_replicas 2 plus a surge replica, two 8-GPU nodes each: whole groups.
    assert multinode_env.config.gpu_limit == 3 * 2 * 8


def test_no_deployment_but_a_leader_worker_set_that_validates_strictly(multinode_env, lws):
    assert ("Deployment", NAME) not in objects(multinode_env)
    # The LWS against the pinned upstream CRD (strict): test_validators.py, with every other
    # object of this environment. Each pod template as Kubernetes itself would:
    for role in ("leader", "worker"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{role}-0"},
               "spec": template(lws, role)["spec"]}
        kubernetes_validate.validate(pod, f"{versions.KUBERNETES_MINOR}.0", strict=True)
    group = lws["spec"]["leaderWorkerTemplate"]
    assert group["size"] == 2 and group["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert lws["spec"]["startupPolicy"] == "LeaderCreated"
    assert "replicas" not in lws["spec"]  # KEDA owns the count


def test_leader_and_worker_arguments_pass_the_pinned_vllm_cli(lws):
    leader, worker = container(lws, "leader")["args"], container(lws, "worker")["args"]
    for args in (leader, worker):
        check_server_args(args[1:], owner="test")

    def flag(args: list[str], name: str) -> str:
        return args[args.index(name) + 1]

    tp, pp = int(flag(leader, "--tensor-parallel-size")), int(flag(leader, "--pipeline-parallel-size"))
    gpus = sum(int(container(lws, role)["resources"]["limits"]["nvidia.com/gpu"])
               for role in ("leader", "worker"))
    assert tp * pp == 16 == gpus
    assert flag(leader, "--nnodes") == flag(worker, "--nnodes") == "2"
    assert flag(leader, "--node-rank") == "0"
    assert flag(worker, "--node-rank") == "$(LWS_WORKER_INDEX)"
    assert flag(leader, "--master-addr") == flag(worker, "--master-addr") == "$(LWS_LEADER_ADDRESS)"
    assert "--headless" in worker and "--headless" not in leader
    # The same engine on both: everything else is identical.
    strip = {"--node-rank", "--headless"}
    assert [a for a in leader if a not in strip and a != "0"] == [
        a for a in worker if a not in strip and a != "$(LWS_WORKER_INDEX)"]
    assert "--load-format" in leader and flag(leader, "--load-format") == "runai_streamer"


def test_only_the_leader_serves_http_and_is_seen_by_the_router(multinode_env, lws):
    leader, worker = container(lws, "leader"), container(lws, "worker")
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(leader)
    assert not {"startupProbe", "readinessProbe", "livenessProbe", "ports"} & set(worker)
    leader_labels = template(lws, "leader")["metadata"]["labels"]
    worker_labels = template(lws, "worker")["metadata"]["labels"]
    assert selects(MODEL_SELECTOR, leader_labels) and not selects(MODEL_SELECTOR, worker_labels)
    found = objects(multinode_env)
    service = found[("Service", NAME)]["spec"]["selector"]
    assert selects(service, leader_labels) and not selects(service, worker_labels)
    monitor = found[("PodMonitor", NAME)]["spec"]["selector"]["matchLabels"]
    assert selects(monitor, leader_labels) and not selects(monitor, worker_labels)
    scaled = found[("ScaledObject", NAME)]["spec"]["scaleTargetRef"]
    assert scaled == {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                      "name": NAME}


def test_the_leaders_startup_budget_covers_its_workers_joining(lws):
    probe = container(lws, "leader")["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    from vllm_eks.models import GPU_INSTANCES
    alone = startup_budget_seconds(get_model("deepseek-r1"), ModelSource.S3,
                                   GPU_INSTANCES["p5.48xlarge"], 2)
    assert budget >= alone + GPU_NODE_LAUNCH_SECONDS + IMAGE_PULL_SECONDS


def test_a_group_stays_in_one_zone_and_its_ranks_reach_each_other_only(multinode_env, lws):
    for role in ("leader", "worker"):
        (term,) = template(lws, role)["spec"]["affinity"]["podAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "topology.kubernetes.io/zone"
        assert term["matchLabelKeys"] == [LWS_GROUP_KEY_LABEL]
        assert term["labelSelector"] == {"matchLabels": {LWS_NAME_LABEL: NAME}}
    found = objects(multinode_env)
    group = found[("NetworkPolicy", f"{NAME}-group")]["spec"]
    peer = {"podSelector": {"matchLabels": {LWS_NAME_LABEL: NAME}}}
    assert group["podSelector"] == peer["podSelector"]
    assert group["ingress"] == [{"from": [peer]}]  # every port, from the group only
    assert {"to": [peer]} in group["egress"]
    # Clients still reach only the leader's API, and only through the router.
    api = found[("NetworkPolicy", NAME)]["spec"]
    assert [p for rule in api["ingress"] for p in rule["from"]][0] == {
        "podSelector": {"matchLabels": ROUTER_LABELS}}
    budget = found[("PodDisruptionBudget", NAME)]["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": {LWS_NAME_LABEL: NAME}}}


def test_the_lws_controller_is_pinned_and_installed_only_for_multi_node_models(
        multinode_env, default_env):
    def charts(env) -> dict[str, dict]:
        return {r["Properties"]["Chart"]: r["Properties"]
                for r in env.resources(CLUSTER_STACK_ID, HELM).values()}

    lws = charts(multinode_env)["lws"]
    assert (lws["Version"], lws["Namespace"], lws["Repository"]) == (
        versions.LWS_VERSION, "lws-system", versions.LWS_CHART_REPOSITORY)
    values = json.loads(lws["Values"]) if isinstance(lws["Values"], str) else lws["Values"]
    assert values["image"]["manager"]["tag"] == f"v{versions.LWS_VERSION}"
    assert values["nodeSelector"] == {"vllm-eks.io/node-role": "system"}
    assert "lws" not in charts(default_env)


def test_the_pools_hold_whole_groups_and_gpu_limit_in_all(multinode_env):
    found = objects(multinode_env)
    gpu, efa = (found[("NodePool", name)]["spec"] for name in ("gpu", "gpu-efa"))
    # The only model runs over EFA: its pool holds its whole groups, the gpu pool nothing,
    # and together they hold gpu_limit.
    assert efa["limits"]["nvidia.com/gpu"] == "48" and gpu["limits"]["nvidia.com/gpu"] == "0"
    assert multinode_env.config.gpu_limit == 48


def test_a_gpu_limit_below_whole_groups_is_refused():
    from vllm_eks.config import ConfigError, EnvironmentConfig

    with pytest.raises(ConfigError, match=r"-c gpu_limit=16 is too small: .* need 32 GPUs in "
                       r"whole nodes \(deepseek-r1 32 \(1\+1 replicas on p5.48xlarge\)\)"):
        EnvironmentConfig.from_context({"model": "deepseek-r1", "instance_type": "p5.48xlarge",
                                         "gpu_limit": "16", "max_replicas": "1"}.get)


def test_a_profile_chart_that_is_not_multi_node_is_refused_for_a_multi_node_plan(tmp_path):
    import dataclasses

    from vllm_eks.config import ConfigError
    from vllm_eks.k8s_charts.vllm import VllmChart
    from vllm_eks.models import register

    class OneNodeChart(VllmChart):
        pass

    register(dataclasses.replace(get_model("deepseek-r1"), key="r1-custom",
                                 chart_class=OneNodeChart))
    from .support import synth_environment

    with pytest.raises(ConfigError, match=r"model r1-custom spans 2 nodes, but its profile "
                       r"renders with OneNodeChart, a one-node chart"):
        synth_environment({"model": "r1-custom", "instance_type": "p5.48xlarge"}, tmp_path)


def test_the_lws_makes_one_headless_service_per_group_so_the_model_service_cannot_clash(
        multinode_env, lws):
    assert lws["spec"]["networkConfig"] == {"subdomainPolicy": "UniquePerReplica"}
    # With the shared policy LWS would need a headless Service named like the LWS, and
    # skip creating it because the model's ClusterIP Service has that name.
    assert objects(multinode_env)[("Service", NAME)]["spec"]["type"] == "ClusterIP"


def test_dcgm_exporter_runs_on_the_efa_nodes_too(multinode_env):
    (dcgm,) = [r["Properties"] for r in multinode_env.resources(CLUSTER_STACK_ID, HELM).values()
               if r["Properties"]["Chart"] == "dcgm-exporter"]
    values = json.loads(dcgm["Values"]) if isinstance(dcgm["Values"], str) else dcgm["Values"]
    assert {t["key"] for t in values["tolerations"]} >= {"nvidia.com/gpu", "vllm-eks.io/efa"}


def test_every_rank_logs_the_transport_nccl_chose(lws):
    for role in ("leader", "worker"):
        env = {e["name"]: e.get("value") for e in container(lws, role)["env"]}
        assert env["NCCL_DEBUG"] == "INFO" and "NET" in env["NCCL_DEBUG_SUBSYS"]


# -- EFA (-c efa=true, the fixture's setting) ---------------------------------------------


def test_efa_pods_request_every_interface_on_the_efa_pool(lws):
    from vllm_eks.labels import EFA_TAINT_KEY

    for role in ("leader", "worker"):
        spec = template(lws, role)["spec"]
        (vllm,) = spec["containers"]
        for kind in ("requests", "limits"):
            assert vllm["resources"][kind]["vpc.amazonaws.com/efa"] == 32  # p5.48xlarge's
        env = {e["name"]: e.get("value") for e in vllm["env"]}
        assert env["FI_PROVIDER"] == "efa"
        # The EFA image, built from the pinned vLLM image by the deploy (a CDK asset).
        assert vllm["image"] != versions.VLLM_IMAGE and "container-assets" in vllm["image"]
        assert {"key": EFA_TAINT_KEY, "operator": "Exists",
                "effect": "NoSchedule"} in spec["tolerations"]
        (term,) = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert {"key": "karpenter.sh/nodepool", "operator": "In",
                "values": ["gpu-efa"]} in term["matchExpressions"]


def test_the_efa_pool_is_one_zone_in_a_cluster_placement_group(multinode_env):
    from vllm_eks.labels import EFA_TAINT_KEY

    found = objects(multinode_env)
    pool = found[("NodePool", "gpu-efa")]["spec"]
    requirements = {r["key"]: r["values"] for r in pool["template"]["spec"]["requirements"]}
    assert requirements["topology.kubernetes.io/zone"] == ["us-east-1a"]
    assert requirements["node.kubernetes.io/instance-type"] == ["p5.48xlarge"]
    assert {"key": EFA_TAINT_KEY, "value": "true", "effect": "NoSchedule"} in (
        pool["template"]["spec"]["taints"])
    assert pool["template"]["spec"]["nodeClassRef"]["name"] == "gpu-efa"
    assert pool["limits"] == {"nvidia.com/gpu": "48"}
    node_class = found[("EC2NodeClass", "gpu-efa")]["spec"]
    (group_id,) = [k for k, r in multinode_env.templates[CLUSTER_STACK_ID]["Resources"].items()
                   if r["Type"] == "AWS::EC2::PlacementGroup"
                   and r["Properties"]["Strategy"] == "cluster"]
    assert node_class["placementGroupSelector"] == {"name": f"${{Ref:{group_id}}}"}
    # The other GPU pool keeps every zone and no placement group.
    gpu = found[("EC2NodeClass", "gpu")]["spec"]
    assert "placementGroupSelector" not in gpu


def test_the_efa_device_plugin_is_pinned_and_tolerates_the_gpu_nodes(multinode_env):
    (plugin,) = [r["Properties"] for r in multinode_env.resources(CLUSTER_STACK_ID, HELM).values()
                 if r["Properties"]["Chart"] == "aws-efa-k8s-device-plugin"]
    assert (plugin["Version"], plugin["Namespace"]) == (
        versions.EFA_DEVICE_PLUGIN_CHART_VERSION, "kube-system")
    values = json.loads(plugin["Values"]) if isinstance(plugin["Values"], str) else plugin["Values"]
    assert values["image"]["tag"] == versions.EFA_DEVICE_PLUGIN_IMAGE_TAG
    assert {t["key"] for t in values["tolerations"]} == {"nvidia.com/gpu", "vllm-eks.io/efa"}


def test_the_efa_image_is_built_from_the_pinned_vllm_image(multinode_env):
    from vllm_eks.constructs.efa import EFA_IMAGE_DIR

    dockerfile = (EFA_IMAGE_DIR / "Dockerfile").read_text()
    assert "FROM ${VLLM_IMAGE}" in dockerfile and "--skip-kmod" in dockerfile
    assets = [json.loads(p.read_text()) for p in multinode_env.outdir.glob("*.assets.json")]
    images = [image for manifest in assets for image in manifest.get("dockerImages", {}).values()]
    (image,) = images
    assert image["source"]["dockerBuildArgs"] == {
        "VLLM_IMAGE": versions.VLLM_IMAGE,
        "EFA_INSTALLER_VERSION": versions.EFA_INSTALLER_VERSION}
    assert image["source"]["platform"] == "linux/amd64"


def test_without_efa_nccl_uses_tcp_and_the_pinned_image():
    """The default (no -c efa): the same chart without EFA, rendered on its own."""
    from vllm_eks.config import EnvironmentConfig
    from vllm_eks.k8s_charts import render
    from vllm_eks.k8s_charts.vllm_lws import VllmLwsChart
    from vllm_eks.k8s_charts.vllm import VllmChartProps

    config = EnvironmentConfig.from_context({"model": "deepseek-r1",
                                             "instance_type": "p5.48xlarge"}.get)
    assert not config.efa and not config.efa_models
    chart = render(VllmLwsChart, NAME, props=VllmChartProps(
        plan=config.models[0].plan, model_source=ModelSource.S3, region="us-east-1",
        weights_bucket="bucket", model_prefix="deepseek-r1/main/",
        api_key_secret_arn="arn:key", hf_token_secret_arn="arn:hf"))
    (plain,) = [o for o in chart.to_json() if o["kind"] == "LeaderWorkerSet"]
    validate_custom_resource(plain)
    for role in ("leader", "worker"):
        spec = template(plain, role)["spec"]
        (vllm,) = spec["containers"]
        assert "vpc.amazonaws.com/efa" not in vllm["resources"]["limits"]
        assert vllm["image"] == versions.VLLM_IMAGE
        assert "FI_PROVIDER" not in {e["name"] for e in vllm["env"]}
        assert all(t["key"] != "vllm-eks.io/efa" for t in spec["tolerations"])
