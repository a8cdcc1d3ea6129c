"""`python -m vllm_eks plan` and the README's generated model and options tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from vllm_eks.cli import (
    OPTIONS_TABLE_END,
    OPTIONS_TABLE_START,
    TABLE_END,
    TABLE_START,
    main,
    models_table,
    options_table,
    render_plan,
)
from vllm_eks.config import CONTEXT_KEYS, EnvironmentConfig
from vllm_eks.models import PlanRequest, get_model
from vllm_eks.models.catalog import BUILT_IN_MODELS
from vllm_eks.models.sources import ModelSource

from .support import REPO


def run_plan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def marked_row(output: str) -> list[str]:
    (row,) = [line for line in output.splitlines() if line.startswith("* ") and "  " in line
              and not line.startswith("* chosen")]
    return row.split()


def test_deepseek_r1_lands_on_eight_h200(capsys):
    code, out, _ = run_plan(capsys, "--model", "deepseek-r1")
    assert code == 0
    row = marked_row(out)
    # instance, nodes, GPUs used per node, TP, PP
    assert row[1:3] == ["p5en.48xlarge", "1"] and row[3:6] == ["8/8", "x", "H200"]
    assert row[6:8] == ["8", "1"]
    # p5e has the same GPUs but no price: Karpenter could never launch it, so it is
    # neither listed nor a fallback.
    assert "p5e.48xlarge" not in out
    assert "p5.48xlarge" not in out  # 8x H100 does not hold 688 GB
    assert "Weights: Run:ai streamer, 32 range reads from S3" in out
    # 688.6 GB at the streamer's 32 x 0.096 GB/s (the node's 3200 Gbit/s is not the limit)
    assert cold_start_row(out, "weights") == ["225", "s", "225", "s"]


def cold_start_row(out: str, part: str) -> list[str]:
    """The warm-node and new-node cells of one part of the chosen placement's cold start."""
    block = out.split("Cold start of a new replica")[1]
    (line,) = [line for line in block.splitlines() if line.startswith(part + "  ")]
    return line[len(part):].split()[:4]


def test_an_8b_distill_needs_one_gpu(capsys):
    code, out, _ = run_plan(capsys, "--model", "deepseek-r1-distill-llama-8b")
    assert code == 0
    row = marked_row(out)
    assert row[1:4] == ["g6e.xlarge", "1", "1/1"] and row[6:8] == ["1", "1"]
    # The goal: a new replica on a node that ran it serves within 60 s. 10 s pod start +
    # 16.1 GB at 20 Gbit/s burst x 0.6 (1.5 GB/s: 11 s) + 30 s engine (compile cache hit).
    assert row[-2:] == ["51", "s"]
    assert cold_start_row(out, "total") == ["51", "s", "351", "s"]
    assert cold_start_row(out, "node launch")[:2] == ["-", "180"]
    assert cold_start_row(out, "image")[:2] == ["cached", "120"]  # SOCI parallel pull
    # Every row fits: at least the 8 sequences asked for.
    table = out.split("* chosen")[0]  # the placement table; the cost estimate follows
    rows = [line.split() for line in table.splitlines()[2:] if line[:1] in ("*", " ")
            and "xlarge" in line]
    # columns from the right: warm-node start ("51 s"), between nodes ("-"), $/h replica,
    # $/h per node, sequences at full context
    assert len(rows) > 5 and all(int(r[-6]) >= 8 for r in rows)
    assert all(r[-3] == "-" for r in rows)  # one node: nothing between nodes


def test_r1_on_h100_lists_multi_node_placements_with_their_transport(capsys):
    code, out, _ = run_plan(capsys, "--model", "deepseek-r1", "--instance-type", "p5.48xlarge")
    assert code == 0
    row = marked_row(out)
    assert row[1:3] == ["p5.48xlarge", "2"] and row[6:8] == ["8", "2"]  # TP 8 x PP 2
    assert row[11:13] == ["55.04", "110.08"]  # per node, for the replica's two nodes
    assert " ".join(row[13:16]) == "TCP (EFA: efa=true)"
    assert "* chosen: 2 x p5.48xlarge, TP 8 x PP 2" in out
    assert "vllm-eks cost: deepseek-r1 on 2 x p5.48xlarge (on-demand)" in out
    assert "2 x p5.48xlarge (4 at max)" in out  # two nodes per replica, max_replicas 2


def test_the_source_changes_the_cold_start(capsys):
    _, s3, _ = run_plan(capsys, "--model", "deepseek-r1", "--source", "s3")
    _, hf, _ = run_plan(capsys, "--model", "deepseek-r1", "--source", "hf")
    assert cold_start_row(s3, "weights")[:2] == ["225", "s"]  # 3.07 GB/s
    assert cold_start_row(hf, "weights")[:2] == ["6887", "s"]  # 0.1 GB/s through NAT


def test_soci_shortens_a_new_nodes_image_pull(capsys):
    _, soci, _ = run_plan(capsys)  # on by default
    _, plain, _ = run_plan(capsys, "--parallel-image-pull", "false")
    # 12 GB at 1.5 GB/s + 28 GB unpacked at 0.25 GB/s, instead of a plain pull's 300 s
    assert cold_start_row(plain, "image")[:2] == ["cached", "300"]
    assert cold_start_row(soci, "image")[:2] == ["cached", "120"]
    assert "SOCI parallel pull/unpack" in soci


def test_all_covers_the_catalog(capsys):
    code, out, _ = run_plan(capsys, "--all")
    assert code == 0
    for model in BUILT_IN_MODELS:
        assert f"{model.key} ({model.hf_id})" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "llama"], "vllm-eks: unknown model 'llama'"),
    (["--model", "deepseek-r1", "--instance-type", "g6e.xlarge"],
     "vllm-eks: no single- or multi-node (up to 4 nodes) placement fits deepseek-r1"),
    (["--model", "deepseek-r1", "--nodes", "0"], "vllm-eks: --nodes 0 must be at least 1"),
    (["--model", "deepseek-r1", "--nodes", "abc"], "vllm-eks: --nodes 'abc' is not a whole number"),
    (["--model", "deepseek-r1-distill-llama-8b", "--max-model-len", "999999"],
     "exceeds what deepseek-r1-distill-llama-8b supports"),
    (["--max-model-len", "0"], "--max-model-len 0 must be at least 256"),
    (["--tensor-parallel", "16"], "tensor_parallel=16 exceeds the 8 GPUs of the largest"),
    (["--gpu-memory-utilization", "2"], "--gpu-memory-utilization 2.0 must be between 0 and 1"),
    (["--gpu-memory-utilization", "0.05"], "gpu_memory_utilization=0.05 is outside 0.10-0.98"),
])
def test_bad_input_exits_non_zero_with_a_message(capsys, args, message):
    code, out, err = run_plan(capsys, *args)
    assert code == 1 and message in err and out == ""


def test_the_module_entry_point_and_argument_errors():
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    ok = subprocess.run([sys.executable, "-m", "vllm_eks", "plan", "--model", "gpt-oss-20b"],
                        capture_output=True, text=True, env=env, cwd=REPO)
    assert ok.returncode == 0 and "gpt-oss-20b (openai/gpt-oss-20b)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "vllm_eks", "plan", "--capacity", "reserved"],
                         capture_output=True, text=True, env=env, cwd=REPO)
    assert bad.returncode == 1 and (
        "--capacity 'reserved' is not a capacity type; pass --capacity <one of: on-demand, "
        "spot>") in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "vllm_eks", "plan", "--source", "gcs"],
                           capture_output=True, text=True, env=env, cwd=REPO)
    assert usage.returncode == 2 and "invalid choice: 'gcs'" in usage.stderr


def test_readme_model_table_is_generated_from_the_catalog():
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(TABLE_START), readme.index(TABLE_END) + len(TABLE_END)
    assert readme[start:end] == models_table(), (
        "README model table is stale: paste the output of `python -m vllm_eks models-table`")
    for model in BUILT_IN_MODELS:
        assert f"| `{model.key}` |" in models_table()


def test_readme_options_table_is_generated_from_the_config():
    readme = (REPO / "README.md").read_text()
    start = readme.index(OPTIONS_TABLE_START)
    end = readme.index(OPTIONS_TABLE_END) + len(OPTIONS_TABLE_END)
    assert readme[start:end] == options_table(), (
        "README options table is stale: paste the output of "
        "`python -m vllm_eks options-table`")
    assert readme.count(OPTIONS_TABLE_START) == 1


# What synth uses when a key is not given, read from the parsed config.
EFFECTIVE_DEFAULTS = {
    "models": lambda c: ",".join(model.key for model in c.models),
    "min_concurrency": lambda c: c.models[0].plan.min_concurrency,
    "gpu_memory_utilization": lambda c: f"{c.models[0].plan.gpu_memory_utilization:.2f}",
    "capacity": lambda c: c.models[0].plan.capacity.value,
    "region": lambda c: c.region,
    "vpc_cidr": lambda c: c.network.cidr,
    "nat_gateways": lambda c: c.network.nat_gateways,
    "cluster_name": lambda c: c.cluster.name,
    "system_instance_type": lambda c: c.cluster.system_instance_type,
    "system_nodes": lambda c: c.cluster.system_nodes,
    "cpu_limit": lambda c: c.cluster.cpu_limit,
    "prometheus_retention_days": lambda c: c.observability.retention_days,
    "prometheus_storage_gib": lambda c: c.observability.storage_gib,
    "ttft_slo_ms": lambda c: f"{c.observability.ttft_slo_seconds * 1000:g}",
    "min_replicas": lambda c: c.models[0].autoscaling.min_replicas,
    "max_replicas": lambda c: c.models[0].autoscaling.max_replicas,
    "cloudwatch": lambda c: str(c.observability.cloudwatch).lower(),
    "grafana_alb": lambda c: str(c.observability.grafana_alb).lower(),
    "model_revision": lambda c: c.models[0].revision,
    "model_source": lambda c: c.model_source.value,
    "endpoint_scheme": lambda c: c.endpoint.scheme.value,
}


@pytest.mark.parametrize("key", sorted(EFFECTIVE_DEFAULTS))
def test_options_table_states_the_default_synth_uses(key):
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1]
            for line in options_table().splitlines() if line.startswith("| `")}
    assert list(rows) == [f"`{k}`" for k in CONTEXT_KEYS]
    config = EnvironmentConfig.from_context(lambda _key: None)
    assert rows[f"`{key}`"] == f"`{EFFECTIVE_DEFAULTS[key](config)}`"


def test_all_reports_models_that_do_not_fit_and_exits_non_zero(capsys):
    code, out, _ = run_plan(capsys, "--all", "--min-concurrency", "64", "--nodes", "1")
    assert code == 1
    assert "deepseek-r1: does not fit: no single-node placement fits deepseek-r1" in out
    assert "gpt-oss-20b (openai/gpt-oss-20b)" in out  # the others are still compared


def test_all_and_model_are_exclusive():
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "--all", "--model", "gpt-oss-20b"])
    assert exit_info.value.code == 2


def test_plan_prints_the_whole_environment_cost(capsys):
    code, out, _ = run_plan(capsys, "--model", "deepseek-r1")
    assert code == 0
    assert "vllm-eks cost: deepseek-r1 on p5en.48xlarge" in out
    assert re.search(r"^about \$[\d.,]+/hour, \$[\d,]+/month at min_replicas \(", out, re.M)


def test_plan_errors_name_the_cli_flags(capsys):
    code, _, err = run_plan(capsys, "--model", "deepseek-r1", "--tensor-parallel", "3")
    assert code == 1
    assert "pass --tensor-parallel <one of: 1, 2, 4, 8>" in err and "-c " not in err
    code, _, err = run_plan(capsys, "--model", "nope")
    assert "pass --model <one of:" in err


TWO_MODELS = "deepseek-r1-distill-llama-8b,deepseek-r1-distill-qwen-1.5b"


def test_readme_plan_examples_are_the_real_output():
    from vllm_eks.config import EnvironmentConfig
    from vllm_eks.models.cost import estimate_environment_cost, render_cost

    readme = (REPO / "README.md").read_text()
    r1 = EnvironmentConfig.from_context({"model": "deepseek-r1"}.get)
    assert f"```\n{r1.models[0].plan.summary()}\n```" in readme
    table = render_plan(PlanRequest(model=get_model("deepseek-r1")), ModelSource.S3,
                        r1.parallel_image_pull)
    assert f"```\n{table}\n```" in readme
    # "Serve a model larger than one node": R1 on two H100 nodes, as synth and plan print it
    h100 = EnvironmentConfig.from_context({"model": "deepseek-r1",
                                           "instance_type": "p5.48xlarge"}.get)
    assert f"```\n{h100.models[0].plan.summary()}\n```" in readme
    h100_table = render_plan(h100.models[0].plan.request, ModelSource.S3, h100.parallel_image_pull)
    assert f"```\n{h100_table}\n```" in readme
    totals = render_cost(estimate_environment_cost(h100)).splitlines()
    assert next(line for line in totals if line.startswith("about $")).removeprefix(
        "about ") in readme
    two = EnvironmentConfig.from_context({"models": TWO_MODELS}.get)
    for config in (EnvironmentConfig.from_context({}.get), r1, two):
        totals = render_cost(estimate_environment_cost(config)).splitlines()
        assert next(line for line in totals if line.startswith("about $")) in readme
    # "Serve several models": the estimate `plan --models` prints, as printed.
    assert (f"<!-- plan-models:start (python -m vllm_eks plan --models {TWO_MODELS}, the "
            f"estimate) -->\n```\n{render_cost(estimate_environment_cost(two))}\n```") in readme


def test_plan_models_prints_each_model_then_the_environment_cost(capsys):
    code, out, _ = run_plan(capsys, "--models",
                            "deepseek-r1-distill-qwen-1.5b,deepseek-r1-distill-llama-8b",
                            "--max-model-len", "deepseek-r1-distill-llama-8b:8192")
    assert code == 0
    small = out.index("deepseek-r1-distill-qwen-1.5b (deepseek-ai/")
    big = out.index("deepseek-r1-distill-llama-8b (deepseek-ai/")
    cost = out.index("vllm-eks cost: deepseek-r1-distill-qwen-1.5b on g6.xlarge")
    assert small < big < cost  # in the order given, then one estimate for both
    assert "max_model_len 8192" in out[big:cost]
    config = EnvironmentConfig.from_context({
        "models": "deepseek-r1-distill-qwen-1.5b,deepseek-r1-distill-llama-8b",
        "max_model_len": "deepseek-r1-distill-llama-8b:8192"}.get)
    from vllm_eks.models.cost import estimate_environment_cost, render_cost
    assert render_cost(estimate_environment_cost(config)) in out


def test_plan_models_refuses_a_pin_for_a_model_not_listed(capsys):
    code, _, err = run_plan(capsys, "--models", "deepseek-r1-distill-qwen-1.5b",
                            "--max-model-len", "deepseek-r1:8192")
    assert code == 1
    assert "sets a value for 'deepseek-r1', which is not a model of this environment" in err
