"""Benchmark one model through the environment's endpoint with `vllm bench serve`.

Runs in the pinned vLLM image (vllm, boto3 and huggingface_hub are in it) as the model's
benchmark Job. Its arguments are the `vllm bench serve` arguments, rendered and checked
against the pinned vLLM's parser at synth (k8s_charts/benchmark.py); this script only
prepares what they point at, then uploads the result:

1. the API key: read from the Secrets Store CSI file into OPENAI_API_KEY, which
   `vllm bench serve` sends as `Authorization: Bearer` (never a manifest or a Secret);
2. the tokenizer: copied from the staged weights in S3 (no Hugging Face access needed),
   or downloaded from Hugging Face when the model is not staged (`-c model_source=hf`);
3. the ShareGPT conversations, when the workload is `sharegpt`: from S3, where the
   staging Job put them;
4. the number of ready replicas of the model at start and end (its Deployment or
   LeaderWorkerSet, read with the Job's own ServiceAccount): the report prices the run by
   the replicas that served it;
5. `vllm bench serve`, then the result JSON to
   s3://$WEIGHTS_BUCKET/benchmarks/<model>/<workload>/<UTC timestamp>.json (or
   <RESULT_NAME>.json when the pipeline's benchmark gate created the Job), and a summary
   in the Job's log.
"""

import datetime
import json
import os
import pathlib
import re
import ssl
import subprocess
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError

SCRATCH = pathlib.Path(os.environ.get("SCRATCH_DIR", "/scratch"))
TOKENIZER_DIR = SCRATCH / "tokenizer"
RESULT_DIR = SCRATCH / "results"
RESULT_FILE = "result.json"
# What a tokenizer needs from a model's repository (benchmark.py names them; the role
# may read only these, never the weights).
TOKENIZER_FILES = tuple(filter(None, os.environ.get("TOKENIZER_FILES", "").split(",")))
SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")


def env(name):
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"run_benchmark: environment variable {name} is not set")
    return value


def read_api_key():
    key = pathlib.Path(env("API_KEY_FILE")).read_text().strip()
    if not key:
        sys.exit("run_benchmark: the API key file is empty")
    return key


def fetch_tokenizer(s3):
    """Tokenizer files into TOKENIZER_DIR (`--tokenizer`): from the staged weights'
    prefix, else from Hugging Face."""
    TOKENIZER_DIR.mkdir(parents=True, exist_ok=True)
    prefix = os.environ.get("TOKENIZER_S3_PREFIX", "")
    if prefix:
        bucket = env("WEIGHTS_BUCKET")
        found = 0
        for name in TOKENIZER_FILES:
            try:
                s3.download_file(bucket, prefix + name, str(TOKENIZER_DIR / name))
                found += 1
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "403", "NoSuchKey"):
                    raise
        if not found:
            sys.exit(f"run_benchmark: no tokenizer file under s3://{bucket}/{prefix}: has the "
                     "staging Job finished?")
        return
    from huggingface_hub import snapshot_download

    token = None
    if os.environ.get("HF_TOKEN_SECRET_ARN"):
        secrets = boto3.client("secretsmanager", region_name=env("AWS_REGION"))
        value = secrets.get_secret_value(SecretId=env("HF_TOKEN_SECRET_ARN"))["SecretString"]
        token = json.loads(value).get("token") or None  # {"token": ...}, as staging reads it
    snapshot_download(env("HF_MODEL_ID"), revision=os.environ.get("HF_REVISION", "main"),
                             allow_patterns=list(TOKENIZER_FILES), local_dir=TOKENIZER_DIR,
                             token=token)


def fetch_dataset(s3):
    """The staged ShareGPT file into SCRATCH (`--dataset-path`), when the workload has one."""
    key = os.environ.get("DATASET_S3_KEY", "")
    if key:
        path = SCRATCH / pathlib.Path(key).name
        s3.download_file(env("WEIGHTS_BUCKET"), key, str(path))


def ready_replicas():
    """Ready replicas of the model's workload (`kind/name` in REPLICAS_OF), or 0 when the
    API cannot tell (the report then prices one replica)."""
    kind, name = env("REPLICAS_OF").split("/", 1)
    paths = {"deployment": f"/apis/apps/v1/namespaces/{env('NAMESPACE')}/deployments/{name}",
             "leaderworkerset": f"/apis/leaderworkerset.x-k8s.io/v1/namespaces/"
                                f"{env('NAMESPACE')}/leaderworkersets/{name}"}
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    request = urllib.request.Request(
        f"https://{host}:{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}{paths[kind]}",
        headers={"Authorization": f"Bearer {(SERVICE_ACCOUNT / 'token').read_text()}"})
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return int(json.load(response).get("status", {}).get("readyReplicas") or 0)
    except (OSError, ValueError) as error:
        print(f"run_benchmark: could not read the replicas of {kind}/{name}: {error}")
        return 0


def summary(result):
    lines = [f"benchmark of {result.get('model_id')}: {result.get('completed')} of "
             f"{result.get('num_prompts')} requests completed in {result.get('duration', 0):.0f} s, "
             f"{result.get('output_throughput', 0):.1f} output tokens/s"]
    for metric in ("ttft", "tpot", "itl", "e2el"):
        values = ", ".join(f"p{p} {result.get(f'p{p}_{metric}_ms', float('nan')):.0f}"
                           for p in (50, 95, 99))
        lines.append(f"  {metric:<5} ms: {values}")
    slo = float(os.environ.get("TTFT_SLO_MS", "0") or 0)
    if slo:
        p95 = result.get("p95_ttft_ms", float("inf"))
        lines.append(f"  TTFT SLO {slo:.0f} ms at p95: {'met' if p95 <= slo else 'MISSED'}")
    return "\n".join(lines)


def main(bench_args):
    if not re.fullmatch(r"[A-Za-z0-9-]{0,64}", os.environ.get("RESULT_NAME", "")):
        sys.exit("run_benchmark: RESULT_NAME may hold only letters, digits and '-'")
    s3 = boto3.client("s3", region_name=env("AWS_REGION"))
    os.environ["OPENAI_API_KEY"] = read_api_key()
    fetch_tokenizer(s3)
    fetch_dataset(s3)
    RESULT_DIR.mkdir(parents=True, exist_ok=True)
    before = ready_replicas()
    command = ["vllm", "bench", "serve", *bench_args]
    print("run_benchmark:", " ".join(command), flush=True)
    status = subprocess.run(command, check=False).returncode
    if status:
        sys.exit(f"run_benchmark: vllm bench serve exited with {status}")
    replicas = max(before, ready_replicas())
    path = RESULT_DIR / RESULT_FILE
    result = json.loads(path.read_text())
    # The replicas that served the run: `--metadata` was fixed at synth, this is not.
    result["replicas"] = str(replicas or 1)
    # A Job created by the pipeline's benchmark gate names its result (it reads it back).
    name = os.environ.get("RESULT_NAME") or datetime.datetime.now(
        datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    key = f"{env('RESULT_PREFIX')}{name}.json"
    s3.put_object(Bucket=env("WEIGHTS_BUCKET"), Key=key, Body=json.dumps(result).encode(),
                  ContentType="application/json")
    print(summary(result))
    print(f"run_benchmark: saved s3://{env('WEIGHTS_BUCKET')}/{key}")


if __name__ == "__main__":
    main(sys.argv[1:])
