"""Benchmark gate: the pipeline's SLO check after a stage's smoke test. The pipeline's
CodeBuild step invokes it twice over:

    {"action": "start"}               -> {"status": "running", "job": <name>}
    {"action": "status", "job": name} -> running | passed | slo_missed | failed

`start` creates a Job from the model's suspended benchmark CronJob (what `kubectl create
job --from=cronjob/...` does), with RESULT_NAME set so the run saves its result under a
name the gate knows. `status` reads the Job, and once it has completed, its result from
S3: the gate passes when the run's p95 TTFT is within the SLO and no request failed.

What it runs against is fixed by its environment (set at synth from the stage's
"benchmark" block), not by the caller: the caller can only start a run and read one.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from typing import Callable

try:  # a package in the repository (tests); top-level modules in the Lambda
    from .kube import Request, connect_to_cluster
except ImportError:
    from kube import Request, connect_to_cluster

JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"
CRONJOB = "/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}"
# The Job a run is: <cronjob>-<unix seconds>, at most 63 characters (benchmark_cronjob
# names are at most 52).
JOB_NAME = re.compile(r"^(?P<cronjob>[a-z0-9-]{1,52})-(?P<stamp>\d{10})$")
RESULT_NAME = "gate-{stamp}"


class GateError(Exception):
    """A request the gate cannot act on, or an answer from Kubernetes it did not expect."""


def settings(environ: dict | None = None) -> dict:
    environ = os.environ if environ is None else environ
    return {key: environ[key] for key in (
        "NAMESPACE", "CRONJOB", "BUCKET", "RESULT_PREFIX", "TTFT_SLO_MS")}


def call(request: Request, method: str, path: str, body: dict | None = None) -> dict:
    status, answer = request(method, path, body)
    if status is None or not 200 <= status < 300:
        hint = (" (the gate role's access entry, group vllm-eks-benchmark-gate, or its Role "
                "and RoleBinding are missing)" if status in (401, 403) else "")
        raise GateError(f"{method} {path}: {status or 'no answer'} "
                        f"{json.dumps(answer)[:300]}{hint}")
    return answer or {}


def job_from_cronjob(cronjob: dict, name: str, result_name: str) -> dict:
    """The Job `kubectl create job --from=cronjob/<name>` creates, owned by the CronJob,
    with RESULT_NAME added to its containers' environment."""
    template = cronjob["spec"]["jobTemplate"]
    spec = json.loads(json.dumps(template["spec"]))
    for container in spec["template"]["spec"]["containers"]:
        env = [e for e in container.get("env", []) if e.get("name") != "RESULT_NAME"]
        container["env"] = env + [{"name": "RESULT_NAME", "value": result_name}]
    meta = cronjob["metadata"]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": name, "namespace": meta["namespace"],
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual",
                            "vllm-eks.io/created-by": "benchmark-gate"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                 "name": meta["name"], "uid": meta["uid"]}],
        },
        "spec": spec,
    }


def start(request: Request, config: dict, now: Callable[[], float] = time.time) -> dict:
    namespace, cronjob_name = config["NAMESPACE"], config["CRONJOB"]
    cronjob = call(request, "GET", CRONJOB.format(namespace=namespace, name=cronjob_name))
    stamp = f"{int(now()):010d}"
    name = f"{cronjob_name}-{stamp}"
    job = job_from_cronjob(cronjob, name, RESULT_NAME.format(stamp=stamp))
    call(request, "POST", JOBS.format(namespace=namespace), job)
    return {"status": "running", "job": name,
            "logs": f"kubectl -n {namespace} logs job/{name}"}


def verdict(result: dict, slo_ms: float, uri: str) -> dict:
    """passed when the run completed requests, failed none and its p95 TTFT is within
    the SLO; slo_missed otherwise, with the numbers."""
    p95 = float(result.get("p95_ttft_ms") or 0)
    completed, failed = int(result.get("completed") or 0), int(result.get("failed") or 0)
    summary = {"p95_ttft_ms": round(p95, 1), "ttft_slo_ms": slo_ms,
               "request_rate": result.get("request_rate"), "completed": completed,
               "failed": failed, "result": uri}
    problems = []
    if completed == 0:
        problems.append("no request completed")
    if failed:
        problems.append(f"{failed} requests failed")
    if p95 > slo_ms:
        problems.append(f"p95 TTFT {p95:.0f} ms is over the SLO of {slo_ms:g} ms")
    if problems:
        return {"status": "slo_missed", "message": "; ".join(problems), **summary}
    return {"status": "passed", "message": f"p95 TTFT {p95:.0f} ms within {slo_ms:g} ms",
            **summary}


def status(request: Request, read_result: Callable[[str, str], dict | None], config: dict,
           job_name: str) -> dict:
    match = JOB_NAME.match(job_name or "")
    if not match or match["cronjob"] != config["CRONJOB"]:
        raise GateError(f"job {job_name!r} is not a run of {config['CRONJOB']}")
    job = call(request, "GET", f"{JOBS.format(namespace=config['NAMESPACE'])}/"
                               f"{urllib.parse.quote(job_name)}")
    conditions = {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []
                  if c.get("status") == "True"}
    if "Failed" in conditions:
        reason = conditions["Failed"].get("message") or conditions["Failed"].get("reason")
        return {"status": "failed", "job": job_name,
                "message": f"the benchmark Job failed: {reason}; kubectl -n "
                           f"{config['NAMESPACE']} logs job/{job_name}"}
    if "Complete" not in conditions:
        return {"status": "running", "job": job_name}
    key = f"{config['RESULT_PREFIX']}{RESULT_NAME.format(stamp=match['stamp'])}.json"
    result = read_result(config["BUCKET"], key)
    if result is None:
        return {"status": "failed", "job": job_name,
                "message": f"the Job completed but s3://{config['BUCKET']}/{key} is missing"}
    return {"job": job_name, **verdict(result, float(config["TTFT_SLO_MS"]),
                                       f"s3://{config['BUCKET']}/{key}")}


def read_s3_json(bucket: str, key: str) -> dict | None:
    import boto3

    client = boto3.client("s3")
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def handle(event: dict, *, request: Request, read_result: Callable[[str, str], dict | None],
           config: dict, now: Callable[[], float] = time.time) -> dict:
    action = (event or {}).get("action")
    try:
        if action == "start":
            return start(request, config, now)
        if action == "status":
            return status(request, read_result, config, event.get("job", ""))
        raise GateError(f"unknown action {action!r}: use start, or status with a job")
    except GateError as error:
        return {"status": "error", "message": str(error)}


def handler(event, context):
    environ = os.environ
    request = connect_to_cluster(environ["CLUSTER_NAME"], environ["CLUSTER_ENDPOINT"],
                                 environ["CERTIFICATE_AUTHORITY_DATA"], environ["AWS_REGION"])
    answer = handle(event, request=request, read_result=read_s3_json, config=settings())
    print(json.dumps(answer))
    return answer
