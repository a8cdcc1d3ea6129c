"""What the pinned vLLM really accepts and exports, read from vllm_facts.json.

The JSON is generated from an installed vLLM of the pinned version by
scripts/gen_vllm_facts.py (never written by hand): the option strings of `vllm serve` and
`vllm bench serve` as vLLM's own argparse parsers define them, and every Prometheus metric
vLLM's source defines with a `vllm:` name, with its type. Server flags are checked
against it at synth time (vllm_cli.py), and the metric contract (metrics.py) in the tests.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

from . import versions

FACTS_RESOURCE = "vllm_facts.json"
GENERATOR = "scripts/gen_vllm_facts.py"


class VllmFactsOutOfDate(RuntimeError):
    """vllm_facts.json describes another vLLM than versions.VLLM_VERSION."""


@functools.cache
def vllm_facts() -> Mapping[str, Any]:
    """The whole generated file, parsed once."""
    text = resources.files(__package__).joinpath(FACTS_RESOURCE).read_text(encoding="utf-8")
    return MappingProxyType(json.loads(text))


def facts_version() -> str:
    """The vLLM version the facts were generated from."""
    return vllm_facts()["source"]["version"]


def require_pinned_facts() -> None:
    """Raise unless the facts describe the pinned vLLM: after a pin bump, flags would
    otherwise be checked against the previous release."""
    if facts_version() != versions.VLLM_VERSION:
        raise VllmFactsOutOfDate(
            f"vllm_eks/{FACTS_RESOURCE} describes vLLM {facts_version()}, but "
            f"versions.VLLM_VERSION is {versions.VLLM_VERSION}: regenerate it with "
            f"`pip install vllm=={versions.VLLM_VERSION}` in a scratch venv and "
            f"`python {GENERATOR}` (see the script's docstring)"
        )


@functools.cache
def serve_flags() -> frozenset[str]:
    """Every `--option` of `vllm serve` in the pinned vLLM, `--no-x` forms included."""
    require_pinned_facts()
    return frozenset(vllm_facts()["serve_flags"])


@functools.cache
def bench_serve_flags() -> frozenset[str]:
    """Every `--option` of `vllm bench serve` in the pinned vLLM."""
    require_pinned_facts()
    return frozenset(vllm_facts()["bench_serve_flags"])


@functools.cache
def vllm_metric_kinds() -> Mapping[str, str]:
    """Metric name as vLLM defines it -> "gauge" | "counter" | "histogram" (the values of
    metrics.Kind). A counter defined as `vllm:x` is exported as `vllm:x_total`."""
    require_pinned_facts()
    return MappingProxyType(dict(vllm_facts()["metrics"]))
