"""The out-of-tree example (examples/vllm-eks-tool-calling): vllm-eks and the example are
installed into a fresh virtual environment, and the example's app synthesizes its model,
rendered by its chart subclass.

Dependencies (aws-cdk-lib, cdk8s, ...) are not downloaded again: the fresh environment
sees this repository's .venv site-packages through a .pth file, after its own. vllm-eks
and the example are built as wheels from clean copies of their sources (no stale build/
output) with the project's pinned setuptools, and installed from those wheels without an
index, so the test exercises the published package contents and the entry-point
registration, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from .support import REPO, parse_manifest

EXAMPLE = REPO / "examples" / "vllm-eks-tool-calling"
MODEL = "qwen2.5-7b-instruct-tools"


@pytest.fixture(scope="module")
def example_synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    env_dir = root / "venv"
    ignore = shutil.ignore_patterns("build", "*.egg-info", ".venv", "node_modules", "cdk.out",
                                    ".git", "__pycache__", "examples", "tests")
    sources = {"vllm-eks": root / "src" / "vllm-eks", "example": root / "src" / "example"}
    shutil.copytree(REPO, sources["vllm-eks"], ignore=ignore)
    shutil.copytree(EXAMPLE, sources["example"], ignore=ignore)
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), *map(str, sources.values())],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "vllm_eks_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         *map(str, sorted(wheels.glob("*.whl")))],
        capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    outdir = root / "cdk.out"
    run = subprocess.run(
        [python, str(EXAMPLE / "app.py")], cwd=root, capture_output=True, text=True,
        timeout=600,
        env={**os.environ, "CDK_OUTDIR": str(outdir), "CDK_VALIDATION": "false",
             "CDK_CONTEXT_JSON": json.dumps({"model": MODEL})})
    return python, run, outdir


def test_the_fresh_environment_uses_the_installed_packages(example_synth):
    python, _, _ = example_synth
    where = subprocess.run(
        [python, "-c", "import vllm_eks, vllm_eks_tool_calling; "
         "print(vllm_eks.__file__); print(vllm_eks_tool_calling.__file__)"],
        capture_output=True, text=True, check=True, cwd="/").stdout.split()
    assert all(str(Path(python).parent.parent) in path for path in where), where
    assert str(REPO / "vllm_eks") not in where[0]


def test_the_example_model_synthesizes_with_its_chart(example_synth):
    _, run, outdir = example_synth
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"vllm-eks plan: model {MODEL} (Qwen/Qwen2.5-7B-Instruct)" in run.stderr
    template = json.loads((outdir / "VllmProdStack.template.json").read_text())
    objects = [o for r in template["Resources"].values()
               if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"
               for o in parse_manifest(r["Properties"]["Manifest"])]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"
                     and o["metadata"]["name"] != "vllm-router"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert "--served-model-name" in args and "qwen2.5-7b-instruct" in args
    assert {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"} in container["env"]
    # Inherited, not re-implemented: probes and the restricted security context.
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_an_unknown_key_still_fails_clearly(example_synth):
    python, _, _ = example_synth
    run = subprocess.run(
        [python, str(EXAMPLE / "app.py")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps({"model": "qwen-typo"})})
    assert run.returncode == 1
    assert "unknown model 'qwen-typo'" in run.stderr and MODEL in run.stderr


def test_the_main_venv_does_not_see_the_example():
    from vllm_eks.models import catalog

    assert MODEL not in catalog(), "install the example only into its test venv"
