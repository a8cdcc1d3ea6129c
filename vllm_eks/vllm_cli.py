"""The `vllm serve` command line of the pinned vLLM (versions.VLLM_VERSION), in one place.

Flags the charts pass, or a profile's `extra_args` may pass, are checked at synth time
against the flags of the pinned vLLM's own `vllm serve` parser (vllm_facts.json, generated
by scripts/gen_vllm_facts.py from an installed vLLM): a misspelled or removed flag would
crash every replica at start, far from the change that caused it.
"""

from __future__ import annotations

from . import versions
from .vllm_facts import bench_serve_flags, serve_flags

# Flags vLLM removed, with what replaced them: a better message than "unknown flag" for
# a profile copied from an older guide. Each must be absent from serve_flags() (a test
# checks it). `--disable-log-requests` is not here: vLLM 0.33 accepts it, as the
# generated negative of `--enable-log-requests` (a no-op, logging is off by default).
REMOVED_FLAGS: dict[str, str] = {
    "--enable-reasoning": "--reasoning-parser <parser> (reasoning is on when a parser is set)",
}

# Flags the charts own: a profile that passes them would silently fight the plan.
PLANNED_FLAGS: frozenset[str] = frozenset({
    "--served-model-name", "--port", "--tensor-parallel-size", "--max-model-len",
    "--gpu-memory-utilization", "--load-format", "--shutdown-timeout",
})

# `--quantization` is a real flag of vLLM 0.33 and passes this check. DeepSeek-R1 ships
# FP8 weights, so `--quantization fp8` would re-quantize nothing: its catalog profile does
# not pass it, and nothing here rejects it if a custom profile does.


class ServerArgsError(ValueError):
    """A vLLM server argument is unknown to or removed from the pinned vLLM."""


def flags(args: list[str] | tuple[str, ...]) -> list[str]:
    """The `--flag` names in an argument list (`--flag=value` counts as `--flag`)."""
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


def short_options(args: list[str] | tuple[str, ...]) -> list[str]:
    """Single-dash options (`-tp 4`, `-q fp8`): vLLM's aliases of long flags. A number
    such as `-1` is a value, not an option."""
    return [arg for arg in args
            if arg.startswith("-") and not arg.startswith("--")
            and not arg.lstrip("-").replace(".", "", 1).isdigit()]


def check_server_args(args: list[str] | tuple[str, ...], *, owner: str) -> None:
    """Raise ServerArgsError naming the first short alias, removed or unknown flag in
    `args`. Short aliases are refused: `-tp 4` would set a plan-owned value past the
    check that looks for `--tensor-parallel-size`."""
    _check_flags(args, known=serve_flags(), command="vllm serve", owner=owner)


def check_bench_args(args: list[str] | tuple[str, ...], *, owner: str) -> None:
    """The same check for `vllm bench serve` (the benchmark Job's arguments)."""
    _check_flags(args, known=bench_serve_flags(), command="vllm bench serve", owner=owner)


def _check_flags(args: list[str] | tuple[str, ...], *, known: frozenset[str], command: str,
                 owner: str) -> None:
    for option in short_options(args):
        raise ServerArgsError(
            f"{owner}: {option} is a short alias; write the long `{command}` flag it "
            f"stands for (see `{command} --help`), so it can be checked"
        )
    for flag in flags(args):
        if flag in REMOVED_FLAGS:
            raise ServerArgsError(
                f"{owner}: vLLM {flag} was removed; use {REMOVED_FLAGS[flag]}"
            )
        if flag not in known:
            raise ServerArgsError(
                f"{owner}: {flag} is not a `{command}` flag in vLLM "
                f"{versions.VLLM_VERSION}; check its spelling against `{command} --help` "
                f"in the pinned image ({versions.VLLM_IMAGE}). After bumping the pin, "
                "regenerate vllm_eks/vllm_facts.json with scripts/gen_vllm_facts.py"
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
