"""The preflight command's options: each flag is a `-c` key, read by the same context parser
synth uses (EnvironmentConfig.from_context), so defaults and validation are identical and
only the key's spelling in messages changes (`-c model=x` -> `--model x`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from ..config import ConfigError, EnvironmentConfig, check_context_keys
from ..models import CatalogError, PlanError, UnknownModelError

# The flags, each the `-c` key with dashes; any other key through `-c key=value`.
FLAG_KEYS: tuple[str, ...] = (
    "model", "models", "region", "capacity", "availability_zones", "certificate_arn",
    "endpoint_hostname", "admin_role_arn", "instance_type", "tensor_parallel",
    "max_replicas", "gpu_limit", "max_model_len", "min_concurrency", "gpu_memory_utilization",
    "nodes",
)


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for key in FLAG_KEYS:
        # Strings, no argparse types or choices: the context parser validates them, with
        # synth's messages.
        parser.add_argument(flag(key), dest=key, metavar=key.upper(),
                            help=f"as -c {key}=" + ("<comma list>" if key.endswith("zones")
                                                    else "..."))
    parser.add_argument("-c", "--context", dest="context", action="append", default=[],
                        metavar="KEY=VALUE", help="any other -c key of synth (repeatable)")


def context(args: argparse.Namespace) -> tuple[dict[str, str], set[str]]:
    """The -c context the options stand for, and the keys given through `-c`."""
    values: dict[str, str] = {}
    for item in args.context:
        key, equals, value = item.partition("=")
        if not equals:
            raise ConfigError(f"-c {item!r} is not KEY=VALUE; pass e.g. -c cloudwatch=true")
        values[key.strip()] = value
    check_context_keys(values)
    through_c = set(values)
    for key in FLAG_KEYS:
        value = getattr(args, key)
        if value is None:
            continue
        if key in through_c:
            raise ConfigError(f"{key} is given twice: as {flag(key)} and as -c {key}=; "
                              "pass one")
        values[key] = value
    return values, through_c


class OptionError(ValueError):
    """A bad option, with synth's message in the command's spelling."""


def config_from_args(args: argparse.Namespace) -> EnvironmentConfig:
    """The environment the options describe, validated exactly as synth validates -c."""
    through_c: set[str] = set()
    try:
        values, through_c = context(args)
        return EnvironmentConfig.from_context(values.get)
    except (ConfigError, PlanError, UnknownModelError, CatalogError) as error:
        raise OptionError(translate(str(error), through_c)) from None


def translate(message: str, through_c: Sequence[str] = ()) -> str:
    """A config message with `-c key=value` spelled as the flag (`--key value`) for every
    key that has a flag and was not itself given through -c."""
    def replace(match: re.Match) -> str:
        key, equals, following = match["key"], match["equals"], match["next"]
        if key not in FLAG_KEYS or key in through_c:
            return match[0]
        space = " " if equals and following and not following.isspace() else ""
        return flag(key) + space + following
    return re.sub(r"-c (?P<key>[a-z_]+)(?P<equals>=?)(?P<next>.?)", replace, message)
