"""The vLLM chart on its own (no CDK synth): every catalog model and every model source
renders valid Kubernetes, server arguments are checked against the pinned vLLM, and the
hooks a subclass overrides land in the manifests."""

from __future__ import annotations

import dataclasses

import kubernetes_validate
import pytest

from vllm_eks import versions
from vllm_eks.k8s_charts import render
from vllm_eks.k8s_charts.vllm import VllmChart, VllmChartProps, app_name
from vllm_eks.k8s_charts.weights_staging import WeightsStagingChart, WeightsStagingProps
from vllm_eks.models import PlanRequest, plan
from vllm_eks.models.catalog import BUILT_IN_MODELS
from vllm_eks.models.instances import NETWORK_BASELINE_GBPS
from vllm_eks.models.sources import ModelSource
from vllm_eks.vllm_cli import ServerArgsError, check_server_args

from .crd_validation import has_crd, validate_custom_resource

KUBERNETES = f"{versions.KUBERNETES_MINOR}.0"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-AbCdEf"


def chart_props(model, source: ModelSource) -> VllmChartProps:
    return VllmChartProps(
        plan=plan(PlanRequest(model=model)), model_source=source, region="us-east-1",
        weights_bucket="weights-bucket", model_prefix=f"{model.key}/",
        api_key_secret_arn=SECRET, hf_token_secret_arn=SECRET,
    )


def validate(objects: list[dict]) -> None:
    for obj in objects:
        if has_crd(obj):
            validate_custom_resource(obj)
        else:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.mark.parametrize("model", BUILT_IN_MODELS, ids=lambda m: m.key)
def test_every_catalog_model_renders_valid_manifests(model):
    for source in ModelSource:
        chart = render(VllmChart, app_name(model.key), props=chart_props(model, source))
        validate(chart.to_json())
    staging = render(WeightsStagingChart, "staging", props=WeightsStagingProps(
        model=model, model_source=ModelSource.S3, region="us-east-1",
        weights_bucket="weights-bucket", model_prefix=f"{model.key}/",
        hf_token_secret_arn=SECRET))
    validate(staging.to_json())


def test_names_are_dns_labels_even_for_dotted_keys():
    assert app_name("deepseek-r1-distill-qwen-1.5b") == "vllm-deepseek-r1-distill-qwen-1-5b"


def test_hugging_face_source_downloads_at_start_with_the_token_file():
    model = next(m for m in BUILT_IN_MODELS if m.key == "llama-3.1-8b-instruct")
    chart = render(VllmChart, "hf", props=chart_props(model, ModelSource.HF))
    objects = {o["kind"]: o for o in chart.to_json()}
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"][0] == model.hf_id
    assert "initContainers" not in spec  # nothing to wait for
    assert "HF_TOKEN" in container["command"][2]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "HF_HUB_OFFLINE" not in env
    cache = next(v for v in spec["volumes"] if v["name"] == "cache")
    assert int(cache["emptyDir"]["sizeLimit"].removesuffix("Gi")) > model.weight_bytes / 2**30


@pytest.mark.parametrize(("args", "message"), [
    (["--enable-reasoning"], r"vLLM --enable-reasoning was removed; use --reasoning-parser"),
    (["--tensor-paralel-size=2"], r"--tensor-paralel-size is not a `vllm serve` flag"),
    (["-tp", "4"], r"-tp is a short alias; write the long `vllm serve` flag"),
])
def test_server_args_are_checked_against_the_pinned_vllms_flags(args, message):
    with pytest.raises(ServerArgsError, match=message):
        check_server_args(args, owner="model 'x'")


def test_a_profile_with_a_removed_flag_fails_at_synth():
    model = dataclasses.replace(BUILT_IN_MODELS[3], extra_args=("--enable-reasoning",))
    with pytest.raises(ServerArgsError, match=r"model 'deepseek-r1-distill-llama-8b': vLLM "
                                              r"--enable-reasoning was removed"):
        render(VllmChart, "bad", props=chart_props(model, ModelSource.S3))


def test_negative_numbers_are_values_not_short_options():
    check_server_args(["--max-num-seqs", "-1", "--kv-cache-dtype", "fp8"], owner="x")


def test_a_profile_may_not_override_the_plan():
    model = dataclasses.replace(BUILT_IN_MODELS[3], extra_args=("--max-model-len", "4096"))
    with pytest.raises(ServerArgsError, match=r"extra_args must not set --max-model-len: it "
                                              r"comes from the deployment plan"):
        render(VllmChart, "bad", props=chart_props(model, ModelSource.S3))


class ToolCallingChart(VllmChart):
    """A subclass overriding one hook, as DESIGN.md §4 describes."""

    def server_args(self) -> list[str]:
        return super().server_args() + ["--enable-auto-tool-choice",
                                        "--tool-call-parser", "llama3_json"]


def test_a_subclass_hook_lands_in_the_deployment():
    model = next(m for m in BUILT_IN_MODELS if m.key == "llama-3.1-8b-instruct")
    chart = render(ToolCallingChart, "tools", props=chart_props(model, ModelSource.S3))
    (deployment,) = [o for o in chart.to_json() if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", "llama3_json"]


# What the budgets assume (README, "Cold start"; vllm_eks/models/sources.py), written out
# here so a change to either side is a reviewed change: each source's ceiling per node
# (GB/s), the share of the node's baseline bandwidth it gets, and the start's other parts
# with an empty compile cache.
ASSUMED_CEILING_GB_PER_SECOND = {ModelSource.S3: 32 * 0.096, ModelSource.EFS: 0.5,
                                 ModelSource.HF: 0.1}
ASSUMED_LINK_SHARE = 0.6
ASSUMED_POD_ENGINE_AND_COMPILE_SECONDS = 10 + 30 + 90
SAFETY_FACTOR = 2
MIN_BUDGET_SECONDS = 600


@pytest.mark.parametrize("source", list(ModelSource), ids=lambda s: s.value)
@pytest.mark.parametrize("key", ["deepseek-r1-distill-llama-8b", "deepseek-r1"])
def test_each_load_path_gets_the_startup_budget_of_its_own_throughput(source, key):
    model = next(m for m in BUILT_IN_MODELS if m.key == key)
    chart = render(VllmChart, "budget", props=chart_props(model, source))
    (deployment,) = [o for o in chart.to_json() if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probe = container["startupProbe"]
    rendered = probe["periodSeconds"] * probe["failureThreshold"]
    baseline_gbps = NETWORK_BASELINE_GBPS[plan(PlanRequest(model=model)).chosen.instance.instance_type]
    rate = min(baseline_gbps / 8 * ASSUMED_LINK_SHARE, ASSUMED_CEILING_GB_PER_SECOND[source])
    load = -(-model.weight_bytes / 1e9 // rate)  # ceil
    expected = max(MIN_BUDGET_SECONDS,
                   SAFETY_FACTOR * (int(load) + ASSUMED_POD_ENGINE_AND_COMPILE_SECONDS))
    assert expected <= rendered < expected + probe["periodSeconds"], (source, rendered)
    # The rollout waits for the slowest start too, or it is reported failed while loading.
    assert deployment["spec"]["progressDeadlineSeconds"] >= expected
