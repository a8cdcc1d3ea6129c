"""Smoke test of a vllm-eks endpoint, run inside the VPC (the endpoint may be internal).

Returns {"status": "waiting" | "passed" | "failed", "detail": ...}: "waiting" while
/health does not answer 200 yet or the router has no ready replica of a model yet (it
answers 404 for a model it has never seen, 503 for one whose replicas are all gone),
"passed" once /health, /v1/models (the load balancer's list of every served model) and
one tiny completion per model succeeded through the router. The API key is read
from Secrets Manager at run time; it is never logged or returned.
"""

import json
import os
import urllib.error
import urllib.request

import boto3


def call(method, url, key=None, body=None, timeout=60):
    request = urllib.request.Request(url, method=method, data=(
        json.dumps(body).encode() if body is not None else None))
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()[:500]
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return None, str(error)


def handler(event, context):
    try:
        return check(os.environ["ENDPOINT_URL"].rstrip("/"), os.environ["MODELS"].split(","))
    except Exception as error:  # a broken check must fail the stage, not look like "waiting"
        return {"status": "failed", "detail": f"{type(error).__name__}: {error}"[:500]}


def check(url, models):
    # Timeouts add up to at most 250 s, under the function's 300 s.
    status, text = call("GET", f"{url}/health", timeout=10)
    if status != 200:
        return {"status": "waiting", "detail": f"/health: {status} {text[:200]}"}
    key = boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["API_KEY_SECRET_ARN"])["SecretString"]
    status, text = call("GET", f"{url}/v1/models", key=key, timeout=30)
    if status != 200:
        return {"status": "failed", "detail": f"/v1/models: {status} {text[:300]}"}
    listed = {entry.get("id") for entry in json.loads(text).get("data", [])}
    missing = [model for model in models if model not in listed]
    if missing:
        return {"status": "failed", "detail": f"/v1/models does not list {missing}"}
    answers = {}
    for model in models:
        status, text = call("POST", f"{url}/v1/completions", key=key,
                            timeout=max(20, 200 // len(models)), body={
                                "model": model, "prompt": "The capital of France is",
                                "max_tokens": 8, "temperature": 0})
        if status in (404, 503):  # no ready replica of this model yet
            return {"status": "waiting",
                    "detail": f"/v1/completions ({model}): {status} {text[:200]}"}
        if status != 200 or not json.loads(text).get("choices"):
            return {"status": "failed",
                    "detail": f"/v1/completions ({model}): {status} {text[:300]}"}
        answers[model] = json.loads(text)["choices"][0].get("text", "")
    return {"status": "passed", "detail": answers}
