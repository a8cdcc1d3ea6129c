"""The in-cluster benchmark: one suspended CronJob per model and workload, its `vllm bench
serve` arguments checked against the pinned vLLM's parser (vllm_facts.json), sent to the
router's Service, its role writing only under the model's results prefix, the router
letting it in, and the ShareGPT file staged when a workload needs it."""

from __future__ import annotations

import pytest

from vllm_eks.config import BenchDataset, ConfigError, EnvironmentConfig
from vllm_eks.k8s_charts.benchmark import (
    SHAREGPT_KEY,
    TOKENIZER_FILES,
    benchmark_cronjob,
)
from vllm_eks.k8s_charts.model_pods import BENCHMARK_LABELS
from vllm_eks.k8s_charts.router import ROUTER_NAME
from vllm_eks.vllm_cli import ServerArgsError, check_bench_args
from vllm_eks.vllm_facts import bench_serve_flags

from .conftest import SECOND_MODEL
from .iam_policy import Assembly
from .support import render_intrinsics

DEFAULT = "deepseek-r1-distill-llama-8b"


def cronjobs(env) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in env.manifests() if o["kind"] == "CronJob"}


def container(cronjob: dict) -> dict:
    (only,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return only


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"]}


def test_each_model_has_a_suspended_cronjob_per_default_workload(default_env, options_env):
    assert set(cronjobs(default_env)) == {benchmark_cronjob(DEFAULT, d) for d in (
        BenchDataset.RANDOM, BenchDataset.PREFIX_REPETITION)}
    assert set(cronjobs(options_env)) == {benchmark_cronjob(m, d)
                                          for m in (DEFAULT, SECOND_MODEL) for d in BenchDataset}
    for job in [*cronjobs(default_env).values(), *cronjobs(options_env).values()]:
        assert job["spec"]["suspend"] is True
        assert job["metadata"]["namespace"] == "inference"
        assert len(job["metadata"]["name"]) <= 52  # a Job created from it adds 11
        spec = job["spec"]["jobTemplate"]["spec"]
        assert spec["backoffLimit"] == 0  # a retried run would mix two runs' load
        pod = spec["template"]["spec"]
        (term,) = pod["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert term["matchExpressions"][0]["values"] == ["system", "general"]  # no GPU node
        assert "nvidia.com/gpu" not in str(pod)


def test_bench_arguments_are_flags_of_the_pinned_bench_serve(default_env, options_env):
    for job in [*cronjobs(default_env).values(), *cronjobs(options_env).values()]:
        args = container(job)["args"]
        check_bench_args(args, owner=job["metadata"]["name"])  # raises on an unknown flag
        assert {a for a in args if a.startswith("--")} <= bench_serve_flags()
    with pytest.raises(ServerArgsError, match="--random-input-length is not a `vllm bench"):
        check_bench_args(["--random-input-length", "5"], owner="x")


def test_bench_targets_the_routers_service_with_the_models_name(default_env):
    services = {o["metadata"]["name"]: o for o in default_env.manifests()
                if o["kind"] == "Service"}
    port = services[ROUTER_NAME]["spec"]["ports"][0]["port"]
    for job in cronjobs(default_env).values():
        args = container(job)["args"]
        assert arg(args, "--base-url") == f"http://{ROUTER_NAME}.inference.svc:{port}"
        assert arg(args, "--model") == DEFAULT
        assert arg(args, "--endpoint") == "/v1/completions"


def test_workload_shapes_follow_the_context(default_env, options_env):
    default = {n: container(j)["args"] for n, j in cronjobs(default_env).items()}
    random = default[benchmark_cronjob(DEFAULT, BenchDataset.RANDOM)]
    assert (arg(random, "--dataset-name"), arg(random, "--random-input-len"),
            arg(random, "--random-output-len"), arg(random, "--request-rate"),
            arg(random, "--num-prompts"), arg(random, "--goodput")) == (
        "random", "1024", "256", "2", "200", "ttft:400")
    # the default concurrency: what the placement was planned for
    assert arg(random, "--max-concurrency") == str(
        default_env.config.models[0].plan.request.min_concurrency)
    prefix = default[benchmark_cronjob(DEFAULT, BenchDataset.PREFIX_REPETITION)]
    assert int(arg(prefix, "--prefix-repetition-prefix-len")) + int(
        arg(prefix, "--prefix-repetition-suffix-len")) == 1024
    options = {n: container(j) for n, j in cronjobs(options_env).items()}
    small = options[benchmark_cronjob(SECOND_MODEL, BenchDataset.RANDOM)]["args"]
    assert (arg(small, "--random-input-len"), arg(small, "--random-output-len"),
            arg(small, "--request-rate"), arg(small, "--max-concurrency"),
            arg(small, "--num-prompts"), arg(small, "--goodput")) == (
        "2048", "128", "inf", "16", "100", "ttft:250")
    sharegpt = options[benchmark_cronjob(DEFAULT, BenchDataset.SHAREGPT)]
    assert arg(sharegpt["args"], "--dataset-path").endswith(SHAREGPT_KEY.rsplit("/", 1)[1])
    assert env_of(sharegpt)["DATASET_S3_KEY"] == SHAREGPT_KEY


def test_metadata_prices_the_placement(default_env):
    plan = default_env.config.models[0].plan
    for job in cronjobs(default_env).values():
        args = container(job)["args"]
        metadata = dict(a.split("=", 1) for a in args[args.index("--metadata") + 1:])
        assert metadata["usd_per_hour"] == f"{plan.chosen.usd_per_hour:g}"
        assert metadata["instance_type"] == plan.chosen.instance.instance_type
        assert metadata["ttft_slo_ms"] == "400"


def test_results_go_under_the_models_prefix_and_the_role_writes_only_there(options_env):
    roles = {r.path: r for r in Assembly(options_env.outdir).roles.values()
             if "/BenchmarkRole" in r.path}
    assert len(roles) == 2
    for job in cronjobs(options_env).values():
        model = job["metadata"]["labels"]["vllm-eks.io/model"]
        assert env_of(container(job))["RESULT_PREFIX"].startswith(f"benchmarks/{model}/")
    for path, role in roles.items():
        model = DEFAULT if "Llama8b" in path else SECOND_MODEL
        writes = [s for s in role.statements if any(a.startswith("s3:Put") for a in s.actions)]
        assert writes and all(r.endswith(f"/benchmarks/{model}/*")
                              for s in writes for r in s.resources), writes
        reads = [r for s in role.statements if "s3:GetObject" in s.actions for r in s.resources]
        allowed = {name for name in TOKENIZER_FILES} | {SHAREGPT_KEY.rsplit("/", 1)[1]}
        assert reads and all(r.rsplit("/", 1)[1] in allowed for r in reads), reads
        assert not any("s3:ListBucket" in s.actions for s in role.statements)


def test_router_lets_the_benchmark_in(default_env):
    (policy,) = [o for o in default_env.manifests() if o["kind"] == "NetworkPolicy"
                 and o["metadata"]["name"] == ROUTER_NAME]
    senders = [peer.get("podSelector", {}).get("matchLabels")
               for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert BENCHMARK_LABELS in senders
    for job in cronjobs(default_env).values():
        labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        assert BENCHMARK_LABELS.items() <= labels.items()


def test_sharegpt_is_staged_once_by_the_first_models_job(options_env):
    staging = [o for o in options_env.manifests() if o["kind"] == "Job"]
    keys = {o["metadata"]["labels"]["vllm-eks.io/model"]:
            env_of(o["spec"]["template"]["spec"]["containers"][0]).get("DATASET_S3_KEY")
            for o in staging}
    assert keys == {DEFAULT: SHAREGPT_KEY, SECOND_MODEL: None}


def test_api_key_is_read_from_the_csi_mount_never_a_manifest(default_env):
    for job in cronjobs(default_env).values():
        c = container(job)
        assert env_of(c)["API_KEY_FILE"].startswith(
            next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "secrets"))
        assert "OPENAI_API_KEY" not in env_of(c)
    classes = [o for o in default_env.manifests() if o["kind"] == "SecretProviderClass"
               and o["metadata"]["name"].endswith("-bench")]
    assert classes and all("api-key" in str(render_intrinsics(c)) for c in classes)


@pytest.mark.parametrize(("context", "message"), [
    ({"bench_request_rate": "-2"}, "bench_request_rate='-2' is not a positive number"),
    ({"bench_request_rate": "0"}, "is not a positive number"),
    ({"bench_datasets": "random,sharegtp"}, "'sharegtp' is not a benchmark workload; did "
                                             "you mean 'sharegpt'"),
    ({"bench_datasets": "random,random"}, "names 'random' twice"),
    ({"bench_datasets": "sharegpt", "model_source": "hf"}, "model_source=hf stages nothing"),
    ({"bench_input_len": "0"}, "bench_input_len=0 must be at least 1"),
    ({"bench_max_concurrency": "x"}, "bench_max_concurrency='x' is not a whole number"),
])
def test_bad_benchmark_options_fail_with_the_fix(context, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        EnvironmentConfig.from_context(context.get)
