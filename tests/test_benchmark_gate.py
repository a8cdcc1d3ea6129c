"""The pipeline's SLO gate: pipeline.json's "benchmark" block, the gate function in the
stage's prod stack (its Kubernetes and S3 access), the handler that runs one benchmark
and judges it, and the CodeBuild step that stops the promotion when the SLO is missed."""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from vllm_eks import versions
from vllm_eks.config import BenchDataset
from vllm_eks.constructs import benchmark_gate as gate_construct
from vllm_eks.constructs.cluster_handlers import benchmark_gate as gate
from vllm_eks.k8s_charts.benchmark import benchmark_cronjob
from vllm_eks.pipeline_config import PipelineConfigError, parse_pipeline_config
from vllm_eks.stacks.pipeline_stack import benchmark_gate_commands

from .conftest import committed_config, config_with_connection

STAGING_MODEL = "deepseek-r1-distill-llama-8b"
CRONJOB = benchmark_cronjob(STAGING_MODEL, BenchDataset.RANDOM)
CONFIG = {"NAMESPACE": "inference", "CRONJOB": CRONJOB, "BUCKET": "weights",
          "RESULT_PREFIX": f"benchmarks/{STAGING_MODEL}/random/", "TTFT_SLO_MS": "500"}


def codepipeline_stages(template: dict) -> dict[str, list[dict]]:
    (pipeline,) = [r for r in template["Resources"].values()
                   if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return {s["Name"]: s["Actions"] for s in pipeline["Properties"]["Stages"]}


def stage_prod_template(outdir: Path, stage: str) -> dict:
    (path,) = (outdir / f"assembly-VllmPipelineStack-{stage}").glob("*ProdStack*.template.json")
    return json.loads(path.read_text())


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


# -- pipeline.json ----------------------------------------------------------------------------

def staging_with(**changes) -> dict:
    config = copy.deepcopy(config_with_connection())
    config["stages"][1].update(changes)
    return config


def gate_of(config: dict):
    parsed = parse_pipeline_config(config)
    return parsed.stages[1].environment(parsed.account).benchmark_gate


def test_the_example_turns_the_gate_on_for_staging_only():
    config = parse_pipeline_config(committed_config())
    gates = {s.name: s.environment(config.account).benchmark_gate for s in config.stages}
    assert gates["dev"] is None and gates["prod"] is None
    staging = gates["staging"]
    assert (staging.model_key, staging.workload, staging.ttft_slo_ms) == (
        STAGING_MODEL, BenchDataset.RANDOM, 500.0)


def test_gate_defaults_come_from_the_stage():
    staging = gate_of(staging_with(benchmark={}))
    assert staging.model_key == STAGING_MODEL  # the stage's first model
    assert staging.workload is BenchDataset.RANDOM  # its first bench dataset
    assert staging.ttft_slo_ms == 400.0  # its ttft_slo_ms (default 400)
    assert staging.timeout_minutes == 30


@pytest.mark.parametrize(("changes", "message"), [
    ({"smoke_test": False, "benchmark": {}},
     r"stage 'staging': a benchmark gate runs after the smoke test passes, and this stage "
     r'has none \("smoke_test": false\)'),
    ({"benchmark": {"ttft_slo": 300}}, r"stage 'staging', benchmark: unknown key "
                                       r"'ttft_slo'; did you mean 'ttft_slo_ms'\?"),
    ({"benchmark": {"workload": "sharegpt"}},
     r"workload 'sharegpt' is not benchmarked by this stage; use one of random, "
     r"prefix_repetition, or add it to the stage's bench_datasets"),
    ({"benchmark": {"model": "deepseek-r1"}},
     r"model 'deepseek-r1' is not served by this stage; use one of " + STAGING_MODEL),
    ({"benchmark": {"ttft_slo_ms": -5}}, r"ttft_slo_ms=-5 must be a number of milliseconds"),
    ({"benchmark": {"timeout_minutes": 1}}, r"timeout_minutes=1 must be a whole number "
                                            r"from 5 to 480"),
    ({"benchmark": "on"}, r"stage 'staging': benchmark must be an object"),
    ({"aproval": True}, r"stage 'staging': unknown key 'aproval'; did you mean 'approval'\?"),
    ({"approval": "yes"}, r"stage 'staging': approval='yes' must be true or false"),
])
def test_bad_gate_settings_fail_clearly(changes, message):
    with pytest.raises(PipelineConfigError, match=message):
        gate_of(staging_with(**changes))


def test_a_stage_without_a_smoke_test_gets_no_step(tmp_path):
    from .support import synth_pipeline

    config = staging_with()
    config["stages"] = [config["stages"][0] | {"smoke_test": False}]
    synth_pipeline(config, tmp_path)
    template = json.loads((tmp_path / "VllmPipelineStack.template.json").read_text())
    assert not [a for a in codepipeline_stages(template)["Dev"]
                if a["ActionTypeId"]["Category"] == "Build"]


# -- the synthesized pipeline and stage --------------------------------------------------------

def test_the_gate_runs_after_the_smoke_test_in_staging_only(pipeline):
    _, template = pipeline
    stages = codepipeline_stages(template)
    for name in ("Dev", "Prod"):
        assert not [a for a in stages[name] if a["Name"].startswith("BenchmarkGate")]
    actions = {a["Name"]: a for a in stages["Staging"]}
    assert actions["BenchmarkGateStaging"]["RunOrder"] > actions["SmokeTestStaging"]["RunOrder"]
    project = template["Resources"][
        actions["BenchmarkGateStaging"]["Configuration"]["ProjectName"]["Ref"]]
    assert project["Properties"]["TimeoutInMinutes"] == 30 + 10
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    invokes = [s for r in of_type(template, "AWS::IAM::Policy").values()
               if {"Ref": role_id} in r["Properties"]["Roles"]
               for s in r["Properties"]["PolicyDocument"]["Statement"]
               if s["Action"] == "lambda:InvokeFunction"]
    (invoke,) = invokes
    assert json.dumps(invoke["Resource"]).endswith(
        ':333333333333:function:vllm-staging-benchmark-gate"]]}')


def test_the_gate_function_reaches_only_its_cronjob_and_results(pipeline):
    outdir, _ = pipeline
    staging = stage_prod_template(outdir, "Staging")
    for stage in ("Dev", "Prod"):
        assert not [r for r in of_type(stage_prod_template(outdir, stage),
                                       "AWS::Lambda::Function").values()
                    if r["Properties"].get("Handler") == "benchmark_gate.handler"]
    ((function_id, function),) = [(k, r) for k, r in
                                  of_type(staging, "AWS::Lambda::Function").items()
                                  if r["Properties"].get("Handler") == "benchmark_gate.handler"]
    env = function["Properties"]["Environment"]["Variables"]
    assert env["CRONJOB"] == CRONJOB and env["TTFT_SLO_MS"] == "500"
    assert env["RESULT_PREFIX"] == f"benchmarks/{STAGING_MODEL}/random/"
    assert function["Properties"]["FunctionName"] == "vllm-staging-benchmark-gate"
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [s for r in of_type(staging, "AWS::IAM::Policy").values()
                  if {"Ref": role_id} in r["Properties"]["Roles"]
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    by_action = {json.dumps(s["Action"]): s for s in statements}
    read = by_action['"s3:GetObject"']
    assert json.dumps(read["Resource"]).endswith(f'/benchmarks/{STAGING_MODEL}/random/*"]]}}')
    listing = by_action['"s3:ListBucket"']
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [
        f"benchmarks/{STAGING_MODEL}/random/*"]}}
    assert set(by_action) <= {'"s3:GetObject"', '"s3:ListBucket"'} | {
        json.dumps(s["Action"]) for s in statements if "ec2:" in json.dumps(s["Action"])}
    # Kubernetes: its own group, no access policy, a Role in the models' namespace only.
    (entry,) = [r for r in of_type(staging, "AWS::EKS::AccessEntry").values()
                if r["Properties"].get("KubernetesGroups") == [gate_construct.KUBERNETES_GROUP]]
    assert entry["Properties"]["PrincipalArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert not entry["Properties"].get("AccessPolicies")
    (rbac,) = [json.loads(r["Properties"]["Manifest"]) for r in
               of_type(staging, "Custom::AWSCDK-EKS-KubernetesResource").values()
               if isinstance(r["Properties"]["Manifest"], str)
               and gate_construct.ROLE_NAME in r["Properties"]["Manifest"]]
    kinds = {obj["kind"]: obj for obj in rbac}
    assert set(kinds) == {"Role", "RoleBinding"}  # namespaced: no ClusterRole
    assert kinds["Role"]["metadata"]["namespace"] == "inference"
    assert kinds["Role"]["rules"] == [
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]}]
    assert kinds["RoleBinding"]["subjects"] == [{
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
        "name": gate_construct.KUBERNETES_GROUP}]
    (permission,) = [r for r in of_type(staging, "AWS::Lambda::Permission").values()
                     if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}]
    assert permission["Properties"]["Principal"] == "111111111111"


def test_the_rbac_objects_are_valid_kubernetes():
    for obj in gate_construct.BenchmarkGate.rbac_manifest("inference"):
        kubernetes_validate.validate(obj, f"{versions.KUBERNETES_MINOR}.0", strict=True)


# -- the handler ---------------------------------------------------------------------------------

class FakeCluster:
    """The Kubernetes API as the gate sees it: the CronJob, the Jobs it creates."""

    def __init__(self, cronjob: dict):
        self.cronjob, self.jobs, self.calls = cronjob, {}, []

    def __call__(self, method: str, path: str, body: dict | None = None) -> tuple:
        self.calls.append((method, path))
        if method == "GET" and path.endswith(f"/cronjobs/{self.cronjob['metadata']['name']}"):
            return 200, self.cronjob
        if method == "POST" and path == "/apis/batch/v1/namespaces/inference/jobs":
            self.jobs[body["metadata"]["name"]] = body
            return 201, body
        if method == "GET" and "/jobs/" in path:
            name = path.rsplit("/", 1)[1]
            return (200, self.jobs[name]) if name in self.jobs else (404, {"reason": "NotFound"})
        return 403, {"message": "forbidden"}


@pytest.fixture(scope="module")
def synthesized_cronjob(default_env) -> dict:
    (cronjob,) = [o for o in default_env.manifests()
                  if o["kind"] == "CronJob" and o["metadata"]["name"] == CRONJOB]
    return {**cronjob, "metadata": {**cronjob["metadata"], "uid": "1234-abcd"}}


def test_start_creates_a_job_from_the_cronjob_naming_its_result(synthesized_cronjob):
    cluster = FakeCluster(synthesized_cronjob)
    answer = gate.handle({"action": "start"}, request=cluster, read_result=None,
                         config=CONFIG, now=lambda: 1_764_590_000)
    name = f"{CRONJOB}-1764590000"
    assert answer == {"status": "running", "job": name,
                      "logs": f"kubectl -n inference logs job/{name}"}
    job = cluster.jobs[name]
    assert len(name) <= 63
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "RESULT_NAME", "value": "gate-1764590000"} in container["env"]
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB, "uid": "1234-abcd"}]
    assert job["spec"]["backoffLimit"] == 0  # the CronJob's template, unchanged
    kubernetes_validate.validate(job, f"{versions.KUBERNETES_MINOR}.0", strict=True)
    # The CronJob itself is untouched (the Job's spec is a copy).
    template_env = synthesized_cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"][0]["env"]
    assert "RESULT_NAME" not in {e["name"] for e in template_env}


def finished(cluster: FakeCluster, name: str, condition: str, message: str = "") -> None:
    cluster.jobs[name]["status"] = {"conditions": [
        {"type": condition, "status": "True", "message": message}]}


def run_to_the_end(synthesized_cronjob, result: dict | None, condition: str = "Complete"):
    cluster = FakeCluster(synthesized_cronjob)
    reads = []

    def read_result(bucket, key):
        reads.append((bucket, key))
        return result

    job = gate.handle({"action": "start"}, request=cluster, read_result=read_result,
                      config=CONFIG, now=lambda: 1_764_590_000)["job"]
    running = gate.handle({"action": "status", "job": job}, request=cluster,
                          read_result=read_result, config=CONFIG)
    assert running == {"status": "running", "job": job} and reads == []
    finished(cluster, job, condition, "BackoffLimitExceeded")
    answer = gate.handle({"action": "status", "job": job}, request=cluster,
                         read_result=read_result, config=CONFIG)
    return answer, reads


def test_a_run_within_the_slo_passes(synthesized_cronjob):
    answer, reads = run_to_the_end(synthesized_cronjob, {
        "p95_ttft_ms": 312.4, "completed": 200, "failed": 0, "request_rate": 2.0})
    assert reads == [("weights", f"benchmarks/{STAGING_MODEL}/random/gate-1764590000.json")]
    assert answer["status"] == "passed" and answer["p95_ttft_ms"] == 312.4
    assert answer["result"] == (f"s3://weights/benchmarks/{STAGING_MODEL}/random/"
                                "gate-1764590000.json")


@pytest.mark.parametrize(("result", "message"), [
    ({"p95_ttft_ms": 612.0, "completed": 200, "failed": 0},
     "p95 TTFT 612 ms is over the SLO of 500 ms"),
    ({"p95_ttft_ms": 100.0, "completed": 190, "failed": 10}, "10 requests failed"),
    ({"p95_ttft_ms": 0, "completed": 0, "failed": 0}, "no request completed"),
])
def test_a_run_over_the_slo_or_with_errors_stops_the_promotion(synthesized_cronjob, result,
                                                               message):
    answer, _ = run_to_the_end(synthesized_cronjob, result)
    assert answer["status"] == "slo_missed" and message in answer["message"]


def test_a_failed_job_or_a_missing_result_fails(synthesized_cronjob):
    answer, reads = run_to_the_end(synthesized_cronjob, None, condition="Failed")
    assert answer["status"] == "failed" and "BackoffLimitExceeded" in answer["message"]
    assert reads == []
    answer, _ = run_to_the_end(synthesized_cronjob, None)
    assert answer["status"] == "failed" and "is missing" in answer["message"]


@pytest.mark.parametrize(("event", "message"), [
    ({"action": "status", "job": "kube-system-evil-1764590000"}, "is not a run of"),
    ({"action": "status", "job": "../x"}, "is not a run of"),
    ({"action": "delete"}, "unknown action 'delete'"),
])
def test_the_caller_can_only_start_and_read_its_own_runs(synthesized_cronjob, event, message):
    cluster = FakeCluster(synthesized_cronjob)
    answer = gate.handle(event, request=cluster, read_result=None, config=CONFIG)
    assert answer["status"] == "error" and message in answer["message"]
    assert cluster.calls == []


def test_missing_access_is_named(synthesized_cronjob):
    answer = gate.handle({"action": "start"}, request=lambda *a: (403, {"message": "no"}),
                         read_result=None, config=CONFIG)
    assert answer["status"] == "error" and "vllm-eks-benchmark-gate" in answer["message"]


# -- the CodeBuild step, run with a fake `aws` ----------------------------------------------

FAKE_AWS = """#!/usr/bin/env python3
import json, os, pathlib, sys
args = sys.argv[1:]
payload = json.loads(args[args.index("--payload") + 1])
out = pathlib.Path(args[-1])
state = pathlib.Path(os.environ["FAKE_STATE"])
answers = json.loads(state.read_text())
calls = pathlib.Path(os.environ["FAKE_CALLS"])
calls.write_text(calls.read_text() + json.dumps(payload) + "\\n")
out.write_text(json.dumps(answers.pop(0)))
state.write_text(json.dumps(answers))
print(json.dumps({"StatusCode": 200}))
"""


def run_step(tmp_path: Path, answers: list[dict], timeout_seconds: int = 600) -> tuple:
    fake = tmp_path / "bin" / "aws"
    fake.parent.mkdir()
    fake.write_text(FAKE_AWS)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "state.json").write_text(json.dumps(answers))
    (tmp_path / "calls").write_text("")
    script = "\n".join(benchmark_gate_commands(timeout_seconds, "us-east-1")).replace(
        "sleep 30", "sleep 0")
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}",
             "BENCHMARK_GATE_FUNCTION_ARN": "arn:aws:lambda:us-east-1:1:function:g",
             "FAKE_STATE": str(tmp_path / "state.json"), "FAKE_CALLS": str(tmp_path / "calls")})
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    return result.returncode, calls, result.stdout


def test_the_step_passes_when_the_run_meets_the_slo(tmp_path):
    code, calls, _ = run_step(tmp_path, [
        {"status": "running", "job": "bench-1"}, {"status": "running", "job": "bench-1"},
        {"status": "passed", "job": "bench-1", "p95_ttft_ms": 300}])
    assert code == 0
    assert calls == [{"action": "start"}, {"action": "status", "job": "bench-1"},
                     {"action": "status", "job": "bench-1"}]


@pytest.mark.parametrize("last", [
    {"status": "slo_missed", "message": "p95 TTFT 612 ms is over the SLO of 500 ms"},
    {"status": "failed", "message": "the benchmark Job failed"},
    {"status": "error", "message": "forbidden"}])
def test_the_step_stops_the_promotion_otherwise(tmp_path, last):
    code, _, stdout = run_step(tmp_path, [{"status": "running", "job": "bench-1"}, last])
    assert code == 1 and last["message"] in stdout


def test_the_step_fails_when_no_run_started(tmp_path):
    code, calls, stdout = run_step(tmp_path, [{"status": "error", "message": "forbidden"}])
    assert code == 1 and len(calls) == 1 and "the gate started no run" in stdout
