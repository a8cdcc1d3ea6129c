"""Shared fixtures. The environment is set before aws_cdk is imported anywhere."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
# aws-cdk-lib's built-in template validation costs ~6 s a synth; test_app.py keeps it on
# for one whole-app synth.
os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402

from .support import SynthResult, synth_environment  # noqa: E402


@pytest.fixture(scope="session")
def default_env(tmp_path_factory) -> SynthResult:
    """The whole environment with the embedded default model, synthesized once."""
    return synth_environment({}, tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def deepseek_env(tmp_path_factory) -> SynthResult:
    """The whole environment for the real DeepSeek-R1, synthesized once."""
    return synth_environment({"model": "deepseek-r1"}, tmp_path_factory.mktemp("deepseek"))
