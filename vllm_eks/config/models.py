"""Parsing the models of an environment: which models (`-c models=a,b` or `-c model=a`),
and each model's settings — its placement pins, revision and replica range — from
per-model `-c` values, into `ModelConfig`s.

A per-model key takes one value for every model (`-c max_model_len=32768`) or values per
model (`-c max_model_len=deepseek-r1-distill-llama-8b:32768,deepseek-r1-distill-qwen-1.5b:
16384`; models left out get the default). In `pipeline.json` a stage may also give a JSON
object (`"max_model_len": {"deepseek-r1-distill-llama-8b": 32768}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..models import (
    DEFAULT_MODEL_KEY,
    CapacityType,
    DeploymentPlan,
    PlanError,
    PlanRequest,
    get_model,
    plan,
)
from ..models.planner import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MIN_CONCURRENCY,
    MIN_MODEL_LEN,
)
from ..models.catalog import catalog
from ..naming import BENCHMARKS_PREFIX, ROUTER_NAME, app_name, pascal_case
from ..openai_api import FIXED_RESPONSE_MAX_BYTES, model_list
from .environment import AutoscalingConfig, ConfigError, ModelConfig, field_default
from .options import INSTANCE_TYPE, PER_MODEL_KEYS, ContextReader

# Becomes an S3 key segment and a directory name: no slashes.
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def model_keys(get: Callable[[str], Any]) -> tuple[str, ...]:
    """The environment's model keys, in the order given: `-c models=a,b`, or `-c model=a`
    (a one-model list), or the default model."""
    reader = ContextReader(get)  # refuses empty values
    single, several = reader.raw("model"), reader.raw("models")
    if single is not None and several is not None:
        raise ConfigError(
            "-c model and -c models are both set; pass one: -c models=a,b lists every "
            "model, -c model=a is the one-model form"
        )
    if several is None:
        return (str(single) if single is not None else DEFAULT_MODEL_KEY,)
    items = several if isinstance(several, (list, tuple)) else str(several).split(",")
    keys = tuple(str(item).strip() for item in items)
    if not keys or any(not key for key in keys):
        raise ConfigError(
            f"-c models={several!r} has an empty entry; pass comma-separated catalog keys, "
            f"e.g. -c models={DEFAULT_MODEL_KEY},deepseek-r1-distill-qwen-1.5b"
        )
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigError(
            f"-c models lists {', '.join(repeated)} more than once; list each model once"
        )
    known = catalog()
    for key in keys:
        if key not in known:
            raise ConfigError(
                f"-c models={','.join(keys)}: unknown model {key!r}; list catalog keys (one "
                f"of: {', '.join(sorted(known))})"
            )
    return keys


def per_model_values(key: str, raw: Any, models: tuple[str, ...]) -> dict[str, Any]:
    """`raw` (a per-model key's context value) as {model key: value}: one value for every
    model, `model:value` pairs, or a JSON object. Models without a value are left out."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        pairs = [(str(model), value) for model, value in raw.items()]
    elif isinstance(raw, str) and ":" in raw:
        pairs = []
        for item in raw.split(","):
            model, sep, value = item.strip().partition(":")
            if not sep or not model.strip() or not value.strip():
                raise ConfigError(
                    f"-c {key}={raw!r}: {item.strip()!r} is not <model>:<value>; pass one "
                    f"value for every model (-c {key}=<value>) or "
                    f"-c {key}=<model>:<value>,<model>:<value>"
                )
            pairs.append((model.strip(), value.strip()))
    else:
        return {model: raw for model in models}
    values: dict[str, Any] = {}
    for model, value in pairs:
        if model not in models:
            raise ConfigError(
                f"-c {key} sets a value for {model!r}, which is not a model of this "
                f"environment ({', '.join(models)}); add it to -c models or drop its value"
            )
        if model in values:
            raise ConfigError(f"-c {key} sets {model!r} twice; give each model one value")
        values[model] = value
    return values


def parse_models(get: Callable[[str], Any]) -> tuple[ModelConfig, ...]:
    """Every model of the environment with its settings, validated."""
    keys = model_keys(get)
    per_model = {key: per_model_values(key, get(key), keys) for key in PER_MODEL_KEYS}
    configs = []
    for model_key in keys:
        def model_get(key: str, model_key: str = model_key) -> Any:
            if key in per_model:
                return per_model[key].get(model_key)
            return get(key)

        try:
            configs.append(_parse_model(model_key, ContextReader(model_get)))
        except (ConfigError, PlanError) as error:
            if len(keys) == 1:
                raise
            raise type(error)(f"model {model_key}: {error}") from None
    _check_names(configs)
    return tuple(configs)


def _check_names(configs: list[ModelConfig]) -> None:
    """Served names, Kubernetes names and construct IDs must tell the models apart, and
    stay clear of the router's; the model list must fit the load balancer's answer."""
    derived: dict[str, str] = {}
    for config in configs:
        for name in (app_name(config.key), pascal_case(config.key)):
            other = derived.setdefault(name, config.key)
            if other != config.key:
                raise ConfigError(
                    f"models {other} and {config.key} would share the name {name!r} of "
                    "their Kubernetes objects or resources; serve one of them, or register "
                    "a profile under a key that differs in more than '.' and '-'"
                )
        if app_name(config.key).startswith(ROUTER_NAME):
            raise ConfigError(
                f"model {config.key}: its objects would be named {app_name(config.key)!r}, "
                f"like the router's ({ROUTER_NAME}); register the profile under another key"
            )
        if config.key == BENCHMARKS_PREFIX:
            raise ConfigError(
                f"model {config.key}: its weights would be staged under s3://<bucket>/"
                f"{config.key}/, where every model's benchmark results are kept; register "
                "the profile under another key"
            )
    size = len(model_list(c.served_name for c in configs).encode())
    if size > FIXED_RESPONSE_MAX_BYTES:
        raise ConfigError(
            f"-c models: the list of {len(configs)} served names is {size} bytes as /v1/models "
            f"answers it, over the {FIXED_RESPONSE_MAX_BYTES} bytes of the load balancer's "
            "fixed response; serve fewer models per environment (or shorter served names)"
        )
    names: dict[str, str] = {}
    for config in configs:
        other = names.setdefault(config.served_name, config.key)
        if other != config.key:
            raise ConfigError(
                f"models {other} and {config.key} are both served as {config.served_name!r}, "
                "so a request's `model` field could not tell them apart; serve one of them, "
                "or give a profile its own `name`"
            )


def _parse_model(model_key: str, ctx: ContextReader) -> ModelConfig:
    plan_ = _parse_plan(model_key, ctx)
    return ModelConfig(plan=plan_, revision=_parse_revision(ctx),
                       autoscaling=_parse_autoscaling(ctx))


def _parse_plan(model_key: str, ctx: ContextReader) -> DeploymentPlan:
    capacity = ctx.choice("capacity", CapacityType, field_default(PlanRequest, "capacity"),
                          "a capacity type")
    instance_type = ctx.string("instance_type")
    if instance_type is not None and not INSTANCE_TYPE.match(instance_type):
        raise ConfigError(
            f"-c instance_type={instance_type!r} is not an EC2 instance type such as g6e.xlarge"
        )
    return plan(PlanRequest(
        model=get_model(model_key),
        instance_type=instance_type,
        tensor_parallel=ctx.integer("tensor_parallel", None),
        nodes=ctx.integer("nodes", None),
        max_model_len=ctx.integer("max_model_len", None, minimum=MIN_MODEL_LEN),
        min_concurrency=ctx.integer("min_concurrency", DEFAULT_MIN_CONCURRENCY),
        gpu_memory_utilization=ctx.fraction("gpu_memory_utilization",
                                            DEFAULT_GPU_MEMORY_UTILIZATION),
        capacity=capacity,
    ))


def _parse_revision(ctx: ContextReader) -> str:
    revision = ctx.string("model_revision", field_default(ModelConfig, "revision"))
    if not _REVISION.match(revision):
        raise ConfigError(
            f"-c model_revision={revision!r} is not a Hugging Face branch, tag or commit "
            "name (letters, digits, '.', '_', '-'); pass e.g. -c model_revision=main or a "
            "40-character commit hash"
        )
    return revision


def _parse_autoscaling(ctx: ContextReader) -> AutoscalingConfig:
    defaults = AutoscalingConfig()
    minimum = ctx.integer("min_replicas", defaults.min_replicas, minimum=0)
    if minimum == 0:
        raise ConfigError(
            "-c min_replicas=0 (scale to zero) is not offered: KEDA scales on vLLM's own "
            "queue metrics, which do not exist while no replica runs, so no request could "
            "wake the model; pass -c min_replicas=1 or more"
        )
    maximum = ctx.integer("max_replicas", max(defaults.max_replicas, minimum))
    if minimum > maximum:
        raise ConfigError(
            f"-c min_replicas={minimum} is above -c max_replicas={maximum}; raise "
            f"-c max_replicas to at least {minimum}"
        )
    return AutoscalingConfig(min_replicas=minimum, max_replicas=maximum)
