"""Read IAM out of a synthesized cloud assembly: every role, who may assume it, its AWS
managed policies and every statement that reaches it (inline `Policies`, and
AWS::IAM::Policy / AWS::IAM::ManagedPolicy attached through `Roles`), with intrinsics
rendered as placeholders that name construct paths instead of hashed logical IDs:

    ${Ref:AWS::Region}                         a pseudo parameter
    ${Param:BootstrapVersion}                  a template parameter (not one of our resources)
    ${Ref:VllmProdStack/VllmService/ApiKey}    a resource of this environment
    ${GetAtt:VllmClusterStack/Karpenter/NodeRole.Arn}
    (Fn::ImportValue is resolved to the exporting stack's resource the same way)

Roles are keyed by (stage, stack, path): stage is "" for an environment synthesized by
app.py and the stage construct ID (Dev, Staging, Prod) inside the pipeline; stack is the
stack's construct ID; path is the construct path below the stack without `/Resource`.

The guard rules tests/test_iam.py applies are defined here, in one place:

- read-only action: a verb starting with Describe, Get, List or BatchGet, unless it reads
  data rather than metadata (SENSITIVE_READS: secret values, parameters, objects, images,
  function code). A wildcard action is read-only only if every action it can match is.
- specific resource: names exactly one resource (no `*` in it), or every `*` comes after a
  reference to one of this environment's own resources followed by a separator (`/`, `:`
  or `-`), e.g. `${GetAtt:.../WeightsBucket.Arn}/<model>/*`. `*`, and ARNs whose wildcard
  is not behind such a reference (`arn:aws:ec2:<region>:*:instance/*`), are not specific.
- scoping condition: a condition that limits the resources acted on to ones this cluster
  tagged or creates, or the request to a named service: `aws:ResourceTag/...`,
  `aws:RequestTag/...`, `<service>:ResourceTag/...` with StringEquals/StringLike (or
  their ForAnyValue: forms), `Null` = false on such a tag key (the tag must be present),
  `<service>:CreateAction`, `iam:AWSServiceName`, `iam:PassedToService`. `...IfExists`
  and `ForAllValues:` operators never scope (both hold when the key is absent), nor does
  `Null` = true; `aws:RequestedRegion` does not either (it admits every resource of the
  region).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READ_ONLY_VERB_PREFIXES = ("Describe", "Get", "List", "BatchGet")
# Reads that return data, not metadata: they need specific resources like a write does.
SENSITIVE_READS = frozenset({
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "s3:GetObject", "s3:GetObjectVersion",
    "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
    "lambda:GetFunction",
    "logs:GetLogEvents",
    "dynamodb:GetItem", "dynamodb:BatchGetItem",
})
SCOPING_OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike"})
SCOPING_KEY = re.compile(
    r"^(?:[a-z0-9-]+:(?:ResourceTag|RequestTag)/.+"
    r"|[a-z0-9-]+:CreateAction"
    r"|iam:AWSServiceName|iam:PassedToService)$")
_OWN_REFERENCE = re.compile(r"\$\{(?:Ref|GetAtt):[^}:]+/[^}]*\}")


# -- rendering ------------------------------------------------------------------------------

@dataclass
class _StackFile:
    stage: str
    stack: str          # construct ID of the stack
    template: dict
    paths: dict[str, str]  # logical ID -> construct path below the stack


class Assembly:
    """Every stack template of a cloud assembly directory (nested stage assemblies
    included) and the roles in them."""

    def __init__(self, outdir: Path, name: str = "") -> None:
        self.name = name
        self.stacks: list[_StackFile] = []
        for template_path in sorted(Path(outdir).glob("**/*.template.json")):
            metadata_path = template_path.with_name(
                template_path.name.removesuffix(".template.json") + ".metadata.json")
            self.stacks.append(_read_stack(template_path, metadata_path))
        # export name -> rendered exported value (stage exports carry the stage's name)
        self._exports: dict[str, str] = {}
        for stack in self.stacks:
            for output in stack.template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if isinstance(name, str):
                    self._exports[name] = self.render(output["Value"], stack)
        self.roles: dict[tuple[str, str, str], Role] = {}
        for stack in self.stacks:
            for role in self._roles_of(stack):
                self.roles[(role.stage, role.stack, role.path)] = role

    # Placeholders ---------------------------------------------------------------------------
    def render(self, value: Any, stack: _StackFile) -> Any:
        """Intrinsics as placeholders (see the module docstring); Fn::If as a list of both
        branches, so that a conditional managed policy is still listed."""
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref("Ref", arg, stack)
            if key == "Fn::GetAtt":
                target, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._ref("GetAtt", target, stack, f".{attribute}")
            if key == "Fn::ImportValue":
                name = self.render(arg, stack)
                return self._exports.get(name, f"${{Import:{name}}}")
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.render(p, stack)) for p in parts)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return re.sub(r"\$\{([^}!]+)\}",
                              lambda m: str(self._sub(m[1], variables, stack)), text)
            if key == "Fn::Select":
                index, values = arg
                values = self.render(values, stack)
                return values[index] if isinstance(values, list) else f"${{Select:{index}}}"
            if key == "Fn::If":
                return [self.render(branch, stack) for branch in arg[1:]]
        if isinstance(value, dict):
            return {k: self.render(v, stack) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, stack) for v in value]
        return value

    def _sub(self, name: str, variables: dict, stack: _StackFile) -> Any:
        if name in variables:
            return self.render(variables[name], stack)
        if "." in name and not name.startswith("AWS::"):
            target, attribute = name.split(".", 1)
            return self._ref("GetAtt", target, stack, attribute)
        return self._ref("Ref", name, stack)

    def _ref(self, kind: str, target: str, stack: _StackFile, attribute: str = "") -> str:
        if target.startswith("AWS::"):
            return f"${{Ref:{target}}}"
        if attribute and not attribute.startswith("."):
            attribute = f".{attribute}"
        if target in stack.template.get("Resources", {}):
            path = stack.paths.get(target, target)
            return f"${{{kind}:{stack.stack}/{path}{attribute}}}"
        return f"${{Param:{target}}}"

    # Roles ----------------------------------------------------------------------------------
    def _roles_of(self, stack: _StackFile) -> list["Role"]:
        resources = stack.template.get("Resources", {})
        roles: dict[str, Role] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            props = resource["Properties"]
            role = Role(
                stage=stack.stage, stack=stack.stack,
                path=stack.paths.get(logical_id, logical_id),
                trust=tuple(_principals(self.render(props["AssumeRolePolicyDocument"], stack))),
                managed_policies=tuple(_flatten(self.render(props.get("ManagedPolicyArns", []),
                                                            stack))),
            )
            for policy in props.get("Policies", []):
                role.statements.extend(_statements(
                    role, f"{role.path} inline {policy['PolicyName']}",
                    self.render(policy["PolicyDocument"], stack)))
            roles[logical_id] = role
        for logical_id, resource in resources.items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            props = resource["Properties"]
            document = self.render(props["PolicyDocument"], stack)
            for attached in props.get("Roles", []):
                if not (isinstance(attached, dict) and attached.get("Ref") in roles):
                    raise AssertionError(
                        f"{stack.stack}/{stack.paths.get(logical_id, logical_id)} is attached "
                        f"to a role that is not in its stack: {attached!r}")
                role = roles[attached["Ref"]]
                role.statements.extend(_statements(
                    role, stack.paths.get(logical_id, logical_id), document))
            for key in ("Users", "Groups"):
                if props.get(key):
                    raise AssertionError(f"{logical_id} is attached to IAM {key.lower()}")
        return list(roles.values())


def _read_stack(template_path: Path, metadata_path: Path) -> _StackFile:
    template = json.loads(template_path.read_text())
    metadata = json.loads(metadata_path.read_text())
    stack_path = min(metadata, key=len)  # the stack's own entry comes first and is shortest
    segments = stack_path.strip("/").split("/")
    stage = segments[-2] if len(segments) > 1 else ""
    paths = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:logicalId":
                relative = path[len(stack_path) + 1:]
                relative = re.sub(r"/(Resource|Default)$", "", relative)
                paths[entry["data"]] = relative
    return _StackFile(stage=stage, stack=segments[-1], template=template, paths=paths)


def _flatten(value: Any) -> list:
    if isinstance(value, list):
        return [item for v in value for item in _flatten(v)]
    return [] if value == "${Ref:AWS::NoValue}" else [value]


def _principals(document: dict) -> list[str]:
    """`Service:<name>`, `AWS:<arn or placeholder>`, `Federated:...`, for every Allow
    statement, with its actions: "pods.eks.amazonaws.com sts:AssumeRole+sts:TagSession"."""
    found = []
    for statement in as_list(document["Statement"]):
        actions = "+".join(sorted(as_list(statement["Action"])))
        principal = statement.get("Principal")
        if principal == "*" or statement.get("Effect") != "Allow":
            found.append(f"{statement.get('Effect')} {principal!r} {actions}")
            continue
        for kind, values in principal.items():
            for value in as_list(values):
                condition = f" if {json.dumps(statement['Condition'], sort_keys=True)}" if (
                    "Condition" in statement) else ""
                found.append(f"{kind}:{value} {actions}{condition}")
    return sorted(found)


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- statements -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    role: str      # label of the role it reaches
    policy: str    # the policy resource (construct path) or inline policy it is in
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict = field(hash=False, compare=False)
    not_action: bool = False
    not_resource: bool = False

    @property
    def key(self) -> str:
        """How tables in the tests name a statement: its Sid, or its sorted actions."""
        return self.sid or "+".join(sorted(self.actions))

    @property
    def services(self) -> set[str]:
        return {action.split(":", 1)[0] for action in self.actions}


@dataclass
class Role:
    stage: str
    stack: str
    path: str
    trust: tuple[str, ...]
    managed_policies: tuple[str, ...]
    statements: list[Statement] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "/".join(part for part in (self.stage, self.stack, self.path) if part)

    @property
    def allows(self) -> list[Statement]:
        return [s for s in self.statements if s.effect == "Allow"]

    def managed_policy_names(self) -> list[str]:
        """AWS managed policies by name (`service-role/AWSLambdaBasicExecutionRole`); any
        other ARN is returned as is, so that a customer managed policy shows up."""
        prefix = re.compile(r"^arn:(?:\$\{Ref:AWS::Partition\}|aws):iam::aws:policy/")
        return sorted(prefix.sub("", str(arn)) if prefix.match(str(arn)) else f"!{arn}"
                      for arn in self.managed_policies)


def _statements(role: Role, policy: str, document: dict) -> list[Statement]:
    result = []
    for statement in as_list(document["Statement"]):
        result.append(Statement(
            role=role.label, policy=policy, sid=statement.get("Sid"),
            effect=statement["Effect"],
            actions=tuple(as_list(statement.get("Action", statement.get("NotAction", [])))),
            resources=tuple(str(r) for r in _flatten(
                statement.get("Resource", statement.get("NotResource", [])))),
            condition=statement.get("Condition", {}),
            not_action="NotAction" in statement, not_resource="NotResource" in statement,
        ))
    return result


# -- the rules ------------------------------------------------------------------------------

def is_read_only(action: str) -> bool:
    """See the module docstring: Describe/Get/List/BatchGet, minus SENSITIVE_READS."""
    service, _, verb = action.partition(":")
    if not verb.startswith(READ_ONLY_VERB_PREFIXES):
        return False
    return not any(fnmatch.fnmatchcase(sensitive, action) for sensitive in SENSITIVE_READS)


def wildcard_action_problem(action: str) -> str | None:
    """Why an action pattern is too broad, or None: `*`, `<service>:*`, a verb that
    starts with `*`, any wildcard in an iam: or sts: action, or a wildcard that is not at
    the end of a verb of at least three letters (`s3:Abort*` is accepted)."""
    service, _, verb = action.partition(":")
    if action == "*" or "*" in service:
        return "every service"
    if "*" not in verb and "?" not in verb:
        return None
    if service in ("iam", "sts"):
        return f"wildcard in an {service} action"
    if verb.startswith(("*", "?")) or verb.count("*") != 1 or not verb.endswith("*") or (
            len(verb) < 4):
        return f"every action of {service} or an unanchored wildcard"
    return None


def is_specific_resource(resource: str) -> bool:
    """See the module docstring."""
    if "*" not in resource and "?" not in resource:
        return resource != ""
    first = min(i for i in (resource.find("*"), resource.find("?")) if i >= 0)
    prefix = resource[:first]
    references = list(_OWN_REFERENCE.finditer(prefix))
    if not references:
        return False
    after = prefix[references[-1].end():]
    return after[:1] in ("/", ":", "-")


def scoping_conditions(condition: dict) -> list[str]:
    """The `operator key` pairs of a condition block that scope (module docstring)."""
    found = []
    for operator, pairs in condition.items():
        base = operator.removeprefix("ForAnyValue:")
        if base.endswith("IfExists") or base.startswith("ForAllValues:"):
            continue
        for key, value in pairs.items():
            if not SCOPING_KEY.match(key):
                continue
            if base == "Null":
                if all(str(v).lower() == "false" for v in as_list(value)):
                    found.append(f"{operator} {key}")
            elif base in SCOPING_OPERATORS:
                found.append(f"{operator} {key}")
    return found


def is_scoped(statement: Statement) -> bool:
    return bool(scoping_conditions(statement.condition)) or (
        not statement.not_resource
        and bool(statement.resources)
        and all(is_specific_resource(r) for r in statement.resources))


def unscoped_controlled_actions(statement: Statement) -> set[str]:
    """Actions of an Allow statement that need scoping (not read-only) but have none."""
    if statement.effect != "Allow" or is_scoped(statement):
        return set()
    return {a for a in statement.actions if not is_read_only(a)}


def matches(pattern: str, label: str) -> bool:
    return fnmatch.fnmatchcase(label, pattern)


def normalize_condition(condition: dict) -> dict:
    """Operator -> key -> sorted values (IAM treats a value list as a set)."""
    return {operator: {key: sorted(str(v) for v in as_list(value))
                       for key, value in pairs.items()}
            for operator, pairs in condition.items()}
