"""VllmPipelineStack: CDK Pipelines promotion of the environment through the stages of
pipeline.json (dev -> staging -> prod by default), each a cdk.Stage built by the same
`build_environment` the CLI app uses."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct

from .. import versions
from ..config import EnvironmentConfig
from ..models.sources import first_ready_seconds
from ..constructs.benchmark_gate import benchmark_gate_function_name
from ..constructs.smoke_test import smoke_test_function_name
from ..nag import acknowledge, acknowledge_library_policy_wildcards
from ..pipeline_config import PipelineConfig, StageConfig
from .environment import EnvironmentStacks, build_environment

PIPELINE_STACK_ID = "VllmPipelineStack"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
# The README's two commands: install + test, then synthesize (the pipeline's own stack
# included, so the pipeline updates itself first).
SYNTH_COMMANDS = ["make test", "make synth ARGS='-c pipeline=true'"]
SMOKE_POLL_SECONDS = 60
GATE_POLL_SECONDS = 30


def bootstrap_roles_synthesizer() -> cdk.DefaultStackSynthesizer:
    """The default synthesizer with the bootstrap role ARNs written with the literal `aws`
    partition: with concrete stage accounts and regions the pipeline's deploy actions
    then carry plain role ARNs (cfn-lint cannot validate an ARN assembled with
    Fn::Join). Every region of pipeline_config.KNOWN_REGIONS is in the `aws` partition."""
    role = "arn:aws:iam::${AWS::AccountId}:role/cdk-${Qualifier}-%s-${AWS::AccountId}-${AWS::Region}"
    return cdk.DefaultStackSynthesizer(
        deploy_role_arn=role % "deploy-role",
        cloud_formation_execution_role=role % "cfn-exec-role",
    )


class EnvironmentStage(cdk.Stage):
    """One environment (the four stacks) in one account and region."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.stacks: EnvironmentStacks = build_environment(
            self, config, synthesizer=bootstrap_roles_synthesizer)


def smoke_test_commands(timeout_seconds: int, region: str) -> list[str]:
    """Invoke the stage's smoke-test function until it passes (exit 0), fails (exit 1)
    or the endpoint is not ready within `timeout_seconds`. A failed invocation (no
    permission, a function error, no status) fails at once. The function reads the API
    key from Secrets Manager itself: nothing secret passes through the pipeline."""
    return [
        f"deadline=$(( $(date +%s) + {timeout_seconds} ))",
        'while true; do '
        f'aws lambda invoke --region {region} --function-name "$SMOKE_TEST_FUNCTION_ARN" '
        '--cli-read-timeout 360 result.json > invoke.json || exit 1; '
        'cat result.json; echo; '
        'if grep -q FunctionError invoke.json; then exit 1; fi; '
        'status=$(python3 -c \'import json; print(json.load(open("result.json")).get("status", ""))\'); '
        'if [ "$status" = passed ]; then exit 0; fi; '
        'if [ "$status" != waiting ]; then exit 1; fi; '
        'if [ "$(date +%s)" -ge "$deadline" ]; then echo "endpoint not ready in time"; exit 1; fi; '
        f'sleep {SMOKE_POLL_SECONDS}; '
        'done',
    ]


def benchmark_gate_commands(timeout_seconds: int, region: str) -> list[str]:
    """Start one benchmark run through the stage's gate function, then ask for its outcome
    until it passed (exit 0), missed the SLO or failed (exit 1, the numbers printed), or
    `timeout_seconds` passed. The function decides what runs and against which SLO."""
    invoke = (f'aws lambda invoke --region {region} --function-name '
              '"$BENCHMARK_GATE_FUNCTION_ARN" --cli-binary-format raw-in-base64-out '
              '--cli-read-timeout 120')
    field = 'python3 -c \'import json,sys; print(json.load(open("gate.json")).get(sys.argv[1], ""))\''
    return [
        f"deadline=$(( $(date +%s) + {timeout_seconds} ))",
        f"{invoke} --payload '{{\"action\": \"start\"}}' gate.json > invoke.json || exit 1",
        'cat gate.json; echo',
        'if grep -q FunctionError invoke.json; then exit 1; fi',
        f'job=$({field} job)',
        'if [ -z "$job" ]; then echo "the gate started no run"; exit 1; fi',
        'while true; do '
        f'sleep {GATE_POLL_SECONDS}; '
        f'{invoke} --payload "{{\\"action\\": \\"status\\", \\"job\\": \\"$job\\"}}" '
        'gate.json > invoke.json || exit 1; '
        'cat gate.json; echo; '
        'if grep -q FunctionError invoke.json; then exit 1; fi; '
        f'status=$({field} status); '
        'if [ "$status" = passed ]; then exit 0; fi; '
        'if [ "$status" != running ]; then exit 1; fi; '
        'if [ "$(date +%s)" -ge "$deadline" ]; then echo "the benchmark did not finish in '
        'time"; exit 1; fi; '
        'done',
    ]


class PipelineStack(cdk.Stack):
    """The pipeline (CodePipeline V2, cross-account KMS keys, encrypted artifacts): source
    from a CodeConnections connection, a synth step that runs the test suite, then one
    stage per pipeline.json entry with a manual approval where configured and a smoke
    test after each deploy (unless the stage turns it off) and, where a stage sets
    "benchmark", an SLO gate after the smoke test. A failing smoke test or a missed SLO
    stops the promotion."""

    def __init__(self, scope: Construct, construct_id: str, *, pipeline_config: PipelineConfig,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = pipeline_config
        source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.require_connection(),
            trigger_on_push=True)
        self.pipeline = pipelines.CodePipeline(
            self, "Pipeline",
            pipeline_name="vllm-eks",
            pipeline_type=codepipeline.PipelineType.V2,
            cross_account_keys=True,
            cli_version=versions.CDK_CLI_VERSION,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                # Pinned runtimes: the image's defaults move when a version reaches end
                # of life (the README's commands need Python 3.11+ and Node.js 20).
                partial_build_spec=codebuild.BuildSpec.from_object({
                    "phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}})),
            synth=pipelines.ShellStep("Synth", input=source, commands=SYNTH_COMMANDS,
                                      primary_output_directory="cdk.out"),
        )
        self.stages: list[EnvironmentStage] = []
        for stage_config in config.stages:
            self._add_stage(stage_config, config.account)
        self.pipeline.build_pipeline()
        self._allow_codeconnections(config.require_connection())
        self._acknowledge_nag_findings()

    def _allow_codeconnections(self, connection_arn: str) -> None:
        """aws-cdk-lib grants the source action `codestar-connections:UseConnection`;
        connections created since 2024 are `codeconnections` resources, whose IAM
        prefix must match."""
        for construct in self.pipeline.pipeline.node.find_all():
            if (isinstance(construct, iam.Role)
                    and "/Source/" in construct.node.path
                    and construct.node.id == "CodePipelineActionRole"):
                construct.add_to_principal_policy(iam.PolicyStatement(
                    actions=["codeconnections:UseConnection"], resources=[connection_arn]))

    def _add_stage(self, stage_config: StageConfig, tooling_account: str) -> None:
        environment = stage_config.environment(tooling_account)
        title = stage_config.name.capitalize()  # construct IDs: Dev, Staging, Prod
        stage = EnvironmentStage(
            self, title, config=environment,
            env=cdk.Environment(account=stage_config.account, region=stage_config.region))
        self.stages.append(stage)
        post = []
        if stage_config.smoke_test:
            post.append(self._smoke_test_step(stage, stage_config, title))
        if environment.benchmark_gate is not None:
            gate = self._benchmark_gate_step(stage, stage_config, title)
            gate.add_step_dependency(post[0])  # after the smoke test passes
            post.append(gate)
        pre = ([pipelines.ManualApprovalStep(
            f"Approve{title}",
            comment=f"Promote to {stage_config.name} ({stage_config.account}, "
            f"{stage_config.region})?")] if stage_config.approval else [])
        self.pipeline.add_stage(stage, pre=pre, post=post)

    @staticmethod
    def _invoke_policy(stage_config: StageConfig, function_name: str) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[f"arn:{cdk.Aws.PARTITION}:lambda:{stage_config.region}:"
                       f"{stage_config.account}:function:{function_name}"])

    def _smoke_test_step(self, stage: EnvironmentStage, stage_config: StageConfig,
                         title: str) -> pipelines.CodeBuildStep:
        environment = stage.config
        # A first promotion stages the weights, launches a GPU node, pulls the image and
        # loads the model before the endpoint answers (hours for DeepSeek-R1 from
        # Hugging Face); a later one finds them in place and passes at its first poll.
        ready = max(first_ready_seconds(model.plan.model, environment.model_source,
                                        model.plan.chosen.instance, model.plan.nodes)
                    for model in environment.models)
        timeout = (ready + 59) // 60 * 60  # CodeBuild counts whole minutes
        return pipelines.CodeBuildStep(
            f"SmokeTest{title}",
            env_from_cfn_outputs={"SMOKE_TEST_FUNCTION_ARN": stage.stacks.prod.smoke_test_output},
            commands=smoke_test_commands(timeout, stage_config.region),
            timeout=cdk.Duration.seconds(timeout + 600),
            role_policy_statements=[self._invoke_policy(
                stage_config, smoke_test_function_name(environment.cluster.name))],
        )

    def _benchmark_gate_step(self, stage: EnvironmentStage, stage_config: StageConfig,
                             title: str) -> pipelines.CodeBuildStep:
        environment = stage.config
        timeout = environment.benchmark_gate.timeout_minutes * 60
        return pipelines.CodeBuildStep(
            f"BenchmarkGate{title}",
            env_from_cfn_outputs={
                "BENCHMARK_GATE_FUNCTION_ARN": stage.stacks.prod.benchmark_gate_output},
            commands=benchmark_gate_commands(timeout, stage_config.region),
            timeout=cdk.Duration.seconds(timeout + 600),
            role_policy_statements=[self._invoke_policy(
                stage_config, benchmark_gate_function_name(environment.cluster.name))],
        )

    def _acknowledge_nag_findings(self) -> None:
        acknowledge_library_policy_wildcards(
            self.pipeline,
            "CDK Pipelines' generated roles: artifact-bucket object and KMS actions on the "
            "pipeline's own bucket and key, CodeBuild log streams and report groups named "
            "at build time, and the self-mutation / asset roles that assume the CDK "
            "bootstrap roles of the target accounts.")
        acknowledge(self.pipeline.pipeline.artifact_bucket, "AwsSolutions::AwsSolutions-S1",
                    "CDK Pipelines' artifact bucket: build artifacts, written and read only "
                    "by the pipeline's roles; CloudTrail records access.")
