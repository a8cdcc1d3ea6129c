"""The deploy time of a synthesized environment: `make synth` first, then

    .venv/bin/python scripts/deploy_estimate.py [cdk.out] [--model KEY]

prints each stack's critical path (typical create times, vllm_eks/deploy_estimate.py),
the total of `cdk deploy VllmProdStack` on a new account, and the time to the first
token of the model (default: the default model, placed and loaded as synth's defaults
do)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vllm_eks.config import ConfigError, EnvironmentConfig  # noqa: E402
from vllm_eks.deploy_estimate import (  # noqa: E402
    deploy_estimate,
    first_token,
    load_templates,
    render,
    render_first_token,
    stack_order,
    total_seconds,
)
from vllm_eks.models import DEFAULT_MODEL_KEY, PlanError, UnknownModelError  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deploy_estimate.py", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("outdir", nargs="?", default="cdk.out")
    parser.add_argument("--model", default=DEFAULT_MODEL_KEY,
                        help=f"the model whose first token is estimated ({DEFAULT_MODEL_KEY})")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    if not (outdir / "manifest.json").exists():
        print(f"{outdir} holds no cloud assembly: run `make synth` first", file=sys.stderr)
        return 1
    try:
        config = EnvironmentConfig.from_context({"model": args.model}.get)
    except (ConfigError, PlanError, UnknownModelError) as error:
        print(f"deploy_estimate.py: {error.args[0]}", file=sys.stderr)
        return 1
    estimates = deploy_estimate(load_templates(outdir), stack_order(outdir))
    plan = config.models[0].plan
    parts = first_token(total_seconds(estimates), plan.model, config.model_source,
                        plan.chosen.instance, plan.nodes,
                        parallel_image_pull=config.parallel_image_pull)
    print(render(estimates))
    print()
    print(render_first_token(plan.model.key, plan.instance_type, parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
