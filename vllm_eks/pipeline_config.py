"""The committed, typed configuration of the delivery pipeline (`pipeline.json`).

Each stage is an account, a region and the same `-c` keys the CLI takes (validated by
`EnvironmentConfig.from_context`), so a stage and a CLI deploy are configured alike.
Account IDs appear in this file and nowhere else in the code."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import BenchmarkGateConfig, ConfigError, EnvironmentConfig, check_context_keys
from .config.environment import BenchDataset
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
# The keys of pipeline.json, of a stage and of a stage's "benchmark" (keys starting with
# "_" are comments). Anything else is refused: a misspelt "aproval" must not deploy prod
# without its approval.
TOP_KEYS = ("account", "region", "connectionArn", "repository", "branch", "stages")
STAGE_KEYS = ("name", "account", "region", "context", "approval", "smoke_test", "benchmark")
BENCHMARK_KEYS = ("model", "workload", "ttft_slo_ms", "timeout_minutes")
GATE_TIMEOUT_MINUTES = (5, 480)  # CodeBuild's own limit is 8 hours


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
    smoke_test: bool = True  # the smoke test after the deploy; false: none
    # The SLO gate after the smoke test ("benchmark": {...}, keys BENCHMARK_KEYS, all
    # optional); None: no gate.
    benchmark: dict[str, Any] | None = None

    def environment(self, invoker_account: str) -> EnvironmentConfig:
        """The stage's EnvironmentConfig, validated exactly like `-c` keys of the CLI, with
        its benchmark gate."""
        context = {**self.context, "account": self.account, "region": self.region}
        try:
            check_context_keys(self.context)
            config = EnvironmentConfig.from_context(context.get)
        except (ValueError, UnknownModelError, PlanError) as error:
            raise PipelineConfigError(f"pipeline.json, stage {self.name!r}: {error}") from None
        config = config.with_smoke_test_invoker(invoker_account)
        if self.benchmark is None:
            return config
        return config.with_benchmark_gate(self._gate(config))

    def _gate(self, config: EnvironmentConfig) -> BenchmarkGateConfig:
        """The stage's "benchmark" block against its environment: a model it serves, a
        workload it benchmarks, an SLO (default: the stage's ttft_slo_ms)."""
        where = f"pipeline.json, stage {self.name!r}, benchmark"
        block = self.benchmark or {}
        models = [model.key for model in config.models]
        model = block.get("model", models[0])
        if model not in models:
            raise PipelineConfigError(
                f"{where}: model {model!r} is not served by this stage; use one of "
                f"{', '.join(models)}")
        workloads = [dataset.value for dataset in config.benchmark.datasets]
        workload = block.get("workload", workloads[0])
        if workload not in workloads:
            raise PipelineConfigError(
                f"{where}: workload {workload!r} is not benchmarked by this stage; use one "
                f"of {', '.join(workloads)}, or add it to the stage's bench_datasets")
        slo = block.get("ttft_slo_ms", config.observability.ttft_slo_seconds * 1000)
        if isinstance(slo, bool) or not isinstance(slo, (int, float)) or slo <= 0:
            raise PipelineConfigError(
                f"{where}: ttft_slo_ms={slo!r} must be a number of milliseconds above 0")
        timeout = block.get("timeout_minutes", BenchmarkGateConfig.timeout_minutes)
        low, high = GATE_TIMEOUT_MINUTES
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not low <= timeout <= high:
            raise PipelineConfigError(
                f"{where}: timeout_minutes={timeout!r} must be a whole number from {low} "
                f"to {high}")
        return BenchmarkGateConfig(model_key=model, workload=BenchDataset(workload),
                                   ttft_slo_ms=float(slo), timeout_minutes=timeout)


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


def _check_keys(obj: dict, known: tuple[str, ...], where: str) -> None:
    """Refuse a key pipeline.json does not know, suggesting the nearest known one."""
    for key in obj:
        if key in known or key.startswith("_"):
            continue
        nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]!r}?" if nearest else f"use {', '.join(known)}"
        raise PipelineConfigError(f"pipeline.json{where}: unknown key {key!r}; {hint}")


def _flag(stage: dict, key: str, default: bool, where: str) -> bool:
    value = stage.get(key, default)
    if not isinstance(value, bool):
        raise PipelineConfigError(f"pipeline.json{where}: {key}={value!r} must be true or "
                                  "false")
    return value


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

    _check_keys(raw, TOP_KEYS, "")
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
        _check_keys(stage, STAGE_KEYS, where)
        smoke_test = _flag(stage, "smoke_test", True, where)
        benchmark = stage.get("benchmark")
        if benchmark is not None:
            if not isinstance(benchmark, dict):
                raise PipelineConfigError(
                    f"pipeline.json{where}: benchmark must be an object, e.g. "
                    '{"workload": "random", "ttft_slo_ms": 500}')
            _check_keys(benchmark, BENCHMARK_KEYS, f"{where}, benchmark")
            if not smoke_test:
                raise PipelineConfigError(
                    f"pipeline.json{where}: a benchmark gate runs after the smoke test "
                    'passes, and this stage has none ("smoke_test": false); remove '
                    '"smoke_test": false or the benchmark')
        stages.append(StageConfig(
            name=name, account=text(stage, "account", where, _ACCOUNT, account_hint),
            region=region(stage, where), context=dict(stage.get("context") or {}),
            approval=_flag(stage, "approval", False, where), smoke_test=smoke_test,
            benchmark=None if benchmark is None else dict(benchmark)))
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
