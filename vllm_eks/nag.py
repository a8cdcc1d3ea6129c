"""cdk-nag: AwsSolutions checks run as a validation plugin on every synth.

Findings fail the synth. Each accepted finding is acknowledged where it arises, at the
narrowest scope, with its reason (see `acknowledge`).
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct, IValidation


def enable_nag(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cdk-nag finding for `scope` and its children, with the reason why."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def acknowledge_vpc_lambda_role(function: IConstruct, grants: str) -> None:
    """Accept the IAM4 findings of a Lambda function in a VPC: AWS's basic and VPC
    execution-role policies (logs, network interfaces). `grants` says what else its role
    may do, for the reviewer."""
    managed = "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
    for policy in ("service-role/AWSLambdaBasicExecutionRole",
                   "service-role/AWSLambdaVPCAccessExecutionRole"):
        acknowledge(function, f"{managed}{policy}]",
                    "AWS's execution-role policies for a Lambda function in a VPC (logs "
                    f"and network interfaces); {grants}")


def acknowledge_wildcards(scope: IConstruct, statements: list[iam.PolicyStatement],
                          reason: str) -> None:
    """Accept cdk-nag's IAM5 findings (wildcard actions and resources) of exactly these
    statements on `scope` (the role or policy that holds them), with the reason why.

    The finding IDs embed the resolved resources, and a resource from another stack
    resolves to an `Fn::ImportValue` only once the app is prepared; so the IDs are
    computed during validation, after references are resolved, exactly as cdk-nag
    renders them.
    """
    scope.node.add_validation(_WildcardAcknowledgement(scope, statements, reason))


@jsii.implements(IValidation)
class _WildcardAcknowledgement:
    def __init__(self, scope: IConstruct, statements: list[iam.PolicyStatement],
                 reason: str) -> None:
        self._scope, self._statements, self._reason = scope, statements, reason

    def validate(self) -> list[str]:
        stack = cdk.Stack.of(self._scope)
        for statement in self._statements:
            resolved = stack.resolve(statement.to_statement_json())
            for finding in wildcard_findings(resolved):
                acknowledge(self._scope, finding, self._reason)
        return []


def wildcard_findings(statement: dict) -> list[str]:
    """cdk-nag's IAM5 finding IDs for one resolved policy statement (Allow only)."""
    if statement.get("Effect") != "Allow":
        return []

    def as_list(value) -> list:
        return value if isinstance(value, list) else [value]

    findings = [f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]"
                for action in as_list(statement.get("Action", [])) if "*" in action]
    for resource in as_list(statement.get("Resource", [])):
        flat = _flatten_reference(resource)
        if "*" in flat:
            findings.append(f"AwsSolutions::AwsSolutions-IAM5[Resource::{flat}]")
    return findings


def _flatten_reference(node) -> str:
    """cdk-nag's flattenCfnReference (utils/flatten-cfn-reference.ts)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(_flatten_reference(item) for item in items)
    if "Fn::Sub" in node:
        return _flatten_reference(node["Fn::Sub"])
    if "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{_flatten_reference(resource)}.{_flatten_reference(attribute)}>"
    if "Fn::ImportValue" in node:
        return _flatten_reference(node["Fn::ImportValue"])
    if "Ref" in node:
        return f"<{_flatten_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def acknowledge_library_policy_wildcards(scope: IConstruct, reason: str) -> None:
    """Accept the IAM5 findings of every IAM policy a library generates below `scope`
    (e.g. CDK Pipelines' CodeBuild and CodePipeline roles), each by its exact ID, with
    the reason why. For policies we write ourselves, use `acknowledge_wildcards`."""
    scope.node.add_validation(_LibraryPolicyAcknowledgement(scope, reason))


@jsii.implements(IValidation)
class _LibraryPolicyAcknowledgement:
    def __init__(self, scope: IConstruct, reason: str) -> None:
        self._scope, self._reason = scope, reason

    def validate(self) -> list[str]:
        for construct in self._scope.node.find_all():
            if isinstance(construct, iam.CfnPolicy):
                document = cdk.Stack.of(construct).resolve(construct.policy_document)
                for statement in document.get("Statement", []):
                    for finding in wildcard_findings(statement):
                        acknowledge(construct, finding, self._reason)
        return []
