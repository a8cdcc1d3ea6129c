"""cdk-nag acknowledgements are a reviewed list. The product acknowledges findings where
they arise (vllm_eks/nag.py), and some acknowledgements are computed from the statements
a policy holds; so a new wildcard would be acknowledged by code. This file is the review:
every acknowledged finding of every synthesized environment and of the pipeline is
written out below, per construct path, with why it is accepted. A finding that is not
listed fails, acknowledged or not, until a person adds it here with its reason; a listed
finding that disappears fails too, so the list never outlives what it reviews."""

from __future__ import annotations

import json
import re

import pytest

from vllm_eks.naming import pascal_case

# Placeholders: <model> is a model's key (the S3 prefix of its weights), <Model> the same
# in a construct ID; an entry with them stands for one entry per model of the environment.
ENVIRONMENT: dict[str, set[str]] = {
    # Secrets we cannot rotate: a Hugging Face token is issued by Hugging Face; the
    # Grafana password and the API key are read at start (README: how to rotate them).
    "VllmModelStoreStack/ModelStore/HuggingFaceTokenSecret": {"SMG4"},
    "VllmClusterStack/Observability/GrafanaAdminPassword": {"SMG4"},
    "VllmProdStack/VllmService/ApiKey": {"SMG4"},
    # EKS's own service role and the AWS-managed worker-node policies every EKS node
    # needs (written out and compared in tests/test_iam.py).
    "VllmClusterStack/GpuCluster/Cluster/Role": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]",
    },
    "VllmClusterStack/GpuCluster/NodeRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
    },
    "VllmClusterStack/Karpenter/NodeRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
    },
    # aws-cdk-lib's kubectl provider: Lambda basic/VPC execution and image pulls for the
    # kubectl layer; its runtime is chosen by aws-cdk-lib (L1); the framework may invoke
    # every version of its handler (`:*`).
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Handler": {"L1"},
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Handler/ServiceRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
        'IAM4[Policy::{"Fn::If":["GpuClusterKubectlProviderHandlerHasEcrPublic4159ED06",'
        '{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/'
        'AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
    },
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Provider/framework-onEvent/ServiceRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
    },
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Provider/framework-onEvent/ServiceRole/DefaultPolicy": {
        "IAM5[Resource::<GpuClusterKubectlProviderHandler5DF9DD3E.Arn>:*]",
    },
    # Karpenter's upstream v1.14 policy: instances, fleets, launch templates, volumes and
    # instance profiles are created at run time under names nobody knows in advance, so
    # they are scoped by tags (tests/test_iam.py checks each condition against upstream);
    # AMIs, snapshots, subnets, security groups are read by selector; Describe*, pricing
    # and ListInstanceProfiles take no resource ARNs (`*`).
    "VllmClusterStack/Karpenter/ControllerPolicy": {
        "IAM5[Resource::*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:capacity-reservation/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:fleet/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:instance/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:launch-template/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:network-interface/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:placement-group/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:security-group/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:spot-instances-request/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:subnet/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:volume/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*]",
        "IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*]",
        "IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>::parameter/aws/service/*]",
    },
    # The interruption queue is its own dead end: messages older than 300 s are useless.
    "VllmClusterStack/Karpenter/InterruptionQueue": {"SQS3"},
    # The AWS Load Balancer Controller's upstream v3.5.0 policy: load balancers, target
    # groups, listeners and security groups it creates at run time (tag-scoped where
    # upstream scopes them; the rest is listed in tests/test_iam.py).
    "VllmClusterStack/AlbController/ControllerRole": {
        "IAM5[Resource::*]",
        "IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:security-group/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener-rule/app/*/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener-rule/net/*/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener/app/*/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener/net/*/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:loadbalancer/app/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:loadbalancer/net/*/*]",
        "IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:targetgroup/*/*]",
    },
    # CSI drivers: the EBS driver's AWS-managed policy; the EFS driver creates access
    # points per claim (tag-scoped) and describes mount targets (`*`).
    "VllmClusterStack/StorageDrivers/EbsCsiRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy]",
    },
    "VllmClusterStack/StorageDrivers/EfsCsiRole": {
        "IAM5[Resource::*]",
        "IAM5[Resource::arn:aws:elasticfilesystem:us-east-1:<AWS::AccountId>:access-point/*]",
    },
    # Each model's pods read (server) and write (stager) only their own model's prefix.
    "VllmProdStack/VllmService/ServerRole<Model>": {
        "IAM5[Resource::VllmModelStoreStack:ExportsOutputFnGetAttWeightsBucketArn7880A03A/<model>/*]",
    },
    "VllmProdStack/VllmService/StagerRole<Model>": {
        "IAM5[Resource::VllmModelStoreStack:ExportsOutputFnGetAttWeightsBucketArn7880A03A/<model>/*]",
    },
    # Each model's benchmark writes only its own results prefix (a file per run).
    "VllmProdStack/VllmService/BenchmarkRole<Model>": {
        "IAM5[Resource::VllmModelStoreStack:ExportsOutputFnGetAttWeightsBucketArn7880A03A/benchmarks/<model>/*]",
    },
    # The smoke-test Lambda runs in the VPC and logs: Lambda's managed execution policies.
    "VllmProdStack/SmokeTest/Function/ServiceRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
    },
    # The teardown guard's Lambda runs in the VPC (the private API endpoint) and logs:
    # Lambda's managed execution policies; its runtime is the kubectl provider's
    # python3.13, not the newest (L1).
    "VllmClusterStack/TeardownGuard/Function": {"L1"},
    "VllmClusterStack/TeardownGuard/Function/ServiceRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
    },
}

# A pipeline stage's SLO gate (pipeline.json "benchmark"; the example's staging): a
# Lambda in the VPC like the teardown guard, with its runtime, reading the results of its
# model and workload only.
BENCHMARK_GATE = {
    "VllmProdStack/BenchmarkGate/Function": {"L1"},
    "VllmProdStack/BenchmarkGate/Function/ServiceRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
    },
    "VllmProdStack/BenchmarkGate/Function/ServiceRole/DefaultPolicy": {
        "IAM5[Resource::VllmModelStoreStack:ExportsOutputFnGetAttWeightsBucketArn7880A03A/benchmarks/deepseek-r1-distill-llama-8b/random/*]",
    },
}

# The front door (-c chat_ui=true, -c tracing=true): the chat UI's Cognito pool on the
# Essentials plan (threat protection is the Plus plan's, billed per active user), and the
# collector's X-Ray statement, which X-Ray authorizes on '*' only.
FRONT_DOOR = {
    "VllmProdStack/ChatUi/UserPool": {"COG2", "COG8"},  # MFA optional here, not required
    "VllmClusterStack/Tracing/CollectorRole": {"IAM5[Resource::*]"},
}

# -c cloudwatch=true: the CloudWatch agent's AWS-managed policy (the add-on's documented role).
CLOUDWATCH = {
    "VllmClusterStack/Observability/CloudWatchAgentRole": {
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/CloudWatchAgentServerPolicy]",
    },
}

# The pipeline's own roles, all generated by CDK Pipelines (<Stage>: Dev, Staging, Prod;
# the tooling account of the test config is 111111111111): artifact-bucket object and
# KMS actions on the pipeline's own bucket and key, CodeBuild log streams and report
# groups named at build time; self-mutation and asset roles assume the CDK bootstrap
# roles (`role/*`) of the target accounts. The artifact bucket logs to CloudTrail (S1).
_ARTIFACTS = {
    "IAM5[Action::kms:GenerateDataKey*]", "IAM5[Action::kms:ReEncrypt*]",
    "IAM5[Action::s3:GetBucket*]", "IAM5[Action::s3:GetObject*]", "IAM5[Action::s3:List*]",
    "IAM5[Resource::<PipelineArtifactsBucketAEA9A052.Arn>/*]",
}
_ARTIFACTS_WRITE = {"IAM5[Action::s3:Abort*]", "IAM5[Action::s3:DeleteObject*]"}


def _codebuild(project: str) -> set[str]:
    return {
        f"IAM5[Resource::arn:aws:codebuild:us-east-1:111111111111:report-group/<{project}>-*]",
        "IAM5[Resource::arn:aws:logs:us-east-1:111111111111:log-group:/aws/codebuild/"
        f"<{project}>:*]",
    }


PIPELINE = {
    "VllmPipelineStack/Pipeline/Pipeline/ArtifactsBucket": {"S1"},
    "VllmPipelineStack/Pipeline/Pipeline/Role/DefaultPolicy": _ARTIFACTS | _ARTIFACTS_WRITE,
    "VllmPipelineStack/Pipeline/Pipeline/Source/your-org_vllm-eks/CodePipelineActionRole/DefaultPolicy":
        _ARTIFACTS | _ARTIFACTS_WRITE,
    "VllmPipelineStack/Pipeline/Pipeline/Build/Synth/CdkBuildProject/Role/DefaultPolicy":
        _ARTIFACTS | _ARTIFACTS_WRITE | _codebuild("PipelineBuildSynthCdkBuildProject6BEFA8E6"),
    "VllmPipelineStack/Pipeline/Pipeline/<Stage>/SmokeTest<Stage>/SmokeTest<Stage>/Role/DefaultPolicy":
        _ARTIFACTS | _codebuild("SmokeTestProject"),
    "VllmPipelineStack/Pipeline/Pipeline/<Stage>/BenchmarkGate<Stage>/BenchmarkGate<Stage>/Role/DefaultPolicy":
        _ARTIFACTS | _codebuild("BenchmarkGateProject"),
    "VllmPipelineStack/Pipeline/UpdatePipeline/SelfMutation/Role/DefaultPolicy":
        _ARTIFACTS | _codebuild("PipelineUpdatePipelineSelfMutationDAA41400") | {
            "IAM5[Resource::*]", "IAM5[Resource::arn:*:iam::111111111111:role/*]"},
    "VllmPipelineStack/Pipeline/Assets/FileRole/DefaultPolicy": {
        "IAM5[Action::s3:GetBucket*]", "IAM5[Action::s3:GetObject*]", "IAM5[Action::s3:List*]",
        "IAM5[Resource::*]", "IAM5[Resource::<PipelineArtifactsBucketAEA9A052.Arn>/*]",
        "IAM5[Resource::arn:aws:codebuild:us-east-1:111111111111:report-group/*]",
        "IAM5[Resource::arn:aws:logs:us-east-1:111111111111:log-group:/aws/codebuild/*]",
    },
}


def acknowledged(report: dict) -> dict[str, set[str]]:
    """The acknowledged cdk-nag findings of a validation report: construct path (without
    the trailing /Resource) -> finding IDs (without the AwsSolutions prefixes)."""
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    found: dict[str, set[str]] = {}
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) > 30, suppressed  # a reason, not a placeholder
        finding = suppressed["acknowledgedId"].removeprefix("AwsSolutions::AwsSolutions-")
        for construct in suppressed["violatingConstructs"]:
            path = construct["constructPath"].removesuffix("/Resource")
            found.setdefault(path, set()).add(finding)
    return found


def assert_reviewed(found: dict[str, set[str]], expected: dict[str, set[str]]) -> None:
    unreviewed = {p: sorted(f - expected.get(p, set())) for p, f in found.items()
                  if f - expected.get(p, set())}
    gone = {p: sorted(f - found.get(p, set())) for p, f in expected.items()
            if f - found.get(p, set())}
    assert not unreviewed, (
        f"acknowledged cdk-nag findings nobody reviewed: {unreviewed}; fix the finding, or "
        "add it to tests/test_nag.py with the reason it is accepted")
    assert not gone, f"reviewed findings that no longer occur (remove them): {gone}"


def with_models(expected: dict[str, set[str]], models: list[str]) -> dict[str, set[str]]:
    """The list for an environment serving `models`: each <model>/<Model> entry once per
    model."""
    result: dict[str, set[str]] = {}
    for path, findings in expected.items():
        for model in (models if "<Model>" in path else models[:1]):
            result[path.replace("<Model>", pascal_case(model))] = {
                f.replace("<model>", model) for f in findings}
    return result


@pytest.mark.parametrize("env_fixture, extra", [
    ("default_env", {}), ("deepseek_env", {}), ("public_efs_env", {}),
    ("options_env", CLOUDWATCH), ("front_door_env", FRONT_DOOR),
])
def test_every_acknowledged_finding_of_an_environment_is_reviewed(env_fixture, extra, request):
    env = request.getfixturevalue(env_fixture)
    expected = with_models({**ENVIRONMENT, **extra}, [m.key for m in env.config.models])
    assert_reviewed(acknowledged(env.validation_report), expected)


def test_every_acknowledged_finding_of_the_pipeline_is_reviewed(pipeline):
    outdir, _ = pipeline
    found = acknowledged(json.loads((outdir / "validation-report.json").read_text()))
    stages: dict[str, dict[str, set[str]]] = {}
    own: dict[str, set[str]] = {}
    for path, findings in found.items():
        _, first, *rest = path.split("/")
        if first in ("Dev", "Staging", "Prod"):
            # The stage's stacks: the environment's list, with the stage's prefix on
            # exports and its account in place of the AccountId pseudo parameter.
            stage_findings = {
                re.sub(r"(?<=:)\d{12}(?=:)", "<AWS::AccountId>",
                       f.replace(f"{first}-VllmModelStoreStack", "VllmModelStoreStack"))
                for f in findings}
            stages.setdefault(first, {})["/".join(rest)] = stage_findings
        else:
            generic = re.sub(r"/(Dev|Staging|Prod)/(SmokeTest|BenchmarkGate)\1/\2\1/",
                             r"/<Stage>/\2<Stage>/\2<Stage>/", path)
            own.setdefault(generic, set()).update(
                re.sub(r"<Pipeline(Dev|Staging|Prod)(SmokeTest|BenchmarkGate)\1[0-9A-F]{8}>",
                       r"<\2Project>", f) for f in findings)
    assert_reviewed(own, PIPELINE)
    assert sorted(stages) == ["Dev", "Prod", "Staging"]
    models = {"Dev": "deepseek-r1-distill-qwen-1.5b"}
    for stage, stage_found in stages.items():
        expected = with_models(ENVIRONMENT,
                               [models.get(stage, "deepseek-r1-distill-llama-8b")])
        if stage == "Staging":  # pipeline.json's example gate
            expected = {**expected, **BENCHMARK_GATE}
        assert_reviewed(stage_found, expected)


def test_an_unreviewed_finding_fails():
    found = {**ENVIRONMENT, "VllmClusterStack/Karpenter/ControllerPolicy":
             ENVIRONMENT["VllmClusterStack/Karpenter/ControllerPolicy"]
             | {"IAM5[Action::iam:*]"}}
    with pytest.raises(AssertionError, match=r"nobody reviewed.*iam:\*"):
        assert_reviewed(found, ENVIRONMENT)
