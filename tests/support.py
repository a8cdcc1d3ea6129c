"""Test support: synthesize an environment the way app.py does, and read what came out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from vllm_eks.config import EnvironmentConfig
from vllm_eks.nag import enable_nag
from vllm_eks.stacks import build_environment

REPO = Path(__file__).resolve().parent.parent
KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"


def project_context() -> dict[str, Any]:
    """The feature flags of cdk.json: a test App does not read cdk.json itself."""
    return json.loads((REPO / "cdk.json").read_text())["context"]


@dataclass
class SynthResult:
    config: EnvironmentConfig
    outdir: Path
    templates: dict[str, dict]  # stack id -> CloudFormation template
    validation_report: dict | None

    def resources(self, stack: str, resource_type: str) -> dict[str, dict]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[stack]["Resources"].items()
            if resource["Type"] == resource_type
        }

    def text_files(self) -> list[Path]:
        """Every file of the cloud assembly a person or CloudFormation reads: templates,
        manifests, our Lambda handlers (asset directories). Not the zipped layers of
        aws-cdk-lib (kubectl, AWS CLI: ~60 MB of compressed bytes, which cannot hold a
        string of ours literally)."""
        return [p for p in self.outdir.rglob("*") if p.is_file() and p.suffix != ".zip"]

    def manifests(self) -> list[dict]:
        """Every Kubernetes object the environment applies, intrinsics as placeholders."""
        objects = []
        for template in self.templates.values():
            for resource in template["Resources"].values():
                if resource["Type"] == KUBERNETES_RESOURCE:
                    objects.extend(parse_manifest(resource["Properties"]["Manifest"]))
        return objects


def synth_environment(context: dict[str, str], outdir: Path) -> SynthResult:
    """Synthesize every stack with cdk-nag on, as `cdk synth` through app.py does."""
    app = cdk.App(context={**project_context(), **context}, outdir=str(outdir))
    config = EnvironmentConfig.from_context(app.node.try_get_context)
    build_environment(app, config)
    enable_nag(app)
    app.synth()  # raises when cdk-nag reports an unacknowledged finding
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return SynthResult(config=config, outdir=outdir, templates=templates,
                       validation_report=report)


def render_intrinsics(value: Any) -> Any:
    """Replace CloudFormation intrinsics by readable placeholders such as ${Ref:Bucket}."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return f"${{Ref:{arg}}}"
        if key == "Fn::GetAtt":
            return f"${{GetAtt:{'.'.join(arg) if isinstance(arg, list) else arg}}}"
        if key == "Fn::ImportValue":
            return f"${{Import:{render_intrinsics(arg)}}}"
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(render_intrinsics(p)) for p in parts)
        if key == "Fn::Select":
            return f"${{Select:{arg[0]}}}"
    if isinstance(value, dict):
        return {k: render_intrinsics(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render_intrinsics(v) for v in value]
    return value


def parse_manifest(manifest: Any) -> list[dict]:
    """A KubernetesResource's Manifest property (JSON string or Fn::Join) as objects."""
    text = render_intrinsics(manifest)
    return json.loads(text)


_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def readable_template(template: dict) -> dict:
    """A template for snapshots: asset hashes masked, embedded manifests parsed."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("Type") == KUBERNETES_RESOURCE:
                props = dict(value["Properties"])
                props["Manifest"] = parse_manifest(props["Manifest"])
                value = {**value, "Properties": props}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return _ASSET_HASH.sub("<asset-hash>", value)
        return value

    return walk(template)


def synth_pipeline(pipeline_config: dict, outdir: Path, extra_context: dict | None = None):
    """Synthesize VllmPipelineStack (and its stages) the way app.py does with
    `-c pipeline=true`; returns the cloud assembly."""
    from vllm_eks.pipeline_config import parse_pipeline_config
    from vllm_eks.stacks.pipeline_stack import PIPELINE_STACK_ID, PipelineStack

    app = cdk.App(context={**project_context(), **(extra_context or {})}, outdir=str(outdir))
    config = parse_pipeline_config(pipeline_config)
    PipelineStack(app, PIPELINE_STACK_ID, pipeline_config=config,
                  env=cdk.Environment(account=config.account, region=config.region))
    enable_nag(app)
    return app.synth()
