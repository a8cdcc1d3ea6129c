#!/usr/bin/env python3
"""The CDK app: the only place that reads context and environment.

    cdk synth                          # the embedded default model
    cdk deploy VllmProdStack -c model=deepseek-r1
"""

import sys

import aws_cdk as cdk

from vllm_eks.config import ConfigError, EnvironmentConfig
from vllm_eks.models import PlanError, UnknownModelError
from vllm_eks.nag import enable_nag
from vllm_eks.stacks import build_environment


def main() -> None:
    app = cdk.App()
    try:
        config = EnvironmentConfig.from_context(app.node.try_get_context)
    except (ConfigError, PlanError, UnknownModelError) as error:
        # A clear message, not a traceback: the user's input was wrong, not the program.
        print(f"vllm-eks: {error}", file=sys.stderr)
        sys.exit(1)
    print(config.plan.summary(), file=sys.stderr)
    build_environment(app, config)
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()
