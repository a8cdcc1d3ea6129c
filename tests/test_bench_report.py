"""vllm_eks.bench_report: reading saved `vllm bench serve` results and the report."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from vllm_eks import bench_report
from vllm_eks.bench_report import (
    BenchReportError,
    compare,
    cost_per_million_output_tokens,
    load_result,
    meets_slo,
    render_report,
)

from .support import REPO

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
BASELINE, SATURATED = FIXTURES / "baseline.json", FIXTURES / "saturated.json"


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def write(tmp_path: Path, data: object, name: str = "run.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def changed(tmp_path: Path, name: str = "run.json", *, drop: tuple[str, ...] = (),
            **values: object) -> str:
    """The baseline fixture with keys dropped or set, as a file."""
    data = {k: v for k, v in raw(BASELINE).items() if k not in drop}
    return write(tmp_path, {**data, **values}, name)


def error_of(source: str, **kwargs: object) -> str:
    with pytest.raises(BenchReportError) as caught:
        load_result(source, **kwargs)
    return str(caught.value)


class FakeS3:
    """get_object of one stored object, recording what it was asked for."""

    def __init__(self, body: bytes | None = None):
        self.body, self.calls = body, []

    def get_object(self, *, Bucket: str, Key: str) -> dict:
        self.calls.append((Bucket, Key))
        if self.body is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key "
                                         "does not exist."}}, "GetObject")
        return {"Body": io.BytesIO(self.body)}


def run(capsys, *argv: str, s3_client: object = None) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    bench_report.add_arguments(parser)
    code = bench_report.run(parser.parse_args(argv), s3_client=s3_client)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# The fixtures are what vLLM 0.33.0 saves: metadata as strings, no per-request lists but
# latencies and queue_times (tests/fixtures/bench/README.md).
def test_fixtures_have_the_saved_structure():
    for path in (BASELINE, SATURATED):
        data = raw(path)
        assert isinstance(data["usd_per_hour"], str) and isinstance(data["nodes"], str)
        assert isinstance(data["request_rate"], float)  # vLLM's, written over the metadata
        assert not {"ttfts", "itls", "input_lens", "output_lens", "errors"} & data.keys()
        assert len(data["latencies"]) == len(data["queue_times"]) == data["num_prompts"]
        assert data["completed"] + data["failed"] == data["num_prompts"]


def test_load_reads_the_fields_and_converts_metadata():
    data, result = raw(BASELINE), load_result(str(BASELINE))
    assert result.name == "baseline" and result.source == str(BASELINE)
    assert result.model == "deepseek-r1-distill-llama-8b" and result.workload == "random"
    assert (result.request_rate, result.max_concurrency) == (4.0, 32)
    assert (result.completed, result.failed) == (200, 0)
    assert result.duration_s == data["duration"]
    assert result.request_throughput == data["request_throughput"]
    assert result.output_throughput == data["output_throughput"]
    assert result.goodput == data["request_goodput"]
    assert result.ttft.p95 == data["p95_ttft_ms"] and result.tpot.p50 == data["p50_tpot_ms"]
    assert result.itl.p99 == data["p99_itl_ms"] and result.e2el.p95 == data["p95_e2el_ms"]
    assert (result.usd_per_hour, result.nodes, result.ttft_slo_ms) == (1.861, 1, 500.0)
    assert (result.instance_type, result.replicas) == ("g6e.xlarge", 1)
    saturated = load_result(str(SATURATED))
    assert (saturated.completed, saturated.failed) == (397, 3)


def test_model_key_and_failed_are_read_as_saved(tmp_path):
    # The Job's model_key names the catalog entry whatever --model the client sent; vLLM
    # counts the failed requests itself (serve.py line 1322).
    result = load_result(changed(tmp_path, model_id="served-name", failed=4))
    assert (result.model, result.failed) == ("deepseek-r1-distill-llama-8b", 4)


def test_model_falls_back_to_model_id_and_optional_fields_to_none(tmp_path):
    source = changed(tmp_path, drop=("model_key", "workload", "p50_ttft_ms", "ttft_slo_ms"),
                     model_id="served-name", request_goodput=None, max_concurrency=None,
                     request_rate="inf")
    result = load_result(source)
    assert result.model == "served-name" and result.workload is None
    assert result.goodput is None and result.max_concurrency is None
    assert result.request_rate == float("inf") and result.ttft.p50 is None
    row = render_report([result]).splitlines()[2]
    assert " inf " in row and "-/" in row


def test_cost_per_million_output_tokens_from_the_fixture_numbers():
    data = raw(BASELINE)
    tokens_per_hour = data["output_throughput"] * 60 * 60
    expected = float(data["usd_per_hour"]) / tokens_per_hour * 1_000_000
    cost = cost_per_million_output_tokens(load_result(str(BASELINE)))
    assert cost == pytest.approx(expected)
    assert cost == pytest.approx(0.5435, abs=1e-4)  # $1.861/h at 951.15 tok/s


def test_cost_counts_every_replica_and_needs_price_and_throughput(tmp_path):
    one = cost_per_million_output_tokens(load_result(str(BASELINE)))
    three = load_result(changed(tmp_path, "three.json", replicas="3"))
    assert cost_per_million_output_tokens(three) == pytest.approx(3 * one)
    assert cost_per_million_output_tokens(
        load_result(changed(tmp_path, "noprice.json", drop=("usd_per_hour",)))) is None
    assert cost_per_million_output_tokens(
        load_result(changed(tmp_path, "zero.json", output_throughput=0.0))) is None
    assert "replicas=0 must be at least 1" in error_of(changed(tmp_path, replicas="0"))


def test_meets_slo_compares_p95_ttft_with_the_recorded_slo(tmp_path):
    assert meets_slo(load_result(str(BASELINE))) is True  # p95 267.7 ms <= 500 ms
    assert meets_slo(load_result(str(SATURATED))) is False  # p95 1048.1 ms > 500 ms
    at_limit = changed(tmp_path, "at.json", ttft_slo_ms=str(raw(BASELINE)["p95_ttft_ms"]))
    assert meets_slo(load_result(at_limit)) is True
    assert meets_slo(load_result(changed(tmp_path, drop=("ttft_slo_ms",)))) is None
    # Every request failed: vLLM saves 0 ms percentiles, which must not pass.
    all_failed = changed(tmp_path, "failed.json", completed=0, failed=200,
                         **{f"p{p}_ttft_ms": 0.0 for p in (50, 95, 99)})
    assert meets_slo(load_result(all_failed)) is False


def test_comparison_says_which_direction_is_better():
    first, second = load_result(str(BASELINE)), load_result(str(SATURATED))
    rows = {row[0]: row[1:] for row in compare(first, second)}
    a, b = raw(BASELINE), raw(SATURATED)
    throughput_change = (b["request_throughput"] / a["request_throughput"] - 1) * 100
    assert rows["requests/s"] == [f"{a['request_throughput']:.2f}",
                                  f"{b['request_throughput']:.2f}",
                                  f"+{throughput_change:.1f}%", "better"]
    ttft_change = (b["p95_ttft_ms"] / a["p95_ttft_ms"] - 1) * 100
    assert rows["TTFT p95 ms"][2:] == [f"+{ttft_change:.1f}%", "worse"]
    assert rows["E2E p95 ms"][3] == "worse" and rows["output tokens/s"][3] == "better"
    # The saturated run makes more tokens on the same instance: each one is cheaper.
    assert rows["$/M output tokens"][2].startswith("-") and rows["$/M output tokens"][3] == "better"
    # The other way round, every verdict flips.
    reverse = {row[0]: row[4] for row in compare(second, first)}
    assert reverse["requests/s"] == "worse" and reverse["TTFT p95 ms"] == "better"
    assert {row[4] for row in compare(first, first)} == {"same"}


def test_comparison_without_a_value_shows_a_dash(tmp_path):
    first = load_result(changed(tmp_path, request_goodput=None))
    rows = {row[0]: row[1:] for row in compare(first, load_result(str(SATURATED)))}
    assert rows["goodput requests/s"][0] == "-" and rows["goodput requests/s"][2:] == ["-", "-"]


def test_report_has_a_row_per_run_and_compares_only_two():
    baseline, saturated = load_result(str(BASELINE)), load_result(str(SATURATED))
    report = render_report([baseline, saturated])
    lines = report.splitlines()
    assert lines[0].split()[:4] == ["run", "model", "instance", "workload"]
    assert lines[2].startswith("baseline ") and lines[2].endswith("yes")
    assert lines[3].startswith("saturated ") and lines[3].endswith("no")
    assert "200/0" in lines[2] and "397/3" in lines[3] and "0.543" in lines[2]
    assert "88.8/267.7/412.8" in lines[2]  # TTFT p50/p95/p99 of the fixture
    assert "saturated compared with baseline" in report
    assert "compared with" not in render_report([baseline])
    assert "compared with" not in render_report([baseline, saturated, baseline])
    assert " g6e.xlarge " in lines[2]


def test_report_shows_the_nodes_of_a_replica_and_dashes_for_what_is_missing(tmp_path):
    two_nodes = load_result(changed(tmp_path, "two.json", nodes="2"))
    assert " 2 x g6e.xlarge " in render_report([two_nodes])
    bare = load_result(changed(tmp_path, "bare.json", drop=(
        "instance_type", "nodes", "usd_per_hour", "ttft_slo_ms")))
    row = render_report([bare]).splitlines()[2].split()
    assert row[2] == "-" and row[-2:] == ["-", "-"]  # instance; $/M and SLO met


@pytest.mark.parametrize(("make_source", "expected"), [
    (lambda tmp: str(tmp / "absent.json"), ["absent.json", "No such file or directory",
                                              "s3://<bucket>/<key>"]),
    (lambda tmp: str(tmp), ["Is a directory"]),
    (lambda tmp: _text(tmp / "bad.json", "{not json"),
     ["bad.json is not JSON", "--save-result"]),
    (lambda tmp: _text(tmp / "binary.json", b"\xff\xfe\x00"), ["binary.json is not JSON"]),
    (lambda tmp: write(tmp, [{"metadata": {}}], "list.json"),
     ["list.json holds a JSON list", ".pytorch.json"]),
    (lambda tmp: changed(tmp, drop=("duration", "failed")),
     ["not a `vllm bench serve --save-result` result: no duration, failed"]),
    (lambda tmp: write(tmp, {"date": "x"}, "other.json"), ["no model_id, num_prompts"]),
    (lambda tmp: changed(tmp, usd_per_hour="1.86/h"),
     ["usd_per_hour='1.86/h' is not a number", "--metadata usd_per_hour=<number>"]),
    (lambda tmp: changed(tmp, completed=True), ["completed=True is not a number"]),
    (lambda tmp: changed(tmp, drop=("p95_ttft_ms",)),
     ["records ttft_slo_ms but no p95_ttft_ms", "--metric-percentiles"]),
])
def test_errors_name_the_value_and_the_fix(tmp_path, make_source, expected):
    message = error_of(make_source(tmp_path))
    for part in expected:
        assert part in message


def _text(path: Path, content: str | bytes) -> str:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3://", "s3:///key.json",
                                 "s3://bucket/benchmarks/"])
def test_a_uri_without_an_object_is_refused_before_any_request(uri):
    client = FakeS3(BASELINE.read_bytes())
    message = error_of(uri, s3_client=client)
    assert message.startswith(f"{uri} names no object") and "s3://<bucket>/<key>" in message
    assert client.calls == []


def test_s3_results_are_read_through_the_client():
    client = FakeS3(BASELINE.read_bytes())
    uri = "s3://bench-bucket/benchmarks/deepseek-r1-distill-llama-8b/20261201T101502Z.json"
    result = load_result(uri, s3_client=client)
    assert client.calls == [("bench-bucket",
                             "benchmarks/deepseek-r1-distill-llama-8b/20261201T101502Z.json")]
    assert result.name == "20261201T101502Z" and result.source == uri
    assert result == dataclasses.replace(load_result(str(BASELINE)), source=uri)


def test_s3_errors_name_the_uri():
    message = error_of("s3://bench-bucket/benchmarks/m/missing.json", s3_client=FakeS3())
    assert message.startswith("cannot read s3://bench-bucket/benchmarks/m/missing.json: ")
    assert "NoSuchKey" in message and "credentials" in message


def test_the_module_imports_no_aws_sdk():
    code = ("import sys, vllm_eks.bench_report; "
            "sys.exit(bool({'boto3', 'botocore', 'aws_cdk'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_run_prints_the_report_and_exits_0(capsys):
    code, out, err = run(capsys, str(BASELINE), str(SATURATED))
    assert (code, err) == (0, "")
    assert "saturated compared with baseline" in out


def test_run_fails_on_a_missed_slo_only_when_asked(capsys):
    code, out, err = run(capsys, "--fail-on-slo", str(BASELINE), str(SATURATED))
    assert code == 1 and "saturated" in out
    assert err == "vllm-eks: p95 TTFT over the SLO in saturated\n"
    assert run(capsys, "--fail-on-slo", str(BASELINE))[0] == 0


def test_run_reports_an_unreadable_result_and_exits_1(capsys, tmp_path):
    code, out, err = run(capsys, str(BASELINE), str(tmp_path / "absent.json"))
    assert (code, out) == (1, "")
    assert err.startswith("vllm-eks: cannot read ") and "absent.json" in err


def test_run_reads_s3_through_the_client(capsys):
    client = FakeS3(SATURATED.read_bytes())
    code, out, _ = run(capsys, "--fail-on-slo", "s3://b/benchmarks/m/x.json", s3_client=client)
    assert code == 1 and client.calls == [("b", "benchmarks/m/x.json")] and "x " in out
