"""Shared fixtures. The environment is set before aws_cdk is imported anywhere."""

from __future__ import annotations

import json
import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
# aws-cdk-lib's built-in template validation costs ~6 s a synth; test_app.py keeps it on
# for one whole-app synth.
os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402

from .support import REPO, SynthResult, synth_environment, synth_pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_model_catalog(monkeypatch):
    """Each test sees the catalog as the package defines it: a profile one test
    registers (or an entry point it fakes) never leaks into the next."""
    import importlib

    catalog_module = importlib.import_module("vllm_eks.models.catalog")
    monkeypatch.setattr(catalog_module, "_CATALOG", dict(catalog_module._CATALOG))
    monkeypatch.setattr(catalog_module, "_entry_points_loaded",
                        catalog_module._entry_points_loaded)


@pytest.fixture(scope="session")
def default_env(tmp_path_factory) -> SynthResult:
    """The whole environment with the embedded default model, synthesized once."""
    return synth_environment({}, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def deepseek_env(tmp_path_factory) -> SynthResult:
    """The whole environment for the real DeepSeek-R1, synthesized once."""
    return synth_environment({"model": "deepseek-r1"}, tmp_path_factory.mktemp("deepseek"))


# A public HTTPS endpoint in front of weights read from EFS: the other branches of the
# serving code (certificate, internet-facing scheme, EFS volumes).
CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)
PUBLIC_EFS_CONTEXT = {
    "model_source": "efs",
    "endpoint_scheme": "internet-facing",
    "certificate_arn": CERTIFICATE_ARN,
    "endpoint_allowed_cidrs": "203.0.113.0/24",
    "endpoint_hostname": "llm.example.com",
}


@pytest.fixture(scope="session")
def public_efs_env(tmp_path_factory) -> SynthResult:
    """The default model behind an internet-facing HTTPS endpoint, weights from EFS."""
    return synth_environment(PUBLIC_EFS_CONTEXT, tmp_path_factory.mktemp("public-efs"))


# Two models behind the router, with every observability and autoscaling option away from
# its default (max_model_len pinned for one model only).
SECOND_MODEL = "deepseek-r1-distill-qwen-1.5b"
OPTIONS_CONTEXT = {
    "models": f"deepseek-r1-distill-llama-8b,{SECOND_MODEL}",
    "max_model_len": f"{SECOND_MODEL}:16384",
    "ttft_slo_ms": "250",
    "min_replicas": "2",
    "max_replicas": "3",
    "cloudwatch": "true",
    "grafana_alb": "true",
    "prometheus_retention_days": "30",
    "bench_datasets": "random,prefix_repetition,sharegpt",
    "bench_request_rate": "inf",
    "bench_input_len": "2048",
    "bench_output_len": "128",
    "bench_max_concurrency": "16",
    "bench_num_prompts": "100",
}


@pytest.fixture(scope="session")
def options_env(tmp_path_factory) -> SynthResult:
    """Two models (the default and a small one) with 2-3 replicas each, a tighter SLO,
    CloudWatch, Grafana's ALB and every benchmark workload with its options set."""
    return synth_environment(OPTIONS_CONTEXT, tmp_path_factory.mktemp("options"))


# -- the delivery pipeline (VllmPipelineStack and its stages) ------------------------------
CONNECTION = ("arn:aws:codeconnections:us-east-1:111111111111:connection/"
              "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")


def committed_config() -> dict:
    return json.loads((REPO / "pipeline.json").read_text())


def config_with_connection() -> dict:
    return {**committed_config(), "connectionArn": CONNECTION}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """VllmPipelineStack from the committed pipeline.json plus a connection, synthesized
    once: (cloud assembly directory, the pipeline stack's template)."""
    outdir = tmp_path_factory.mktemp("pipeline")
    synth_pipeline(config_with_connection(), outdir)
    template = json.loads((outdir / "VllmPipelineStack.template.json").read_text())
    return outdir, template


# The front door: an internet-facing endpoint (so WAF), the chat UI signed in at the ALB
# (a Cognito pool with MFA optional), and traces to X-Ray.
FRONT_DOOR_CONTEXT = {
    "endpoint_scheme": "internet-facing",
    "endpoint_allowed_cidrs": "203.0.113.0/24",
    "certificate_arn": CERTIFICATE_ARN,
    "endpoint_hostname": "llm.example.com",
    "chat_ui": "true",
    "cognito_mfa": "optional",
    "waf_rate_limit": "600",
    "tracing": "true",
    "tracing_sampling_ratio": "0.25",
}


@pytest.fixture(scope="session")
def front_door_env(tmp_path_factory) -> SynthResult:
    """Internet-facing with WAF, the chat UI behind Cognito, traces to X-Ray."""
    return synth_environment(FRONT_DOOR_CONTEXT, tmp_path_factory.mktemp("front-door"))


@pytest.fixture(scope="session")
def two_models_env(tmp_path_factory) -> SynthResult:
    """The default model plus a second one, every other option at its default: what
    adding a model to the default environment changes."""
    return synth_environment({"models": f"deepseek-r1-distill-llama-8b,{SECOND_MODEL}"},
                             tmp_path_factory.mktemp("two-models"))


MULTINODE_CONTEXT = {"model": "deepseek-r1", "instance_type": "p5.48xlarge", "efa": "true"}


@pytest.fixture(scope="session")
def multinode_env(tmp_path_factory) -> SynthResult:
    """DeepSeek-R1 on H100 nodes: two p5.48xlarge per replica (a LeaderWorkerSet), over
    EFA (the TCP default is rendered chart by chart in tests/test_multinode.py)."""
    return synth_environment(MULTINODE_CONTEXT, tmp_path_factory.mktemp("multinode"))

