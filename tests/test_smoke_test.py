"""The smoke test's handler against a fake endpoint: what it calls, and when it waits,
passes or fails for an environment of several models behind the router."""

from __future__ import annotations

import importlib.util
import json

import pytest

from .support import REPO

HANDLER = REPO / "vllm_eks" / "constructs" / "smoke_test_handler" / "index.py"
MODELS = ["deepseek-r1-distill-llama-8b", "deepseek-r1-distill-qwen-1.5b"]
URL = "https://llm.example.com"


@pytest.fixture
def handler(monkeypatch):
    spec = importlib.util.spec_from_file_location("smoke_test_index", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Secrets:
        def get_secret_value(self, SecretId):
            assert SecretId == "arn:secret"
            return {"SecretString": "the-key"}

    monkeypatch.setattr(module.boto3, "client", lambda service: Secrets())
    monkeypatch.setenv("API_KEY_SECRET_ARN", "arn:secret")
    return module


class FakeEndpoint:
    """Answers by (method, path); records every call with the key it carried."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, str]]):
        self.answers, self.calls = answers, []

    def __call__(self, method, url, key=None, body=None, timeout=60):
        path = url.removeprefix(URL)
        model = (body or {}).get("model")
        self.calls.append((method, path, key, model))
        return self.answers.get((method, f"{path}#{model}" if model else path), (500, "?"))


def listed(*names: str) -> str:
    return json.dumps({"object": "list", "data": [{"id": n} for n in names]})


def completion(text: str) -> str:
    return json.dumps({"choices": [{"text": text}]})


def test_passes_after_one_completion_per_model_with_the_key(handler, monkeypatch):
    endpoint = FakeEndpoint({
        ("GET", "/health"): (200, ""), ("GET", "/v1/models"): (200, listed(*MODELS)),
        ("POST", f"/v1/completions#{MODELS[0]}"): (200, completion(" Paris")),
        ("POST", f"/v1/completions#{MODELS[1]}"): (200, completion(" Paris.")),
    })
    monkeypatch.setattr(handler, "call", endpoint)
    result = handler.check(URL, MODELS)
    assert result == {"status": "passed", "detail": {MODELS[0]: " Paris", MODELS[1]: " Paris."}}
    assert [c for c in endpoint.calls if c[0] == "POST"] == [
        ("POST", "/v1/completions", "the-key", MODELS[0]),
        ("POST", "/v1/completions", "the-key", MODELS[1])]
    assert "the-key" not in json.dumps(result)


@pytest.mark.parametrize(("answers", "status", "detail"), [
    ({("GET", "/health"): (503, "starting")}, "waiting", "/health: 503"),
    # The router has not seen a ready replica of the second model yet.
    ({("POST", f"/v1/completions#{MODELS[1]}"): (404, "Model not found")}, "waiting",
     f"({MODELS[1]}): 404"),
    ({("POST", f"/v1/completions#{MODELS[0]}"): (503, "temporarily unavailable")},
     "waiting", f"({MODELS[0]}): 503"),
    ({("GET", "/v1/models"): (200, listed(MODELS[0]))}, "failed",
     f"/v1/models does not list ['{MODELS[1]}']"),
    ({("POST", f"/v1/completions#{MODELS[0]}"): (401, "unauthorized")}, "failed", "401"),
])
def test_waits_while_a_model_loads_and_fails_on_errors(handler, monkeypatch, answers, status,
                                                        detail):
    healthy = {
        ("GET", "/health"): (200, ""), ("GET", "/v1/models"): (200, listed(*MODELS)),
        ("POST", f"/v1/completions#{MODELS[0]}"): (200, completion("a")),
        ("POST", f"/v1/completions#{MODELS[1]}"): (200, completion("b")),
    }
    monkeypatch.setattr(handler, "call", FakeEndpoint({**healthy, **answers}))
    result = handler.check(URL, MODELS)
    assert result["status"] == status and detail in str(result["detail"])
