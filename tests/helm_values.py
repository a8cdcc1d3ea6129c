"""Helm's merge of user values into a chart's defaults: maps merge key by key, recursively;
every other value (lists included) replaces the default; `null` deletes a key. What a pod
gets is the merged value, not the value we pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CHART_FIXTURES = Path(__file__).parent / "fixtures" / "charts"


def merge(defaults: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_defaults(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHART_FIXTURES / name).read_text())
