"""An out-of-tree vllm-eks model: Qwen2.5-7B-Instruct with OpenAI-style tool calling.

Two pieces, no fork of vllm-eks:
- a `ModelProfile` (numbers from the model's config.json), published under the
  `vllm_eks.models` entry point (see pyproject.toml);
- a subclass of `VllmChart` that overrides two hooks: `server_args()` adds vLLM's tool
  calling, `env()` adds one variable. Everything else (probes, security, GPUs, staging,
  endpoint, monitoring, autoscaling) is inherited.
"""

from cdk8s_plus_35 import k8s

from vllm_eks.k8s_charts.vllm import VllmChart
from vllm_eks.models import ModelProfile


class ToolCallingChart(VllmChart):
    """vLLM with automatic tool choice and the Hermes tool-call parser (Qwen2.5's format)."""

    def server_args(self) -> list[str]:
        return super().server_args() + [
            "--enable-auto-tool-choice",
            "--tool-call-parser", "hermes",
        ]

    def env(self) -> list[k8s.EnvVar]:
        # Tool-call JSON is long: log vLLM's decisions at INFO, not the default WARNING.
        return super().env() + [k8s.EnvVar(name="VLLM_LOGGING_LEVEL", value="INFO")]


QWEN_TOOLS = ModelProfile(
    key="qwen2.5-7b-instruct-tools",
    hf_id="Qwen/Qwen2.5-7B-Instruct",
    parameters_b=7.616,
    weight_bytes_per_param=2.0,
    num_layers=28,
    num_attention_heads=28,
    num_kv_heads=4,
    head_dim=128,
    max_position_embeddings=32_768,
    default_max_model_len=16_384,
    served_name="qwen2.5-7b-instruct",
    chart_class=ToolCallingChart,
    source="huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json",
)

PROFILES = [QWEN_TOOLS]
