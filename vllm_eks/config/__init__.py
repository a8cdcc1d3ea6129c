"""Typed configuration of one environment, and its parsing from CDK context.

`app.py` is the only place that reads context; it hands the raw values to
`EnvironmentConfig.from_context`, which validates every key and fails at synth time
with a message that names the key, the bad value and the fix. A pipeline stage builds
the same `EnvironmentConfig` from its committed settings instead.

    environment.py  the dataclasses (their defaults are the -c defaults)
    options.py      every -c key with its default and meaning (the README's table)
    models.py       which models, and each model's settings from per-model values
    context.py      parsing and validation of the environment's -c values
"""

from .environment import (
    AutoscalingConfig,
    BenchDataset,
    BenchmarkConfig,
    BenchmarkGateConfig,
    ChatUiConfig,
    ClusterConfig,
    CognitoMfa,
    ConfigError,
    EndpointConfig,
    EndpointScheme,
    EndpointType,
    EnvironmentConfig,
    ModelConfig,
    NetworkConfig,
    ObservabilityConfig,
    TracingConfig,
    resolved_gpu_limit,
)
from .options import (
    CONTEXT_KEYS,
    CONTEXT_OPTIONS,
    DEFAULT_PIPELINE_CONFIG,
    PER_MODEL_KEYS,
    ContextOption,
    check_context_keys,
)

__all__ = [
    "AutoscalingConfig",
    "BenchmarkGateConfig",
    "ChatUiConfig",
    "CognitoMfa",
    "EndpointType",
    "TracingConfig",
    "CONTEXT_KEYS",
    "CONTEXT_OPTIONS",
    "ClusterConfig",
    "ConfigError",
    "ContextOption",
    "DEFAULT_PIPELINE_CONFIG",
    "EndpointConfig",
    "EndpointScheme",
    "EnvironmentConfig",
    "ModelConfig",
    "NetworkConfig",
    "PER_MODEL_KEYS",
    "ObservabilityConfig",
    "check_context_keys",
    "resolved_gpu_limit",
]
