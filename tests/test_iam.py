"""IAM guards, read from the synthesized CloudFormation (not from the Python statements):
every role is reviewed here (who assumes it, which services and AWS managed policies it
uses), mutating actions are scoped to this environment's resources or by the cluster's
tags unless listed below as a reviewed exception, iam:PassRole names its role, secret
values and model weights reach only their consumers, and the Karpenter and AWS Load
Balancer Controller policies equal their upstream reference policies at the pinned tags
(tests/fixtures/iam, SOURCES.txt). The rules themselves (what is read-only, a specific
resource, a scoping condition) are defined in tests/iam_policy.py.

Environments checked: the default environment, the one with every option on (it adds the
CloudWatch agent's role), and the pipeline synthesized once here with its three stages
(the Dev stage loads weights from Hugging Face, the branch that lets the server read the
token).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from vllm_eks import versions
from vllm_eks.k8s_charts.benchmark import SHAREGPT_KEY
from vllm_eks.naming import pascal_case

from .iam_policy import (
    Assembly, Role, Statement, as_list, is_read_only, is_specific_resource, matches,
    normalize_condition, scoping_conditions, unscoped_controlled_actions,
    wildcard_action_problem,
)
from .support import REPO, synth_pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "iam"
KARPENTER_UPSTREAM = FIXTURES / "karpenter_cloudformation.yaml"
ALB_UPSTREAM = FIXTURES / "alb_controller_iam_policy.json"

# -- who may assume a role --------------------------------------------------------------------
POD_IDENTITY = ("Service:pods.eks.amazonaws.com sts:AssumeRole+sts:TagSession",)
LAMBDA = ("Service:lambda.amazonaws.com sts:AssumeRole",)
EC2 = ("Service:ec2.amazonaws.com sts:AssumeRole",)
CODEBUILD = ("Service:codebuild.amazonaws.com sts:AssumeRole",)
PIPELINE = ("AWS:${GetAtt:VllmPipelineStack/Pipeline/Pipeline/Role.Arn} sts:AssumeRole",)

# The AWS managed policies EKS documents for worker nodes, written out (not read from the
# product) so that a policy added to or dropped from the node roles fails here.
NODE_POLICIES = ("AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy",
                 "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore")
LAMBDA_IN_VPC = ("service-role/AWSLambdaBasicExecutionRole",
                 "service-role/AWSLambdaVPCAccessExecutionRole")


@dataclass(frozen=True)
class RoleSpec:
    trust: tuple[str, ...]
    services: frozenset[str] = frozenset()  # action prefixes its statements may use
    managed: tuple[str, ...] = ()           # AWS managed policies, exactly


def spec(trust, services=(), managed=()) -> RoleSpec:
    return RoleSpec(trust=tuple(trust), services=frozenset(services),
                    managed=tuple(sorted(managed)))


# Every role, by "<stack>/<construct path>" (a pattern: fnmatch). Environment stacks are
# the same in the CLI app and in each pipeline stage. A role not listed fails; so does an
# entry that matches no role.
ROLES: dict[str, RoleSpec] = {
    # aws-cdk-lib's EKS cluster and its kubectl provider
    "VllmClusterStack/GpuCluster/Cluster/Role": spec(
        ["Service:eks.amazonaws.com sts:AssumeRole"], managed=["AmazonEKSClusterPolicy"]),
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Handler/ServiceRole": spec(
        LAMBDA, ["eks"], managed=[*LAMBDA_IN_VPC, "AmazonEC2ContainerRegistryReadOnly",
                                  "AmazonElasticContainerRegistryPublicReadOnly"]),
    "VllmClusterStack/GpuCluster/Cluster/KubectlProvider/Provider/framework-onEvent/ServiceRole":
        spec(LAMBDA, ["lambda"], managed=LAMBDA_IN_VPC),
    # nodes
    "VllmClusterStack/GpuCluster/NodeRole": spec(EC2, managed=NODE_POLICIES),
    "VllmClusterStack/Karpenter/NodeRole": spec(EC2, managed=NODE_POLICIES),
    # controllers and drivers (EKS Pod Identity)
    "VllmClusterStack/Karpenter/ControllerRole": spec(
        POD_IDENTITY, ["ec2", "iam", "eks", "arc-zonal-shift", "sqs", "ssm", "pricing"]),
    "VllmClusterStack/AlbController/ControllerRole": spec(
        POD_IDENTITY, ["iam", "ec2", "elasticloadbalancing", "cognito-idp", "acm",
                       "waf-regional", "wafv2", "shield"]),
    "VllmClusterStack/StorageDrivers/EfsCsiRole": spec(
        POD_IDENTITY, ["elasticfilesystem", "ec2"]),
    "VllmClusterStack/StorageDrivers/EbsCsiRole": spec(
        POD_IDENTITY, managed=["service-role/AmazonEBSCSIDriverPolicy"]),
    "VllmClusterStack/Observability/GrafanaRole": spec(POD_IDENTITY, ["secretsmanager"]),
    "VllmClusterStack/Observability/CloudWatchAgentRole": spec(  # -c cloudwatch=true
        POD_IDENTITY, managed=["CloudWatchAgentServerPolicy"]),
    # the teardown guard's Lambda (in the VPC): reads its own stack's status only, so a
    # Delete outside a stack deletion removes nothing; Kubernetes access comes from its
    # access entry's group and ClusterRole (tests/test_teardown.py), not from IAM.
    "VllmClusterStack/TeardownGuard/Function/ServiceRole": spec(
        LAMBDA, ["cloudformation"], managed=LAMBDA_IN_VPC),
    # network: aws-cdk-lib's flow log role and default-security-group custom resource
    "VllmNetworkStack/Network/Vpc/FlowLog/IAMRole": spec(
        ["Service:vpc-flow-logs.amazonaws.com sts:AssumeRole"], ["logs"]),
    "VllmNetworkStack/Custom::VpcRestrictDefaultSGCustomResourceProvider/Role": spec(
        LAMBDA, ["ec2"], managed=["service-role/AWSLambdaBasicExecutionRole"]),
    # workloads
    # one server and one stager role per model (ServerRole<Model>, StagerRole<Model>)
    "VllmProdStack/VllmService/ServerRole*": spec(POD_IDENTITY, ["s3", "secretsmanager"]),
    "VllmProdStack/VllmService/StagerRole*": spec(POD_IDENTITY, ["s3", "secretsmanager"]),
    "VllmProdStack/VllmService/RouterRole": spec(POD_IDENTITY, ["secretsmanager"]),
    # one benchmark role per model: writes its results, reads tokenizer files and the key
    "VllmProdStack/VllmService/BenchmarkRole*": spec(POD_IDENTITY, ["s3", "secretsmanager"]),
    "VllmProdStack/SmokeTest/Function/ServiceRole": spec(
        LAMBDA, ["secretsmanager"], managed=LAMBDA_IN_VPC),
    # the chat UI (-c chat_ui=true): reads the API key it calls the endpoint with
    "VllmProdStack/ChatUi/UiRole": spec(POD_IDENTITY, ["secretsmanager"]),
    # the OpenTelemetry collector (-c tracing=true): puts trace segments into X-Ray
    "VllmClusterStack/Tracing/CollectorRole": spec(POD_IDENTITY, ["xray"]),
    # a pipeline stage's SLO gate (pipeline.json "benchmark"): reads its model's results
    # for its workload; Kubernetes access from its access entry's group and Role
    # (tests/test_benchmark_gate.py), not from IAM.
    "VllmProdStack/BenchmarkGate/Function/ServiceRole": spec(
        LAMBDA, ["s3"], managed=LAMBDA_IN_VPC),
    # the pipeline (CDK Pipelines' roles, plus our smoke-test and connection statements)
    "VllmPipelineStack/Pipeline/Pipeline/Role": spec(
        ["Service:codepipeline.amazonaws.com sts:AssumeRole"], ["s3", "kms", "sts"]),
    "VllmPipelineStack/Pipeline/Pipeline/Source/*/CodePipelineActionRole": spec(
        PIPELINE, ["codeconnections", "codestar-connections", "s3", "kms"]),
    "VllmPipelineStack/Pipeline/Pipeline/Build/Synth/CdkBuildProject/Role": spec(
        CODEBUILD, ["logs", "codebuild", "s3", "kms"]),
    "VllmPipelineStack/Pipeline/Pipeline/*/SmokeTest*/SmokeTest*/Role": spec(
        CODEBUILD, ["logs", "codebuild", "lambda", "s3", "kms"]),
    "VllmPipelineStack/Pipeline/Pipeline/*/BenchmarkGate*/BenchmarkGate*/Role": spec(
        CODEBUILD, ["logs", "codebuild", "lambda", "s3", "kms"]),
    "VllmPipelineStack/Pipeline/Pipeline/Prod/ApproveProd/CodePipelineActionRole": spec(
        PIPELINE),
    "VllmPipelineStack/Pipeline/CodeBuildActionRole": spec(PIPELINE, ["codebuild"]),
    "VllmPipelineStack/Pipeline/UpdatePipeline/SelfMutation/Role": spec(
        CODEBUILD, ["logs", "codebuild", "sts", "cloudformation", "s3", "kms"]),
    "VllmPipelineStack/Pipeline/Assets/FileRole": spec(
        CODEBUILD, ["logs", "codebuild", "sts", "s3", "kms"]),
}

# Allow statements whose mutating (or data-reading) actions are neither on specific
# resources nor under a scoping condition (rules: tests/iam_policy.py), reviewed one by
# one: (role pattern, Sid or sorted actions) -> exactly those actions, and why.
REVIEWED_UNSCOPED: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("VllmClusterStack/Karpenter/ControllerRole", "AllowScopedEC2InstanceAccessActions"): (
        frozenset({"ec2:RunInstances", "ec2:CreateFleet"}),
        "Upstream: a launch needs permission on every resource it uses; AMIs, snapshots, "
        "subnets, security groups, capacity reservations and placement groups are only "
        "referenced. What a launch creates (instance, volumes, ENIs, fleet, launch "
        "template) is authorized only with the cluster's tags by "
        "AllowScopedEC2InstanceActionsWithTags / AllowScopedEC2LaunchTemplateAccessActions."),
    ("VllmClusterStack/Tracing/CollectorRole", "PutTraceSegments"): (
        frozenset({"xray:PutTraceSegments"}),
        "X-Ray authorizes PutTraceSegments on '*' only (no trace resource exists before "
        "it); the role may do nothing else."),
    ("VllmClusterStack/Karpenter/ControllerRole", "AllowSSMReadActions"): (
        frozenset({"ssm:GetParameter"}),
        "Upstream: AWS's public parameters (/aws/service/*, AMI IDs) in this region only."),
    ("VllmClusterStack/AlbController/ControllerRole",
     "AllowCertificateWafShieldCognitoIntegration"): (
        frozenset({"waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
                   "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL",
                   "shield:CreateProtection", "shield:DeleteProtection"}),
        "Upstream: associates the Ingress's web ACL / Shield protection with load balancers "
        "whose ARNs exist only at run time; these APIs take no tag conditions."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowSecurityGroupIngressRules"): (
        frozenset({"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}),
        "Upstream: the controller opens node and pod security groups, which it does not "
        "own (no elbv2.k8s.aws/cluster tag), to its load balancers' traffic."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowSecurityGroupCreation"): (
        frozenset({"ec2:CreateSecurityGroup"}),
        "Upstream: creating is unconditioned, but tagging a new group requires the "
        "cluster tag (AllowTaggingSecurityGroupsOnCreation) and every later change "
        "requires it on the group (AllowManagingOwnedSecurityGroups)."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowListenerAndRuleLifecycle"): (
        frozenset({"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
                   "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"}),
        "Upstream: listeners and rules carry no cluster tag (their load balancer does)."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowTaggingListenersAndRules"): (
        frozenset({"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}),
        "Upstream: tags on listeners and rules (this region and account only, pinned here)."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowTargetRegistration"): (
        frozenset({"elasticloadbalancing:RegisterTargets",
                   "elasticloadbalancing:DeregisterTargets"}),
        "Upstream: target groups of this region and account; registration is not "
        "tag-conditioned upstream."),
    ("VllmClusterStack/AlbController/ControllerRole", "AllowListenerAndRuleUpdates"): (
        frozenset({"elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener",
                   "elasticloadbalancing:AddListenerCertificates",
                   "elasticloadbalancing:RemoveListenerCertificates",
                   "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities"}),
        "Upstream: listener and rule updates (no cluster tag on listeners and rules)."),
    ("VllmPipelineStack/Pipeline/Assets/FileRole",
     "logs:CreateLogGroup+logs:CreateLogStream+logs:PutLogEvents"): (
        frozenset({"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}),
        "CDK Pipelines: the asset role is shared by one CodeBuild project per asset, whose "
        "log groups are /aws/codebuild/<project> in the tooling account and region."),
    ("VllmPipelineStack/Pipeline/Assets/FileRole",
     "codebuild:BatchPutCodeCoverages+codebuild:BatchPutTestCases+codebuild:CreateReport"
     "+codebuild:CreateReportGroup+codebuild:UpdateReport"): (
        frozenset({"codebuild:BatchPutCodeCoverages", "codebuild:BatchPutTestCases",
                   "codebuild:CreateReport", "codebuild:CreateReportGroup",
                   "codebuild:UpdateReport"}),
        "CDK Pipelines: report groups of those asset projects (tooling account and region)."),
    ("VllmPipelineStack/Pipeline/Assets/FileRole",
     "codebuild:BatchGetBuilds+codebuild:StartBuild+codebuild:StopBuild"): (
        frozenset({"codebuild:StartBuild", "codebuild:StopBuild"}),
        "CDK Pipelines: generated by the library for its asset projects."),
}

# iam:PassRole: role -> (the one role it may pass, the services it may pass it to).
PASS_ROLE: dict[str, tuple[str, list[str]]] = {
    "VllmClusterStack/Karpenter/ControllerRole": (
        "${GetAtt:VllmClusterStack/Karpenter/NodeRole.Arn}",
        ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]),
}

API_KEY = "${Ref:VllmProdStack/VllmService/ApiKey}"
HF_TOKEN = "${Ref:VllmModelStoreStack/ModelStore/HuggingFaceTokenSecret}"
WEIGHTS_BUCKET = "${GetAtt:VllmModelStoreStack/ModelStore/WeightsBucket.Arn}"


def secret_readers(model_source: str, model_keys: list[str]) -> dict[str, set[str]]:
    """Role -> the secrets whose values it may read; no other role reads any."""
    server = {API_KEY, HF_TOKEN} if model_source == "hf" else {API_KEY}
    readers = {
        "VllmClusterStack/Observability/GrafanaRole":
            {"${Ref:VllmClusterStack/Observability/GrafanaAdminPassword}"},
        "VllmProdStack/VllmService/RouterRole": {API_KEY},  # lists models with the key
        "VllmProdStack/SmokeTest/Function/ServiceRole": {API_KEY},
        "VllmProdStack/ChatUi/UiRole": {API_KEY},  # the chat UI calls the endpoint with it
    }
    for key in model_keys:
        readers[f"VllmProdStack/VllmService/ServerRole{pascal_case(key)}"] = server
        # the benchmark sends the key; without staged weights it fetches the tokenizer
        # from Hugging Face
        readers[f"VllmProdStack/VllmService/BenchmarkRole{pascal_case(key)}"] = server
        if model_source != "hf":
            readers[f"VllmProdStack/VllmService/StagerRole{pascal_case(key)}"] = {HF_TOKEN}
    return readers


# -- the pipeline, synthesized once ----------------------------------------------------------
# The committed pipeline.json with a connection, its Dev stage switched to weights from
# Hugging Face (a branch no session fixture covers).
PIPELINE_STAGE_SOURCES = {"Dev": "hf", "Staging": "s3", "Prod": "s3"}


def pipeline_config() -> dict:
    config = copy.deepcopy(json.loads((REPO / "pipeline.json").read_text()))
    config["connectionArn"] = ("arn:aws:codeconnections:us-east-1:111111111111:connection/"
                               "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    for stage in config["stages"]:
        stage["context"]["model_source"] = PIPELINE_STAGE_SOURCES[stage["name"].capitalize()]
    return config


@pytest.fixture(scope="module")
def pipeline_iam(tmp_path_factory) -> Assembly:
    outdir = tmp_path_factory.mktemp("iam-pipeline")
    synth_pipeline(pipeline_config(), outdir)
    return Assembly(outdir, name="pipeline")


@pytest.fixture(scope="module")
def default_iam(default_env) -> Assembly:
    return Assembly(default_env.outdir, name="default")


@pytest.fixture(scope="module")
def options_iam(options_env) -> Assembly:
    return Assembly(options_env.outdir, name="options")


@pytest.fixture(scope="module")
def front_door_iam(front_door_env) -> Assembly:
    return Assembly(front_door_env.outdir, name="front_door")


ASSEMBLIES = ["default_iam", "options_iam", "pipeline_iam", "front_door_iam"]


@pytest.fixture(params=ASSEMBLIES)
def assembly(request) -> Assembly:
    return request.getfixturevalue(request.param)


def stack_label(role: Role) -> str:
    """The role's label without its pipeline stage: how the tables above name it."""
    return f"{role.stack}/{role.path}"


def spec_of(role: Role) -> tuple[str, RoleSpec]:
    found = [(pattern, s) for pattern, s in ROLES.items() if matches(pattern, stack_label(role))]
    assert len(found) == 1, (
        f"{role.label}: {'no' if not found else 'more than one'} entry in ROLES of "
        f"tests/test_iam.py ({[p for p, _ in found]}); review the role (who assumes it, "
        "which services and managed policies it needs) and add it")
    return found[0]


def model_sources(assembly: Assembly, request) -> dict[str, str]:
    """Stage ("" outside the pipeline) -> where that environment loads weights from."""
    if assembly.name == "pipeline":
        return PIPELINE_STAGE_SOURCES
    return {"": assembly_env(assembly, request).config.model_source.value}


def assembly_env(assembly: Assembly, request):
    """The SynthResult an environment's assembly was read from."""
    return request.getfixturevalue(f"{assembly.name}_env")


# -- inventory: roles, principals, services, managed policies --------------------------------

def test_every_role_is_reviewed(assembly):
    for role in assembly.roles.values():
        spec_of(role)


def test_every_reviewed_role_and_exception_exists(default_iam, options_iam, pipeline_iam,
                                                  front_door_iam):
    labels = {stack_label(r) for a in (default_iam, options_iam, pipeline_iam, front_door_iam)
              for r in a.roles.values()}
    stale = [p for p in ROLES if not any(matches(p, label) for label in labels)]
    stale += [f"{p} {k}" for p, k in REVIEWED_UNSCOPED
              if not any(matches(p, label) for label in labels)]
    stale += [p for p in PASS_ROLE if p not in labels]
    assert not stale, f"tables of tests/test_iam.py name roles that no longer exist: {stale}"


def test_roles_are_assumed_only_by_their_principals(assembly):
    wrong = {role.label: role.trust for role in assembly.roles.values()
             if role.trust != spec_of(role)[1].trust}
    assert not wrong, f"unexpected trust policies: {wrong}"


def test_roles_use_only_their_allowed_services(assembly):
    wrong = []
    for role in assembly.roles.values():
        allowed = spec_of(role)[1].services
        for statement in role.allows:
            if extra := statement.services - allowed:
                wrong.append(f"{role.label} {statement.key}: {sorted(extra)} "
                             f"(allowed: {sorted(allowed)})")
    assert not wrong, "services outside the role's allow-list:\n" + "\n".join(wrong)


def test_aws_managed_policies_are_exactly_the_reviewed_ones(assembly):
    wrong = {role.label: role.managed_policy_names() for role in assembly.roles.values()
             if tuple(role.managed_policy_names()) != spec_of(role)[1].managed}
    assert not wrong, f"managed policies differ from ROLES in tests/test_iam.py: {wrong}"


def test_node_roles_have_exactly_the_eks_worker_policies(default_iam):
    upstream = yaml.load(KARPENTER_UPSTREAM.read_text(), Loader=_CfnLoader)
    upstream_node_policies = sorted(
        arn["Fn::Sub"].rsplit("/", 1)[1]
        for arn in upstream["Resources"]["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"])
    assert list(NODE_POLICIES) == upstream_node_policies
    for path in ("GpuCluster/NodeRole", "Karpenter/NodeRole"):
        role = default_iam.roles[("", "VllmClusterStack", path)]
        assert role.managed_policy_names() == [
            "AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy", "AmazonSSMManagedInstanceCore"], path
        assert role.statements == [], f"{path}: nodes get no permissions beyond those"


# -- wildcards and scoping -------------------------------------------------------------------

def test_no_wildcard_actions_and_no_not_action(assembly):
    wrong = []
    for role in assembly.roles.values():
        for statement in role.allows:
            if statement.not_action or statement.not_resource:
                wrong.append(f"{role.label} {statement.key}: NotAction/NotResource in an Allow")
            for action in statement.actions:
                if problem := wildcard_action_problem(action):
                    wrong.append(f"{role.label} {statement.key}: {action!r} ({problem})")
    assert not wrong, "\n".join(wrong)


def test_mutating_actions_are_scoped_or_reviewed(assembly):
    found: dict[tuple[str, str], frozenset[str]] = {}
    problems = []
    for role in assembly.roles.values():
        pattern = spec_of(role)[0]
        for statement in role.allows:
            if unscoped := unscoped_controlled_actions(statement):
                found[(pattern, statement.key)] = frozenset(unscoped)
                if (pattern, statement.key) not in REVIEWED_UNSCOPED:
                    problems.append(
                        f"{role.label} {statement.key}: {sorted(unscoped)} on "
                        f"{list(statement.resources)} without a scoping condition "
                        f"(condition: {statement.condition or 'none'})")
    assert not problems, (
        "\n".join(problems) + "\nName this environment's resources or add the cluster's "
        "tag conditions; a deliberate exception goes in REVIEWED_UNSCOPED with its reason")
    present = {spec_of(r)[0] for r in assembly.roles.values()}
    expected = {key: actions for key, (actions, _) in REVIEWED_UNSCOPED.items()
                if key[0] in present}
    changed = {key: (sorted(found.get(key, ())), sorted(expected[key]))
               for key in expected if found.get(key) != expected[key]}
    assert not changed, (
        "reviewed exceptions changed (statement -> (unscoped actions now, reviewed)); "
        f"review and update REVIEWED_UNSCOPED: {changed}")


def test_pass_role_only_for_named_roles(assembly):
    passing = {}
    for role in assembly.roles.values():
        for statement in role.allows:
            if not any(matches(action, "iam:PassRole") for action in statement.actions):
                continue
            label = stack_label(role)
            assert label in PASS_ROLE, f"{role.label} {statement.key} may pass roles"
            target, services = PASS_ROLE[label]
            assert list(statement.resources) == [target], (
                f"{role.label} {statement.key} passes {list(statement.resources)}, "
                f"not only {target}")
            assert statement.actions == ("iam:PassRole",), statement.actions
            assert normalize_condition(statement.condition) == {
                "StringEquals": {"iam:PassedToService": sorted(services)}}, (
                f"{role.label} {statement.key}: iam:PassedToService must be {services}, "
                f"condition is {statement.condition}")
            passing[label] = role.label
    expected = {k for k in PASS_ROLE if any(stack_label(r) == k
                                            for r in assembly.roles.values())}
    assert set(passing) == expected


def test_secret_values_reach_only_their_consumers(assembly, request):
    sources = model_sources(assembly, request)
    models = weights_prefixes(assembly, request)
    for role in assembly.roles.values():
        readers = secret_readers(sources.get(role.stage, "none"), models.get(role.stage, []))
        read = {resource for statement in role.allows for resource in statement.resources
                if any(matches(action, "secretsmanager:GetSecretValue")
                       for action in statement.actions)}
        assert read == readers.get(stack_label(role), set()), (
            f"{role.label} reads the secrets {sorted(read)}; reviewed: "
            f"{sorted(readers.get(stack_label(role), set()))}")


def weights_prefixes(assembly: Assembly, request) -> dict[str, list[str]]:
    """Stage -> the served models' keys, each its weights prefix in the bucket."""
    if assembly.name == "pipeline":
        return {stage["name"].capitalize(): [stage["context"]["model"]]
                for stage in pipeline_config()["stages"]}
    return {"": [model.key for model in assembly_env(assembly, request).config.models]}


def test_weights_roles_reach_only_their_model_prefix(assembly, request):
    object_actions = {"ServerRole": ["s3:GetObject"],
                      "StagerRole": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]}
    checked = 0
    for stage, keys in weights_prefixes(assembly, request).items():
        for key, (name, actions) in itertools.product(keys, object_actions.items()):
            role = assembly.roles.get((stage, "VllmProdStack",
                                       f"VllmService/{name}{pascal_case(key)}"))
            if role is None:
                assert name == "StagerRole" and PIPELINE_STAGE_SOURCES.get(stage) == "hf"
                continue
            # The first model's stager also stages the ShareGPT benchmark file, when a
            # benchmark uses it (tests/test_benchmark.py): that object only.
            s3 = sorted(((tuple(sorted(s.actions)), tuple(sorted(s.resources)),
                          normalize_condition(s.condition))
                         for s in role.allows if "s3" in s.services
                         and s.sid not in ("StageBenchmarkDataset", "ListBenchmarkDataset")),
                        key=str)
            dataset = [s for s in role.allows
                       if s.sid in ("StageBenchmarkDataset", "ListBenchmarkDataset")]
            assert all(r in (WEIGHTS_BUCKET, f"{WEIGHTS_BUCKET}/{SHAREGPT_KEY}")
                       for s in dataset for r in s.resources), dataset
            assert s3 == sorted([
                (("s3:ListBucket",), (WEIGHTS_BUCKET,),
                 {"StringLike": {"s3:prefix": [f"{key}/", f"{key}/*"]}}),
                (tuple(actions), (f"{WEIGHTS_BUCKET}/{key}/*",), {}),
            ], key=str), f"{role.label}: S3 access beyond {key}/: {s3}"
            checked += 1
    assert checked


# -- upstream reference policies ---------------------------------------------------------------

class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Sub, !Ref, !GetAtt) as their long forms."""


def _construct_cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)

SOURCE_LINE = re.compile(
    r"^(?P<file>\S+)\s+<-\s+(?P<repo>\S+)\s+@\s+(?P<tag>v\S+)\s+:\s+(?P<path>\S+)$")


def test_upstream_fixtures_are_from_the_pinned_versions():
    lines = [m for m in map(SOURCE_LINE.match, (FIXTURES / "SOURCES.txt").read_text()
                            .splitlines()) if m]
    assert {m["file"]: (m["repo"], m["tag"]) for m in lines} == {
        ALB_UPSTREAM.name: ("kubernetes-sigs/aws-load-balancer-controller",
                            f"v{versions.ALB_CONTROLLER_CHART_VERSION}"),
        KARPENTER_UPSTREAM.name: ("aws/karpenter-provider-aws",
                                  f"v{versions.KARPENTER_VERSION}"),
    }, ("a controller was bumped in vllm_eks/versions.py: copy its upstream IAM policy of "
        "the new tag into tests/fixtures/iam, update SOURCES.txt, and review the diff")


def upstream_karpenter_statements(cluster_name: str) -> list[dict]:
    """The controller statements of Karpenter's getting-started template, with its
    CloudFormation substitutions replaced the way the product writes them: pseudo
    parameters as pseudo parameters, the cluster name, our node role and queue."""
    template = yaml.load(KARPENTER_UPSTREAM.read_text(), Loader=_CfnLoader)
    substitutions = {
        "AWS::Partition": "${Ref:AWS::Partition}", "AWS::Region": "${Ref:AWS::Region}",
        "AWS::AccountId": "${Ref:AWS::AccountId}", "ClusterName": cluster_name,
        "KarpenterNodeRole.Arn": "${GetAtt:VllmClusterStack/Karpenter/NodeRole.Arn}",
        "KarpenterInterruptionQueue.Arn":
            "${GetAtt:VllmClusterStack/Karpenter/InterruptionQueue.Arn}",
    }
    statements = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        text = resource["Properties"]["PolicyDocument"]["Fn::Sub"]
        unknown = set(re.findall(r"\$\{([^}]+)\}", text)) - set(substitutions)
        assert not unknown, f"upstream {name} uses new substitutions {unknown}: review"
        text = re.sub(r"\$\{([^}]+)\}", lambda m: substitutions[m[1]], text)
        statements.extend(json.loads(text)["Statement"])
    return statements


# The ALB controller's upstream policy has no Sids: the product's Sid of each upstream
# statement, in upstream order.
ALB_SIDS_IN_UPSTREAM_ORDER = [
    "AllowElbServiceLinkedRoleCreation",
    "AllowEc2AndElbDescribeActions",
    "AllowCertificateWafShieldCognitoIntegration",
    "AllowSecurityGroupIngressRules",
    "AllowSecurityGroupCreation",
    "AllowTaggingSecurityGroupsOnCreation",
    "AllowTaggingOwnedSecurityGroups",
    "AllowManagingOwnedSecurityGroups",
    "AllowCreatingTaggedLoadBalancersAndTargetGroups",
    "AllowListenerAndRuleLifecycle",
    "AllowTaggingOwnedLoadBalancersAndTargetGroups",
    "AllowTaggingListenersAndRules",
    "AllowModifyingOwnedLoadBalancersAndTargetGroups",
    "AllowTaggingLoadBalancersAndTargetGroupsOnCreation",
    "AllowTargetRegistration",
    "AllowListenerAndRuleUpdates",
]
_ANY_REGION_AND_ACCOUNT = re.compile(r"^arn:aws:([a-z0-9-]+):\*:\*:")


def upstream_alb_statements() -> list[dict]:
    """Upstream's statements as the product writes them (alb_controller_iam.py): the
    partition as a pseudo parameter, and ARNs for any region and account (`:*:*:`) pinned
    to the environment's region and account."""
    statements = json.loads(ALB_UPSTREAM.read_text())["Statement"]
    assert len(statements) == len(ALB_SIDS_IN_UPSTREAM_ORDER), (
        "upstream added or removed a statement: review it and ALB_SIDS_IN_UPSTREAM_ORDER")
    result = []
    for sid, statement in zip(ALB_SIDS_IN_UPSTREAM_ORDER, statements):
        resources = [_ANY_REGION_AND_ACCOUNT.sub(
            r"arn:${Ref:AWS::Partition}:\1:${Ref:AWS::Region}:${Ref:AWS::AccountId}:", r)
            for r in as_list(statement["Resource"])]
        result.append({**statement, "Sid": sid, "Resource": resources})
    return result


def differences_from_upstream(product: list[Statement], upstream: list[dict]) -> list[str]:
    """Per Sid: missing or added statements, actions, resources, condition operators,
    keys and values."""
    ours = {s.sid: s for s in product}
    theirs = {s["Sid"]: s for s in upstream}
    found = [f"{sid}: not in the product" for sid in theirs.keys() - ours.keys()]
    found += [f"{sid}: not upstream" for sid in ours.keys() - theirs.keys()]
    for sid in sorted(ours.keys() & theirs.keys()):
        mine, ref = ours[sid], theirs[sid]
        for what, a, b in (("actions", set(mine.actions), set(as_list(ref["Action"]))),
                           ("resources", set(mine.resources), set(as_list(ref["Resource"])))):
            if a - b:
                found.append(f"{sid}: {what} added {sorted(a - b)}")
            if b - a:
                found.append(f"{sid}: {what} removed {sorted(b - a)}")
        if mine.effect != ref["Effect"]:
            found.append(f"{sid}: effect {mine.effect} instead of {ref['Effect']}")
        a = normalize_condition(mine.condition)
        b = normalize_condition(ref.get("Condition", {}))
        for operator in sorted(a.keys() | b.keys()):
            keys_a, keys_b = a.get(operator, {}), b.get(operator, {})
            for key in sorted(keys_a.keys() | keys_b.keys()):
                if key not in keys_a:
                    found.append(f"{sid}: condition {operator} {key} removed")
                elif key not in keys_b:
                    found.append(f"{sid}: condition {operator} {key} added")
                elif keys_a[key] != keys_b[key]:
                    found.append(f"{sid}: condition {operator} {key} is {keys_a[key]}, "
                                 f"upstream {keys_b[key]}")
    return sorted(found)


# Deliberate, reviewed differences from upstream (beyond the substitutions above), as
# differences_from_upstream() words them. None today: a drift fails until it is either
# fixed or reviewed and written here with its reason.
KARPENTER_REVIEWED_DIFFERENCES: list[str] = []
ALB_REVIEWED_DIFFERENCES: list[str] = []


def test_karpenter_controller_policy_matches_upstream(default_env, default_iam):
    role = default_iam.roles[("", "VllmClusterStack", "Karpenter/ControllerRole")]
    upstream = upstream_karpenter_statements(default_env.config.cluster.name)
    differences = differences_from_upstream(role.statements, upstream)
    assert differences == KARPENTER_REVIEWED_DIFFERENCES, (
        f"the Karpenter controller policy drifted from upstream ({KARPENTER_UPSTREAM.name}, "
        "SOURCES.txt):\n" + "\n".join(differences))


def test_alb_controller_policy_matches_upstream(default_iam):
    role = default_iam.roles[("", "VllmClusterStack", "AlbController/ControllerRole")]
    differences = differences_from_upstream(role.statements, upstream_alb_statements())
    assert differences == ALB_REVIEWED_DIFFERENCES, (
        f"the ALB controller policy drifted from upstream ({ALB_UPSTREAM.name}, "
        "SOURCES.txt):\n" + "\n".join(differences))


# -- the rules can fail ------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "read_only"), [
    ("ec2:DescribeInstances", True), ("iam:ListInstanceProfiles", True),
    ("s3:List*", True), ("s3:GetBucket*", True),
    ("secretsmanager:GetSecretValue", False), ("s3:GetObject", False), ("s3:GetObject*", False),
    ("s3:Get*", False), ("ssm:GetParameter", False), ("ec2:RunInstances", False),
    ("elasticloadbalancing:DeleteLoadBalancer", False), ("iam:PassRole", False),
])
def test_read_only_rule(action, read_only):
    assert is_read_only(action) is read_only


@pytest.mark.parametrize(("action", "too_broad"), [
    ("*", True), ("iam:*", True), ("iam:Pass*", True), ("sts:*", True), ("s3:*", True),
    ("ec2:*Instances", True), ("s3:Get*Acl", True), ("ec2:RunInstances", False),
    ("s3:GetObject*", False), ("kms:GenerateDataKey*", False),
])
def test_wildcard_action_rule(action, too_broad):
    assert (wildcard_action_problem(action) is not None) is too_broad


@pytest.mark.parametrize(("resource", "specific"), [
    ("*", False),
    ("arn:aws:s3:::*", False),
    ("arn:${Ref:AWS::Partition}:ec2:${Ref:AWS::Region}:*:instance/*", False),
    ("arn:aws:elasticfilesystem:us-east-1:${Ref:AWS::AccountId}:access-point/*", False),
    ("${GetAtt:VllmModelStoreStack/ModelStore/WeightsBucket.Arn}*", False),
    ("arn:aws:lambda:us-east-1:${Param:Account}:function:*", False),
    ("${GetAtt:VllmModelStoreStack/ModelStore/WeightsBucket.Arn}/llama/*", True),
    ("arn:aws:logs:us-east-1:111111111111:log-group:/aws/codebuild/${Ref:S/Project}:*", True),
    ("arn:${Ref:AWS::Partition}:lambda:us-east-1:222222222222:function:vllm-dev-smoke-test",
     True),
    ("${GetAtt:VllmClusterStack/Karpenter/NodeRole.Arn}", True),
])
def test_specific_resource_rule(resource, specific):
    assert is_specific_resource(resource) is specific


@pytest.mark.parametrize(("condition", "scoping"), [
    ({}, False),
    ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, False),
    ({"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "true"}}, False),
    ({"StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": "c"}}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, False),
    ({"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}, True),
    ({"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/c": "owned"}}, True),
    ({"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}, True),
    ({"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}, True),
])
def test_scoping_condition_rule(condition, scoping):
    assert bool(scoping_conditions(condition)) is scoping


def test_a_drift_from_upstream_is_named():
    upstream = [{"Sid": "A", "Effect": "Allow", "Action": ["ec2:RunInstances"],
                 "Resource": "*", "Condition": {"Null": {"aws:ResourceTag/t": "false"}}},
                {"Sid": "B", "Effect": "Allow", "Action": "ec2:DescribeImages",
                 "Resource": "*"}]
    product = [Statement(role="r", policy="p", sid="A", effect="Allow",
                         actions=("ec2:RunInstances", "iam:PassRole"), resources=("*",),
                         condition={})]
    assert differences_from_upstream(product, upstream) == [
        "A: actions added ['iam:PassRole']",
        "A: condition Null aws:ResourceTag/t removed",
        "B: not in the product",
    ]
