"""Alert rules (PrometheusRule groups) built from the metric contract.

Every alert carries a summary, a description and a runbook link into
docs/operations.md (`runbook_anchor()`); a test checks that page has each one."""

from __future__ import annotations

from dataclasses import dataclass

from .. import metrics as m

def runbook_anchor(alert: str) -> str:
    """The heading anchor of an alert's runbook in docs/operations.md ("### Runbook:
    VllmTtftSloFastBurn")."""
    return f"runbook-{alert.lower()}"


@dataclass(frozen=True, kw_only=True)
class AlertSettings:
    ttft_slo_seconds: float = 0.4  # the p95 time-to-first-token target
    namespace: str = "inference"
    queue_backlog: int = 10  # waiting requests per model considered a backlog
    # The model's pods (a PromQL regex, anchored): one model's must not match another's.
    pod_pattern: str = "vllm-.*"
    # Where the runbooks live: this repository's operations page (or your fork's URL).
    runbook_base: str = "docs/operations.md"


def _alert(settings: AlertSettings, name: str, expr: str, *, duration: str, severity: str,
           summary: str, description: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "team": "vllm-eks"},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{settings.runbook_base}#{runbook_anchor(name)}",
        },
    }


def serving_rules(settings: AlertSettings, served_name: str) -> list[dict]:
    """SLO, errors, capacity and health of one model's vLLM replicas (every expression
    selects only that model's series, so each model's rules stand alone)."""
    slo = settings.ttft_slo_seconds
    slo_ms = round(slo * 1000)
    by = m.MODEL_LABEL
    model = f'{by}="{served_name}"'

    def ttft_p95(window: str) -> str:
        return (f"histogram_quantile(0.95, sum by (le, {by}) "
                f"(rate({m.TIME_TO_FIRST_TOKEN.bucket}{{{model}}}[{window}])))")

    finished = f"sum by ({by}) (rate({m.REQUEST_SUCCESS.series}{{{model}}}[5m]))"
    errored = (f'sum by ({by}) (rate({m.REQUEST_SUCCESS.series}{{{model}, '
               f'finished_reason="error"}}[5m]))')
    return [
        # Multi-window: a long window proves the breach is sustained, a short one that it
        # is still happening (the alert resolves soon after a fix).
        _alert(settings, "VllmTtftSloFastBurn",
               f"{ttft_p95('1h')} > {slo} and {ttft_p95('5m')} > {slo}",
               duration="2m", severity="critical",
               summary=f"TTFT p95 of {served_name} is above {slo_ms} ms now and over the "
               "last hour",
               description="Clients wait longer than the SLO for the first token, both over "
               "the last hour and the last 5 minutes: the model is overloaded or a replica "
               "is unhealthy."),
        _alert(settings, "VllmTtftSloSlowBurn",
               f"{ttft_p95('6h')} > {slo} and {ttft_p95('30m')} > {slo}",
               duration="15m", severity="warning",
               summary=f"TTFT p95 of {served_name} is above {slo_ms} ms over 6 hours",
               description="The time-to-first-token SLO has been missed for hours: capacity "
               "does not match the traffic."),
        _alert(settings, "VllmHighErrorRate",
               f"({errored}) / ({finished}) > 0.01",
               duration="10m", severity="critical",
               summary=f"More than 1% of {served_name} requests end in an engine error",
               description="vLLM reports finished_reason=error (a request-level internal "
               "error, e.g. a failed KV load; the client gets HTTP 500). A dead engine shows "
               "as VllmPodRestarts / VllmMetricsMissing instead."),
        _alert(settings, "VllmQueueBacklog",
               f"sum by ({by}) ({m.NUM_REQUESTS_WAITING.series}{{{model}}}) "
               f"> {settings.queue_backlog}",
               duration="10m", severity="warning",
               summary=f"{served_name} has had more than {settings.queue_backlog} requests "
               "waiting for 10 minutes",
               description="Requests queue faster than the replicas can take them and the "
               "autoscaler has not caught up."),
        _alert(settings, "VllmKvCacheFull",
               f"max by ({by}, pod) ({m.KV_CACHE_USAGE.series}{{{model}}}) >= 0.95",
               duration="15m", severity="warning",
               summary="KV cache of {{ $labels.pod }} is at least 95% full",
               description="The replica's KV cache is nearly full for 15 minutes: new "
               "requests wait or preempt running ones."),
        _alert(settings, "VllmPreemptions",
               f"sum by ({by}) (rate({m.NUM_PREEMPTIONS.series}{{{model}}}[10m])) > 0",
               duration="15m", severity="warning",
               summary=f"{served_name} keeps preempting requests",
               description="Running requests are evicted for lack of KV cache and recomputed "
               "later, which spikes latency."),
        _alert(settings, "VllmPodRestarts",
               f'increase({m.CONTAINER_RESTARTS.series}{{namespace="{settings.namespace}", '
               f'container="vllm", pod=~"{settings.pod_pattern}"}}[30m]) > 0',
               duration="0m", severity="warning",
               summary="vLLM container of {{ $labels.pod }} restarted",
               description="A vLLM container restarted in the last 30 minutes (crash, OOM, "
               "failed probe or exceeded startup budget)."),
        _alert(settings, "VllmMetricsMissing",
               f"absent({m.NUM_REQUESTS_RUNNING.series}{{{model}}})",
               duration="30m", severity="warning",
               summary=f"No vLLM metrics from {served_name} for 30 minutes",
               description="Prometheus has no series of this model: no replica is up, "
               "scraping is broken, or vLLM renamed its metrics (dashboards and autoscaling "
               "are blind)."),
    ]


def gpu_rules(settings: AlertSettings) -> list[dict]:
    """GPU hardware and GPU node health."""
    return [
        # The gauge holds the last XID until the driver reloads: alert on a change, not
        # on the value, or one application fault would page forever.
        _alert(settings, "GpuXidError",
               f"changes({m.GPU_XID_ERRORS.series}[10m]) > 0 "
               f"and {m.GPU_XID_ERRORS.series} > 0",
               duration="0m", severity="warning",
               summary="GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID "
               "{{ $value }}",
               description="The NVIDIA driver reported a new XID error (application fault "
               "such as 13/31/43, or a hardware/NVLink fault such as 48/63/64/74/79/92-95)."),
        _alert(settings, "GpuEccDoubleBitErrors",
               f"increase({m.GPU_ECC_DBE.series}[10m]) > 0",
               duration="0m", severity="critical",
               summary="Uncorrectable ECC errors on GPU {{ $labels.gpu }} of "
               "{{ $labels.Hostname }}",
               description="Double-bit (uncorrectable) memory errors: results on this GPU "
               "cannot be trusted."),
        _alert(settings, "GpuNodeNotReady",
               f'({m.NODE_CONDITION.series}{{condition="Ready", status="true"}} == 0) '
               f'and on (node) ({m.NODE_CAPACITY.series}{{resource="nvidia_com_gpu"}} > 0)',
               duration="5m", severity="critical",
               summary="GPU node {{ $labels.node }} is not Ready",
               description="A node with GPUs has not been Ready for 5 minutes: its replicas "
               "are gone or going."),
    ]


def router_rules(settings: AlertSettings, router: str, memory_limit_bytes: int) -> list[dict]:
    """The router every request of every model goes through (its Deployment `router`)."""
    available = (f'{m.DEPLOYMENT_AVAILABLE.series}{{namespace="{settings.namespace}", '
                 f'deployment="{router}"}}')
    memory = (f'{m.PROCESS_RESIDENT_MEMORY.series}{{namespace="{settings.namespace}", '
              f'pod=~"{router}-.*"}}')
    return [
        _alert(settings, "VllmRouterUnavailable",
               f"sum({available}) < 1 or absent({available})",
               duration="2m", severity="critical",
               summary="No router replica is available: the endpoint answers 503",
               description="Every request of every model goes through the router; with no "
               "available replica the load balancer has no healthy target."),
        # Routers up, but none sees a healthy model pod: every request gets 404/503. Also
        # true while every model still loads after a first deploy, hence the long window.
        _alert(settings, "VllmRouterSeesNoModel",
               f'(sum({m.UP.series}{{namespace="{settings.namespace}", pod=~"{router}-.*"}}) > 0)'
               f" unless on() (sum({m.ROUTER_HEALTHY_PODS.series}"
               f'{{namespace="{settings.namespace}"}}) > 0)',
               duration="30m", severity="critical",
               summary="The router sees no healthy model pod",
               description="The routers run but list no healthy vLLM pod, so every request "
               "fails: the models are down, still loading, or discovery lost them."),
        # The router's memory grows with the requests it served (upstream #707): restart
        # it before its limit kills a replica mid-stream.
        _alert(settings, "VllmRouterMemoryHigh",
               f"max by (pod) ({memory}) > {int(memory_limit_bytes * 0.85)}",
               duration="15m", severity="warning",
               summary="Router {{ $labels.pod }} uses over 85 % of its memory limit",
               description="The router keeps per-request statistics it never frees; at its "
               "limit the replica is killed and its streams are cut."),
    ]


def router_rule_groups(settings: AlertSettings, router: str,
                       memory_limit_bytes: int) -> list[dict]:
    """The router's rules (the cluster stack applies them once)."""
    return [{"name": "vllm-eks.router",
             "rules": router_rules(settings, router, memory_limit_bytes)}]


def serving_rule_groups(settings: AlertSettings, served_name: str) -> list[dict]:
    """One model's rules (the workloads stack applies them with the model)."""
    return [{"name": f"vllm-eks.serving.{served_name}",
             "rules": serving_rules(settings, served_name)}]


def gpu_rule_groups(settings: AlertSettings) -> list[dict]:
    """Cluster-wide rules (the cluster stack applies them once)."""
    return [{"name": "vllm-eks.gpus", "rules": gpu_rules(settings)}]


def alert_names() -> list[str]:
    settings = AlertSettings()
    groups = (serving_rule_groups(settings, "model") + gpu_rule_groups(settings)
              + router_rule_groups(settings, "router", 1))
    return [rule["alert"] for group in groups for rule in group["rules"]]
