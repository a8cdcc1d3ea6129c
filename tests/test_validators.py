"""Real third-party validators over everything synthesized: cfn-lint, kubernetes-validate
(strict, for the cluster's Kubernetes version) and cdk-nag AwsSolutions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from vllm_eks import versions

from .crd_validation import has_crd, validate_custom_resource

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")

# cfn-lint warnings we accept, each with its reason. Errors are never ignored.
CFN_LINT_IGNORED = {
    # aws-cdk-lib emits DependsOn next to a GetAtt on the same resource (its own
    # custom-resource providers); harmless and not ours to change.
    "W3005": "redundant DependsOn emitted by aws-cdk-lib",
    # The VPC names its three AZs on purpose: synth needs no lookup and every
    # environment gets the same template (-c availability_zones= changes them).
    "W3010": "explicit availability zones are a design choice",
    # VllmProdStack's ModelS3Uri output is built from the store stack's bucket name, so
    # one stack's outputs tell a user everything needed to call and feed the endpoint.
    "W6001": "an output that includes an imported value, on purpose",
}


def test_cfn_lint_reports_no_errors(default_env, options_env, front_door_env):
    """The default environment, options_env (two models, every option away from its
    default) and the front door (WAF, Cognito, the chat UI, the collector), in one
    cfn-lint run (its start-up is most of its time)."""
    templates: dict[str, str] = {}  # content -> path: identical templates linted once
    for env in (default_env, options_env, front_door_env):
        found = sorted(env.outdir.glob("*.template.json"))
        assert len(found) == 4
        for path in found:
            templates.setdefault(path.read_text(), str(path))
    templates = sorted(templates.values())
    # --ignore-checks must follow the templates, or it swallows them.
    result = subprocess.run(
        [CFN_LINT, *templates, "--ignore-checks", *CFN_LINT_IGNORED],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path, default_env):
    """The validator is live: a misspelled property in one of our templates fails."""
    source = next(default_env.outdir.glob("VllmNetworkStack.template.json")).read_text()
    broken = tmp_path / "broken.template.json"
    broken.write_text(source.replace('"CidrBlock"', '"CidrBlok"', 1))
    result = subprocess.run([CFN_LINT, str(broken)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "CidrBlok" in result.stdout


# deepseek_env renders the same kinds as default_env; multinode_env adds the
# LeaderWorkerSet and the EFA pool, options_env the second model and the router's options.
@pytest.mark.parametrize("env_fixture", ["default_env", "options_env", "multinode_env",
                                         "front_door_env"])
def test_every_manifest_is_valid_kubernetes(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    objects = env.manifests()
    assert objects, "no Kubernetes manifests were synthesized"
    kubernetes_version = f"{versions.KUBERNETES_MINOR}.0"
    for obj in objects:
        if has_crd(obj):  # custom resources: the upstream CRD schema, strictly
            validate_custom_resource(obj)
        else:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)


def test_kubernetes_validate_rejects_unknown_fields(default_env):
    namespace = next(o for o in default_env.manifests() if o["kind"] == "Namespace")
    broken = {**namespace, "metadata": {**namespace["metadata"], "lables": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{versions.KUBERNETES_MINOR}.0", strict=True)


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_cdk_nag_has_no_unacknowledged_findings(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    (report,) = [r for r in env.validation_report["pluginReports"]
                 if r["pluginName"] == "AwsSolutions"]
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    for suppressed in report["suppressedViolations"]:
        assert len(suppressed["reason"]) > 30, suppressed["ruleName"]
