"""Model profiles, the instance catalog and the planner: the numbers that pick hardware."""

from __future__ import annotations

import dataclasses

import pytest

from vllm_eks.models import (
    DEFAULT_MODEL_KEY,
    AttentionType,
    GPU_INSTANCES,
    CapacityType,
    ModelProfile,
    PlanError,
    PlanRequest,
    ProfileError,
    UnknownModelError,
    catalog,
    get_model,
    plan,
    register,
)
from vllm_eks.models.planner import FALLBACK_MAX_COUNT, FALLBACK_MAX_PRICE_FACTOR

DISTILLS = (
    "deepseek-r1-distill-qwen-1.5b",
    "deepseek-r1-distill-qwen-7b",
    "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b",
    "deepseek-r1-distill-llama-70b",
)


def test_catalog_holds_the_required_models():
    keys = set(catalog())
    assert {"deepseek-r1", *DISTILLS, "gpt-oss-20b", "gpt-oss-120b"} <= keys
    assert any("8b-instruct" in k and "llama" in k for k in keys)
    assert any("70b-instruct" in k and "llama" in k for k in keys)
    assert DEFAULT_MODEL_KEY in keys


@pytest.mark.parametrize(
    ("key", "heads", "kv_heads", "weights_gb"),
    [  # FACTS.md: heads / KV heads and bf16 weight sizes of the distills
        ("deepseek-r1-distill-qwen-1.5b", 12, 2, 3.5),
        ("deepseek-r1-distill-qwen-7b", 28, 4, 15),
        ("deepseek-r1-distill-llama-8b", 32, 8, 16),
        ("deepseek-r1-distill-qwen-14b", 40, 8, 30),
        ("deepseek-r1-distill-qwen-32b", 40, 8, 65.5),
        ("deepseek-r1-distill-llama-70b", 64, 8, 141),
        ("deepseek-r1", 128, 128, 688),
    ],
)
def test_profiles_match_published_configs(key, heads, kv_heads, weights_gb):
    model = get_model(key)
    assert (model.num_attention_heads, model.num_kv_heads) == (heads, kv_heads)
    assert model.weight_bytes / 1e9 == pytest.approx(weights_gb, rel=0.03)
    assert model.source.startswith("huggingface.co/")


def test_gqa_kv_cache_is_two_x_layers_x_kv_heads_x_head_dim_x_bytes():
    model = get_model("deepseek-r1-distill-llama-8b")  # 32 layers, 8 KV heads, head_dim 128
    assert model.kv_cache_bytes_per_sequence(1, 1) == 2 * 32 * 8 * 128 * 2 == 131_072
    assert model.kv_cache_bytes_per_sequence(1000, 1) == 1000 * 131_072
    # TP 8 splits 8 KV heads one per rank: the total is unchanged.
    assert model.kv_cache_bytes_per_sequence(1, 8) == 131_072


def test_gqa_kv_heads_are_replicated_when_tp_exceeds_them():
    model = get_model("deepseek-r1-distill-qwen-1.5b")  # 2 KV heads
    assert model.kv_cache_bytes_per_sequence(1, 4) == 2 * model.kv_cache_bytes_per_sequence(1, 1)


def test_mla_caches_the_compressed_latent_not_per_head_keys():
    r1 = get_model("deepseek-r1")
    per_token = r1.kv_cache_bytes_per_sequence(1, 1)
    assert per_token == 61 * (512 + 64) * 2
    generic = 2 * r1.num_layers * r1.num_kv_heads * r1.head_dim * r1.kv_cache_bytes_per_element
    assert generic / per_token > 50
    # The latent is replicated on every tensor-parallel rank.
    assert r1.kv_cache_bytes_per_sequence(1, 8) == 8 * per_token


def test_sliding_window_layers_cache_at_most_the_window():
    model = get_model("gpt-oss-20b")  # 24 layers, 12 of them with a 128-token window
    per_layer_token = 2 * 8 * 64 * 2
    assert model.kv_cache_bytes_per_sequence(100, 1) == 24 * 100 * per_layer_token
    assert model.kv_cache_bytes_per_sequence(10_000, 1) == (
        12 * 10_000 + 12 * 128
    ) * per_layer_token


def test_deepseek_r1_plans_onto_eight_h200_with_tp_8():
    result = plan(PlanRequest(model=get_model("deepseek-r1")))
    assert result.instance_type == "p5en.48xlarge"
    assert result.chosen.instance.gpu.name == "NVIDIA H200"
    assert result.tensor_parallel == 8 == result.gpus
    assert result.chosen.max_concurrent_sequences >= 8


def test_deepseek_r1_does_not_fit_one_h100_node():
    with pytest.raises(PlanError, match=r"(?s)no single-node placement fits deepseek-r1.*"
                       r"p5\.48xlarge, TP 8: "):
        plan(PlanRequest(model=get_model("deepseek-r1"), instance_type="p5.48xlarge", nodes=1))


def test_deepseek_r1_on_h100_spans_two_nodes():
    r1 = get_model("deepseek-r1")
    result = plan(PlanRequest(model=r1, instance_type="p5.48xlarge"))
    chosen = result.chosen
    assert (result.nodes, result.tensor_parallel, result.pipeline_parallel) == (2, 8, 2)
    assert chosen.total_gpus == 16 and result.gpus == 8  # each pod takes a whole node
    assert chosen.weight_bytes_per_gpu == r1.weight_bytes // 16
    h100 = GPU_INSTANCES["p5.48xlarge"]
    assert chosen.usd_per_hour == pytest.approx(2 * h100.on_demand_usd_per_hour)
    # 16 GPUs' usable memory hold the weights and the KV cache of every stage's layers.
    per_gpu = h100.gpu.memory_bytes * 0.9 - 1.5 * 2**30
    assert chosen.kv_cache_bytes == pytest.approx(16 * per_gpu - r1.weight_bytes, rel=1e-6)
    assert chosen.fits(8)
    assert "2 x p5.48xlarge" in result.summary() and "TP 8 x PP 2 = 16 GPUs" in result.summary()
    assert result.instance_types() == ("p5.48xlarge",)
    assert result.instance_types(gpu_limit=8) == ()  # a group needs 16 GPUs of the pool


def test_one_node_is_chosen_whenever_one_fits():
    result = plan(PlanRequest(model=get_model("deepseek-r1")))
    assert (result.instance_type, result.nodes) == ("p5en.48xlarge", 1)
    pinned = plan(PlanRequest(model=get_model(DEFAULT_MODEL_KEY), nodes=2))
    assert pinned.nodes == 2 and pinned.tensor_parallel == pinned.chosen.instance.gpu_count
    assert all(p.nodes == 2 for p in pinned.alternatives)


@pytest.mark.parametrize(("request_args", "message"), [
    ({"nodes": 0}, r"nodes=0 must be at least 1"),
    ({"nodes": 5}, r"nodes=5 is more than vllm-eks splits one replica over: at most 4"),
    ({"nodes": 2, "instance_type": "p5.48xlarge", "tensor_parallel": 4},
     r"a multi-node replica takes every GPU of each node .* pass -c tensor_parallel=8"),
    ({"instance_type": "g5.xlarge"},
     r"(?s)no single- or multi-node \(up to 4 nodes\) placement fits deepseek-r1.*"
     r"g5\.xlarge, TP 1 x PP 4: "),
])
def test_multi_node_requests_that_cannot_be_served_are_refused(request_args, message):
    with pytest.raises(PlanError, match=message):
        plan(PlanRequest(model=get_model("deepseek-r1"), **request_args))


def test_the_default_model_runs_on_one_modest_gpu():
    result = plan(PlanRequest(model=get_model(DEFAULT_MODEL_KEY)))
    assert result.gpus == 1
    assert result.chosen.instance.gpu_count == 1
    assert result.chosen.usd_per_hour < 3
    assert "distill" in DEFAULT_MODEL_KEY


def test_planner_picks_the_cheapest_fitting_placement():
    request = PlanRequest(model=get_model("deepseek-r1-distill-qwen-32b"))
    result = plan(request)
    fitting_prices = [
        p.usd_per_hour
        for p in [result.chosen, *result.alternatives]
        if p.usd_per_hour is not None
    ]
    assert result.chosen.usd_per_hour == min(fitting_prices)
    # Every cheaper instance type was considered and really does not fit.
    for instance in GPU_INSTANCES.values():
        price = instance.on_demand_usd_per_hour
        if price is not None and price < result.chosen.usd_per_hour:
            with pytest.raises(PlanError):
                plan(dataclasses.replace(request, instance_type=instance.instance_type,
                                         nodes=1))


def test_every_catalog_model_plans_with_tp_dividing_its_heads():
    for model in catalog().values():
        result = plan(PlanRequest(model=model))
        assert model.num_attention_heads % result.tensor_parallel == 0, model.key
        assert result.chosen.fits(8), model.key


def test_fallbacks_are_bounded_in_price_and_number():
    result = plan(PlanRequest(model=get_model(DEFAULT_MODEL_KEY)))
    assert 0 < len(result.alternatives) <= FALLBACK_MAX_COUNT
    for placement in result.alternatives:
        assert placement.usd_per_hour <= result.chosen.usd_per_hour * FALLBACK_MAX_PRICE_FACTOR
        assert placement.fits(8)
    # DeepSeek-R1's only other H200 type, p5e, has no price: Karpenter 1.14 never
    # launches it, so it is no fallback (and nothing else holds 688 GB on one node).
    r1 = plan(PlanRequest(model=get_model("deepseek-r1")))
    assert r1.alternatives == ()


def test_every_fallback_can_be_launched_by_karpenter():
    for key in ("deepseek-r1", DEFAULT_MODEL_KEY, "deepseek-r1-distill-llama-70b",
                "gpt-oss-120b"):
        result = plan(PlanRequest(model=get_model(key)))
        assert key == "deepseek-r1" or result.alternatives  # the check sees fallbacks
        for placement in result.alternatives:
            assert placement.usd_per_hour is not None, (key, placement.instance.instance_type)
            # The replica's pod (its GPUs, its --tensor-parallel-size) fits as it is.
            assert placement.tensor_parallel == result.tensor_parallel, key


def test_an_unlaunchable_pin_is_refused_with_the_reason():
    with pytest.raises(PlanError, match=r"p5e.48xlarge has no public on-demand price .* "
                                        r"Karpenter launches only offerings with a price.*"
                                        r"-c instance_type=p5en.48xlarge"):
        plan(PlanRequest(model=get_model("deepseek-r1"), instance_type="p5e.48xlarge"))


def test_pins_are_honoured():
    result = plan(PlanRequest(model=get_model("deepseek-r1-distill-llama-8b"),
                              instance_type="g6e.12xlarge", tensor_parallel=4,
                              max_model_len=8192))
    assert (result.instance_type, result.tensor_parallel, result.max_model_len) == (
        "g6e.12xlarge", 4, 8192)


def test_longer_context_needs_more_memory():
    short = plan(PlanRequest(model=get_model("deepseek-r1-distill-llama-8b"), max_model_len=4096))
    long = plan(PlanRequest(model=get_model("deepseek-r1-distill-llama-8b"), max_model_len=131072))
    assert long.chosen.instance.gpu_count * long.chosen.instance.gpu.memory_mib > (
        short.chosen.instance.gpu_count * short.chosen.instance.gpu.memory_mib)


def test_summary_names_model_instance_gpus_tp_memory_and_cost():
    summary = plan(PlanRequest(model=get_model("deepseek-r1"))).summary()
    for fragment in ("deepseek-r1", "48xlarge", "H200", "TP 8", "weights 688", "KV cache",
                     "concurrent sequences at full context", "/hour"):
        assert fragment in summary


# -- bad input -------------------------------------------------------------------------


def test_unknown_model_lists_the_valid_keys():
    with pytest.raises(UnknownModelError, match=r"unknown model 'llama'.*deepseek-r1, "
                       r"deepseek-r1-distill-llama-70b"):
        get_model("llama")


def test_tensor_parallel_must_divide_the_heads():
    with pytest.raises(PlanError, match=r"tensor_parallel=3 is invalid for "
                       r"deepseek-r1-distill-llama-8b: it must divide the 32 attention heads"
                       r".*one of: 1, 2, 4, 8"):
        plan(PlanRequest(model=get_model("deepseek-r1-distill-llama-8b"), tensor_parallel=3))


def test_tp_8_is_invalid_for_qwen_7b():
    with pytest.raises(PlanError, match="must divide the 28 attention heads"):
        plan(PlanRequest(model=get_model("deepseek-r1-distill-qwen-7b"), tensor_parallel=8))


def test_a_too_small_instance_says_what_the_model_needs():
    with pytest.raises(PlanError, match=r"(?s)fits deepseek-r1: it needs about \d+ GB.*"
                       r"688\.\d GB weights.*g5\.xlarge, TP 1"):
        plan(PlanRequest(model=get_model("deepseek-r1"), instance_type="g5.xlarge"))


def test_max_model_len_beyond_the_model_is_rejected():
    with pytest.raises(PlanError, match="max_model_len=1000000 exceeds what deepseek-r1"):
        plan(PlanRequest(model=get_model("deepseek-r1"), max_model_len=1_000_000))


def test_unknown_instance_type_lists_the_catalog():
    with pytest.raises(PlanError, match=r"unknown instance_type 'g9.xlarge'.*g5\.xlarge"):
        plan(PlanRequest(model=get_model("deepseek-r1"), instance_type="g9.xlarge"))


def test_spot_for_an_instance_without_spot_offering():
    with pytest.raises(PlanError, match="'p5e.48xlarge' has no spot offering"):
        plan(PlanRequest(model=get_model("deepseek-r1"), instance_type="p5e.48xlarge",
                         capacity=CapacityType.SPOT))


def test_gpu_memory_utilization_out_of_range():
    with pytest.raises(PlanError, match="gpu_memory_utilization=0.99 is outside"):
        plan(PlanRequest(model=get_model("deepseek-r1"), gpu_memory_utilization=0.99))


def _profile(**overrides) -> ModelProfile:
    fields = dict(
        key="my-model", hf_id="me/my-model", parameters_b=1.0, weight_bytes_per_param=2.0,
        num_layers=4, num_attention_heads=8, num_kv_heads=2, head_dim=64,
        max_position_embeddings=4096, default_max_model_len=2048,
    )
    return ModelProfile(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": "My_Model"}, "must be a lowercase DNS label"),
        ({"num_layers": 0}, "num_layers=0 must be greater than 0"),
        ({"num_kv_heads": 3}, "not a multiple of num_kv_heads=3"),
        ({"default_max_model_len": 8192}, "exceeds max_position_embeddings=4096"),
        ({"attention": AttentionType.MLA}, "MLA models need kv_lora_rank"),
        ({"sliding_window_layers": 2}, "set both sliding_window_layers and sliding_window"),
        ({"weight_bytes_per_param": -1}, "weight_bytes_per_param=-1 must be greater than 0"),
    ],
)
def test_inconsistent_profiles_are_rejected(overrides, message):
    with pytest.raises(ProfileError, match=message):
        _profile(**overrides)


def test_register_adds_a_model_and_refuses_a_taken_key():
    profile = register(_profile(key="test-registered-model"))
    assert get_model("test-registered-model") is profile
    with pytest.raises(ValueError, match="'deepseek-r1' is already in the catalog"):
        register(_profile(key="deepseek-r1"))


def test_a_profile_registered_by_another_test_is_gone():
    """The conftest fixture isolates the catalog: the previous test's profile is unknown."""
    with pytest.raises(KeyError, match="unknown model 'test-registered-model'"):
        get_model("test-registered-model")


def test_a_broken_entry_point_is_named_not_a_traceback(monkeypatch):
    import importlib
    import types

    from vllm_eks.models import CatalogError

    catalog_module = importlib.import_module("vllm_eks.models.catalog")
    broken = types.SimpleNamespace(name="bad-models", value="bad_pkg:PROFILES",
                                   load=lambda: ["not a profile"])
    monkeypatch.setattr(catalog_module, "entry_points", lambda group: [broken])
    monkeypatch.setattr(catalog_module, "_entry_points_loaded", False)
    with pytest.raises(CatalogError, match=r"the installed entry point 'bad-models' "
                                           r"\(bad_pkg:PROFILES\) of group vllm_eks.models "
                                           r"could not be registered: register\(\) takes a "
                                           r"ModelProfile"):
        catalog_module.catalog()
