"""SmokeTest: a Lambda function in the VPC that checks a deployed endpoint end to end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..nag import acknowledge_vpc_lambda_role

HANDLER_DIR = Path(__file__).parent / "smoke_test_handler"


def smoke_test_function_name(environment_name: str) -> str:
    """A fixed name, so a pipeline in another account can be allowed to invoke exactly it."""
    return f"{environment_name}-smoke-test"[:64]


@dataclass(frozen=True, kw_only=True)
class SmokeTestProps:
    vpc: ec2.IVpc  # the function runs in its private subnets, so it reaches internal endpoints
    endpoint_url: str  # may be a CDK token
    api_key: secretsmanager.ISecret  # read at run time; the function may read it
    served_model_names: tuple[str, ...]  # listed by /v1/models; one completion each
    environment_name: str  # the cluster name; the function's name is derived from it
    # A pipeline account allowed to invoke it; None: only this account.
    invoker_account: str | None = None


class SmokeTest(Construct):
    """Calls /health, /v1/models (with the API key, read at run time) and one tiny
    completion per model through the router, from inside the VPC, so it also reaches internal endpoints. A pipeline's
    post-deploy step invokes it until it passes or fails; so can an operator:
    `aws lambda invoke --function-name <SmokeTestFunctionName output> out.json`.
    No hook is meant to be overridden."""

    def __init__(self, scope: Construct, construct_id: str, *, props: SmokeTestProps) -> None:
        super().__init__(scope, construct_id)
        self.function = lambda_.Function(
            self, "Function",
            function_name=smoke_test_function_name(props.environment_name),
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            timeout=cdk.Duration.minutes(5),
            memory_size=256,
            vpc=props.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            environment={
                "ENDPOINT_URL": props.endpoint_url,
                "API_KEY_SECRET_ARN": props.api_key.secret_arn,
                "MODELS": ",".join(props.served_model_names),
            },
            log_group=logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_MONTH,
                                    removal_policy=cdk.RemovalPolicy.DESTROY),
            description="vllm-eks endpoint smoke test (health, models, a completion per model)",
        )
        props.api_key.grant_read(self.function)
        if props.invoker_account:
            self.function.add_permission(
                "PipelineInvoke", principal=iam.AccountPrincipal(props.invoker_account),
                action="lambda:InvokeFunction")
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        acknowledge_vpc_lambda_role(self.function, "nothing else is granted.")
