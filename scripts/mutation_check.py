"""Mutation check: does a targeted test catch each way of breaking production?

Each mutation below changes one line of product code the way a careless edit would (an
IAM condition dropped, an Ingress path widened, a metric renamed, encryption off...).
For each, a scratch copy of the working tree gets the change, and the tests named for it
run there (never the snapshot tests: a snapshot is re-accepted with one flag, so it
proves nothing). A mutation no test fails on is reported as SURVIVED and the script
exits 1.

    make mutation                      # every mutation
    make mutation ARGS="-k ingress"    # those whose name contains "ingress"

Not part of `make test`: it runs the named tests once per mutation (minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    """Replace `old` by `new` in `file` (`old` must occur exactly once), then run
    `tests` (pytest node IDs or files); at least one must fail."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS: tuple[Mutation, ...] = (
    # -- the six a review found getting past every targeted test ---------------------
    Mutation(
        "alb-controller-deletes-any-load-balancer",
        "vllm_eks/constructs/alb_controller_iam.py",
        '"elasticloadbalancing:DeleteTargetGroup",\n'
        '                "elasticloadbalancing:ModifyListenerAttributes",\n'
        '                "elasticloadbalancing:ModifyCapacityReservation",\n'
        '                "elasticloadbalancing:ModifyIpPools",\n'
        '            ],\n'
        '            resources=["*"],\n'
        '            conditions=owned_resource,',
        '"elasticloadbalancing:DeleteTargetGroup",\n'
        '                "elasticloadbalancing:ModifyListenerAttributes",\n'
        '                "elasticloadbalancing:ModifyCapacityReservation",\n'
        '                "elasticloadbalancing:ModifyIpPools",\n'
        '            ],\n'
        '            resources=["*"],',
        ("tests/test_iam.py",),
    ),
    Mutation(
        "karpenter-launches-untagged-instances",
        "vllm_eks/constructs/karpenter_iam.py",
        'sid="AllowScopedEC2InstanceActionsWithTags",\n'
        '            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],\n'
        '            resources=created_by_us,\n'
        '            conditions={',
        'sid="AllowScopedEC2InstanceActionsWithTags",\n'
        '            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],\n'
        '            resources=created_by_us,\n'
        '            conditions=None and {',
        ("tests/test_iam.py",),
    ),
    Mutation(
        "karpenter-gets-iam-star",
        "vllm_eks/constructs/karpenter_iam.py",
        'actions=["iam:ListInstanceProfiles"],',
        'actions=["iam:ListInstanceProfiles", "iam:*"],',
        ("tests/test_iam.py", "tests/test_nag.py"),
    ),
    Mutation(
        "ingress-routes-everything-by-wildcard",
        "vllm_eks/k8s_charts/router.py",
        "                    for path in self.ingress_paths()]))]))",
        "                    for path in self.ingress_paths()] + [k8s.HttpIngressPath("
        'path="/*", path_type="ImplementationSpecific", backend=backend)]))]))',
        ("tests/test_serving.py",),
    ),
    Mutation(
        "metric-renamed-to-one-vllm-does-not-export",
        "vllm_eks/metrics.py",
        'PREFIX_CACHE_HITS = Metric("vllm:prefix_cache_hits", Kind.COUNTER,',
        'PREFIX_CACHE_HITS = Metric("vllm:prefix_cache_hit", Kind.COUNTER,',
        ("tests/test_vllm_facts.py",),
    ),
    Mutation(
        "startup-budget-assumes-s3-for-every-source",
        "vllm_eks/k8s_charts/vllm_pod.py",
        "return startup_budget_seconds(self.model, self.props.model_source,",
        "return startup_budget_seconds(self.model, ModelSource.S3,",
        ("tests/test_vllm_chart.py",),
    ),
    Mutation(
        "server-arg-misspelt",
        "vllm_eks/k8s_charts/vllm_pod.py",
        '"--max-model-len", str(',
        '"--max-model-length", str(',
        ("tests/test_vllm_facts.py",),
    ),
    # -- IAM: scoping, pass-role, secrets, upstream drift -------------------------------
    Mutation(
        "karpenter-passes-any-role",
        "vllm_eks/constructs/karpenter_iam.py",
        "resources=[node_role.role_arn],",
        'resources=["*"],',
        ("tests/test_iam.py",),
    ),
    Mutation(
        "karpenter-drifts-from-upstream",
        "vllm_eks/constructs/karpenter_iam.py",
        '"ec2:DescribeSpotPriceHistory",',
        "",
        ("tests/test_iam.py",),
    ),
    Mutation(
        "efs-driver-touches-any-access-point",
        "vllm_eks/constructs/storage_drivers.py",
        'conditions={"Null": {f"aws:ResourceTag/{ACCESS_POINT_TAG}": "false"}}),',
        "conditions=None),",
        ("tests/test_iam.py",),
    ),
    Mutation(
        "vllm-reads-every-models-weights",
        "vllm_eks/constructs/model_server.py",
        'resources=[bucket.arn_for_objects(f"{prefix}*")]),',
        'resources=[bucket.arn_for_objects("*")]),',
        ("tests/test_iam.py",),
    ),
    Mutation(
        "vllm-reads-the-hugging-face-token",
        "vllm_eks/constructs/model_server.py",
        "props.api_key.grant_read(self.server_role)",
        "props.api_key.grant_read(self.server_role); "
        "hf_token_secret.grant_read(self.server_role)",
        ("tests/test_iam.py",),
    ),
    Mutation(
        "pipeline-invokes-any-function",
        "vllm_eks/stacks/pipeline_stack.py",
        'f"{stage_config.account}:function:{function_name}"])',
        'f"{stage_config.account}:function:*"])',
        ("tests/test_iam.py",),
    ),
    Mutation(
        "nodes-get-administrator-access",
        "vllm_eks/constructs/cluster.py",
        '"AmazonSSMManagedInstanceCore",  # Bottlerocket',
        '"AmazonSSMManagedInstanceCore", "AdministratorAccess",  # Bottlerocket',
        ("tests/test_iam.py",),
    ),
    # -- day 2: what the real account and Helm do ---------------------------------------
    Mutation(
        "dcgm-exporter-keeps-the-charts-sys-admin",
        "vllm_eks/constructs/observability.py",
        '"capabilities": {"add": [], "drop": ["ALL"]}},',
        '"capabilities": {"drop": ["ALL"]}},',
        ("tests/test_observability.py",),
    ),
    Mutation(
        "staging-job-evicted-by-consolidation",
        "vllm_eks/k8s_charts/weights_staging.py",
        'annotations={"karpenter.sh/do-not-disrupt": "true"}),',
        "annotations={}),",
        ("tests/test_serving.py",),
    ),
    Mutation(
        "unlaunchable-instance-listed-as-a-placement",
        "vllm_eks/models/planner.py",
        "else [i for i in GPU_INSTANCES.values() if i.launchable]",
        "else list(GPU_INSTANCES.values())",
        ("tests/test_cli.py", "tests/test_models.py"),
    ),
    # -- security and correctness, one line each --------------------------------------
    Mutation(
        "model-cache-unencrypted",
        "vllm_eks/constructs/model_store.py",
        "            encrypted=True,\n            throughput_mode=",
        "            encrypted=False,\n            throughput_mode=",
        ("tests/test_model_store.py",),
    ),
    Mutation(
        "weights-bucket-allows-plain-http",
        "vllm_eks/constructs/model_store.py",
        "            enforce_ssl=True,\n            versioned=True,",
        "            enforce_ssl=False,\n            versioned=True,",
        ("tests/test_model_store.py",),
    ),
    Mutation(
        "weights-bucket-deleted-with-the-stack",
        "vllm_eks/constructs/model_store.py",
        "retain = cdk.RemovalPolicy.RETAIN",
        "retain = cdk.RemovalPolicy.DESTROY",
        ("tests/test_model_store.py",),
    ),
    Mutation(
        "flow-logs-kept-a-week",
        "vllm_eks/constructs/network.py",
        "flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR",
        "flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_WEEK",
        ("tests/test_stacks.py",),
    ),
    Mutation(
        "vllm-reachable-from-any-pod",
        "vllm_eks/k8s_charts/vllm_networking.py",
        "ingress=[k8s.NetworkPolicyIngressRule(from_=router, ports=port),",
        "ingress=[k8s.NetworkPolicyIngressRule(ports=port),",
        ("tests/test_serving.py",),
    ),
    Mutation(
        "disruption-budget-blocks-every-drain",
        "vllm_eks/k8s_charts/vllm.py",
        "max_unavailable=k8s.IntOrString.from_number(1),",
        "max_unavailable=k8s.IntOrString.from_number(0),",
        ("tests/test_serving.py",),
    ),
    Mutation(
        "liveness-probe-kills-on-first-miss",
        "vllm_eks/k8s_charts/vllm_pod.py",
        "failure_threshold=4),",
        "failure_threshold=1),",
        ("tests/test_serving.py::test_liveness_tolerates_a_busy_engine_for_a_minute",),
    ),
    Mutation(
        "gpu-nodes-take-any-pod",
        "vllm_eks/k8s_charts/karpenter_pools.py",
        '"taints": [{"key": GPU_TAINT_KEY, "value": "true",\n'
        '                                "effect": "NoSchedule"}],',
        '"taints": [{"key": GPU_TAINT_KEY, "value": "true",\n'
        '                                "effect": "PreferNoSchedule"}],',
        ("tests/test_karpenter.py",),
    ),
    Mutation(
        "public-endpoint-allows-tls-1-0",
        "vllm_eks/k8s_charts/router.py",
        '"alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",',
        '"alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-2016-08",',
        ("tests/test_serving.py",),
    ),
    Mutation(
        "pods-reach-the-node-role-through-imds",
        "vllm_eks/constructs/cluster.py",
        "http_put_response_hop_limit=1,",
        "http_put_response_hop_limit=2,",
        ("tests/test_stacks.py",),
    ),
    Mutation(
        "kubernetes-secrets-unencrypted",
        "vllm_eks/constructs/cluster.py",
        "secrets_encryption_key=self.secrets_key,",
        "secrets_encryption_key=None,",
        ("tests/test_stacks.py",),
    ),
    Mutation(
        "writable-root-filesystem",
        "vllm_eks/k8s_charts/pod_security.py",
        "read_only_root_filesystem=True,",
        "read_only_root_filesystem=False,",
        ("tests/test_serving.py",),
    ),
    # -- several models behind the router ----------------------------------------------
    Mutation(
        "router-may-delete-pods",
        "vllm_eks/k8s_charts/router.py",
        'resources=["pods"], verbs=["get", "list", "watch"])])',
        'resources=["pods"], verbs=["get", "list", "watch", "delete"])])',
        ("tests/test_router.py",),
    ),
    Mutation(
        "router-answers-v1-models-without-a-key",
        "vllm_eks/k8s_charts/router.py",
        "backend=fixed if path == MODELS_PATH else backend)",
        "backend=backend)",
        ("tests/test_serving.py",),
    ),
    Mutation(
        "gpu-limit-counts-the-first-model-only",
        "vllm_eks/config/environment.py",
        "return sum(surge_gpus(model) for model in models)",
        "return surge_gpus(models[0])",
        ("tests/test_config.py",),
    ),
    Mutation(
        "per-model-value-reaches-the-wrong-model",
        "vllm_eks/config/models.py",
        "return per_model[key].get(model_key)",
        "return next(iter(per_model[key].values()), None)",
        ("tests/test_config.py",),
    ),
    Mutation(
        "gpu-pool-offers-the-first-models-types-only",
        "vllm_eks/config/environment.py",
        "for model in [m for m in self.models if m.key not in efa] or self.models:",
        "for model in ([m for m in self.models if m.key not in efa] or self.models)[:1]:",
        ("tests/test_karpenter.py",),
    ),
    # -- models larger than one node ---------------------------------------------------
    Mutation(
        "worker-starts-an-api-server",
        "vllm_eks/k8s_charts/vllm_lws.py",
        'return args + ["--headless"]',
        "return args",
        ("tests/test_multinode.py",),
    ),
    Mutation(
        "router-sends-to-headless-workers",
        "vllm_eks/k8s_charts/vllm_lws.py",
        'return {"app.kubernetes.io/name": "vllm-worker",',
        'return {"app.kubernetes.io/name": "vllm",',
        ("tests/test_multinode.py",),
    ),
    Mutation(
        "efa-pool-spans-every-zone",
        "vllm_eks/k8s_charts/karpenter_efa.py",
        '"topology.kubernetes.io/zone": [settings.zone]}',
        "}",
        ("tests/test_multinode.py",),
    ),
    Mutation(
        "gpu-limit-counts-one-node-per-multi-node-replica",
        "vllm_eks/config/environment.py",
        "return -(-replicas // replicas_per_node(plan)) * plan.nodes",
        "return -(-replicas // replicas_per_node(plan))",
        ("tests/test_multinode.py",),
    ),
    # -- time to first token: cold start, install order, benchmarks, the SLO gate -------
    Mutation(
        "compile-cache-shared-by-every-model",
        "vllm_eks/k8s_charts/vllm_pod.py",
        'f"{self.model.key}/tp{plan.tensor_parallel}-pp{plan.nodes}")',
        'f"tp{plan.tensor_parallel}-pp{plan.nodes}")',
        ("tests/test_cold_start.py",),
    ),
    Mutation(
        "soci-settings-never-reach-the-gpu-nodes",
        "vllm_eks/bottlerocket.py",
        'return GPU_NODE_SETTINGS + ("\\n" + SOCI_PARALLEL_PULL_SETTINGS if parallel_image_pull else "")',
        "return GPU_NODE_SETTINGS",
        ("tests/test_cold_start.py",),
    ),
    Mutation(
        "alb-service-webhook-admits-every-service",
        "vllm_eks/constructs/alb_controller.py",
        '"enableServiceMutatorWebhook": False,',
        '"enableServiceMutatorWebhook": True,',
        ("tests/test_install_order.py",),
    ),
    Mutation(
        "prometheus-installs-before-grafanas-secret-provider",
        "vllm_eks/stacks/cluster_stack.py",
        "                       self.secrets_store.provider, *grafana_ingress),",
        "                       *grafana_ingress),",
        ("tests/test_install_order.py",),
    ),
    Mutation(
        "keda-escapes-its-lane",
        "vllm_eks/stacks/cluster_stack.py",
        "in_lane(self.alb_controller.chart, self.observability.keda,",
        "in_lane(self.alb_controller.chart,",
        ("tests/test_install_order.py",),
    ),
    Mutation(
        "benchmark-writes-any-models-results",
        "vllm_eks/constructs/model_server.py",
        'resources=[bucket.arn_for_objects(f"{benchmark_results_prefix(key)}*")])]',
        'resources=[bucket.arn_for_objects("benchmarks/*")])]',
        ("tests/test_benchmark.py",),
    ),
    Mutation(
        "bench-args-unchecked",
        "vllm_eks/vllm_cli.py",
        '    _check_flags(args, known=bench_serve_flags(), command="vllm bench serve", owner=owner)',
        "    return None",
        ("tests/test_benchmark.py",),
    ),
    Mutation(
        "gate-passes-a-run-over-the-slo",
        "vllm_eks/constructs/cluster_handlers/benchmark_gate.py",
        "    if p95 > slo_ms:",
        "    if p95 > slo_ms * 2:",
        ("tests/test_benchmark_gate.py",),
    ),
    Mutation(
        "gate-ignores-failed-requests",
        "vllm_eks/constructs/cluster_handlers/benchmark_gate.py",
        '        problems.append(f"{failed} requests failed")',
        "        pass",
        ("tests/test_benchmark_gate.py",),
    ),
    Mutation(
        "gate-reads-every-result-in-the-bucket",
        "vllm_eks/constructs/benchmark_gate.py",
        'resources=[props.bucket.arn_for_objects(f"{results}*")]),',
        'resources=[props.bucket.arn_for_objects("*")]),',
        ("tests/test_benchmark_gate.py",),
    ),
    Mutation(
        "gate-may-delete-jobs",
        "vllm_eks/constructs/benchmark_gate.py",
        '"resources": ["jobs"], "verbs": ["create", "get"]},',
        '"resources": ["jobs"], "verbs": ["create", "get", "delete"]},',
        ("tests/test_benchmark_gate.py",),
    ),
    Mutation(
        "gate-allowed-on-a-stage-without-smoke-test",
        "vllm_eks/pipeline_config.py",
        "            if not smoke_test:",
        "            if False:",
        ("tests/test_benchmark_gate.py",),
    ),
    Mutation(
        "gate-step-runs-before-the-smoke-test",
        "vllm_eks/stacks/pipeline_stack.py",
        "            gate.add_step_dependency(post[0])  # after the smoke test passes",
        "            pass",
        ("tests/test_benchmark_gate.py",),
    ),
    # -- the front door ----------------------------------------------------------------
    Mutation(
        "front-door-waf-blocks-long-prompts",
        "vllm_eks/constructs/waf.py",
        'self._managed(COMMON_RULE_SET, 0, f"{prefix}-common", count=PROMPT_BODY_RULES),',
        'self._managed(COMMON_RULE_SET, 0, f"{prefix}-common"),',
        ("tests/test_front_door.py",),
    ),
    Mutation(
        "front-door-waf-logs-the-api-key",
        "vllm_eks/constructs/waf.py",
        '                single_header={"Name": "authorization"})])',
        '                single_header={"Name": "x-session-id"})])',
        ("tests/test_front_door.py",),
    ),
    Mutation(
        "front-door-chat-key-in-the-manifest",
        "vllm_eks/constructs/chat_ui.py",
        '"openaiApiKey": "",  # the chart would render its default key as plain text',
        '"openaiApiKeyExistingSecret": "",',
        ("tests/test_front_door.py",),
    ),
    Mutation(
        "front-door-chat-reachable-from-anywhere",
        "vllm_eks/k8s_charts/chat_ui.py",
        "                         for cidr in props.load_balancer_cidrs]",
        '                         for cidr in ("0.0.0.0/0",)]',
        ("tests/test_front_door.py",),
    ),
    Mutation(
        "front-door-self-sign-up",
        "vllm_eks/constructs/chat_ui.py",
        "            self_sign_up_enabled=False,",
        "            self_sign_up_enabled=True,",
        ("tests/test_front_door.py",),
    ),
    Mutation(
        "front-door-traces-without-the-flag",
        "vllm_eks/k8s_charts/vllm_pod.py",
        '            args += ["--otlp-traces-endpoint", self.props.tracing.endpoint]',
        "            pass",
        ("tests/test_front_door.py",),
    ),
)


def scratch_copy(destination: Path) -> None:
    """The working tree as it is (tracked and new files, no build output), with the
    installed node_modules linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if (REPO / "node_modules").exists():
        (destination / "node_modules").symlink_to(REPO / "node_modules")


def run_tests(workdir: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(workdir), "CDK_VALIDATION": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         "--no-header", "-rfE", *tests],
        cwd=workdir, env=env, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def failed_tests(output: str) -> list[str]:
    """The failing tests pytest's short summary names (`-rfE`): FAILED ones as they are,
    ERROR ones (a fixture raised: the synth itself refused the change, e.g. cdk-nag or a
    synth-time check) marked as such."""
    lines = output.splitlines()
    # The first exception pytest reports (`E   SomeError: ...`): why a synth refused.
    cause = next((line[1:].strip() for line in lines if line.startswith("E ")), "")
    names = []
    for line in lines:
        if line.startswith("FAILED "):
            names.append(line.split()[1])
        elif line.startswith("ERROR "):
            names.append(f"{line.split()[1]} (the synth refused it: {cause[:160]})")
    return names


def check(mutation: Mutation, workdir: Path) -> tuple[bool, str]:
    path = workdir / mutation.file
    original = path.read_text()
    count = original.count(mutation.old)
    if count != 1:
        raise SystemExit(f"{mutation.name}: the text to mutate occurs {count} times in "
                         f"{mutation.file} (must be exactly once); update MUTATIONS")
    path.write_text(original.replace(mutation.old, mutation.new))
    try:
        code, output = run_tests(workdir, mutation.tests)
    finally:
        path.write_text(original)
    if code == 1:
        return True, ", ".join(failed_tests(output)) or "(failures)"
    if code == 0:
        return False, "every test passed"
    return False, f"pytest exited {code} (not a test failure):\n{output[-2000:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="keyword", default="",
                        help="only mutations whose name contains this text")
    args = parser.parse_args(argv)
    selected = [m for m in MUTATIONS if args.keyword in m.name]
    if not selected:
        parser.error(f"no mutation name contains {args.keyword!r}")
    survived = 0
    with tempfile.TemporaryDirectory(prefix="vllm-eks-mutation-") as scratch:
        workdir = Path(scratch)
        scratch_copy(workdir)
        code, output = run_tests(workdir, ("tests/test_fixture_versions.py",))
        if code != 0:  # the unmutated tree must pass, or every "catch" is noise
            print(output)
            raise SystemExit("the unmutated scratch copy fails its tests; fix that first")
        for mutation in selected:
            started = time.monotonic()
            caught, detail = check(mutation, workdir)
            survived += not caught
            print(f"{'caught  ' if caught else 'SURVIVED'} {mutation.name} "
                  f"({time.monotonic() - started:.0f} s): {detail}", flush=True)
    print(f"{len(selected) - survived} of {len(selected)} mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
