"""The model catalog: every `-c model=` key and its profile.

Attention geometry (layers, heads, KV heads, head_dim, MLA ranks, sliding windows) is
read from each model's published `config.json` on Hugging Face; parameter counts and
checkpoint dtypes from the model cards. Each entry names its source.

Profiles defined outside this package join the catalog through `register()` (call it
before the app is built) or the `vllm_eks.models` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from .profile import AttentionType, ModelProfile

DEEPSEEK_R1_ARGS = ("--reasoning-parser", "deepseek_r1")
# gpt-oss speaks the "harmony" format; vLLM's parser for its reasoning channel.
GPT_OSS_ARGS = ("--reasoning-parser", "openai_gptoss")


def _distill(
    key: str, hf_name: str, *, parameters_b: float, layers: int, heads: int, kv_heads: int,
    default_max_model_len: int,
) -> ModelProfile:
    """A DeepSeek-R1 distill: a bf16 Qwen2.5 / Llama 3 dense model fine-tuned on R1 traces."""
    return ModelProfile(
        key=key,
        hf_id=f"deepseek-ai/{hf_name}",
        parameters_b=parameters_b,
        weight_bytes_per_param=2.0,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=128,
        max_position_embeddings=131_072,
        default_max_model_len=default_max_model_len,
        extra_args=DEEPSEEK_R1_ARGS,
        source=f"huggingface.co/deepseek-ai/{hf_name}/blob/main/config.json",
    )


BUILT_IN_MODELS: tuple[ModelProfile, ...] = (
    # DeepSeek-R1: 671B MoE (37B active) + 14B multi-token-prediction module = 685B stored,
    # native FP8 with bf16 norms/gates (~688 GB). MLA: kv_lora_rank 512, qk_rope_head_dim 64.
    ModelProfile(
        key="deepseek-r1",
        hf_id="deepseek-ai/DeepSeek-R1",
        parameters_b=684.53,  # safetensors total: FP8 experts/attention + bf16 norms
        weight_bytes_per_param=1.006,  # 688.6 GB checkpoint / 684.53B parameters
        num_layers=61,
        num_attention_heads=128,
        num_kv_heads=128,
        head_dim=128,
        attention=AttentionType.MLA,
        kv_lora_rank=512,
        qk_rope_head_dim=64,
        max_position_embeddings=163_840,
        default_max_model_len=65_536,
        mixture_of_experts=True,
        extra_args=DEEPSEEK_R1_ARGS,
        source="huggingface.co/deepseek-ai/DeepSeek-R1/blob/main/config.json",
    ),
    _distill(
        "deepseek-r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen-1.5B",
        parameters_b=1.777, layers=28, heads=12, kv_heads=2, default_max_model_len=32_768,
    ),
    _distill(
        "deepseek-r1-distill-qwen-7b", "DeepSeek-R1-Distill-Qwen-7B",
        parameters_b=7.616, layers=28, heads=28, kv_heads=4, default_max_model_len=16_384,
    ),
    _distill(
        "deepseek-r1-distill-llama-8b", "DeepSeek-R1-Distill-Llama-8B",
        parameters_b=8.030, layers=32, heads=32, kv_heads=8, default_max_model_len=16_384,
    ),
    _distill(
        "deepseek-r1-distill-qwen-14b", "DeepSeek-R1-Distill-Qwen-14B",
        parameters_b=14.770, layers=48, heads=40, kv_heads=8, default_max_model_len=32_768,
    ),
    _distill(
        "deepseek-r1-distill-qwen-32b", "DeepSeek-R1-Distill-Qwen-32B",
        parameters_b=32.764, layers=64, heads=40, kv_heads=8, default_max_model_len=32_768,
    ),
    _distill(
        "deepseek-r1-distill-llama-70b", "DeepSeek-R1-Distill-Llama-70B",
        parameters_b=70.554, layers=80, heads=64, kv_heads=8, default_max_model_len=32_768,
    ),
    ModelProfile(
        key="llama-3.1-8b-instruct",
        hf_id="meta-llama/Llama-3.1-8B-Instruct",
        parameters_b=8.030,
        weight_bytes_per_param=2.0,
        num_layers=32,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131_072,
        default_max_model_len=16_384,
        source="huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json",
    ),
    ModelProfile(
        key="llama-3.3-70b-instruct",
        hf_id="meta-llama/Llama-3.3-70B-Instruct",
        parameters_b=70.554,
        weight_bytes_per_param=2.0,
        num_layers=80,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131_072,
        default_max_model_len=32_768,
        source="huggingface.co/meta-llama/Llama-3.3-70B-Instruct/blob/main/config.json",
    ),
    # gpt-oss: MoE with MXFP4 expert weights and bf16 attention; every other layer uses a
    # 128-token sliding window, so only half the layers cache the full context.
    ModelProfile(
        key="gpt-oss-20b",
        hf_id="openai/gpt-oss-20b",
        parameters_b=20.91,
        weight_bytes_per_param=0.66,  # ~13.8 GB checkpoint / 20.9B parameters
        num_layers=24,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=64,
        sliding_window_layers=12,
        sliding_window=128,
        max_position_embeddings=131_072,
        default_max_model_len=32_768,
        mixture_of_experts=True,
        extra_args=GPT_OSS_ARGS,
        source="huggingface.co/openai/gpt-oss-20b/blob/main/config.json",
    ),
    ModelProfile(
        key="gpt-oss-120b",
        hf_id="openai/gpt-oss-120b",
        parameters_b=116.83,
        weight_bytes_per_param=0.56,  # ~65 GB checkpoint / 116.8B parameters
        num_layers=36,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=64,
        sliding_window_layers=18,
        sliding_window=128,
        max_position_embeddings=131_072,
        default_max_model_len=32_768,
        mixture_of_experts=True,
        extra_args=GPT_OSS_ARGS,
        source="huggingface.co/openai/gpt-oss-120b/blob/main/config.json",
    ),
)

# The model served when no `-c model=` is given: a small distill at a moderate context,
# so a first deploy runs on one modest GPU instance.
DEFAULT_MODEL_KEY = "deepseek-r1-distill-llama-8b"

_CATALOG: dict[str, ModelProfile] = {p.key: p for p in BUILT_IN_MODELS}
_entry_points_loaded = False

ENTRY_POINT_GROUP = "vllm_eks.models"


class CatalogError(ValueError):
    """A package's `vllm_eks.models` entry point could not be registered."""


class UnknownModelError(KeyError):
    """`-c model=` names no profile in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(profile: ModelProfile, *, replace: bool = False) -> ModelProfile:
    """Add a profile to the catalog so `-c model=<profile.key>` selects it.

    Raises ValueError when the key is taken, unless `replace=True`.
    """
    if not isinstance(profile, ModelProfile):
        raise TypeError(f"register() takes a ModelProfile, got {type(profile).__name__}")
    if profile.key in _CATALOG and not replace and _CATALOG[profile.key] != profile:
        raise ValueError(
            f"model key {profile.key!r} is already in the catalog; choose another key "
            "or pass replace=True"
        )
    _CATALOG[profile.key] = profile
    return profile


def _load_entry_points() -> None:
    """Register profiles that installed packages publish under `vllm_eks.models`.

    An entry point may name a ModelProfile or an iterable of them.
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
            for profile in loaded if isinstance(loaded, (list, tuple)) else (loaded,):
                register(profile)
        except Exception as error:  # a broken plug-in must not look like our crash
            raise CatalogError(
                f"the installed entry point {entry_point.name!r} ({entry_point.value}) of "
                f"group {ENTRY_POINT_GROUP} could not be registered: {error}; fix or "
                "uninstall that package"
            ) from None


def catalog() -> dict[str, ModelProfile]:
    """Every known profile by key, built-in and registered."""
    _load_entry_points()
    return dict(_CATALOG)


def get_model(key: str) -> ModelProfile:
    """The profile for a `-c model=` key; the error lists the valid keys."""
    models = catalog()
    if key not in models:
        raise UnknownModelError(
            f"unknown model {key!r}; pass -c model=<one of: {', '.join(sorted(models))}>"
        )
    return models[key]
