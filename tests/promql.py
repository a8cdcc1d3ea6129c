"""Just enough PromQL to list the metric names an expression selects.

Removes string literals, label matchers `{...}`, range/subquery selectors `[...]`,
grouping clauses (`by (...)`, `on (...)`, ...) and numbers; what remains are function
names (followed by `(`), keywords, and metric names. Grafana's `label_values(metric,
label)` and its `$variables` are understood as well."""

from __future__ import annotations

import re

FUNCTIONS_AND_KEYWORDS = frozenset({
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "histogram_quantile", "absent", "absent_over_time", "avg_over_time", "max_over_time",
    "min_over_time", "sum_over_time", "count_over_time", "last_over_time", "clamp_min",
    "clamp_max", "clamp", "abs", "ceil", "floor", "round", "vector", "scalar", "time",
    "label_replace", "label_join", "sort", "sort_desc", "changes", "resets",
    "predict_linear", "label_values", "and", "or", "unless", "by", "without", "on",
    "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan",
})
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]+?)\s*,\s*[\w.]+\s*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER_OR_DURATION = re.compile(r"^\d")


def metric_names(expression: str) -> set[str]:
    """Metric names an expression (PromQL or a Grafana variable query) selects."""
    text = _LABEL_VALUES.sub(lambda match: f" {match.group(1)} ", expression)
    text = _STRING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in _IDENTIFIER.finditer(text):
        token = match.group(0)
        rest = text[match.end():].lstrip()
        if token in FUNCTIONS_AND_KEYWORDS or rest.startswith("("):
            continue
        if _NUMBER_OR_DURATION.match(token):
            continue
        names.add(token)
    return names
