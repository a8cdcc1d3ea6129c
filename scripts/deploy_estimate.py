"""The deploy time of a synthesized environment: `make synth` first, then

    .venv/bin/python scripts/deploy_estimate.py [cdk.out]

prints each stack's critical path (typical create times, vllm_eks/deploy_estimate.py)
and the total of `cdk deploy VllmProdStack` on a new account."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vllm_eks.deploy_estimate import (  # noqa: E402
    deploy_estimate,
    load_templates,
    render,
    stack_order,
)


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    if not (outdir / "manifest.json").exists():
        print(f"{outdir} holds no cloud assembly: run `make synth` first", file=sys.stderr)
        return 1
    print(render(deploy_estimate(load_templates(outdir), stack_order(outdir))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
