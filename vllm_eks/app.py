"""The CDK app's entry point: the only place that reads context and environment.

The repository's `app.py` calls `main()`; so does the `app.py` of a repository that
installs vllm-eks and adds its own models (see examples/).
"""

import sys
from pathlib import Path

import aws_cdk as cdk

from .config import (
    DEFAULT_PIPELINE_CONFIG,
    ConfigError,
    EnvironmentConfig,
    check_context_keys,
)
from .models import CatalogError, PlanError, UnknownModelError
from .models.cost import estimate_environment_cost, render_cost
from .nag import enable_nag
from .pipeline_config import PipelineConfigError, load_pipeline_config
from .stacks import build_environment
from .stacks.pipeline_stack import PIPELINE_STACK_ID, PipelineStack


# aws-cdk-lib feature flags the constructs rely on (e.g. server access logs granted by a
# bucket policy, strong cross-stack references). The repository's cdk.json carries the
# same values (a test keeps them equal); an app in another repository gets them here.
FEATURE_FLAGS: dict = {
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/core:target-partitions": [
        "aws",
        "aws-cn"
    ],
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
    "@aws-cdk/aws-kms:aliasNameRef": True,
    "@aws-cdk/aws-kms:applyImportedAliasPermissionsToPrincipal": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True
}


def main() -> None:
    app = cdk.App(context=FEATURE_FLAGS)
    try:
        check_context_keys(app.node.get_all_context())
        if str(app.node.try_get_context("pipeline") or "").lower() == "true":
            # Only the pipeline: it deploys the environments of pipeline.json itself.
            path = Path(app.node.try_get_context("pipeline_config") or DEFAULT_PIPELINE_CONFIG)
            pipeline_config = load_pipeline_config(path)
            PipelineStack(app, PIPELINE_STACK_ID, pipeline_config=pipeline_config,
                          env=cdk.Environment(account=pipeline_config.account,
                                              region=pipeline_config.region),
                          description="vllm-eks delivery pipeline")
        else:
            config = EnvironmentConfig.from_context(app.node.try_get_context)
            for model in config.models:
                print(model.plan.summary(), file=sys.stderr)
            print(render_cost(estimate_environment_cost(config)), file=sys.stderr)
            build_environment(app, config)
    except (ConfigError, PlanError, UnknownModelError, PipelineConfigError,
            CatalogError) as error:
        # A clear message, not a traceback: the user's input was wrong, not the program.
        print(f"vllm-eks: {error}", file=sys.stderr)
        sys.exit(1)
    enable_nag(app)
    app.synth()

