"""Grafana dashboards (JSON models) built from the metric contract.

Each panel answers one question; the README's "See what it does" section lists them.
Queries use only contract names (a test parses every expression)."""

from __future__ import annotations

from .. import metrics as m

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MODEL = f'{m.MODEL_LABEL}=~"$model"'
WINDOW = "$__rate_interval"


def _quantiles(metric: m.Metric, by: str) -> list[tuple[str, str]]:
    return [
        (f"histogram_quantile({q}, sum by (le, {by}) (rate({metric.bucket}{{{MODEL}}}[{WINDOW}])))",
         f"p{int(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.95, 0.99)
    ]


def _panel(panel_id: int, title: str, description: str, targets: list[tuple[str, str]],
           unit: str, x: int, y: int, width: int = 12) -> dict:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                     "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(targets)],
    }


def _dashboard(uid: str, title: str, description: str, variables: list[dict],
               panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["vllm-eks"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source", "hide": 0},
            *variables,
        ]},
        "panels": panels,
    }


def _query_variable(name: str, label: str, query: str) -> dict:
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "hide": 0,
            "current": {"text": "All", "value": "$__all"}}


def vllm_dashboard() -> dict:
    """Serving: traffic, latency, queueing, KV cache and tokens, per model."""
    by = m.MODEL_LABEL
    rate = f"[{WINDOW}]"
    rows = [
        ("Request rate", "Finished requests per second, by finish reason (error = HTTP 500).",
         [(f"sum by ({by}, finished_reason) (rate({m.REQUEST_SUCCESS.series}{{{MODEL}}}{rate}))",
           f"{{{{{by}}}}} {{{{finished_reason}}}}")], "reqps"),
        ("Time to first token", "How long a client waits for the first token (SLO: p95).",
         _quantiles(m.TIME_TO_FIRST_TOKEN, by), "s"),
        ("Inter-token latency", "Gap between streamed tokens: what a reader of the stream "
         "feels.", _quantiles(m.INTER_TOKEN_LATENCY, by), "s"),
        ("End-to-end latency", "Whole request, queueing included.",
         _quantiles(m.E2E_REQUEST_LATENCY, by), "s"),
        ("Queue time", "Time requests wait before the scheduler runs them (capacity).",
         _quantiles(m.REQUEST_QUEUE_TIME, by), "s"),
        ("Running and waiting requests", "Batch size and backlog; a growing backlog means "
         "scale out.",
         [(f"sum by ({by}) ({m.NUM_REQUESTS_RUNNING.series}{{{MODEL}}})", f"running {{{{{by}}}}}"),
          (f"sum by ({by}) ({m.NUM_REQUESTS_WAITING.series}{{{MODEL}}})", f"waiting {{{{{by}}}}}")],
         "short"),
        ("KV-cache usage", "Fraction of the KV cache in use per replica; at 100% requests are "
         "preempted.",
         [(f"max by ({by}, pod) ({m.KV_CACHE_USAGE.series}{{{MODEL}}})", "{{pod}}")],
         "percentunit"),
        ("Prefix-cache hit rate", "Share of prompt tokens served from the prefix cache.",
         [(f"sum by ({by}) (rate({m.PREFIX_CACHE_HITS.series}{{{MODEL}}}{rate})) / "
           f"sum by ({by}) (rate({m.PREFIX_CACHE_QUERIES.series}{{{MODEL}}}{rate}))",
           f"{{{{{by}}}}}")], "percentunit"),
        ("Preemptions", "Requests evicted from the batch for lack of KV cache (recomputed "
         "later: latency spikes).",
         [(f"sum by ({by}) (rate({m.NUM_PREEMPTIONS.series}{{{MODEL}}}{rate}))", f"{{{{{by}}}}}")],
         "ops"),
        ("Router: requests per model", "Requests the router received, by the model they "
         "named (including those no replica could take).",
         [(f"sum by (model) (rate({m.ROUTER_INCOMING.series}{{model=~\"$model\"}}{rate}))",
           "{{model}}")], "reqps"),
        ("Router: healthy model pods", "Model pods each router replica can send to: 0 means "
         "every request fails.",
         [(f"sum by (pod) ({m.ROUTER_HEALTHY_PODS.series})", "{{pod}}")], "short"),
        ("Tokens per second", "Prompt (prefill) and generated (decode) throughput.",
         [(f"sum by ({by}) (rate({m.PROMPT_TOKENS.series}{{{MODEL}}}{rate}))", f"prompt {{{{{by}}}}}"),
          (f"sum by ({by}) (rate({m.GENERATION_TOKENS.series}{{{MODEL}}}{rate}))",
           f"generated {{{{{by}}}}}")], "short"),
    ]
    panels = [_panel(i + 1, title, description, targets, unit, x=(i % 2) * 12, y=(i // 2) * 8)
              for i, (title, description, targets, unit) in enumerate(rows)]
    return _dashboard(
        "vllm-eks-serving", "vLLM serving", "Traffic, latency, queueing and KV cache per model.",
        [_query_variable("model", "Model",
                         f"label_values({m.NUM_REQUESTS_RUNNING.series}, {m.MODEL_LABEL})")],
        panels)


def gpu_dashboard() -> dict:
    """GPUs: utilization, memory, power, temperature and errors, per node."""
    node = 'Hostname=~"$node"'
    rows = [
        ("GPU utilization", "Share of time a kernel ran on each GPU.",
         [(f"avg by (Hostname, gpu) ({m.GPU_UTIL.series}{{{node}}})", "{{Hostname}} gpu {{gpu}}")],
         "percent"),
        ("GPU memory used", "Framebuffer in use (vLLM reserves gpu_memory_utilization of it).",
         [(f"sum by (Hostname, gpu) ({m.GPU_MEMORY_USED.series}{{{node}}})",
           "{{Hostname}} gpu {{gpu}}")], "mbytes"),
        ("Power draw", "Watts per GPU.",
         [(f"sum by (Hostname, gpu) ({m.GPU_POWER.series}{{{node}}})", "{{Hostname}} gpu {{gpu}}")],
         "watt"),
        ("Temperature", "GPU temperature; sustained high values throttle clocks.",
         [(f"max by (Hostname, gpu) ({m.GPU_TEMPERATURE.series}{{{node}}})",
           "{{Hostname}} gpu {{gpu}}")], "celsius"),
        ("XID errors", "Last XID error code per GPU (0 = none); see the GpuXidError runbook.",
         [(f"max by (Hostname, gpu) ({m.GPU_XID_ERRORS.series}{{{node}}})",
           "{{Hostname}} gpu {{gpu}}")], "none"),
        ("Double-bit ECC errors", "Uncorrectable memory errors since boot; any means replace "
         "the node.",
         [(f"max by (Hostname, gpu) ({m.GPU_ECC_DBE.series}{{{node}}})",
           "{{Hostname}} gpu {{gpu}}")], "none"),
    ]
    panels = [_panel(i + 1, title, description, targets, unit, x=(i % 2) * 12, y=(i // 2) * 8)
              for i, (title, description, targets, unit) in enumerate(rows)]
    return _dashboard(
        "vllm-eks-gpus", "GPUs", "Utilization, memory, power, temperature and errors per node.",
        [_query_variable("node", "Node", f"label_values({m.GPU_UTIL.series}, Hostname)")],
        panels)


DASHBOARDS = {"vllm-serving": vllm_dashboard, "gpus": gpu_dashboard}
