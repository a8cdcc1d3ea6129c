"""ModelProfile: what the planner and the vLLM chart need to know about one model."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

GB = 10**9
GIB = 2**30

_KEY_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


class AttentionType(enum.Enum):
    """How a model's attention layers cache keys and values (drives the KV-cache size)."""

    # Grouped-query (and multi-head, where kv_heads == heads) attention: each layer caches
    # one key and one value vector of head_dim per KV head per token.
    GQA = "gqa"
    # Multi-head latent attention (DeepSeek-V2/V3/R1): each layer caches one compressed
    # latent of kv_lora_rank plus the decoupled RoPE key of qk_rope_head_dim per token,
    # shared by all heads.
    MLA = "mla"


class ProfileError(ValueError):
    """A model profile is inconsistent; raised when the profile is defined."""


@dataclass(frozen=True, kw_only=True)
class ModelProfile:
    """One servable model: identity, size, attention geometry and vLLM defaults.

    Most models need only a catalog entry. A model whose pod must differ points
    ``chart_class`` at a subclass of the vLLM chart (see the README, "Add a model").
    """

    key: str  # the `-c model=` key: lowercase DNS label, stable (it names Kubernetes objects)
    hf_id: str  # Hugging Face repository id
    parameters_b: float  # total parameters, billions (all experts for MoE models)
    # Bytes per parameter as stored in the checkpoint: 2.0 for bf16, 1.0 for FP8. For
    # mixed-precision checkpoints (MXFP4 experts + bf16 attention) the effective average.
    weight_bytes_per_param: float
    num_layers: int
    num_attention_heads: int  # tensor parallelism must divide this
    num_kv_heads: int  # GQA: KV heads; MLA: equal to attention heads (not cached per head)
    head_dim: int
    max_position_embeddings: int  # the longest context the model supports
    default_max_model_len: int  # what we serve by default (memory is reserved for it)
    attention: AttentionType = AttentionType.GQA
    kv_lora_rank: int = 0  # MLA only
    qk_rope_head_dim: int = 0  # MLA only
    # Sliding-window attention: how many layers use a window, and its length in tokens.
    # Those layers cache at most `sliding_window` tokens per sequence.
    sliding_window_layers: int = 0
    sliding_window: int = 0
    kv_cache_bytes_per_element: int = 2  # vLLM's kv-cache-dtype "auto" = bf16 activations
    served_name: str = ""  # name clients pass as "model"; defaults to the key
    extra_args: tuple[str, ...] = ()  # model-specific vLLM args, e.g. a reasoning parser
    mixture_of_experts: bool = False  # MoE models get --enable-expert-parallel when TP > 1
    # The vLLM chart class to render this model with; None means the default chart.
    chart_class: type | None = field(default=None, compare=False)
    source: str = ""  # where the numbers above were read

    def __post_init__(self) -> None:
        problems = []
        if not _KEY_PATTERN.match(self.key):
            problems.append(
                f"key {self.key!r} must be a lowercase DNS label (a-z, 0-9, '-', '.'), "
                "because it names Kubernetes objects and S3 prefixes"
            )
        for name in (
            "parameters_b",
            "weight_bytes_per_param",
            "num_layers",
            "num_attention_heads",
            "num_kv_heads",
            "head_dim",
            "max_position_embeddings",
            "default_max_model_len",
            "kv_cache_bytes_per_element",
        ):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)!r} must be greater than 0")
        if self.num_kv_heads > 0 and self.num_attention_heads % self.num_kv_heads:
            problems.append(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_kv_heads={self.num_kv_heads}"
            )
        if self.default_max_model_len > self.max_position_embeddings:
            problems.append(
                f"default_max_model_len={self.default_max_model_len} exceeds "
                f"max_position_embeddings={self.max_position_embeddings}"
            )
        if self.attention is AttentionType.MLA and not (
            self.kv_lora_rank > 0 and self.qk_rope_head_dim > 0
        ):
            problems.append("MLA models need kv_lora_rank and qk_rope_head_dim from their config")
        if self.sliding_window_layers > self.num_layers:
            problems.append(
                f"sliding_window_layers={self.sliding_window_layers} exceeds "
                f"num_layers={self.num_layers}"
            )
        if bool(self.sliding_window_layers) != bool(self.sliding_window):
            problems.append("set both sliding_window_layers and sliding_window, or neither")
        if problems:
            raise ProfileError(f"model profile {self.key!r}: " + "; ".join(problems))

    @property
    def name(self) -> str:
        """The model name clients send in OpenAI requests."""
        return self.served_name or self.key

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights loaded onto the GPUs (the checkpoint size)."""
        return int(self.parameters_b * 1e9 * self.weight_bytes_per_param)

    def kv_cache_bytes_per_sequence(self, seq_len: int, tensor_parallel: int) -> int:
        """KV-cache bytes a sequence of `seq_len` tokens occupies, summed over all GPUs.

        GQA: 2 (K and V) x layers x KV heads x head_dim x bytes per token. When tensor
        parallelism exceeds the KV heads, vLLM replicates KV heads so every rank holds one.
        MLA: layers x (kv_lora_rank + qk_rope_head_dim) x bytes per token; the latent is
        not split across ranks, so every tensor-parallel rank holds a full copy.
        """
        full_layers = self.num_layers - self.sliding_window_layers
        tokens_x_layers = full_layers * seq_len + self.sliding_window_layers * min(
            seq_len, self.sliding_window
        )
        if self.attention is AttentionType.MLA:
            per_token_layer = (self.kv_lora_rank + self.qk_rope_head_dim) * tensor_parallel
        else:
            per_token_layer = 2 * max(self.num_kv_heads, tensor_parallel) * self.head_dim
        return tokens_x_layers * per_token_layer * self.kv_cache_bytes_per_element

    def valid_tensor_parallel(self, tensor_parallel: int) -> bool:
        """vLLM shards attention heads across ranks: TP must divide the heads, and KV heads
        must either split evenly or be replicated evenly."""
        if tensor_parallel < 1 or self.num_attention_heads % tensor_parallel:
            return False
        if self.attention is AttentionType.MLA:
            return True
        return self.num_kv_heads % tensor_parallel == 0 or tensor_parallel % self.num_kv_heads == 0
