"""app.py end to end, as the CDK CLI runs it: built-in validation on, clear errors, the
printed plan, and the real `cdk synth`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .support import REPO, project_context


def run_app(tmp_path, context: dict[str, str], *, validation: bool = False):
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({**project_context(), **context}),
        "CDK_VALIDATION": "true" if validation else "false",
    }
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def whole_app(tmp_path_factory):
    """app.py run once, as `cdk synth` runs it, with aws-cdk-lib's validation on."""
    outdir = tmp_path_factory.mktemp("app")
    return outdir, run_app(outdir, {}, validation=True)


def test_whole_app_synthesizes_with_builtin_validation_on(whole_app):
    outdir, result = whole_app
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vllm-eks plan: model deepseek-r1-distill-llama-8b" in result.stderr
    assert "TP 1" in result.stderr
    assert "vllm-eks cost: deepseek-r1-distill-llama-8b" in result.stderr
    for stack in ("VllmNetworkStack", "VllmClusterStack", "VllmProdStack"):
        assert (outdir / f"{stack}.template.json").exists()


def test_templates_hold_no_timestamps_or_usernames(whole_app, default_env):
    """Two synths in two processes at two times (app.py here, the test session's own
    in-process synth) give byte-identical templates."""
    outdir, result = whole_app
    assert result.returncode == 0
    for stack in ("VllmNetworkStack", "VllmClusterStack", "VllmProdStack"):
        a = (outdir / f"{stack}.template.json").read_text()
        b = (default_env.outdir / f"{stack}.template.json").read_text()
        assert a == b, f"{stack} is not deterministic"
        assert "CDKMetadata" not in a
        assert os.environ.get("USER", "root") not in json.loads(a).get("Description", "")


def test_bad_input_exits_with_a_message_not_a_traceback(tmp_path):
    result = run_app(tmp_path, {"model": "deepseek-r1", "instance_type": "g5.xlarge"})
    assert result.returncode == 1
    # The message is the first line of ours (a runtime may print notices before it).
    ours = result.stderr[result.stderr.index("vllm-eks: "):]
    assert ours.startswith("vllm-eks: no single- or multi-node (up to 4 nodes) placement fits "
                           "deepseek-r1")
    assert "Traceback" not in result.stderr


def test_cdk_cli_synthesizes_deepseek_r1_onto_h200(tmp_path):
    """`cdk synth VllmProdStack -c model=deepseek-r1` through the pinned CLI and cdk.json."""
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    result = subprocess.run(
        [str(cdk), "synth", "VllmProdStack", "--quiet", "--no-notices",
         "-c", "model=deepseek-r1", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CDK_VALIDATION": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "vllm-eks plan: model deepseek-r1 (deepseek-ai/DeepSeek-R1)" in result.stderr
    assert "8 of 8 x NVIDIA H200" in result.stderr and "TP 8" in result.stderr
    # Deploying VllmProdStack deploys its dependencies: all four were synthesized.
    assert {p.name for p in tmp_path.glob("*.template.json")} == {
        "VllmNetworkStack.template.json", "VllmModelStoreStack.template.json",
        "VllmClusterStack.template.json", "VllmProdStack.template.json"}


def test_the_apps_feature_flags_match_cdk_json():
    """An app in another repository (examples/) has no cdk.json: vllm_eks.app sets the
    same flags itself."""
    from vllm_eks.app import FEATURE_FLAGS

    assert FEATURE_FLAGS == json.loads((REPO / "cdk.json").read_text())["context"]


def test_a_misspelt_context_key_stops_synth_with_the_nearest_key(tmp_path):
    result = run_app(tmp_path, {"modle": "deepseek-r1"})
    assert result.returncode == 1
    ours = result.stderr[result.stderr.index("vllm-eks: "):]
    assert ours.startswith("vllm-eks: -c modle is not an option of vllm-eks; did you mean "
                           "-c model?")
    assert "Traceback" not in result.stderr
