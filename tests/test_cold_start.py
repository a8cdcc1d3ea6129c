"""A new replica's start: vLLM's compile cache shared on EFS per placement, and the SOCI
parallel pull settings in the GPU nodes' configuration (-c parallel_image_pull)."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest

from vllm_eks import versions
from vllm_eks.bottlerocket import BOTTLEROCKET_DATA_VOLUME
from vllm_eks.constructs.karpenter import gpu_data_volume_gib
from vllm_eks.k8s_charts import render
from vllm_eks.k8s_charts.inference_namespace import MODEL_CACHE_CLAIM
from vllm_eks.k8s_charts.karpenter_efa import EfaPoolSettings
from vllm_eks.k8s_charts.karpenter_pools import KarpenterPoolsChart, KarpenterPoolsProps
from vllm_eks.k8s_charts.model_pods import app_name
from vllm_eks.k8s_charts.storage import EFS_STORAGE_CLASS
from vllm_eks.k8s_charts.vllm import VllmChart, app_name as vllm_app_name
from vllm_eks.models.sources import ModelSource

from .test_vllm_chart import chart_props

CACHE_ROOT = "/compile-cache"


def vllm_pod_specs(env) -> dict[str, list[dict]]:
    """The vLLM pod specs of each model: its Deployment's, or its LeaderWorkerSet's leader
    and worker templates."""
    specs: dict[str, list[dict]] = {}
    for model in env.config.models:
        name = app_name(model.key)
        for obj in env.manifests():
            if obj["metadata"].get("name") != name:
                continue
            if obj["kind"] == "Deployment":
                specs[model.key] = [obj["spec"]["template"]["spec"]]
            elif obj["kind"] == "LeaderWorkerSet":
                template = obj["spec"]["leaderWorkerTemplate"]
                specs[model.key] = [template["leaderTemplate"]["spec"],
                                    template["workerTemplate"]["spec"]]
    return specs


def expected_path(model, image: str = f"v{versions.VLLM_VERSION}") -> str:
    plan = model.plan
    gpu = plan.chosen.instance.gpu.name.removeprefix("NVIDIA ").lower().replace(" ", "-")
    return f"compile-cache/{image}/{gpu}/{model.key}/tp{plan.tensor_parallel}-pp{plan.nodes}"


def image_of(env, model) -> str:
    """The pinned tag, or for a model over EFA the EFA image's key (its tag and hash)."""
    if model in env.config.efa_models:
        return f"v{versions.VLLM_VERSION}-efa-"
    return f"v{versions.VLLM_VERSION}"


@pytest.mark.parametrize("env_fixture", ["default_env", "options_env", "multinode_env"])
def test_every_placement_keeps_its_compile_cache_on_efs(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    specs = vllm_pod_specs(env)
    assert set(specs) == {m.key for m in env.config.models}
    (claim,) = [o for o in env.manifests() if o["kind"] == "PersistentVolumeClaim"
                and o["metadata"]["name"] == MODEL_CACHE_CLAIM]
    assert claim["spec"]["storageClassName"] == EFS_STORAGE_CLASS
    paths = set()
    for model in env.config.models:
        for spec in specs[model.key]:
            (vllm,) = [c for c in spec["containers"] if c["name"] == "vllm"]
            env_vars = {e["name"]: e.get("value") for e in vllm["env"]}
            assert env_vars["VLLM_CACHE_ROOT"] == CACHE_ROOT
            (mount,) = [m for m in vllm["volumeMounts"] if m["mountPath"] == CACHE_ROOT]
            image = image_of(env, model)
            if image.endswith("-efa-"):  # + the image asset's hash: a rebuild starts anew
                assert re.fullmatch(expected_path(model, image + "[0-9a-f]{12}"),
                                    mount["subPath"]), mount["subPath"]
            else:
                assert mount["subPath"] == expected_path(model, image)
            (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
            assert volume["persistentVolumeClaim"]["claimName"] == MODEL_CACHE_CLAIM
            paths.add(mount["subPath"])
    # Two models never share a directory: each placement compiles its own graphs.
    assert len(paths) == len(env.config.models)


def test_the_cache_is_keyed_by_image_gpu_model_and_parallelism(default_env):
    model = default_env.config.models[0]
    assert expected_path(model) == (
        f"compile-cache/v{versions.VLLM_VERSION}/l40s/deepseek-r1-distill-llama-8b/tp1-pp1")


def test_without_the_compile_cache_nothing_is_mounted():
    from vllm_eks.models.catalog import get_model

    props = chart_props(get_model("deepseek-r1-distill-llama-8b"), ModelSource.S3)
    objects = render(VllmChart, vllm_app_name("x"),
                     props=dataclasses.replace(props, compile_cache=False)).to_json()
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (vllm,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
               if c["name"] == "vllm"]
    assert "VLLM_CACHE_ROOT" not in {e["name"] for e in vllm["env"]}
    assert CACHE_ROOT not in {m["mountPath"] for m in vllm["volumeMounts"]}


# -- SOCI parallel pull/unpack on the GPU nodes --------------------------------------------

def node_classes(config, *, parallel_image_pull: bool, efa: bool = False) -> dict[str, dict]:
    props = KarpenterPoolsProps(
        cluster_name=config.cluster.name, node_role_name="node-role", plans=config.plans,
        gpu_instance_types=config.gpu_pool_instance_types,
        availability_zones=config.network.availability_zones,
        gpu_limit=config.gpu_pool_gpu_limit, cpu_limit=config.cluster.cpu_limit,
        gpu_data_volume_gib=gpu_data_volume_gib(config.plans),
        efa=EfaPoolSettings(instance_types=("p5.48xlarge",), zone="us-east-1a",
                            placement_group="pg", gpu_limit=16) if efa else None,
        parallel_image_pull=parallel_image_pull)
    return {o["metadata"]["name"]: o["spec"] for o in
            render(KarpenterPoolsChart, "pools", props=props).to_json()
            if o["kind"] == "EC2NodeClass"}


def soci(spec: dict) -> dict | None:
    settings = tomllib.loads(spec.get("userData", ""))["settings"] if spec.get("userData") else {}
    runtime = settings.get("container-runtime", {})
    if runtime.get("snapshotter") != "soci":
        return None
    return settings["container-runtime-plugins"]["soci-snapshotter"]


def test_soci_parallel_pull_is_on_by_default_on_gpu_nodes_only(default_env):
    from .test_karpenter import custom_resources

    assert default_env.config.parallel_image_pull is True
    classes = {name: r["spec"] for (kind, name), r in custom_resources(default_env).items()
               if kind == "EC2NodeClass"}
    assert soci(classes["gpu"])["pull-mode"] == "parallel-pull-unpack"
    assert soci(classes["general"]) is None
    # The AMI is pinned by alias: Karpenter knows it is Bottlerocket >= 1.46 and binds
    # /var/lib/soci-snapshotter onto the RAID0 instance store with containerd's storage.
    assert classes["gpu"]["instanceStorePolicy"] == "RAID0"
    (term,) = classes["gpu"]["amiSelectorTerms"]
    major, minor = map(int, term["alias"].removeprefix("bottlerocket@v").split(".")[:2])
    assert (major, minor) >= (1, 46)


def test_parallel_image_pull_false_keeps_the_plain_pull(default_env):
    classes = node_classes(default_env.config, parallel_image_pull=False)
    assert all(soci(spec) is None for spec in classes.values())


@pytest.mark.parametrize("efa", [False, True])
def test_parallel_image_pull_configures_every_gpu_node_class_and_only_those(multinode_env, efa):
    classes = node_classes(multinode_env.config, parallel_image_pull=True, efa=efa)
    gpu_classes = {"gpu", "gpu-efa"} if efa else {"gpu"}
    assert gpu_classes <= set(classes)
    for name, spec in classes.items():
        plugin = soci(spec)
        if name in gpu_classes:
            assert plugin is not None and plugin["pull-mode"] == "parallel-pull-unpack", name
            # The GPU settings the nodes need stay (NVML without privileges).
            assert "visible-devices-envvar-when-unprivileged = true" in spec["userData"]
            # Images still land on the data volume the node class sizes.
            assert BOTTLEROCKET_DATA_VOLUME in {m["deviceName"]
                                                for m in spec["blockDeviceMappings"]}
        else:
            assert plugin is None, name
