"""Reports on `vllm bench serve --save-result` runs: a row per run, cost per million
output tokens, the TTFT SLO, and a comparison of two runs.

The saved JSON, per vllm/benchmarks/serve.py of vLLM 0.33.0 (PyPI sdist vllm-0.33.0.tar.gz):
- lines 2302-2338 (main_async): `date` (local "%Y%m%d-%H%M%S"), `endpoint_type`, `backend`,
  `label`, `model_id`, `tokenizer_id`, `num_prompts`; each `--metadata KEY=VALUE`, the value
  a string (2315-2323); `request_rate` (float or "inf"), `burstiness`, `max_concurrency`
  (int or null), which overwrite metadata of the same name; the benchmark's keys last.
- lines 1319-1341 (benchmark): `duration`, `completed`, `failed`, `total_input_tokens`,
  `total_output_tokens`, `request_throughput`, `request_goodput` (null without --goodput),
  `output_throughput`, `total_token_throughput`, per-request lists,
  `max_output_tokens_per_s`, `max_concurrent_requests`, `rtfx`.
- lines 1398-1437 (process_one_metric): `mean_/median_/std_<m>_ms` and `p<P>_<m>_ms` per
  --percentile-metrics name and --metric-percentiles value; ttft/tpot/itl need a tokenizer.
- lines 2428-2444: without --save-detailed the per-request lists are deleted, all but
  `latencies` and `queue_times`. The --goodput SLO is not saved: the Job records it as
  metadata (`ttft_slo_ms`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

# Written for every generation run (lines 2306-2330, 1320-1327): without them a file is
# not a `vllm bench serve` result.
REQUIRED_KEYS = ("model_id", "num_prompts", "request_rate", "max_concurrency", "duration",
                 "completed", "failed", "request_throughput", "output_throughput")
PERCENTILES = (50, 95, 99)  # the Job's --metric-percentiles
USAGE = "give a result JSON file or an s3://<bucket>/<key> URI"


class BenchReportError(Exception):
    """A result that cannot be read, or is not what `vllm bench serve` saves."""


@dataclass(frozen=True)
class Percentiles:
    """p50, p95 and p99 of one latency in ms; None where the run did not record it."""

    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, kw_only=True)
class BenchResult:
    """One saved `vllm bench serve` run, as the report needs it."""

    source: str  # the path or s3:// URI it was read from
    model: str  # metadata model_key, else vLLM's model_id
    workload: str | None  # metadata workload: random, prefix_repetition, sharegpt
    request_rate: float  # requests/s the client aimed at; inf: all sent at once
    max_concurrency: int | None
    completed: int
    failed: int
    duration_s: float
    request_throughput: float  # completed requests/s
    output_throughput: float  # output tokens/s
    goodput: float | None  # requests/s within the --goodput SLO; None without --goodput
    ttft: Percentiles
    tpot: Percentiles
    itl: Percentiles
    e2el: Percentiles
    ttft_slo_ms: float | None
    usd_per_hour: float | None  # one replica's price
    instance_type: str | None
    nodes: int | None  # nodes of one replica
    replicas: int = 1  # replicas the benchmark drove

    @property
    def name(self) -> str:
        """The file name without .json: the UTC timestamp for the Job's S3 uploads."""
        return PurePosixPath(self.source).stem


def load_result(source: str, *, s3_client: Any = None) -> BenchResult:
    """Read a saved result: a file, or s3://bucket/key through `s3_client` (else boto3's)."""
    raw = _read_s3(source, s3_client) if source.startswith("s3://") else _read_file(source)
    try:
        data = json.loads(raw)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        raise BenchReportError(f"{source} is not JSON ({error}): give the file "
                               "`vllm bench serve --save-result` writes") from None
    return _parse(source, data)


def _read_file(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as error:  # "No such file or directory", "Is a directory", ...
        raise BenchReportError(f"cannot read {source}: {error.strerror} ({USAGE})") from None


def _read_s3(source: str, s3_client: Any) -> bytes:
    bucket, _, key = source.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise BenchReportError(f"{source} names no object: give s3://<bucket>/<key>, e.g. "
                               "s3://<bucket>/benchmarks/<model>/<workload>/<timestamp>.json")
    # Only here: a report of local files needs no AWS SDK.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise BenchReportError(f"cannot read {source}: {error} (check the bucket, the key "
                               "and the AWS credentials)") from None


def _parse(source: str, data: Any) -> BenchResult:
    if not isinstance(data, dict):
        raise BenchReportError(f"{source} holds a JSON {type(data).__name__}, not the object "
                               "`vllm bench serve --save-result` writes (the .pytorch.json "
                               "it writes beside it is a list)")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise BenchReportError(f"{source} is not a `vllm bench serve --save-result` result: "
                               f"no {', '.join(missing)}")

    def number(key: str, kind: Callable[[Any], float | int] = float) -> Any:
        """A number vLLM wrote, or a metadata string (None when absent)."""
        value = data.get(key)
        if value is None:
            return None
        if key == "request_rate" and value == "inf":  # --request-rate inf (the default)
            return math.inf
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            return kind(value)
        except (TypeError, ValueError):
            raise BenchReportError(f"{source}: {key}={value!r} is not a number (metadata: "
                                   f"--metadata {key}=<number>)") from None

    def percentiles(metric: str) -> Percentiles:
        return Percentiles(*(number(f"p{p}_{metric}_ms") for p in PERCENTILES))

    result = BenchResult(
        source=source, model=str(data.get("model_key") or data["model_id"]),
        workload=data.get("workload"), request_rate=number("request_rate"),
        max_concurrency=number("max_concurrency", int), completed=number("completed", int),
        failed=number("failed", int), duration_s=number("duration"),
        request_throughput=number("request_throughput"),
        output_throughput=number("output_throughput"), goodput=number("request_goodput"),
        ttft=percentiles("ttft"), tpot=percentiles("tpot"), itl=percentiles("itl"),
        e2el=percentiles("e2el"), ttft_slo_ms=number("ttft_slo_ms"),
        usd_per_hour=number("usd_per_hour"), instance_type=data.get("instance_type"),
        nodes=number("nodes", int),
        replicas=1 if data.get("replicas") is None else number("replicas", int))
    if result.replicas < 1:
        raise BenchReportError(f"{source}: replicas={result.replicas} must be at least 1")
    if result.ttft_slo_ms is not None and result.ttft.p95 is None:
        raise BenchReportError(f"{source} records ttft_slo_ms but no p95_ttft_ms: run the "
                               "benchmark with --percentile-metrics ttft,... and "
                               "--metric-percentiles 50,95,99")
    return result


def cost_per_million_output_tokens(result: BenchResult) -> float | None:
    """USD per million output tokens at the measured throughput; None without a price or
    throughput. usd_per_hour is one replica's price; the run costs it times `replicas`,
    the replicas that served it when the result records them, else 1 (a benchmark of one
    model's Service, which one replica serves)."""
    if not result.usd_per_hour or not result.output_throughput:
        return None
    usd_per_hour = result.usd_per_hour * result.replicas
    return usd_per_hour / (result.output_throughput * 3600) * 1e6


def meets_slo(result: BenchResult) -> bool | None:
    """Whether p95 TTFT is within the recorded ttft_slo_ms; None when none is recorded.
    A run with no completed request misses it: vLLM then saves 0 for every percentile
    (np.percentile(ttfts or 0, p), line 787)."""
    if result.ttft_slo_ms is None:
        return None
    return result.completed > 0 and result.ttft.p95 <= result.ttft_slo_ms


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _triple(p: Percentiles) -> str:
    return f"{_fmt(p.p50)}/{_fmt(p.p95)}/{_fmt(p.p99)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# (label, value, higher is better) for the comparison of two runs.
COMPARED: tuple[tuple[str, Callable[[BenchResult], float | None], bool], ...] = (
    ("requests/s", lambda r: r.request_throughput, True),
    ("goodput requests/s", lambda r: r.goodput, True),
    ("output tokens/s", lambda r: r.output_throughput, True),
    ("TTFT p50 ms", lambda r: r.ttft.p50, False),
    ("TTFT p95 ms", lambda r: r.ttft.p95, False),
    ("TTFT p99 ms", lambda r: r.ttft.p99, False),
    ("TPOT p50 ms", lambda r: r.tpot.p50, False),
    ("TPOT p95 ms", lambda r: r.tpot.p95, False),
    ("ITL p95 ms", lambda r: r.itl.p95, False),
    ("E2E p95 ms", lambda r: r.e2el.p95, False),
    ("$/M output tokens", cost_per_million_output_tokens, False),
)


def compare(first: BenchResult, second: BenchResult) -> list[list[str]]:
    """Rows of metric, first, second, change in %, and whether the second is better."""
    rows = []
    for label, value, higher_is_better in COMPARED:
        a, b = value(first), value(second)
        change, verdict = "-", "-"
        if a is not None and b is not None:
            verdict = "same" if a == b else "better" if (b > a) == higher_is_better else "worse"
            if a:
                change = f"{(b - a) / a * 100:+.1f}%"
        digits = 3 if label.startswith("$") else 2 if label.startswith(("req", "good")) else 1
        rows.append([label, _fmt(a, digits), _fmt(b, digits), change, verdict])
    return rows


def render_report(results: list[BenchResult]) -> str:
    """A table of the runs; with exactly two, how the second compares with the first."""
    header = ["run", "model", "instance", "workload", "rate", "conc", "ok/failed", "req/s",
              "good req/s", "out tok/s", "TTFT p50/p95/p99 ms", "TPOT p50/p95/p99 ms",
              "E2E p95 ms", "$/M out tok", "SLO met"]
    rows = [[r.name, r.model, (f"{r.nodes} x " if (r.nodes or 1) > 1 else "")
             + (r.instance_type or "-"), r.workload or "-", _fmt(r.request_rate, 2),
             "-" if r.max_concurrency is None else str(r.max_concurrency),
             f"{r.completed}/{r.failed}", _fmt(r.request_throughput, 2), _fmt(r.goodput, 2),
             _fmt(r.output_throughput), _triple(r.ttft), _triple(r.tpot), _fmt(r.e2el.p95),
             _fmt(cost_per_million_output_tokens(r), 3),
             {True: "yes", False: "no", None: "-"}[meets_slo(r)]] for r in results]
    blocks = [_table(header, rows),
              "$/M out tok: usd_per_hour x replicas / output tokens per hour. SLO met: p95 "
              "TTFT <= ttft_slo_ms. Latency percentiles are of completed requests only."]
    if len(results) == 2:
        first, second = results
        blocks.append(f"{second.name} compared with {first.name} (lower latency and cost "
                      "are better, higher throughput is better):\n" + _table(
                          ["metric", first.name, second.name, "change", "second is"],
                          compare(first, second)))
    return "\n\n".join(blocks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULT",
                        help="a result JSON file or an s3:// URI")
    parser.add_argument("--fail-on-slo", action="store_true",
                        help="exit status 1 when a run misses its TTFT SLO (p95 TTFT over "
                             "its ttft_slo_ms; runs without one are not checked)")


def run(args: argparse.Namespace, *, s3_client: Any = None) -> int:
    """Print the report: 1 when a result is unreadable, or a run misses its SLO with
    --fail-on-slo; else 0."""
    try:
        results = [load_result(source, s3_client=s3_client) for source in args.results]
    except BenchReportError as error:
        print(f"vllm-eks: {error}", file=sys.stderr)
        return 1
    print(render_report(results))
    missed = [result.name for result in results if meets_slo(result) is False]
    if args.fail_on_slo and missed:
        print(f"vllm-eks: p95 TTFT over the SLO in {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0
