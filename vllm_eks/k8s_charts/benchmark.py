"""The benchmark of one model: a suspended CronJob per workload, run on demand with
`kubectl -n inference create job <name> --from=cronjob/<cronjob>`.

Each run is `vllm bench serve` from the pinned vLLM image (no other tool to pin), on a CPU
node, against the environment's router (the path clients take), with the API key read
from Secrets Manager through the CSI driver as vLLM reads it. Its arguments are rendered
here and checked against the pinned vLLM's `bench serve` parser at synth. The result JSON
goes to s3://<weights bucket>/benchmarks/<model>/<workload>/<UTC timestamp>.json;
`python -m vllm_eks bench-report` reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..config import BenchDataset, BenchmarkConfig
from ..models.planner import DeploymentPlan
from ..naming import BENCHMARKS_PREFIX
from ..vllm_cli import check_bench_args
from .model_pods import (
    BENCHMARK_LABELS,
    ROUTER_LABELS,
    SCRIPTS_DIR,
    app_name,
    cpu_nodes_only,
    egress_to_aws_apis,
    vllm_image,
    vllm_image_container,
)
from .objects import secret_provider_class
from .pod_security import pod_security_context
from .vllm_pod import SECRETS_DIR, SECRETS_STORE_DRIVER

BENCH_SCRIPT = "run_benchmark.py"
SCRATCH = "/scratch"
RESULTS_PREFIX = f"{BENCHMARKS_PREFIX}/"
# ShareGPT as vLLM's benchmark docs use it (the cleaned V3 split), staged once per
# environment by the weights-staging Job when a model benchmarks the `sharegpt` workload.
SHAREGPT_REPO = "anon8231489123/ShareGPT_Vicuna_unfiltered"
SHAREGPT_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
SHAREGPT_KEY = f"{RESULTS_PREFIX}datasets/{SHAREGPT_FILE}"
# What a tokenizer needs from a model's repository (the role may read these, never the
# weights); the script fetches those that exist.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.model", "vocab.json", "merges.txt", "config.json",
                   "generation_config.json")
# Short names in the CronJob names (a CronJob name has at most 52 characters).
WORKLOAD_NAMES = {BenchDataset.RANDOM: "random", BenchDataset.PREFIX_REPETITION: "prefix",
                  BenchDataset.SHAREGPT: "sharegpt"}
# prefix_repetition: this share of the prompt is one of a few prefixes shared by many
# requests (a system prompt, few-shot examples, a RAG context).
SHARED_PREFIX_SHARE = 0.75
SHARED_PREFIXES = 10
# A CronJob that only runs when a Job is created from it (its schedule never fires while
# suspended; 1 January, so an accidental unsuspend runs once a year, not hourly).
SUSPENDED_SCHEDULE = "0 0 1 1 *"
# vLLM's ready check: a run started while the model loads waits for it.
READY_TIMEOUT_SECONDS = 1800


def benchmark_results_prefix(model_key: str) -> str:
    """The S3 prefix a model's benchmark Job may write under (and nothing else)."""
    return f"{RESULTS_PREFIX}{model_key}/"


def bench_script() -> str:
    return resources.files(__package__).joinpath("scripts", BENCH_SCRIPT).read_text()


def benchmark_account(model_key: str) -> str:
    return app_name(model_key, "bench")


def benchmark_cronjob(model_key: str, dataset: BenchDataset) -> str:
    """The CronJob a run is created from; at most 52 characters (a Job's name adds 11)."""
    return app_name(model_key, f"bench-{WORKLOAD_NAMES[dataset]}")[:52].rstrip("-")


@dataclass(frozen=True, kw_only=True)
class BenchmarkProps:
    plan: DeploymentPlan
    served_name: str  # the `model` field of the requests
    benchmark: BenchmarkConfig
    base_url: str  # the router's in-cluster URL
    ttft_slo_ms: float  # --goodput and the summary's SLO line
    region: str
    weights_bucket: str  # may be a CDK token
    api_key_secret_arn: str  # may be a CDK token
    replicas_of: str  # `deployment/<name>` or `leaderworkerset/<name>`: priced per replica
    # The staged weights' prefix (tokenizer files); None: from Hugging Face (`hf` source).
    tokenizer_prefix: str | None
    hf_token_secret_arn: str | None = None  # for a gated model's tokenizer (`hf` source)
    hf_revision: str = "main"
    namespace: str = "inference"
    image_cache_prefix: str | None = None


class BenchmarkChart(cdk8s.Chart):
    """The benchmark's script (ConfigMap), ServiceAccount (its Pod Identity role writes
    only under the model's results prefix), SecretProviderClass (the API key), Role (read
    the model's workload, to record how many replicas served the run), NetworkPolicy, and
    one suspended CronJob per workload of `-c bench_datasets`.

    Hook a subclass may override: `bench_args(dataset)`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: BenchmarkProps) -> None:
        super().__init__(scope, construct_id, namespace=props.namespace,
                         disable_resource_name_hashes=True)
        self.props = props
        key = props.plan.model.key
        self.name = benchmark_account(key)
        self.app_labels = {**BENCHMARK_LABELS, "vllm-eks.io/model": key}
        meta = k8s.ObjectMeta(name=self.name, labels=self.app_labels)
        k8s.KubeConfigMap(self, "Scripts", metadata=meta, data={BENCH_SCRIPT: bench_script()})
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=meta)
        secret_provider_class(self, "Secrets", name=self.name, labels=self.app_labels,
                              region=props.region, objects=[{
                                  "objectName": props.api_key_secret_arn,
                                  "objectAlias": "api-key"}])
        kind, workload = props.replicas_of.split("/", 1)
        group = "apps" if kind == "deployment" else "leaderworkerset.x-k8s.io"
        k8s.KubeRole(self, "Role", metadata=meta, rules=[k8s.PolicyRule(
            api_groups=[group], resources=[f"{kind}s"], resource_names=[workload],
            verbs=["get"])])
        k8s.KubeRoleBinding(self, "RoleBinding", metadata=meta,
                            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io",
                                                 kind="Role", name=self.name),
                            subjects=[k8s.Subject(kind="ServiceAccount", name=self.name,
                                                  namespace=props.namespace)])
        k8s.KubeNetworkPolicy(self, "NetworkPolicy", metadata=meta, spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels=self.app_labels),
            policy_types=["Ingress", "Egress"], ingress=[],
            # The router (its policy lets these pods in), S3, Secrets Manager, the
            # Kubernetes API and the Pod Identity agent; DNS is open namespace-wide.
            egress=[k8s.NetworkPolicyEgressRule(to=[k8s.NetworkPolicyPeer(
                pod_selector=k8s.LabelSelector(match_labels=ROUTER_LABELS))]),
                *egress_to_aws_apis()]))
        for dataset in props.benchmark.datasets:
            args = self.bench_args(dataset)
            check_bench_args(args, owner=f"benchmark of {key} ({dataset.value})")
            k8s.KubeCronJob(
                self, f"CronJob{WORKLOAD_NAMES[dataset].capitalize()}",
                metadata=k8s.ObjectMeta(name=benchmark_cronjob(key, dataset),
                                        labels=self.app_labels),
                spec=k8s.CronJobSpec(schedule=SUSPENDED_SCHEDULE, suspend=True,
                                     concurrency_policy="Forbid",
                                     job_template=k8s.JobTemplateSpec(
                                         spec=self._job_spec(dataset, args))))

    # -- hooks -------------------------------------------------------------------------

    def bench_args(self, dataset: BenchDataset) -> list[str]:
        """`vllm bench serve` arguments of one workload (checked against the pinned
        parser). `--metadata` comes last: it records what the report prices and judges."""
        props, bench = self.props, self.props.benchmark
        plan = props.plan
        concurrency = bench.max_concurrency or plan.request.min_concurrency
        args = ["--backend", "openai", "--base-url", props.base_url,
                "--endpoint", "/v1/completions", "--model", props.served_name,
                "--tokenizer", f"{SCRATCH}/tokenizer",
                "--dataset-name", dataset.value, "--num-prompts", str(bench.num_prompts),
                "--request-rate", "inf" if math.isinf(bench.request_rate)
                else f"{bench.request_rate:g}",
                "--max-concurrency", str(concurrency), "--seed", "0",
                "--ready-check-timeout-sec", str(READY_TIMEOUT_SECONDS),
                "--percentile-metrics", "ttft,tpot,itl,e2el",
                "--metric-percentiles", "50,95,99",
                "--goodput", f"ttft:{props.ttft_slo_ms:g}",
                "--save-result", "--result-dir", f"{SCRATCH}/results",
                "--result-filename", "result.json"]
        if dataset is BenchDataset.RANDOM:
            args += ["--random-input-len", str(bench.input_len),
                     "--random-output-len", str(bench.output_len), "--ignore-eos"]
        elif dataset is BenchDataset.PREFIX_REPETITION:
            prefix = max(1, int(bench.input_len * SHARED_PREFIX_SHARE))
            args += ["--prefix-repetition-prefix-len", str(prefix),
                     "--prefix-repetition-suffix-len", str(max(1, bench.input_len - prefix)),
                     "--prefix-repetition-num-prefixes", str(SHARED_PREFIXES),
                     "--prefix-repetition-output-len", str(bench.output_len), "--ignore-eos"]
        else:
            args += ["--dataset-path", f"{SCRATCH}/{SHAREGPT_FILE}"]
        price = plan.chosen.usd_per_hour
        metadata = {"model_key": plan.model.key, "workload": dataset.value,
                    "instance_type": plan.chosen.instance.instance_type, "nodes": str(plan.nodes),
                    "ttft_slo_ms": f"{props.ttft_slo_ms:g}",
                    "usd_per_hour": "" if price is None else f"{price:g}"}
        return args + ["--metadata", *(f"{k}={v}" for k, v in metadata.items() if v)]

    # -- parts -------------------------------------------------------------------------

    def _job_spec(self, dataset: BenchDataset, args: list[str]) -> k8s.JobSpec:
        props = self.props
        env = {"AWS_REGION": props.region, "WEIGHTS_BUCKET": props.weights_bucket,
               "RESULT_PREFIX": f"{benchmark_results_prefix(props.plan.model.key)}"
                                f"{dataset.value}/",
               "API_KEY_FILE": f"{SECRETS_DIR}/api-key", "NAMESPACE": props.namespace,
               "REPLICAS_OF": props.replicas_of, "TOKENIZER_FILES": ",".join(TOKENIZER_FILES), "TTFT_SLO_MS": f"{props.ttft_slo_ms:g}",
               "SCRATCH_DIR": SCRATCH, "HOME": SCRATCH, "HF_HOME": f"{SCRATCH}/huggingface",
               "TMPDIR": SCRATCH, "VLLM_NO_USAGE_STATS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        if props.tokenizer_prefix is not None:
            env["TOKENIZER_S3_PREFIX"] = props.tokenizer_prefix
        else:
            env.update(HF_MODEL_ID=props.plan.model.hf_id, HF_REVISION=props.hf_revision)
            if props.hf_token_secret_arn:
                env["HF_TOKEN_SECRET_ARN"] = props.hf_token_secret_arn
        if dataset is BenchDataset.SHAREGPT:
            env["DATASET_S3_KEY"] = SHAREGPT_KEY
        container = vllm_image_container(
            name="bench", image=vllm_image(props.image_cache_prefix),
            command=["python3", f"{SCRIPTS_DIR}/{BENCH_SCRIPT}"], args=args,
            env=[k8s.EnvVar(name=k, value=v) for k, v in env.items()],
            resources=k8s.ResourceRequirements(
                requests={"cpu": k8s.Quantity.from_string("2"),
                          "memory": k8s.Quantity.from_string("4Gi")},
                limits={"memory": k8s.Quantity.from_string("8Gi")}),
            volume_mounts=[
                k8s.VolumeMount(name="scripts", mount_path=SCRIPTS_DIR, read_only=True),
                k8s.VolumeMount(name="scratch", mount_path=SCRATCH),
                k8s.VolumeMount(name="secrets", mount_path=SECRETS_DIR, read_only=True)])
        return k8s.JobSpec(
            # A retried run would mix two runs' load: a failed run is re-created by hand.
            backoff_limit=0,
            active_deadline_seconds=READY_TIMEOUT_SECONDS + 3600,
            ttl_seconds_after_finished=7 * 24 * 3600,  # its log stays a week
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels=self.app_labels),
                spec=k8s.PodSpec(
                    service_account_name=self.name, restart_policy="Never",
                    security_context=pod_security_context(),
                    affinity=cpu_nodes_only(),
                    containers=[container],
                    volumes=[
                        k8s.Volume(name="scripts", config_map=k8s.ConfigMapVolumeSource(
                            name=self.name)),
                        k8s.Volume(name="scratch", empty_dir=k8s.EmptyDirVolumeSource(
                            size_limit=k8s.Quantity.from_string("10Gi"))),
                        k8s.Volume(name="secrets", csi=k8s.CsiVolumeSource(
                            driver=SECRETS_STORE_DRIVER, read_only=True,
                            volume_attributes={"secretProviderClass": self.name}))])))
