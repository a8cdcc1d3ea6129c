"""`python -m vllm_eks`: the planner on the command line, no AWS needed.

    python -m vllm_eks plan --model deepseek-r1           # every placement that fits
    python -m vllm_eks plan --models a,b                  # each model, the environment's cost
    python -m vllm_eks plan --all                         # the whole catalog
    python -m vllm_eks models-table                       # the README's model table
    python -m vllm_eks options-table                      # the README's -c options table
    python -m vllm_eks preflight --model deepseek-r1      # check the AWS account (read-only)
    python -m vllm_eks bench-report s3://.../a.json b.json  # benchmark results, compared
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from . import bench_report
from .config import CONTEXT_OPTIONS, ConfigError, EnvironmentConfig
from .models import (
    DEFAULT_MODEL_KEY,
    CapacityType,
    CatalogError,
    DeploymentPlan,
    Placement,
    PlanError,
    PlanRequest,
    UnknownModelError,
    candidate_placements,
    catalog,
    get_model,
    plan,
)
from .models.catalog import BUILT_IN_MODELS
from .models.cost import estimate_environment_cost, render_cost
from .models.instances import PRICE_REGION, PRICES_CHECKED
from .models.planner import DEFAULT_GPU_MEMORY_UTILIZATION, DEFAULT_MIN_CONCURRENCY
from .models.profile import GB
from .models.sources import LOAD_PATHS, ColdStart, ModelSource, cold_start
from .preflight import CHECKS as PREFLIGHT_CHECKS
from .preflight import options as preflight_options
from .preflight.options import translate

TABLE_START = "<!-- model-table:start (python -m vllm_eks models-table) -->"
TABLE_END = "<!-- model-table:end -->"
OPTIONS_TABLE_START = "<!-- options-table:start (python -m vllm_eks options-table) -->"
OPTIONS_TABLE_END = "<!-- options-table:end -->"
# `plan` flags, each a -c key with dashes.
PLAN_FLAG_KEYS = ("max_model_len", "min_concurrency", "gpu_memory_utilization",
                  "instance_type", "tensor_parallel", "nodes", "capacity",
                  "parallel_image_pull")


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def _price(placement: Placement) -> str:
    return "-" if placement.usd_per_hour is None else f"{placement.usd_per_hour:.2f}"


def _node_price(placement: Placement) -> str:
    price = placement.instance.on_demand_usd_per_hour
    return "-" if price is None else f"{price:.2f}"


def transport(placement: Placement) -> str:
    """How the nodes of a replica talk: none on one node; TCP, or EFA when the type has it
    and -c efa=true (the vLLM image alone has no EFA libraries)."""
    if placement.nodes == 1:
        return "-"
    return "TCP (EFA: efa=true)" if placement.instance.efa else "TCP"


def placement_rows(request: PlanRequest, chosen: Placement, source: ModelSource) -> list[list[str]]:
    """Every placement that fits, cheapest first, the chosen one marked with `*` (the
    multi-node ones when the chosen placement spans nodes)."""
    candidates = candidate_placements(request, multi_node=chosen.nodes > 1)
    fitting = [p for p in candidates if p.fits(request.min_concurrency)]
    rows = []
    for p in fitting:
        mark = "*" if (p.instance.instance_type, p.tensor_parallel, p.nodes) == (
            chosen.instance.instance_type, chosen.tensor_parallel, chosen.nodes) else ""
        rows.append([
            mark, p.instance.instance_type, str(p.nodes),
            f"{p.tensor_parallel}/{p.instance.gpu_count} x {p.instance.gpu.name.removeprefix('NVIDIA ')}",
            str(p.tensor_parallel), str(p.pipeline_parallel),
            f"{p.kv_cache_bytes / GB:.1f}",
            f"{p.max_concurrent_sequences / request.min_concurrency:.1f}x",
            str(p.max_concurrent_sequences),
            _node_price(p), _price(p), transport(p),
            f"{cold_start(request.model, source, p.instance, p.nodes).warm_node} s",
        ])
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_plan(request: PlanRequest, source: ModelSource,
                parallel_image_pull: bool) -> str:
    chosen_plan: DeploymentPlan = plan(request)
    model, chosen = request.model, chosen_plan.chosen
    header = ["", "instance", "nodes", "GPUs used per node", "TP", "PP", "KV cache GB",
              "headroom", f"seqs@{chosen.max_model_len}", "$/h per node", "$/h replica",
              "between nodes", f"warm-node start ({source.value})"]
    rows = placement_rows(request, chosen, source)
    return "\n".join([
        f"{model.key} ({model.hf_id}): {model.weight_bytes / GB:.1f} GB of weights, "
        f"max_model_len {chosen.max_model_len}, at least {request.min_concurrency} "
        f"sequences at full context, gpu_memory_utilization "
        f"{request.gpu_memory_utilization:.2f}, {request.capacity.value}",
        _table(header, rows),
        f"* chosen: {chosen.nodes} x " * (chosen.nodes > 1) + (
            "* chosen: " if chosen.nodes == 1 else "")
        + f"{chosen.instance.instance_type}, TP {chosen.tensor_parallel}"
        + (f" x PP {chosen.nodes}" if chosen.nodes > 1 else "") + " "
        f"({len(rows)} placement{'s' if len(rows) != 1 else ''} fit{'' if len(rows) != 1 else 's'}). "
        "headroom = sequences the KV cache holds / the minimum asked for; spot prices vary "
        "below the on-demand list price.",
        render_cold_start(cold_start(model, source, chosen.instance, chosen.nodes,
                                     parallel_image_pull=parallel_image_pull),
                          chosen.instance.instance_type, source, parallel_image_pull),
    ])


def render_cold_start(parts: ColdStart, instance_type: str, source: ModelSource,
                      parallel_image_pull: bool) -> str:
    """A new replica's start in parts, on a node that already ran the model and on a new
    one (sources.py names every figure and its source)."""
    image = ("SOCI parallel pull/unpack" if parallel_image_pull
             else "plain pull: -c parallel_image_pull=false")
    rows = [
        ["node launch", "-", f"{parts.node_launch} s", "Karpenter, EC2, Bottlerocket boot, "
         "NVIDIA driver (typical)"],
        ["image", "cached", f"{parts.image} s", f"vLLM image, ~12 GB compressed ({image})"],
        ["pod start", f"{parts.pod_start} s", f"{parts.pod_start} s",
         "scheduling, CSI mounts, weights check"],
        ["weights", f"{parts.weights} s", f"{parts.weights} s",
         f"from {source.value} at {parts.weights_gb_per_second:.2f} GB/s"],
        ["engine start", f"{parts.engine} s", f"{parts.engine} s",
         f"compile cache hit (a placement's first start ever: +{parts.compile} s)"],
        ["total", f"{parts.warm_node} s", f"{parts.new_node} s", ""],
    ]
    return (f"Cold start of a new replica ({instance_type}):\n"
            + _table(["", "warm node", "new node", "assumed"], rows))


def assumptions(source: ModelSource) -> str:
    path = LOAD_PATHS[source]
    return (f"Weights: {path.assumption}; the node's bandwidth from its type (burst where it "
            "bursts). Figures and sources: vllm_eks/models/sources.py. Prices: "
            f"{PRICE_REGION} on-demand list, {PRICES_CHECKED}.")


def models_table() -> str:
    """The README's table of the built-in catalog, generated from it (registered
    out-of-tree models are not part of this repository's README)."""
    header = ["model (`-c model=`)", "Hugging Face", "weights", "default context",
              "planned instance", "TP", "$/hour"]
    rows = []
    for model in sorted(BUILT_IN_MODELS, key=lambda m: m.key):
        key = model.key
        chosen = plan(PlanRequest(model=model)).chosen
        rows.append([f"`{key}`", f"`{model.hf_id}`", f"{model.weight_bytes / GB:.1f} GB",
                     str(model.default_max_model_len), chosen.instance.instance_type,
                     str(chosen.tensor_parallel), _price(chosen)])
    return _markdown_table(header, rows, TABLE_START, TABLE_END)


def options_table() -> str:
    """The README's table of the `-c` keys, generated from config.CONTEXT_OPTIONS (whose
    defaults are read from the config dataclasses)."""
    rows = [[f"`{option.key}`", option.default, option.meaning] for option in CONTEXT_OPTIONS]
    return _markdown_table(["key", "default", "meaning"], rows, OPTIONS_TABLE_START,
                           OPTIONS_TABLE_END)


def _markdown_table(header: list[str], rows: list[list[str]], start: str, end: str) -> str:
    """A Markdown table between the README markers `start` and `end`."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([start, *lines, end])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vllm_eks",
                                     description="Plan GPU placements for vLLM models.")
    commands = parser.add_subparsers(dest="command", required=True)
    plan_parser = commands.add_parser("plan", help="every placement that fits a model")
    which = plan_parser.add_mutually_exclusive_group()
    which.add_argument("--model", help=f"one model (default {DEFAULT_MODEL_KEY})")
    which.add_argument("--models", help="comma-separated models of one environment: each "
                       "model's placements, then the environment's cost")
    which.add_argument("--all", action="store_true", help="every model of the catalog")
    # Strings: the -c parser reads them (one value for every model, or
    # <model>:<value>,... per model), with synth's defaults and validation.
    for key in PLAN_FLAG_KEYS:
        plan_parser.add_argument(preflight_options.flag(key), dest=key,
                                 help=f"as -c {key}=...")
    plan_parser.add_argument("--source", dest="model_source",
                             choices=[s.value for s in ModelSource],
                             default=ModelSource.S3.value, help="load path for the cold start")
    preflight = commands.add_parser(
        "preflight", help="check the AWS account before a deploy (read-only, boto3)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="\n\n".join([
            textwrap.fill("Read-only checks of the account of the default AWS credentials, in "
                          "the region synth deploys to (--region, else synth's default; not "
                          "the profile's region), for the environment the options describe "
                          "(the same -c keys, defaults and validation as synth):", 88),
            "\n".join(textwrap.fill(what, 88, initial_indent=f"  {name:<20} ",
                                     subsequent_indent=" " * 23)
                      for name, what in PREFLIGHT_CHECKS),
            textwrap.fill("Exit status 0 when no check finds a problem, 1 otherwise (a check "
                          "that could not run is listed but does not fail). See "
                          "docs/preflight.md.", 88)]))
    preflight_options.add_arguments(preflight)
    bench_report.add_arguments(commands.add_parser(
        "bench-report", help="a table of saved benchmark results (files or s3:// URIs); "
        "two compared"))
    commands.add_parser("models-table", help="the README's model table (Markdown)")
    commands.add_parser("options-table", help="the README's -c options table (Markdown)")
    return parser


def _plan(args: argparse.Namespace) -> int:
    """Each model's placements (and, for one environment, its cost), the flags read by
    the same context parser synth uses."""
    source = ModelSource(args.model_source)
    context = {key: getattr(args, key) for key in (*PLAN_FLAG_KEYS, "model_source")
               if getattr(args, key) is not None}
    if not args.all:
        if args.models:
            context["models"] = args.models
        else:
            context["model"] = args.model or DEFAULT_MODEL_KEY
        config = EnvironmentConfig.from_context(context.get)
        blocks = [render_plan(model.plan.request, source, config.parallel_image_pull)
                  for model in config.models]
        # The whole environment, at the default of every other -c option.
        blocks.append(render_cost(estimate_environment_cost(config)))
        print("\n\n".join(blocks + [assumptions(source)]))
        return 0
    blocks, failed = [], 0
    for key in sorted(catalog()):
        try:
            config = EnvironmentConfig.from_context({**context, "model": key}.get)
            blocks.append(render_plan(config.models[0].plan.request, source,
                                      config.parallel_image_pull))
        except PlanError as error:
            failed += 1  # --all compares: a model that does not fit is one block
            blocks.append(f"{key}: does not fit: {error}")
    print("\n\n".join(blocks + [assumptions(source)]))
    return 1 if failed else 0


def _preflight(args: argparse.Namespace) -> int:
    try:
        config = preflight_options.config_from_args(args)
    except preflight_options.OptionError as error:
        print(f"vllm-eks: {error}", file=sys.stderr)
        return 1
    from .preflight.runner import run_preflight  # imports boto3: only for this command

    return run_preflight(config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "models-table":
            print(models_table())
            return 0
        if args.command == "options-table":
            print(options_table())
            return 0
        if args.command == "preflight":
            return _preflight(args)
        if args.command == "bench-report":
            return bench_report.run(args)
        return _plan(args)
    except (ConfigError, PlanError, UnknownModelError, CatalogError) as error:
        # The planner speaks of `-c` keys; here the user typed flags.
        print(f"vllm-eks: {translate(str(error))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `plan --all | head`
        sys.stderr.close()
        return 0
