"""The committed, typed configuration of the delivery pipeline (`pipeline.json`).

Each stage is an account, a region and the same `-c` keys the CLI takes (validated by
`EnvironmentConfig.from_context`), so a stage and a CLI deploy are configured alike.
Account IDs appear in this file and nowhere else in the code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, EnvironmentConfig, check_context_keys
from .models import PlanError, UnknownModelError
from .regions import KNOWN_REGIONS

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_STAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:"
    r"connection/[0-9a-f-]{36}$"
)
_REPOSITORY = re.compile(r"^[\w.-]+/[\w.-]+$")


class PipelineConfigError(ValueError):
    """pipeline.json is malformed or inconsistent."""


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    """One environment the pipeline deploys: a name, where, and its `-c` settings."""

    name: str
    account: str
    region: str
    context: dict[str, Any] = field(default_factory=dict)
    approval: bool = False  # a manual approval before this stage deploys

    def environment(self, invoker_account: str) -> EnvironmentConfig:
        """The stage's EnvironmentConfig, validated exactly like `-c` keys of the CLI."""
        context = {**self.context, "account": self.account, "region": self.region}
        try:
            check_context_keys(self.context)
            config = EnvironmentConfig.from_context(context.get)
        except (ValueError, UnknownModelError, PlanError) as error:
            raise PipelineConfigError(f"pipeline.json, stage {self.name!r}: {error}") from None
        return config.with_smoke_test_invoker(invoker_account)


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """The tooling account the pipeline lives in, its source, and the stages in order."""

    account: str
    region: str
    connection_arn: str | None
    repository: str
    branch: str
    stages: tuple[StageConfig, ...]

    def require_connection(self) -> str:
        if not self.connection_arn:
            raise PipelineConfigError(
                "pipeline.json: connectionArn is missing; create a connection (Developer "
                "Tools > Settings > Connections, or `aws codeconnections create-connection "
                "--provider-type GitHub --connection-name vllm-eks`), complete the handshake "
                "in the console, and set its ARN"
            )
        return self.connection_arn


def load_pipeline_config(path: Path) -> PipelineConfig:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineConfigError(f"{path} does not exist; copy pipeline.json from the "
                                  "repository and edit it") from None
    except json.JSONDecodeError as error:
        raise PipelineConfigError(f"{path} is not valid JSON: {error}") from None
    return parse_pipeline_config(raw)


def parse_pipeline_config(raw: dict[str, Any]) -> PipelineConfig:
    def text(obj: dict, key: str, where: str, pattern: re.Pattern | None = None,
             hint: str = "") -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise PipelineConfigError(f"pipeline.json{where}: {key} is missing{hint}")
        if pattern and not pattern.match(value):
            raise PipelineConfigError(f"pipeline.json{where}: {key}={value!r} is invalid{hint}")
        return value

    def region(obj: dict, where: str) -> str:
        value = text(obj, "region", where, _REGION, "; pass a region name such as us-east-1")
        if value not in KNOWN_REGIONS:
            raise PipelineConfigError(
                f"pipeline.json{where}: region {value!r} is not an AWS region with the GPU "
                "instances vllm-eks plans for; use e.g. us-east-1, us-west-2, eu-west-1")
        return value

    account_hint = "; pass a 12-digit AWS account ID"
    account = text(raw, "account", "", _ACCOUNT, account_hint)
    connection = raw.get("connectionArn") or None
    if connection is not None and not _CONNECTION_ARN.match(str(connection)):
        raise PipelineConfigError(
            f"pipeline.json: connectionArn={connection!r} is not a CodeConnections ARN "
            "(arn:aws:codeconnections:<region>:<account>:connection/<uuid>)")
    stages = []
    for index, stage in enumerate(raw.get("stages") or []):
        where = f", stage {index + 1}"
        name = text(stage, "name", where, _STAGE_NAME,
                    "; use letters, digits and '-', starting with a letter")
        where = f", stage {name!r}"
        stages.append(StageConfig(
            name=name, account=text(stage, "account", where, _ACCOUNT, account_hint),
            region=region(stage, where), context=dict(stage.get("context") or {}),
            approval=bool(stage.get("approval", False))))
    if not stages:
        raise PipelineConfigError("pipeline.json: stages is empty; list at least one stage")
    names = [s.name.lower() for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PipelineConfigError(
            f"pipeline.json: stage names must be unique; {', '.join(duplicates)} appears "
            "more than once")
    return PipelineConfig(
        account=account, region=region(raw, ""), connection_arn=connection,
        repository=text(raw, "repository", "", _REPOSITORY, "; pass owner/name"),
        branch=text(raw, "branch", ""), stages=tuple(stages))


__all__ = ["ConfigError", "PipelineConfig", "PipelineConfigError", "StageConfig",
           "load_pipeline_config", "parse_pipeline_config"]
