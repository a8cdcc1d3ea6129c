#!/usr/bin/env python3
"""Regenerate vllm_eks/vllm_facts.json from an installed vLLM of the pinned version.

The file records what the pinned vLLM (versions.VLLM_VERSION) really accepts and exports:
the option strings of `vllm serve` and `vllm bench serve`, and every Prometheus metric
vLLM's code defines with a `vllm:` name, with its type. vllm_eks/vllm_cli.py checks server
flags against it at synth time and tests/test_vllm_facts.py checks the metric contract
(vllm_eks/metrics.py) against it, so neither is only checked against itself.

How to run it (once per pin bump; the tests never install vLLM). In a scratch venv OUTSIDE
the repo, never in .venv:

    python3.11 -m venv /tmp/vllmvenv
    /tmp/vllmvenv/bin/pip install vllm==<pin>        # the pin: VLLM_VERSION in vllm_eks/versions.py
    /tmp/vllmvenv/bin/python scripts/gen_vllm_facts.py

(vllm 0.33.0 with its CUDA torch: ~5 minutes, ~9.4 GB; the script then takes ~20 s),
then review and commit the diff of vllm_eks/vllm_facts.json. A GPU is not needed: on a
machine without one the parsers are built on vLLM's CPU platform, as `vllm bench` does.
The script refuses to run when the installed vLLM is not the pinned version.

Flags come from the argparse parsers the vLLM CLI itself builds (`vllm serve` is
ServeSubcommand.subparser_init, `vllm bench serve` is BenchmarkServingSubcommand.add_cli_args).
Metrics are read from vLLM's source with `ast`, not by starting an engine (most metrics
exist only with a GPU, a model, a KV connector or speculative decoding configured). The
metric name is recorded as vLLM defines it: a Counter defined as `vllm:prompt_tokens` is
exported as `vllm:prompt_tokens_total`, a Histogram as `<name>_bucket/_sum/_count`.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSIONS_FILE = REPO / "vllm_eks" / "versions.py"
FACTS_FILE = REPO / "vllm_eks" / "vllm_facts.json"
GENERATED_BY = "scripts/gen_vllm_facts.py"

# Callables that create a Prometheus metric, by the last name of the callee, and the type
# they create. prometheus_client's classes, the `_gauge_cls`/`_counter_cls`/
# `_histogram_cls` class attributes vLLM's stat loggers call (so Ray can swap in its own
# wrappers), and the metadata records the KV-offload connectors turn into metrics.
METRIC_CONSTRUCTORS: dict[str, str] = {
    "Gauge": "gauge",
    "Counter": "counter",
    "Histogram": "histogram",
    "Summary": "summary",
    "_gauge_cls": "gauge",
    "_counter_cls": "counter",
    "_histogram_cls": "histogram",
    "OffloadingGaugeMetadata": "gauge",
    "OffloadingCounterMetadata": "counter",
    "OffloadingHistogramMetadata": "histogram",
}
# The metadata records carry no name: the name is the dict key they are stored under.
METADATA_CONSTRUCTORS = {name for name in METRIC_CONSTRUCTORS if name.endswith("Metadata")}

CONSTRUCTOR_CALL = re.compile(r"\b(%s)\(" % "|".join(METRIC_CONSTRUCTORS))

# A whole string literal that is a vLLM metric name (not `vllm::op`, not prose).
METRIC_NAME = re.compile(r"^vllm:[a-z_][a-z0-9_]*$")
# What Prometheus appends to a defined name when it exports it.
EXPORT_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count")

# A sanity floor: 0.33.0 defines well over 100. Far fewer means the patterns above no
# longer match how vLLM defines metrics, not that vLLM dropped them.
MIN_METRICS = 60


def fail(message: str) -> None:
    print(f"gen_vllm_facts: {message}", file=sys.stderr)
    raise SystemExit(1)


# -- the pin -----------------------------------------------------------------------------


def pinned_version() -> str:
    """VLLM_VERSION from vllm_eks/versions.py, read without importing it (importing the
    package needs aws-cdk-lib, which the scratch venv does not have)."""
    tree = ast.parse(VERSIONS_FILE.read_text(), filename=str(VERSIONS_FILE))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "VLLM_VERSION"
                and isinstance(node.value, ast.Constant)):
            return node.value.value
    fail(f"no VLLM_VERSION = '<version>' in {VERSIONS_FILE}")
    raise AssertionError  # unreachable


def import_pinned_vllm(pin: str):
    """The installed vllm module, or exit naming both versions and the fix."""
    try:
        import vllm
    except ImportError as error:
        fail(f"vLLM is not importable here ({error}). In a scratch venv outside the repo: "
             f"pip install vllm=={pin}, then run this script with that venv's python")
    # A local build tag (`0.33.0+cu130`) does not change the CLI or the metrics.
    installed = vllm.__version__
    if installed.split("+", 1)[0] != pin:
        fail(f"installed vLLM is {installed}, but vllm_eks/versions.py pins {pin}; "
             f"run pip install vllm=={pin} (in the scratch venv), then run this again")
    return vllm


# -- flags -------------------------------------------------------------------------------


def use_cpu_platform_when_unspecified() -> None:
    """Building the serve parser computes defaults that need a device type. Without a GPU
    vLLM finds no platform; `vllm bench` falls back to the CPU platform in exactly this
    case (vllm/entrypoints/cli/main.py) and so do we. Option strings do not depend on
    the platform (only defaults do)."""
    from vllm import platforms

    if platforms.current_platform.is_unspecified():
        from vllm.platforms.cpu import CpuPlatform

        platforms.current_platform = CpuPlatform()


def long_options(parser: argparse.ArgumentParser) -> list[str]:
    """Every `--option` the parser accepts. vLLM's EnableDisableAction hides
    `--no-enable-x` from help and `action.option_strings` but keeps it registered, so read
    the parser's table of registered strings, not the actions."""
    return sorted(option for option in parser._option_string_actions
                  if option.startswith("--"))


def deprecated_options(parser) -> list[str]:
    """Options vLLM marks deprecated (FlexibleArgumentParser keeps them in _deprecated on
    Python < 3.13; on 3.13+ argparse keeps the flag on the action)."""
    actions = set(getattr(parser, "_deprecated", set()))
    actions |= {a for a in parser._actions if getattr(a, "deprecated", False)}
    return sorted(o for action in actions for o in action.option_strings if o.startswith("--"))


def cli_parsers():
    """The `vllm serve` and `vllm bench serve` parsers, built as vLLM's `main()` builds
    them: a root FlexibleArgumentParser with subcommand parsers."""
    use_cpu_platform_when_unspecified()
    from vllm.entrypoints.cli.benchmark.serve import BenchmarkServingSubcommand
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    root = FlexibleArgumentParser(prog="vllm")
    subparsers = root.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand().subparser_init(subparsers)
    # BenchmarkSubcommand only builds its nested parsers when sys.argv says `bench`;
    # build the `serve` one the way it does.
    bench = subparsers.add_parser("bench")
    bench_serve = bench.add_subparsers(required=True, dest="bench_type").add_parser(
        BenchmarkServingSubcommand.name)
    BenchmarkServingSubcommand.add_cli_args(bench_serve)
    return serve, bench_serve


# -- metrics -----------------------------------------------------------------------------


@dataclass
class MetricScan:
    """What the source scan found: name -> type, and where each came from."""

    kinds: dict[str, str] = field(default_factory=dict)
    sources: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    conflicts: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def add(self, name: str, kind: str, where: str) -> None:
        if name in self.kinds and self.kinds[name] != kind:
            self.conflicts.append(f"{name}: {self.kinds[name]} and {kind} ({where})")
        self.kinds.setdefault(name, kind)
        self.sources[name].add(where)


def callee_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def string_constants(tree: ast.Module) -> dict[str, set[str]]:
    """Module- and class-level `NAME = "..."` constants of one module, keyed `NAME` and
    `Class.NAME` (vLLM keeps many metric names in constant classes)."""
    constants: dict[str, set[str]] = defaultdict(set)

    def collect(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                collect(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(
                    node.value, ast.Constant) and isinstance(node.value.value, str):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        constants[prefix + target.id].add(node.value.value)

    collect(tree.body, "")
    return constants


def literal_strings(node: ast.AST) -> set[str]:
    """String constants of a literal, or of the first element of each tuple in a literal
    list of tuples (`[("vllm:x", "doc"), ...]`, iterated as `for name, doc in ...`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        found = set()
        for element in node.elts:
            if isinstance(element, ast.Tuple) and element.elts:
                found |= literal_strings(element.elts[0])
            else:
                found |= literal_strings(element)
        return found
    return set()


class FunctionBindings(ast.NodeVisitor):
    """String values a local name may hold inside one function: `name = "vllm:x"` in any
    branch, and loop variables over literal lists (directly or through a local name)."""

    def __init__(self, function: ast.AST) -> None:
        self.literals: dict[str, set[str]] = defaultdict(set)  # name -> literal values
        self.parameters = set()
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = function.args
            self.parameters = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        loops: list[tuple[ast.AST, ast.AST]] = []
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.literals[target.id] |= literal_strings(node.value)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                loops.append((node.target, node.iter))
        for target, iterable in loops:
            values = literal_strings(iterable)
            if isinstance(iterable, ast.Name):
                values |= self.literals.get(iterable.id, set())
            first = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else target
            if isinstance(first, ast.Name):
                self.literals[first.id] |= values


class MetricFinder:
    """Finds metric definitions in one module of vLLM."""

    def __init__(self, tree: ast.Module, where: str, scan: MetricScan,
                 global_constants: dict[str, set[str]]) -> None:
        self.tree = tree
        self.where = where
        self.scan = scan
        self.module_constants = string_constants(tree)
        self.global_constants = global_constants

    def resolve(self, node: ast.AST, bindings: FunctionBindings) -> set[str] | None:
        """The string values an expression may have, or None when it cannot be told
        statically (a parameter, an f-string, a call)."""
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else None
        if isinstance(node, ast.Name):
            for table in (bindings.literals, self.module_constants, self.global_constants):
                if table.get(node.id):
                    return table[node.id]
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key = f"{node.value.id}.{node.attr}"
            return self.module_constants.get(key) or self.global_constants.get(key)
        return None

    def scopes(self) -> Iterator[ast.AST]:
        yield self.tree
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield node

    def nodes_of(self, scope: ast.AST) -> Iterator[ast.AST]:
        """The nodes of one scope, not those of functions nested in it."""
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            yield node
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.extend(ast.iter_child_nodes(node))

    def record(self, name_node: ast.AST, kind: str, bindings: FunctionBindings,
               line: int) -> None:
        values = self.resolve(name_node, bindings)
        where = f"{self.where}:{line}"
        if values is None:
            # A wrapper passing its own parameter on (Ray's metric wrappers) defines
            # nothing; anything else is a definition this scan cannot read.
            if not (isinstance(name_node, ast.Name) and name_node.id in bindings.parameters):
                self.scan.unresolved.append(f"{where}: {kind} named {ast.unparse(name_node)}")
            return
        for value in values:
            if METRIC_NAME.match(value):
                self.scan.add(value, kind, where)

    def run(self) -> None:
        for scope in self.scopes():
            bindings = FunctionBindings(scope)
            for node in self.nodes_of(scope):
                if isinstance(node, ast.Call):
                    kind = METRIC_CONSTRUCTORS.get(callee_name(node) or "")
                    if kind is None or callee_name(node) in METADATA_CONSTRUCTORS:
                        continue
                    name = next((k.value for k in node.keywords if k.arg == "name"),
                                node.args[0] if node.args else None)
                    if name is not None:
                        self.record(name, kind, bindings, node.lineno)
                elif isinstance(node, ast.Dict):
                    # {NAME: OffloadingCounterMetadata(...), ...}
                    for key, value in zip(node.keys, node.values):
                        kind = self.metadata_kind(value)
                        if key is not None and kind:
                            self.record(key, kind, bindings, key.lineno)
                elif isinstance(node, ast.Assign):
                    # metrics[NAME] = OffloadingGaugeMetadata(...)
                    kind = self.metadata_kind(node.value)
                    for target in node.targets:
                        if kind and isinstance(target, ast.Subscript):
                            self.record(target.slice, kind, bindings, node.lineno)

    @staticmethod
    def metadata_kind(node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and callee_name(node) in METADATA_CONSTRUCTORS:
            return METRIC_CONSTRUCTORS[callee_name(node)]
        return None


def scan_metrics(package_dir: Path) -> MetricScan:
    """Every `vllm:` metric defined in the package's Python source, with its type."""
    trees = {}
    global_constants: dict[str, set[str]] = defaultdict(set)
    for path in sorted(package_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        # Parsing all ~3,000 modules takes minutes; a module that neither names a
        # `vllm:` metric nor calls a metric constructor has nothing to find.
        if "vllm:" not in text and not CONSTRUCTOR_CALL.search(text):
            continue
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError:  # vendored code for another Python; defines no metrics
            continue
        trees[path] = tree
        for key, values in string_constants(tree).items():
            global_constants[key] |= values
    scan = MetricScan()
    for path, tree in trees.items():
        where = str(path.relative_to(package_dir.parent))
        MetricFinder(tree, where, scan, global_constants).run()
    unclassified = unclassified_names(trees, scan.kinds)
    if scan.conflicts:
        fail("a metric is defined with two types:\n  " + "\n  ".join(scan.conflicts))
    if unclassified:
        fail("these vllm: names appear in vLLM's source but no metric definition of them "
             "was recognized; teach METRIC_CONSTRUCTORS / MetricFinder the new pattern:\n  "
             + "\n  ".join(unclassified))
    if len(scan.kinds) < MIN_METRICS:
        fail(f"only {len(scan.kinds)} metrics found (expected >= {MIN_METRICS}): the "
             "definition patterns changed; update MetricFinder")
    return scan


def unclassified_names(trees: dict[Path, ast.Module], kinds: dict[str, str]) -> list[str]:
    """`vllm:` name literals that are neither a definition found, nor an exported form of
    one (`..._total`, `..._bucket`), nor a prefix of one (`vllm:spec_decode`): each is a
    metric definition the scan missed (a reference to a defined metric is in `known`)."""
    known = set(kinds)
    known |= {name + suffix for name in kinds for suffix in EXPORT_SUFFIXES}
    # prometheus_client drops a Counter's `_total` from its name and adds it back.
    known |= {name.removesuffix("_total") for name, kind in kinds.items() if kind == "counter"}
    # A name prefix matches a family of metrics (`line.startswith("vllm:spec_decode")`).
    prefixes = {name[:i] for name in kinds for i, char in enumerate(name) if char == "_"}
    known |= prefixes
    missed = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and METRIC_NAME.match(node.value) and node.value not in known):
                missed.add(f"{node.value} ({path.name}:{node.lineno})")
    return sorted(missed)


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=FACTS_FILE,
                        help=f"where to write (default {FACTS_FILE.relative_to(REPO)})")
    parser.add_argument("--verbose", action="store_true",
                        help="print where each metric is defined, and unresolved sites")
    options = parser.parse_args()

    pin = pinned_version()
    vllm = import_pinned_vllm(pin)
    package_dir = Path(vllm.__file__).resolve().parent

    serve, bench_serve = cli_parsers()
    scan = scan_metrics(package_dir)

    facts = {
        "source": {
            "package": "vllm",
            "version": pin,
            "installed_version": vllm.__version__,
            "generated_by": GENERATED_BY,
            "serve_flags_from": "vllm.entrypoints.cli.serve.ServeSubcommand.subparser_init",
            "bench_serve_flags_from": "vllm.entrypoints.cli.benchmark.serve."
                                      "BenchmarkServingSubcommand.add_cli_args",
            "metrics_from": "ast scan of vllm/**/*.py for Gauge/Counter/Histogram "
                            "definitions with a vllm: name (defined names: counters are "
                            "exported with _total, histograms as _bucket/_sum/_count)",
        },
        "serve_flags": long_options(serve),
        "deprecated_serve_flags": deprecated_options(serve),
        "bench_serve_flags": long_options(bench_serve),
        "metrics": dict(sorted(scan.kinds.items())),
    }
    options.output.write_text(json.dumps(facts, indent=1) + "\n")

    if options.verbose:
        for name in sorted(scan.kinds):
            print(f"{name} {scan.kinds[name]}  {', '.join(sorted(scan.sources[name]))}")
        for site in scan.unresolved:
            print(f"unresolved: {site}")
    counts = defaultdict(int)
    for kind in scan.kinds.values():
        counts[kind] += 1
    print(f"wrote {options.output}: vLLM {vllm.__version__}, "
          f"{len(facts['serve_flags'])} serve flags, "
          f"{len(facts['bench_serve_flags'])} bench serve flags, {len(scan.kinds)} metrics "
          f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}); "
          f"{len(scan.unresolved)} metric sites with a computed name were skipped"
          + ("" if options.verbose else " (--verbose lists them)"))


if __name__ == "__main__":
    main()
