"""The `vllm serve` command line of the pinned vLLM (versions.VLLM_VERSION), in one place.

Flags the charts pass, or a profile's `extra_args` may pass, are checked against this
list at synth time: a flag vLLM removed (`--enable-reasoning`, `--disable-log-requests`)
would crash every replica at start, far from the change that caused it.
"""

from __future__ import annotations

# Flags of `vllm serve` in 0.33 that vllm-eks and its catalog use; extend when a profile
# needs another one (after checking `vllm serve --help` of the pinned image).
KNOWN_FLAGS: frozenset[str] = frozenset({
    "--served-model-name",
    "--host",
    "--port",
    "--tensor-parallel-size",
    "--enable-expert-parallel",
    "--max-model-len",
    "--gpu-memory-utilization",
    "--load-format",
    "--model-loader-extra-config",
    "--download-dir",
    "--reasoning-parser",
    "--tool-call-parser",
    "--enable-auto-tool-choice",
    "--chat-template",
    "--enable-lora",
    "--lora-modules",
    "--max-lora-rank",
    "--max-loras",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--kv-cache-dtype",
    "--trust-remote-code",
    "--shutdown-timeout",
    "--disable-uvicorn-access-log",
    "--uvicorn-log-level",
    "--generation-config",
})

# Removed flags, with what replaced them.
REMOVED_FLAGS: dict[str, str] = {
    "--enable-reasoning": "--reasoning-parser <parser> (reasoning is on when a parser is set)",
    "--disable-log-requests": "nothing: request logging is off by default since 0.12",
}

# Flags the charts own: a profile that passes them would silently fight the plan.
PLANNED_FLAGS: frozenset[str] = frozenset({
    "--served-model-name", "--port", "--tensor-parallel-size", "--max-model-len",
    "--gpu-memory-utilization", "--load-format", "--shutdown-timeout",
})

# DeepSeek-R1 ships FP8 weights: `--quantization fp8` would re-quantize nothing and is
# rejected for it; the flag is deliberately not in KNOWN_FLAGS.


class ServerArgsError(ValueError):
    """A vLLM server argument is unknown to or removed from the pinned vLLM."""


def flags(args: list[str] | tuple[str, ...]) -> list[str]:
    """The `--flag` names in an argument list (`--flag=value` counts as `--flag`)."""
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


def check_server_args(args: list[str] | tuple[str, ...], *, owner: str) -> None:
    """Raise ServerArgsError naming the first removed or unknown flag in `args`."""
    for flag in flags(args):
        if flag in REMOVED_FLAGS:
            raise ServerArgsError(
                f"{owner}: vLLM {flag} was removed; use {REMOVED_FLAGS[flag]}"
            )
        if flag not in KNOWN_FLAGS:
            raise ServerArgsError(
                f"{owner}: {flag} is not a `vllm serve` flag vllm-eks knows for the pinned "
                "vLLM; check `vllm serve --help` in the pinned image and add it to "
                "KNOWN_FLAGS in vllm_eks/vllm_cli.py"
            )


def check_profile_args(args: list[str] | tuple[str, ...], *, owner: str) -> None:
    """A profile's extra_args: known flags only, and none the plan already sets."""
    check_server_args(args, owner=owner)
    for flag in flags(args):
        if flag in PLANNED_FLAGS:
            raise ServerArgsError(
                f"{owner}: extra_args must not set {flag}: it comes from the deployment plan; "
                "pin it with -c instead (e.g. -c tensor_parallel=, -c max_model_len=)"
            )
