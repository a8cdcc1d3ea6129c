"""The metric contract: every metric name a dashboard, alert or autoscaler may use.

vLLM renames metrics between releases (`vllm:gpu_cache_usage_perc` became
`vllm:kv_cache_usage_perc`, `vllm:time_per_output_token_seconds` became
`vllm:inter_token_latency_seconds`); a dashboard or autoscaler that uses an old name shows
nothing and scales on nothing, silently. So every PromQL expression vllm-eks synthesizes
is built from the names below (for the pinned vLLM, versions.VLLM_VERSION), and a test
parses every synthesized expression and rejects any other name.

The GPU metrics are the exact DCGM fields the dcgm-exporter is configured to export
(`dcgm_counters_csv()`), and the Kubernetes ones come from kube-state-metrics.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Metric:
    """One metric as Prometheus stores it; use `.series` / `.bucket` / `.count` in PromQL."""

    name: str
    kind: Kind
    help: str

    @property
    def series(self) -> str:
        """The stored series of a gauge or counter (counters carry `_total`)."""
        if self.kind is Kind.HISTOGRAM:
            raise ValueError(f"{self.name} is a histogram: use .bucket, .sum or .count")
        return f"{self.name}_total" if self.kind is Kind.COUNTER else self.name

    def _histogram(self, suffix: str) -> str:
        if self.kind is not Kind.HISTOGRAM:
            raise ValueError(f"{self.name} is a {self.kind.value}, not a histogram")
        return f"{self.name}_{suffix}"

    @property
    def bucket(self) -> str:
        return self._histogram("bucket")

    @property
    def sum(self) -> str:
        return self._histogram("sum")

    @property
    def count(self) -> str:
        return self._histogram("count")

    def stored_names(self) -> tuple[str, ...]:
        if self.kind is Kind.HISTOGRAM:
            return (self.bucket, self.sum, self.count)
        return (self.series,)


# -- vLLM (labels: model_name, engine) ---------------------------------------------------
MODEL_LABEL = "model_name"

NUM_REQUESTS_RUNNING = Metric("vllm:num_requests_running", Kind.GAUGE,
                              "requests in the running batch")
NUM_REQUESTS_WAITING = Metric("vllm:num_requests_waiting", Kind.GAUGE,
                              "requests queued, waiting for the scheduler")
KV_CACHE_USAGE = Metric("vllm:kv_cache_usage_perc", Kind.GAUGE,
                        "fraction of the KV cache in use, 0-1")
PROMPT_TOKENS = Metric("vllm:prompt_tokens", Kind.COUNTER, "prefill tokens processed")
GENERATION_TOKENS = Metric("vllm:generation_tokens", Kind.COUNTER, "tokens generated")
REQUEST_SUCCESS = Metric("vllm:request_success", Kind.COUNTER,
                         "finished requests, by finished_reason (stop, length, abort, error)")
NUM_PREEMPTIONS = Metric("vllm:num_preemptions", Kind.COUNTER,
                         "requests preempted because the KV cache ran out")
PREFIX_CACHE_QUERIES = Metric("vllm:prefix_cache_queries", Kind.COUNTER,
                              "tokens looked up in the prefix cache")
PREFIX_CACHE_HITS = Metric("vllm:prefix_cache_hits", Kind.COUNTER,
                           "tokens found in the prefix cache")
TIME_TO_FIRST_TOKEN = Metric("vllm:time_to_first_token_seconds", Kind.HISTOGRAM,
                             "time to first token")
INTER_TOKEN_LATENCY = Metric("vllm:inter_token_latency_seconds", Kind.HISTOGRAM,
                             "time between two output tokens")
TIME_PER_OUTPUT_TOKEN = Metric("vllm:request_time_per_output_token_seconds", Kind.HISTOGRAM,
                               "mean time per output token of a request")
E2E_REQUEST_LATENCY = Metric("vllm:e2e_request_latency_seconds", Kind.HISTOGRAM,
                             "end-to-end request latency")
REQUEST_QUEUE_TIME = Metric("vllm:request_queue_time_seconds", Kind.HISTOGRAM,
                            "time a request waited before running")

VLLM_METRICS: tuple[Metric, ...] = (
    NUM_REQUESTS_RUNNING, NUM_REQUESTS_WAITING, KV_CACHE_USAGE, PROMPT_TOKENS,
    GENERATION_TOKENS, REQUEST_SUCCESS, NUM_PREEMPTIONS, PREFIX_CACHE_QUERIES,
    PREFIX_CACHE_HITS, TIME_TO_FIRST_TOKEN, INTER_TOKEN_LATENCY, TIME_PER_OUTPUT_TOKEN,
    E2E_REQUEST_LATENCY, REQUEST_QUEUE_TIME,
)

# Names older vLLM releases exported and the pinned one does not: never use them.
REMOVED_VLLM_METRICS: tuple[str, ...] = (
    "vllm:gpu_cache_usage_perc",
    "vllm:cpu_cache_usage_perc",
    "vllm:time_per_output_token_seconds",
    "vllm:gpu_prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits",
    "vllm:avg_prompt_throughput_toks_per_s",
    "vllm:avg_generation_throughput_toks_per_s",
)

# -- GPUs: DCGM fields (labels: Hostname, gpu, UUID, modelName) ---------------------------
GPU_UTIL = Metric("DCGM_FI_DEV_GPU_UTIL", Kind.GAUGE, "GPU utilization (in %).")
GPU_MEMORY_USED = Metric("DCGM_FI_DEV_FB_USED", Kind.GAUGE,
                         "Framebuffer memory used (in MiB).")
GPU_MEMORY_FREE = Metric("DCGM_FI_DEV_FB_FREE", Kind.GAUGE,
                         "Framebuffer memory free (in MiB).")
GPU_POWER = Metric("DCGM_FI_DEV_POWER_USAGE", Kind.GAUGE, "Power draw (in W).")
GPU_TEMPERATURE = Metric("DCGM_FI_DEV_GPU_TEMP", Kind.GAUGE, "GPU temperature (in C).")
GPU_XID_ERRORS = Metric("DCGM_FI_DEV_XID_ERRORS", Kind.GAUGE,
                        "Value of the last XID error encountered.")
GPU_ECC_DBE = Metric("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", Kind.GAUGE,
                     "Total number of double-bit volatile ECC errors.")

GPU_METRICS: tuple[Metric, ...] = (
    GPU_UTIL, GPU_MEMORY_USED, GPU_MEMORY_FREE, GPU_POWER, GPU_TEMPERATURE, GPU_XID_ERRORS,
    GPU_ECC_DBE,
)

# -- Kubernetes (kube-state-metrics) and Prometheus itself -------------------------------
CONTAINER_RESTARTS = Metric("kube_pod_container_status_restarts", Kind.COUNTER,
                            "container restarts")
NODE_CONDITION = Metric("kube_node_status_condition", Kind.GAUGE, "node conditions")
NODE_CAPACITY = Metric("kube_node_status_capacity", Kind.GAUGE, "node capacity by resource")

KUBERNETES_METRICS: tuple[Metric, ...] = (CONTAINER_RESTARTS, NODE_CONDITION, NODE_CAPACITY)

CONTRACT: tuple[Metric, ...] = VLLM_METRICS + GPU_METRICS + KUBERNETES_METRICS


def allowed_series() -> frozenset[str]:
    """Every series name a PromQL expression of vllm-eks may select."""
    return frozenset(name for metric in CONTRACT for name in metric.stored_names())


def dcgm_counters_csv() -> str:
    """The dcgm-exporter counters file: exactly the GPU metrics of the contract (the
    exporter's default file leaves the ECC counters out)."""
    lines = ["# DCGM FIELD, Prometheus metric type, help message (generated by vllm-eks)"]
    for metric in GPU_METRICS:
        lines.append(f"{metric.name}, {metric.kind.value}, {metric.help}")
    return "\n".join(lines) + "\n"
