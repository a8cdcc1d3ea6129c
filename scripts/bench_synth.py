#!/usr/bin/env python3
"""Median wall time of a whole-app synth (all stacks, cdk-nag on), as `cdk synth` runs
app.py. Target: <= 15 s on the 2-core machine.

    .venv/bin/python scripts/bench_synth.py [--runs 5] [--model deepseek-r1] [--no-validation]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 15.0


def synth_once(outdir: str, context: dict, validation: bool) -> float:
    env = {
        **os.environ,
        "CDK_OUTDIR": outdir,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_VALIDATION": "true" if validation else "false",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    start = time.perf_counter()
    subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="-c model= (default: embedded default)")
    parser.add_argument("--no-validation", action="store_true",
                        help="skip aws-cdk-lib's built-in validation (CDK_VALIDATION=false)")
    args = parser.parse_args()
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    if args.model:
        context["model"] = args.model
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as outdir:
            times.append(synth_once(outdir, context, not args.no_validation))
        print(f"run {run + 1}: {times[-1]:.2f} s", file=sys.stderr)
    median = statistics.median(times)
    print(json.dumps({
        "model": args.model or "default",
        "validation": not args.no_validation,
        "runs": args.runs,
        "median_s": round(median, 2),
        "min_s": round(min(times), 2),
        "max_s": round(max(times), 2),
        "target_s": TARGET_SECONDS,
        "within_target": median <= TARGET_SECONDS,
    }))
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
