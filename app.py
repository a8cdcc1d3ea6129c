#!/usr/bin/env python3
"""The CDK app: the only place that reads context and environment.

    cdk synth                          # the embedded default model
    cdk deploy VllmProdStack -c model=deepseek-r1
"""

import sys
from pathlib import Path

import aws_cdk as cdk

from vllm_eks.config import ConfigError, EnvironmentConfig
from vllm_eks.models import PlanError, UnknownModelError
from vllm_eks.nag import enable_nag
from vllm_eks.pipeline_config import PipelineConfigError, load_pipeline_config
from vllm_eks.stacks import build_environment
from vllm_eks.stacks.pipeline_stack import PIPELINE_STACK_ID, PipelineStack


def main() -> None:
    app = cdk.App()
    try:
        if str(app.node.try_get_context("pipeline") or "").lower() == "true":
            # Only the pipeline: it deploys the environments of pipeline.json itself.
            path = Path(app.node.try_get_context("pipeline_config") or "pipeline.json")
            pipeline_config = load_pipeline_config(path)
            PipelineStack(app, PIPELINE_STACK_ID, pipeline_config=pipeline_config,
                          env=cdk.Environment(account=pipeline_config.account,
                                              region=pipeline_config.region),
                          description="vllm-eks delivery pipeline")
        else:
            config = EnvironmentConfig.from_context(app.node.try_get_context)
            print(config.plan.summary(), file=sys.stderr)
            build_environment(app, config)
    except (ConfigError, PlanError, UnknownModelError, PipelineConfigError) as error:
        # A clear message, not a traceback: the user's input was wrong, not the program.
        print(f"vllm-eks: {error}", file=sys.stderr)
        sys.exit(1)
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()
