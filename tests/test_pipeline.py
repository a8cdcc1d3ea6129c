"""The delivery pipeline: synthesized offline from pipeline.json, stages in order with an
approval before prod, a smoke test after every stage, cross-account keys, account IDs
only from the config, validators clean, and bad pipeline.json rejected clearly."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from vllm_eks.pipeline_config import PipelineConfigError, parse_pipeline_config

from .support import REPO, synth_pipeline
from .test_validators import CFN_LINT, CFN_LINT_IGNORED

from .conftest import CONNECTION, committed_config, config_with_connection


def codepipeline(template: dict) -> dict:
    (resource,) = [r for r in template["Resources"].values()
                   if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return resource["Properties"]


def buildspec_of(template: dict, project_id: str) -> str:
    return json.dumps(template["Resources"][project_id]["Properties"]["Source"]["BuildSpec"])


def test_stages_run_in_order_with_an_approval_before_prod(pipeline):
    _, template = pipeline
    stages = {s["Name"]: s["Actions"] for s in codepipeline(template)["Stages"]}
    names = [s["Name"] for s in codepipeline(template)["Stages"]]
    assert names[:2] == ["Source", "Build"]
    assert [n for n in names if n in ("Dev", "Staging", "Prod")] == ["Dev", "Staging", "Prod"]
    for stage in ("Dev", "Staging"):
        assert not [a for a in stages[stage] if a["ActionTypeId"]["Category"] == "Approval"]
    prod = stages["Prod"]
    (approval,) = [a for a in prod if a["ActionTypeId"]["Category"] == "Approval"]
    deploys = [a for a in prod if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and approval["RunOrder"] < min(a["RunOrder"] for a in deploys)


def test_every_stage_ends_with_a_smoke_test(pipeline):
    _, template = pipeline
    for stage in codepipeline(template)["Stages"]:
        if stage["Name"] not in ("Dev", "Staging", "Prod"):
            continue
        actions = stage["Actions"]
        (smoke,) = [a for a in actions if a["Name"].startswith("SmokeTest")]
        deploys = [a for a in actions if a["ActionTypeId"]["Category"] == "Deploy"]
        assert smoke["RunOrder"] > max(a["RunOrder"] for a in deploys)
        assert smoke["ActionTypeId"]["Provider"] == "CodeBuild"
        project = smoke["Configuration"]["ProjectName"]["Ref"]
        buildspec = buildspec_of(template, project)
        assert "aws lambda invoke" in buildspec and "SMOKE_TEST_FUNCTION_ARN" in buildspec
        assert 'exit 1' in buildspec  # a failing smoke test stops the promotion
        assert "--region us-east-1" in buildspec and "FunctionError" in buildspec
        # The key is read by the function at run time, never by the pipeline.
        assert "secretsmanager" not in buildspec and "get-secret-value" not in buildspec


def test_the_smoke_test_reads_the_key_at_run_time():
    handler = (REPO / "vllm_eks" / "constructs" / "smoke_test_handler" / "index.py").read_text()
    assert "get_secret_value" in handler and 'os.environ["API_KEY_SECRET_ARN"]' in handler
    for path in ("/health", "/v1/models", "/v1/completions"):
        assert path in handler


def test_smoke_function_is_invokable_by_the_pipeline_account(pipeline):
    outdir, _ = pipeline
    prod = _stage_template(outdir, "Prod", "VllmProdStack")
    permissions = [r["Properties"] for r in prod["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Permission"]
    assert any(p["Principal"] == committed_config()["account"] for p in permissions)
    (function,) = [r["Properties"] for r in prod["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function"
                   and r["Properties"].get("FunctionName") == "vllm-prod-smoke-test"]
    env = function["Environment"]["Variables"]
    assert "Ref" in env["API_KEY_SECRET_ARN"]  # an ARN, not a value


def _stage_template(outdir: Path, stage: str, stack: str) -> dict:
    (path,) = (outdir / f"assembly-VllmPipelineStack-{stage}").glob(f"*{stack}*.template.json")
    return json.loads(path.read_text())


def test_synth_step_runs_the_tests_first(pipeline):
    _, template = pipeline
    (build,) = [s for s in codepipeline(template)["Stages"] if s["Name"] == "Build"]
    project = build["Actions"][0]["Configuration"]["ProjectName"]["Ref"]
    buildspec = buildspec_of(template, project)
    assert buildspec.index("make test") < buildspec.index("make synth")
    assert "-c pipeline=true" in buildspec


def test_pipeline_v2_with_cross_account_keys_and_encrypted_artifacts(pipeline):
    _, template = pipeline
    props = codepipeline(template)
    assert props["PipelineType"] == "V2"
    store = props["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"  # cross_account_keys=True
    keys = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    assert keys and all(k.get("EnableKeyRotation") for k in keys)
    source = next(s for s in props["Stages"] if s["Name"] == "Source")["Actions"][0]
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["BranchName"] == "main"
    granted = json.dumps(template)
    for prefix in ("codestar-connections", "codeconnections"):
        assert f'"{prefix}:UseConnection"' in granted


def test_account_ids_come_only_from_the_config(pipeline):
    outdir, _ = pipeline
    config = config_with_connection()
    allowed = {config["account"], *(s["account"] for s in config["stages"])}
    found = set()
    for path in outdir.rglob("*.template.json"):
        # An account ID stands alone (in an ARN, a principal, a property); a hex digest
        # such as aws-cdk-lib's prune label hash may hold twelve digits in a row too.
        found |= set(re.findall(r"(?<![0-9a-f])\d{12}(?![0-9a-f])", path.read_text()))
    assert found and found <= allowed, found - allowed
    for source in (REPO / "vllm_eks").rglob("*.py"):
        for account in allowed:
            assert account not in source.read_text(), source


def test_stage_environments_come_from_the_shared_builder(pipeline):
    outdir, _ = pipeline
    for stage in ("Dev", "Staging", "Prod"):
        stacks = {p.name for p in (outdir / f"assembly-VllmPipelineStack-{stage}").glob(
            "*.template.json")}
        for stack in ("VllmNetworkStack", "VllmModelStoreStack", "VllmClusterStack",
                      "VllmProdStack"):
            assert any(stack in name for name in stacks), (stage, stack)
    dev = _stage_template(outdir, "Dev", "VllmNetworkStack")
    assert len([r for r in dev["Resources"].values()
                if r["Type"] == "AWS::EC2::NatGateway"]) == 1  # the dev stage's context


def test_cfn_lint_and_cdk_nag_are_clean(pipeline):
    outdir, _ = pipeline
    templates = [str(outdir / "VllmPipelineStack.template.json")] + [
        str(p) for p in (outdir / "assembly-VllmPipelineStack-Prod").glob("*.template.json")]
    result = subprocess.run([CFN_LINT, *templates, "--ignore-checks", *CFN_LINT_IGNORED],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    assert {v["acknowledgedAt"].split("/")[1] for v in nag["suppressedViolations"]} >= {
        "Pipeline", "Dev", "Staging", "Prod"}


def test_the_committed_config_is_valid():
    config = parse_pipeline_config(committed_config())
    assert [s.name for s in config.stages] == ["dev", "staging", "prod"]
    assert [s.approval for s in config.stages] == [False, False, True]
    for stage in config.stages:
        assert stage.environment(config.account).cluster.admin_role_arn


def test_a_missing_connection_is_reported():
    # On a copy: the committed file gets its real ARN once a user sets up the pipeline.
    config = parse_pipeline_config({**committed_config(), "connectionArn": None})
    with pytest.raises(PipelineConfigError, match="connectionArn is missing; create a "
                                                  "connection"):
        config.require_connection()


def _broken(change) -> dict:
    config = copy.deepcopy(config_with_connection())
    change(config)
    return config


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["stages"][0].update(account="12345"),
     r"stage 'dev': account='12345' is invalid; pass a 12-digit AWS account ID"),
    (lambda c: c["stages"][1].update(region="us-central-9"),
     r"stage 'staging': region 'us-central-9' is not an AWS region"),
    (lambda c: c["stages"][2].update(name="Dev"),
     r"stage names must be unique; dev appears more than once"),
    (lambda c: c.update(account="abc"), r"account='abc' is invalid"),
    (lambda c: c.update(connectionArn="arn:aws:s3:::bucket"),
     r"connectionArn='arn:aws:s3:::bucket' is not a CodeConnections ARN"),
    (lambda c: c.update(stages=[]), r"stages is empty"),
    (lambda c: c["stages"][0]["context"].update(model="llama"),
     r"stage 'dev': unknown model 'llama'"),
])
def test_bad_pipeline_config_fails_clearly(change, message):
    with pytest.raises(PipelineConfigError, match=message):
        config = parse_pipeline_config(_broken(change))
        for stage in config.stages:
            stage.environment(config.account)


def test_cli_refuses_a_pipeline_without_a_connection(tmp_path):
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps({**committed_config(), "connectionArn": None}))
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "-c", "pipeline=true",
         "-c", f"pipeline_config={config}", "--output", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CDK_VALIDATION": "false"})
    assert result.returncode != 0
    assert "vllm-eks: pipeline.json: connectionArn is missing" in result.stderr


def test_pipeline_tools_are_pinned(pipeline):
    from vllm_eks import versions

    _, template = pipeline
    package = json.loads((REPO / "package.json").read_text())
    assert package["devDependencies"]["aws-cdk"] == versions.CDK_CLI_VERSION
    specs = [json.dumps(r["Properties"]["Source"].get("BuildSpec", ""))
             for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"]
    assert any(f"aws-cdk@{versions.CDK_CLI_VERSION}" in s for s in specs)
    assert all("runtime-versions" in s for s in specs if "make test" in s)


def test_the_smoke_deadline_covers_a_first_deploy(pipeline):
    """A first promotion stages the weights (Hugging Face -> S3 at 0.1 GB/s), launches a
    GPU node (10 min), pulls the image (10 min) and loads the model (the startup budget)
    before the endpoint answers; the smoke test must wait that long, and CodeBuild longer."""
    from vllm_eks.models import PlanRequest, get_model, plan
    from vllm_eks.models.sources import ModelSource, startup_budget_seconds

    _, template = pipeline
    models = {stage["name"]: stage["context"]["model"] for stage in committed_config()["stages"]}
    for stage in codepipeline(template)["Stages"]:
        if stage["Name"] not in ("Dev", "Staging", "Prod"):
            continue
        (smoke,) = [a for a in stage["Actions"] if a["Name"].startswith("SmokeTest")]
        project_id = smoke["Configuration"]["ProjectName"]["Ref"]
        deadline = int(re.search(r"\+ (\d+) \)\)", buildspec_of(template, project_id))[1])
        model = get_model(models[stage["Name"].lower()])
        staging = model.weight_bytes / 1e9 / 0.1
        instance = plan(PlanRequest(model=model)).chosen.instance
        needed = staging + 600 + 600 + startup_budget_seconds(model, ModelSource.S3, instance)
        assert deadline >= needed, (stage["Name"], deadline, needed)
        minutes = template["Resources"][project_id]["Properties"]["TimeoutInMinutes"]
        assert minutes * 60 > deadline


def test_first_ready_time_for_deepseek_from_hugging_face_via_s3():
    from vllm_eks.models import GPU_INSTANCES, get_model
    from vllm_eks.models.sources import ModelSource, first_ready_seconds, staging_seconds

    r1, p5 = get_model("deepseek-r1"), GPU_INSTANCES["p5.48xlarge"]
    assert staging_seconds(r1, ModelSource.S3) >= 6800  # ~688 GB at 0.1 GB/s: ~2 hours
    assert staging_seconds(r1, ModelSource.HF) == 0
    assert staging_seconds(r1, ModelSource.EFS) > staging_seconds(r1, ModelSource.S3)
    assert first_ready_seconds(r1, ModelSource.S3, p5) > 2 * 3600  # staging, node, image, load
    # Over two nodes, the leader also waits for its worker's node and image.
    from vllm_eks.models.sources import group_join_seconds
    from vllm_eks.models.sources import startup_budget_seconds
    assert first_ready_seconds(r1, ModelSource.S3, p5, nodes=2) - first_ready_seconds(
        r1, ModelSource.S3, p5) == group_join_seconds(2) + startup_budget_seconds(
        r1, ModelSource.S3, p5, 2) - startup_budget_seconds(r1, ModelSource.S3, p5)
    assert group_join_seconds(2) > 0
