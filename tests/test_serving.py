"""The vLLM service: pod spec from the plan, cold-start-aware probes, the endpoint, the API
key path, the weights staging, NetworkPolicies and outputs."""

from __future__ import annotations

import json
import re

import pytest

from vllm_eks import versions
from vllm_eks.k8s_charts import router
from vllm_eks.k8s_charts.model_pods import server_account
from vllm_eks.k8s_charts.vllm import PRE_STOP_SECONDS, SHUTDOWN_TIMEOUT_SECONDS, app_name
from vllm_eks.k8s_charts.weights_staging import stager_name
from vllm_eks.models import get_model
from vllm_eks.models.catalog import BUILT_IN_MODELS
from vllm_eks.k8s_charts.benchmark import benchmark_account
from vllm_eks.models import GPU_INSTANCES
from vllm_eks.models.sources import ModelSource, startup_budget_seconds
from vllm_eks.naming import pascal_case
from vllm_eks.stacks import CLUSTER_STACK_ID, PROD_STACK_ID

from .conftest import CERTIFICATE_ARN
from .support import KUBERNETES_RESOURCE

PROD, CLUSTER = PROD_STACK_ID, CLUSTER_STACK_ID
HELM = "Custom::AWSCDK-EKS-HelmChart"


def objects(env) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in env.manifests()}


def server(env) -> dict:
    return objects(env)[("Deployment", app_name(env.config.models[0].plan.model.key))]


def vllm_container(env) -> dict:
    (container,) = server(env)["spec"]["template"]["spec"]["containers"]
    return container


def ingress(env) -> dict:
    """The environment's one Ingress: the router's."""
    (found,) = [o for (kind, _), o in objects(env).items() if kind == "Ingress"
                and o["metadata"].get("namespace") == "inference"]
    assert found["metadata"]["name"] == router.ROUTER_NAME
    return found


def alb_path_pattern(pattern: str) -> re.Pattern:
    """An ALB path-pattern condition as a regex: it matches the whole path, `*` matches
    any characters (`/` included) and `?` exactly one; everything else is literal. The
    AWS Load Balancer Controller passes an `ImplementationSpecific` path through as such a
    pattern, so `/*` routes every path."""
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char)
             for char in pattern)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def routed(ingress_object: dict, path: str) -> bool:
    """Whether an HTTP request for `path` reaches a backend, by the Ingress path rules
    as the AWS Load Balancer Controller programs them (Exact: equal; Prefix: element-wise
    prefix; ImplementationSpecific: an ALB path pattern with `*` and `?` wildcards)."""
    spec = ingress_object["spec"]
    for rule in spec["rules"]:
        for entry in rule["http"]["paths"]:
            kind, prefix = entry["pathType"], entry["path"]
            if kind == "Exact" and path == prefix:
                return True
            if kind == "Prefix":
                base = prefix.rstrip("/")
                if base == "" or path == base or path.startswith(base + "/"):
                    return True
            if kind == "ImplementationSpecific" and alb_path_pattern(prefix).match(path):
                return True
    return "defaultBackend" in spec


# -- the pod from the plan ------------------------------------------------------------


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_gpu_limit_is_the_placements_gpus(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    resources = vllm_container(env)["resources"]
    expected = str(env.config.models[0].plan.gpus)
    assert resources["limits"]["nvidia.com/gpu"] == expected
    assert resources["requests"]["nvidia.com/gpu"] == expected
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert "cpu" in resources["requests"] and "cpu" not in resources["limits"]


def test_deepseek_r1_args(deepseek_env):
    args = vllm_container(deepseek_env)["args"]
    assert args[0].startswith("s3://") and args[0].endswith("/deepseek-r1/main/")
    joined = " ".join(args)
    assert "--tensor-parallel-size 8" in joined
    assert "--enable-expert-parallel" in args
    assert "--reasoning-parser deepseek_r1" in joined
    assert "--load-format runai_streamer" in joined
    assert "--served-model-name deepseek-r1" in joined
    assert "--max-model-len 65536" in joined
    # The weights are FP8 already; vLLM must not be told to quantize them.
    assert "--quantization" not in args and "fp8" not in joined
    loader = json.loads(args[args.index("--model-loader-extra-config") + 1])
    assert loader["distributed"] is True


def test_default_model_args_single_gpu(default_env):
    args = vllm_container(default_env)["args"]
    joined = " ".join(args)
    assert "--tensor-parallel-size 1" in joined
    assert "--enable-expert-parallel" not in args  # dense model
    assert "--api-key" not in args  # the key comes from the mounted secret, not the spec


def test_image_is_the_pinned_vllm(default_env):
    deployment = server(default_env)["spec"]["template"]["spec"]
    images = {c["image"] for c in deployment["containers"] + deployment["initContainers"]}
    assert images == {versions.VLLM_IMAGE}
    assert not versions.VLLM_IMAGE.endswith(":latest")


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_pod_lands_on_planned_gpu_nodes(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    spec = server(env)["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"]
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    instance_type, capacity = term["matchExpressions"]
    assert instance_type["key"] == "node.kubernetes.io/instance-type"
    assert instance_type["values"][0] == env.config.models[0].plan.instance_type
    assert capacity == {"key": "karpenter.sh/capacity-type", "operator": "In",
                        "values": ["on-demand"]}
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"


def test_shared_memory_is_a_memory_volume(deepseek_env):
    spec = server(deepseek_env)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["mountPath"]: m["name"] for m in vllm_container(deepseek_env)["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm"


def _startup_budget(env) -> int:
    probe = vllm_container(env)["startupProbe"]
    return probe["periodSeconds"] * probe["failureThreshold"]


def test_startup_budget_grows_with_the_weights(default_env, deepseek_env):
    small, large = _startup_budget(default_env), _startup_budget(deepseek_env)
    assert small >= 600  # even a small model gets its engine start (compile, graphs)
    assert large > small  # 688 GB is not loaded in a small model's window
    assert large >= deepseek_env.config.models[0].plan.model.weight_bytes / 1e9  # >= 1 s per GB


@pytest.mark.parametrize("source", list(ModelSource))
def test_startup_budget_is_monotonic_in_size_for_every_source(source):
    models = sorted(BUILT_IN_MODELS, key=lambda m: m.weight_bytes)
    instance = GPU_INSTANCES["p5en.48xlarge"]  # one type: only the size varies
    budgets = [startup_budget_seconds(m, source, instance) for m in models]
    assert budgets == sorted(budgets)


def test_slower_load_paths_get_longer_budgets():
    model = get_model("deepseek-r1-distill-llama-70b")
    instance = GPU_INSTANCES["p5en.48xlarge"]
    s3, efs, hf = (startup_budget_seconds(model, s, instance) for s in
                   (ModelSource.S3, ModelSource.EFS, ModelSource.HF))
    assert s3 < efs < hf


def test_health_probes_and_draining(default_env):
    container = vllm_container(default_env)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": PRE_STOP_SECONDS}}
    args = container["args"]
    assert args[args.index("--shutdown-timeout") + 1] == str(SHUTDOWN_TIMEOUT_SECONDS)
    grace = server(default_env)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > PRE_STOP_SECONDS + SHUTDOWN_TIMEOUT_SECONDS
    # `exec` makes vLLM PID 1, so SIGTERM reaches it and it drains.
    assert 'exec vllm serve "$@"' in container["command"][2]


def test_liveness_tolerates_a_busy_engine_for_a_minute(default_env):
    """A restart reloads the weights (minutes): /health answering slowly under a long
    prefill must not kill the pod; readiness takes it out of rotation first."""
    container = vllm_container(default_env)
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60
    assert liveness["timeoutSeconds"] >= 10
    assert (readiness["periodSeconds"] * readiness["failureThreshold"]
            < liveness["periodSeconds"] * liveness["failureThreshold"])


def test_pod_security_is_restricted(default_env):
    spec = server(default_env)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for container in spec["containers"] + spec["initContainers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    namespace = objects(default_env)[("Namespace", "inference")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rollout_surges_and_disruption_budget_allows_drains(default_env):
    deployment = server(default_env)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                               "maxUnavailable": 0}
    budget = objects(default_env)[("PodDisruptionBudget", app_name(
        default_env.config.models[0].plan.model.key))]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_service_is_cluster_ip_on_the_vllm_port(default_env):
    service = objects(default_env)[("Service", app_name(default_env.config.models[0].plan.model.key))]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "protocol": "TCP",
                                         "targetPort": "http"}]


# -- weights ------------------------------------------------------------------------------


def test_weights_are_staged_by_a_job_then_awaited(default_env):
    jobs = [o for o in default_env.manifests() if o["kind"] == "Job"]
    (job,) = jobs
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    model = default_env.config.models[0].plan.model
    assert env["HF_MODEL_ID"] == model.hf_id
    assert env["MODEL_PREFIX"] == f"{model.key}/main/"
    assert env["HF_REVISION"] == "main"
    assert "HuggingFaceTokenSecret" in env["HF_TOKEN_SECRET_ARN"]  # an ARN, not a token
    assert container["command"][-1] == "stage"
    (wait,) = server(default_env)["spec"]["template"]["spec"]["initContainers"]
    assert wait["command"][-1] == "wait"
    # The Job copies on CPU nodes; a GPU node is never held by (or launched for) it.
    spec = job["spec"]["template"]["spec"]
    assert "tolerations" not in spec
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "vllm-eks.io/node-role", "operator": "In",
                                         "values": ["system", "general"]}]
    # Consolidation of the general pool never evicts a copy that may run for hours.
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"karpenter.sh/do-not-disrupt": "true"}
    scripts = objects(default_env)[("ConfigMap", app_name(model.key, "scripts"))]
    script = scripts["data"]["stage_weights.py"]
    assert "MARKER" in script and "def wait" in script


def test_staging_job_name_changes_with_its_spec(default_env, deepseek_env):
    """Jobs are immutable: a different model or image yields a new Job, not a failed apply."""
    def job_name(env):
        (job,) = [o for o in env.manifests() if o["kind"] == "Job"]
        return job["metadata"]["name"]

    assert job_name(default_env) != job_name(deepseek_env)
    assert re.fullmatch(r"stage-vllm-deepseek-r1-[0-9a-f]{8}", job_name(deepseek_env))


def test_server_reads_only_its_models_prefix(default_env):
    roles = default_env.resources(PROD, "AWS::IAM::Role")
    (role,) = [r for k, r in roles.items() if k.startswith("VllmServiceServerRole")]
    statements = {s["Sid"]: s for p in role["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"]}
    prefix = f"{default_env.config.models[0].plan.model.key}/"
    assert statements["ModelObjects"]["Action"] == "s3:GetObject"
    assert json.dumps(statements["ModelObjects"]["Resource"]).endswith(f'/{prefix}*"]]}}')
    assert statements["ListModelPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}
    associations = {a["Properties"]["ServiceAccount"]: a["Properties"]
                    for a in default_env.resources(PROD, "AWS::EKS::PodIdentityAssociation")
                    .values()}
    key = default_env.config.models[0].key
    assert sorted(associations) == sorted([server_account(key), stager_name(key),
                                           benchmark_account(key), router.ROUTER_NAME])
    assert {a["Namespace"] for a in associations.values()} == {"inference"}
    # Not the names the one-model layout associated under other logical IDs: CloudFormation
    # would create the new association first, and EKS refuses a second one per account.
    assert not {app_name(key), f"{app_name(key)}-stager"} & set(associations)
    deployment = server(default_env)["spec"]["template"]["spec"]
    assert deployment["serviceAccountName"] == server_account(key)


def test_pods_are_applied_only_after_their_identity_exists(default_env):
    """EKS injects Pod Identity credentials when a pod is admitted: the association and
    the role's policies must exist before the manifests that create the pods."""
    resources = default_env.templates[PROD]["Resources"]

    def logical_id(prefix: str, resource_type: str) -> str:
        (found,) = [k for k, r in resources.items()
                    if k.startswith(prefix) and r["Type"] == resource_type]
        return found

    manifest, association = KUBERNETES_RESOURCE, "AWS::EKS::PodIdentityAssociation"
    model = pascal_case(default_env.config.models[0].key)
    for pods, role, suffix in (("Server", "Server", model), ("WeightsStaging", "Stager", model),
                               ("Router", "Router", "")):
        depends_on = set(resources[logical_id(f"VllmService{pods}{suffix}", manifest)][
            "DependsOn"])
        assert {logical_id(f"VllmService{role}PodIdentity{suffix}", association),
                logical_id(f"VllmService{role}Role{suffix}", "AWS::IAM::Role"),
                logical_id(f"VllmService{role}Role{suffix}DefaultPolicy", "AWS::IAM::Policy"),
                } <= depends_on, pods


def test_efs_source_mounts_the_shared_cache_read_only(public_efs_env):
    spec = server(public_efs_env)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": "model-cache",
                                                               "readOnly": True}
    args = vllm_container(public_efs_env)["args"]
    assert args[0] == f"/models/{public_efs_env.config.models[0].plan.model.key}/main"
    assert "--load-format" not in args


# -- the API key ---------------------------------------------------------------------------


_LEAKS = [
    re.compile(r"resolve:secretsmanager"),  # a dynamic reference resolves into the template
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),  # a Hugging Face token
    re.compile(r'"SecretString"\s*:'),  # a secret value set in CloudFormation
    re.compile(r"--api-key"),  # vLLM's flag: the key would sit in the pod spec
    re.compile(r'"name"\s*:\s*"(VLLM_API_KEY|HF_TOKEN)"\s*,\s*"value"'),
]


def secret_leaks(text: str) -> list[str]:
    return [pattern.pattern for pattern in _LEAKS if pattern.search(text)]


def test_leak_scan_detects_a_planted_key():
    planted = '{"env": [{"name": "VLLM_API_KEY", "value": "abc"}]}'
    assert secret_leaks(planted)
    assert secret_leaks('{"SecretString": "hunter2"}')
    assert not secret_leaks('{"GenerateSecretString": {"PasswordLength": 48}}')


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env", "public_efs_env",
                                         "front_door_env"])
def test_no_secret_value_in_any_synthesized_file(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    files = env.text_files()
    assert len(files) > 4 and any(p.name == "index.py" for p in files)  # handlers too
    for path in files:
        text = path.read_text(errors="ignore")
        # Manifests embed JSON as strings: unescape so the patterns see the JSON.
        text += text.replace('\\"', '"')
        assert not secret_leaks(text), path


def test_api_key_is_generated_in_secrets_manager_and_mounted(default_env):
    (secret,) = default_env.resources(PROD, "AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    name = app_name(default_env.config.models[0].plan.model.key)
    spc = objects(default_env)[("SecretProviderClass", f"{name}-secrets")]
    parameters = spc["spec"]["parameters"]
    assert parameters["usePodIdentity"] == "true"
    (api_key,) = json.loads(parameters["objects"])
    assert api_key["objectAlias"] == "api-key"
    assert api_key["objectName"].startswith("${Ref:VllmServiceApiKey")
    assert not [o for o in default_env.manifests() if o["kind"] == "Secret"]
    container = vllm_container(default_env)
    launcher = container["command"][2]
    assert launcher.startswith("set -eu; ")
    # An empty key would turn vLLM's authentication off: the container fails instead.
    assert '[ -n "$VLLM_API_KEY" ] || {' in launcher and "exit 1" in launcher
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secrets"]["readOnly"] is True


def test_secrets_store_driver_rotates_and_runs_on_gpu_nodes(default_env):
    charts = {r["Properties"]["Chart"]: r["Properties"]
              for r in default_env.resources(CLUSTER, HELM).values()}
    driver = charts["secrets-store-csi-driver"]
    assert driver["Version"] == versions.SECRETS_STORE_CSI_CHART_VERSION
    values = json.loads(driver["Values"])
    assert values["enableSecretRotation"] is True
    assert values["syncSecret"] == {"enabled": False}
    assert values["linux"]["tolerations"] == [{"operator": "Exists"}]
    # The AWS provider takes the pod's Pod Identity token from the driver.
    assert values["tokenRequests"] == [{"audience": "pods.eks.amazonaws.com"}]
    provider = charts["secrets-store-csi-driver-provider-aws"]
    assert provider["Version"] == versions.SECRETS_STORE_AWS_PROVIDER_CHART_VERSION
    assert json.loads(provider["Values"])["tolerations"] == [{"operator": "Exists"}]


# -- the endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize("env_fixture", ["default_env", "public_efs_env"])
def test_only_the_openai_api_and_health_are_routed(env_fixture, request):
    rules = ingress(request.getfixturevalue(env_fixture))
    assert routed(rules, "/v1/chat/completions")
    assert routed(rules, "/v1/models")
    assert routed(rules, "/health")
    for path in ("/invocations", "/metrics", "/v2/models", "/", "/version", "/v1x",
                 "/engines", "/v1/files", "/v1/batches", "/v1/models/x", "/sleep"):
        assert not routed(rules, path), path


@pytest.mark.parametrize("env_fixture", ["default_env", "public_efs_env", "options_env"])
def test_the_api_ingress_routes_exact_paths_to_the_router_only(env_fixture, request):
    spec = ingress(request.getfixturevalue(env_fixture))["spec"]
    assert "defaultBackend" not in spec
    (rule,) = spec["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/v1/chat/completions", "Exact"), ("/v1/completions", "Exact"),
        ("/v1/responses", "Exact"), ("/v1/models", "Exact"), ("/health", "Exact")]
    backends = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    # /v1/models is the load balancer's fixed list of the served names.
    assert backends.pop("/v1/models") == router.MODELS_ACTION
    assert set(backends.values()) == {router.ROUTER_NAME}
    annotations = ingress(request.getfixturevalue(env_fixture))["metadata"]["annotations"]
    listed = json.loads(json.loads(annotations[
        f"alb.ingress.kubernetes.io/actions.{router.MODELS_ACTION}"])["fixedResponseConfig"][
        "messageBody"])
    env = request.getfixturevalue(env_fixture)
    assert [m["id"] for m in listed["data"]] == [m.served_name for m in env.config.models]


@pytest.mark.parametrize("entry, path", [
    ({"path": "/", "pathType": "Prefix"}, "/invocations"),
    ({"path": "/*", "pathType": "ImplementationSpecific"}, "/invocations"),
    ({"path": "/inv?cations", "pathType": "ImplementationSpecific"}, "/invocations"),
    ({"path": "/invocations", "pathType": "Exact"}, "/invocations"),
])
def test_route_check_honours_each_path_type(entry, path):
    ingress_object = {"spec": {"rules": [{"http": {"paths": [entry]}}]}}
    assert routed(ingress_object, path)


def test_route_check_reads_patterns_as_whole_path_matches():
    literal = {"spec": {"rules": [{"http": {"paths": [
        {"path": "/v1", "pathType": "ImplementationSpecific"}]}}]}}
    assert routed(literal, "/v1") and not routed(literal, "/v1/models")
    assert not routed(literal, "/v1x") and not routed(literal, "/invocations")
    assert routed({"spec": {"rules": [], "defaultBackend": {}}}, "/invocations")


def test_internal_endpoint_by_default(default_env):
    annotations = ingress(default_env)["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.0.0.0/16"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
    assert "alb.ingress.kubernetes.io/certificate-arn" not in annotations


@pytest.mark.parametrize("env_fixture", ["default_env", "public_efs_env"])
def test_streams_are_not_cut_by_the_load_balancer(env_fixture, request):
    annotations = ingress(request.getfixturevalue(env_fixture))["metadata"]["annotations"]
    attributes = dict(item.split("=") for item in annotations[
        "alb.ingress.kubernetes.io/load-balancer-attributes"].split(","))
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 600
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/health"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    delay = annotations["alb.ingress.kubernetes.io/target-group-attributes"]
    assert f"deregistration_delay.timeout_seconds={router.PRE_STOP_SECONDS + router.DRAIN_SECONDS}" in delay


def test_public_endpoint_is_https_with_redirect(public_efs_env):
    annotations = ingress(public_efs_env)["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE_ARN
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert {"HTTPS": 443} in json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"])
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "203.0.113.0/24"
    outputs = public_efs_env.templates[PROD]["Outputs"]
    # The name on the certificate, not the ALB's own DNS name (which TLS would refuse).
    assert outputs["EndpointUrl"]["Value"] == "https://llm.example.com"
    assert "Fn::GetAtt" in json.dumps(outputs["LoadBalancerDnsName"]["Value"])


def test_load_balancer_controller_is_pinned_and_told_its_region_and_vpc(default_env):
    charts = {r["Properties"]["Chart"]: r["Properties"]
              for r in default_env.resources(CLUSTER, HELM).values()}
    controller = charts["aws-load-balancer-controller"]
    assert controller["Version"] == versions.ALB_CONTROLLER_CHART_VERSION
    assert controller["Wait"] is True
    values = json.loads(render(controller["Values"]))
    assert values["region"] == "us-east-1"
    assert values["vpcId"].startswith("${Import:")  # no IMDS lookup from the pod
    assert values["nodeSelector"] == {"vllm-eks.io/node-role": "system"}
    associations = [a["Properties"] for a in default_env.resources(
        CLUSTER, "AWS::EKS::PodIdentityAssociation").values()]
    assert {"aws-load-balancer-controller"} <= {a["ServiceAccount"] for a in associations}


def render(value) -> str:
    from .support import render_intrinsics
    return render_intrinsics(value)


# -- network policy ---------------------------------------------------------------------


def test_namespace_denies_by_default_and_allows_dns(default_env):
    policies = {name: o["spec"] for (kind, name), o in objects(default_env).items()
                if kind == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (dns,) = policies["allow-dns"]["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}


@pytest.mark.parametrize("env_fixture", ["default_env", "options_env"])
def test_models_accept_only_the_router_and_prometheus(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    router_pods = objects(env)[("Deployment", router.ROUTER_NAME)]["spec"]["template"]
    for model in env.config.models:
        policy = objects(env)[("NetworkPolicy", app_name(model.key))]["spec"]
        sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
        assert sources == [
            {"podSelector": {"matchLabels": router.ROUTER_LABELS}},
            {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "monitoring"}}}]
        assert all(router_pods["metadata"]["labels"][k] == v
                   for k, v in router.ROUTER_LABELS.items())
        assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {8000}
    # No other pod carries the router's labels.
    for (kind, name), obj in objects(env).items():
        if kind == "Deployment" and name != router.ROUTER_NAME:
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert not all(labels.get(k) == v for k, v in router.ROUTER_LABELS.items())


@pytest.mark.parametrize("env_fixture", ["default_env", "public_efs_env"])
def test_router_accepts_only_the_load_balancer_and_prometheus(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    policy = objects(env)[("NetworkPolicy", router.ROUTER_NAME)]["spec"]
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    cidrs = {p["ipBlock"]["cidr"] for p in sources if "ipBlock" in p}
    network = env.templates["VllmNetworkStack"]["Resources"]
    public = env.config.endpoint.scheme.value == "internet-facing"
    # The ALB sends from its own subnets: the public ones, or the isolated load-balancer
    # subnets. Never the node subnets, where every pod of the cluster has its address.
    subnet_kind = "Public" if public else "LoadBalancer"
    expected = {r["Properties"]["CidrBlock"] for k, r in network.items()
                if r["Type"] == "AWS::EC2::Subnet" and f"Vpc{subnet_kind}Subnet" in k}
    assert cidrs == expected and len(cidrs) == 3
    node_subnets = {r["Properties"]["CidrBlock"] for k, r in network.items()
                    if r["Type"] == "AWS::EC2::Subnet" and "VpcPrivateSubnet" in k}
    assert not cidrs & node_subnets
    assert {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}} in sources
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {router.PORT}


# -- outputs ------------------------------------------------------------------------------


def test_outputs_tell_a_user_how_to_call_it(default_env):
    outputs = default_env.templates[PROD]["Outputs"]
    assert {"EndpointUrl", "ApiKeySecretArn", "ModelS3Uris", "Models",
            "UpdateKubeconfigCommand"} <= set(outputs)
    assert outputs["Models"]["Value"] == default_env.config.models[0].key
    assert outputs["ApiKeySecretArn"]["Value"] == {"Ref": next(iter(
        default_env.resources(PROD, "AWS::SecretsManager::Secret")))}
    assert "aws eks update-kubeconfig" in outputs["UpdateKubeconfigCommand"]["Value"]
    uri = render(outputs["ModelS3Uris"]["Value"])
    assert uri.startswith("s3://")
    assert uri.endswith(f"/{default_env.config.models[0].plan.model.key}/main/")
