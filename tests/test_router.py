"""The router chart on its own (no CDK synth): valid Kubernetes, the pinned image and its
entrypoint, flags that the pinned router's parser defines, pods-read-only RBAC, the one
Ingress's exact paths, the NetworkPolicy, the pod's security, probes, resources and
draining, the PodMonitor's renaming of the router's `vllm:` series, and the API key only
ever named by its ARN. Upstream files are in tests/fixtures/router (SOURCES.txt)."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from vllm_eks import metrics, versions
from vllm_eks.k8s_charts import render
from vllm_eks.k8s_charts.model_pods import BENCHMARK_LABELS, ROUTER_LABELS
from vllm_eks.k8s_charts.monitoring import PROMETHEUS_SELECTOR_LABELS
from vllm_eks.k8s_charts.router import (
    API_PATHS,
    MODELS_ACTION,
    DRAIN_SECONDS,
    MODEL_SELECTOR,
    PRE_STOP_SECONDS,
    ROUTER_NAME,
    IngressSettings,
    RouterChart,
    RouterChartProps,
)
from vllm_eks.k8s_charts.router_pod import ENTRYPOINT
from vllm_eks.k8s_charts.vllm_pod import PORT as VLLM_PORT
from vllm_eks.k8s_charts.vllm_pod import SHUTDOWN_TIMEOUT_SECONDS as VLLM_DRAIN_SECONDS
from vllm_eks.labels import GPU_TAINT_KEY, NODE_ROLE_LABEL

from .crd_validation import has_crd, validate_custom_resource
from .test_serving import routed

UPSTREAM = Path(__file__).parent / "fixtures" / "router"
KUBERNETES = f"{versions.KUBERNETES_MINOR}.0"
# What a CDK token looks like once cdk8s renders it: the chart must pass it through.
SECRET_ARN = "${Token[TOKEN.1234]}"
SERVED = ("deepseek-r1-distill-llama-8b", "deepseek-r1-distill-qwen-1.5b")
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def props(**overrides) -> RouterChartProps:
    values = dict(
        api_key_secret_arn=SECRET_ARN, region="us-east-1",
        ingress=IngressSettings(scheme="internal", certificate_arn=None,
                                allowed_cidrs=("10.0.0.0/16",)),
        served_models=SERVED,
        load_balancer_cidrs=("10.0.192.0/24", "10.0.193.0/24", "10.0.194.0/24"))
    return RouterChartProps(**{**values, **overrides})


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return render(RouterChart, ROUTER_NAME, props=props()).to_json()


@pytest.fixture(scope="module")
def https_ingress() -> dict:
    """The Ingress of a public HTTPS endpoint (the certificate branch)."""
    chart = render(RouterChart, ROUTER_NAME, props=props(ingress=IngressSettings(
        scheme="internet-facing", certificate_arn=CERTIFICATE,
        allowed_cidrs=("203.0.113.0/24",))))
    return one(chart.to_json(), "Ingress")


def one(objects: list[dict], kind: str) -> dict:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def pod(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]["spec"]


def container(objects: list[dict]) -> dict:
    (router,) = pod(objects)["containers"]
    return router


def pod_labels(objects: list[dict]) -> dict[str, str]:
    return one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# -- validators ---------------------------------------------------------------------------


def validate(obj: dict) -> None:
    if has_crd(obj):
        validate_custom_resource(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_manifests_are_valid_kubernetes_and_custom_resources(manifests):
    assert sorted(o["kind"] for o in manifests) == sorted([
        "ServiceAccount", "Role", "RoleBinding", "SecretProviderClass", "Deployment",
        "Service", "PodDisruptionBudget", "Ingress", "NetworkPolicy", "PodMonitor"])
    for obj in manifests:
        validate(obj)
        assert obj["metadata"]["namespace"] == "inference", obj["kind"]
    assert {o["kind"] for o in manifests if has_crd(o)} == {"SecretProviderClass", "PodMonitor"}


def test_validators_reject_a_misspelt_field(manifests):
    monitor = copy.deepcopy(one(manifests, "PodMonitor"))
    monitor["spec"]["podMetricsEndpoints"][0]["metricRelabelings"][0]["targetLable"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)
    deployment = copy.deepcopy(one(manifests, "Deployment"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


# -- the image and the command line -------------------------------------------------------


def fixture_commits() -> set[str]:
    lines = (UPSTREAM / "SOURCES.txt").read_text().splitlines()
    return {m[1] for m in map(re.compile(r"^\S+\s+<-\s+\S+\s+@\s+(\S+)\s+:").match, lines) if m}


def test_image_is_pinned_to_the_commit_the_fixtures_come_from(manifests):
    image = container(manifests)["image"]
    assert image == versions.ROUTER_IMAGE
    repository, _, tag = image.rpartition(":")
    # A commit tag (40 hex) or a digest; never a version tag, which upstream re-pushes.
    assert (re.fullmatch(r"[0-9a-f]{40}", tag) and repository.endswith("/router")
            or re.fullmatch(r".+@sha256:[0-9a-f]{64}", image)), image
    assert tag == versions.ROUTER_COMMIT
    assert fixture_commits() == {versions.ROUTER_COMMIT}


def upstream_flags() -> dict[str, dict]:
    """Every `--flag` the pinned parser.py adds: its `choices`, `type` and `action`."""
    flags = {}
    for node in ast.walk(ast.parse((UPSTREAM / "parser.py").read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument" and node.args
                and isinstance(node.args[0], ast.Constant)):
            keywords = {k.arg: k.value for k in node.keywords}
            flags[node.args[0].value] = {
                "choices": ast.literal_eval(keywords["choices"]) if "choices" in keywords
                else None,
                "type": keywords["type"].id if isinstance(keywords.get("type"), ast.Name)
                else None,
                "takes_value": not (isinstance(keywords.get("action"), ast.Constant)
                                    and keywords["action"].value.startswith("store_")),
            }
    return flags


def check_router_args(args: list[str]) -> None:
    """Raise ValueError for an unknown flag, a value outside its choices or of the wrong
    type, or a value without a flag."""
    flags = upstream_flags()
    tokens = iter(args)
    for flag in tokens:
        if flag not in flags:
            raise ValueError(f"{flag} is not a flag of the pinned router")
        spec = flags[flag]
        if not spec["takes_value"]:
            continue
        value = next(tokens, None)
        if value is None or value.startswith("--"):
            raise ValueError(f"{flag} needs a value")
        if spec["choices"] is not None and value not in spec["choices"]:
            raise ValueError(f"{flag} {value}: not one of {spec['choices']}")
        if spec["type"] == "int":
            int(value)


def test_every_flag_is_defined_by_the_pinned_routers_parser(manifests):
    assert len(upstream_flags()) > 40  # the parser was read, not an empty file
    args = container(manifests)["args"]
    check_router_args(args)
    values = dict(zip(args[::2], args[1::2], strict=True))
    assert values["--service-discovery"] == "k8s"
    assert values["--k8s-service-discovery-type"] == "pod-ip"
    assert values["--k8s-namespace"] == "inference"
    assert values["--k8s-port"] == str(VLLM_PORT)
    assert values["--k8s-label-selector"] == ",".join(f"{k}={v}" for k, v in MODEL_SELECTOR.items())
    assert values["--port"] == "8001"


@pytest.mark.parametrize(("args", "message"), [
    (["--routing-logic", "sesion"], r"not one of"),
    (["--k8s-label-selecter", "a=b"], r"not a flag of the pinned router"),
    (["--engine-stats-interval", "15s"], r"invalid literal"),
    (["--session-key"], r"needs a value"),
])
def test_the_flag_check_rejects_what_the_router_would(args, message):
    with pytest.raises(ValueError, match=message):
        check_router_args(args)


def test_routing_is_by_session_header_and_never_logs_at_debug(manifests):
    values = dict(zip(*[iter(container(manifests)["args"])] * 2, strict=True))
    assert values["--routing-logic"] == "session"  # prefixaware's tree never evicts (#687)
    assert values["--session-key"] == "x-session-id"
    # At debug the router logs request headers, Authorization included.
    assert values["--log-level"] in {"info", "warning", "error", "critical"}
    assert values["--log-format"] == "json"


def test_the_launcher_execs_the_images_entrypoint_with_the_key_from_the_file(manifests):
    dockerfile = (UPSTREAM / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT \[\"([^\"]+)\"\]", dockerfile, re.MULTILINE)
    assert ENTRYPOINT == entrypoint
    # A Debian "slim" base built with shell-form RUN steps: /bin/sh is in the image.
    assert re.search(r"^FROM python:[\d.]+-slim\s*$", dockerfile, re.MULTILINE)
    command = container(manifests)["command"]
    assert command[:2] == ["/bin/sh", "-c"] and command[3] == ROUTER_NAME
    steps = command[2].split("; ")
    assert steps[0] == "set -eu"
    assert steps[1] == 'VLLM_API_KEY="$(cat /var/run/secrets/vllm-eks/api-key)"'
    assert steps[2].startswith('[ -n "$VLLM_API_KEY" ] || {') and "exit 1" in command[2]
    assert steps[-2:] == ["export VLLM_API_KEY", f'exec {entrypoint} "$@"']


# -- RBAC -----------------------------------------------------------------------------------


def test_rbac_is_read_only_on_pods_of_its_own_namespace(manifests):
    assert not [o for o in manifests if o["kind"].startswith("Cluster")]
    role = one(manifests, "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]}]
    binding = one(manifests, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ROUTER_NAME,
                                    "namespace": "inference"}]
    spec = pod(manifests)
    assert spec["serviceAccountName"] == ROUTER_NAME
    assert spec["automountServiceAccountToken"] is True  # it watches pods through the API
    assert one(manifests, "ServiceAccount")["metadata"]["name"] == ROUTER_NAME


# -- the endpoint ---------------------------------------------------------------------------


def upstream_routes() -> set[str]:
    """The paths main_router.py serves (`@main_router.get/post("<path>")`)."""
    routes = set()
    for node in ast.walk(ast.parse((UPSTREAM / "main_router.py").read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "main_router" and node.args):
            routes.add(node.args[0].value)
    return routes


def test_the_ingress_routes_exactly_the_api_paths(manifests):
    ingress = one(manifests, "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "alb" and "defaultBackend" not in spec
    (rule,) = spec["rules"]
    paths = rule["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [
        ("/v1/chat/completions", "Exact"), ("/v1/completions", "Exact"),
        ("/v1/responses", "Exact"), ("/v1/models", "Exact"), ("/health", "Exact")]
    backends = {p["path"]: p["backend"]["service"] for p in paths}
    # The model list is the load balancer's own answer; everything else goes to the router.
    assert backends.pop("/v1/models") == {"name": MODELS_ACTION,
                                          "port": {"name": "use-annotation"}}
    assert all(b == {"name": ROUTER_NAME, "port": {"name": "http"}}
               for b in backends.values())
    for path in API_PATHS:
        assert routed(ingress, path), path
    for path in ("/invocations", "/metrics", "/engines", "/version", "/v1/files",
                 "/v1/batches", "/v1/embeddings", "/sleep", "/wake_up", "/tokenize", "/",
                 "/v1", "/v1/chat/completions/x", "/v1/models/x"):
        assert not routed(ingress, path), path


def test_models_are_listed_by_name_only_without_reaching_the_router(manifests):
    annotations = one(manifests, "Ingress")["metadata"]["annotations"]
    action = json.loads(annotations[f"alb.ingress.kubernetes.io/actions.{MODELS_ACTION}"])
    assert action["type"] == "fixed-response"
    config = action["fixedResponseConfig"]
    assert (config["statusCode"], config["contentType"]) == ("200", "application/json")
    body = json.loads(config["messageBody"])
    assert [m["id"] for m in body["data"]] == list(SERVED)
    # OpenAI's model object, and nothing about where the weights are.
    assert all(set(m) == {"id", "object", "created", "owned_by"} for m in body["data"])
    assert len(config["messageBody"].encode()) <= 1024  # the ALB's limit


def test_too_many_models_for_the_fixed_model_list_are_refused():
    many = tuple(f"model-with-a-rather-long-served-name-{i}" for i in range(12))
    with pytest.raises(ValueError, match=r"the /v1/models answer for 12 models is \d+ "
                       r"bytes; the load balancer's fixed response holds at most 1024"):
        render(RouterChart, ROUTER_NAME, props=props(served_models=many))


def test_every_routed_path_is_one_the_router_serves():
    routes = upstream_routes()
    assert set(API_PATHS) <= routes
    # Served upstream but not routed on purpose (no embedding model; keyless admin paths).
    assert {"/v1/embeddings", "/engines", "/sleep", "/version"} <= routes


def test_ingress_annotations_of_an_internal_http_endpoint(manifests):
    annotations = one(manifests, "Ingress")["metadata"]["annotations"]
    prefix = "alb.ingress.kubernetes.io/"
    assert annotations[prefix + "scheme"] == "internal"
    assert annotations[prefix + "target-type"] == "ip"
    assert annotations[prefix + "inbound-cidrs"] == "10.0.0.0/16"
    assert annotations[prefix + "healthcheck-path"] == "/health"
    attributes = annotations[prefix + "load-balancer-attributes"].split(",")
    assert "idle_timeout.timeout_seconds=900" in attributes
    assert "routing.http.drop_invalid_header_fields.enabled=true" in attributes
    target_group = annotations[prefix + "target-group-attributes"].split(",")
    assert f"deregistration_delay.timeout_seconds={PRE_STOP_SECONDS + DRAIN_SECONDS}" in (
        target_group)
    assert "load_balancing.algorithm.type=least_outstanding_requests" in target_group
    assert annotations[prefix + "listen-ports"] == '[{"HTTP": 80}]'
    assert prefix + "certificate-arn" not in annotations


def test_ingress_annotations_of_a_public_https_endpoint(https_ingress):
    annotations = https_ingress["metadata"]["annotations"]
    prefix = "alb.ingress.kubernetes.io/"
    assert annotations[prefix + "scheme"] == "internet-facing"
    assert annotations[prefix + "inbound-cidrs"] == "203.0.113.0/24"
    assert annotations[prefix + "certificate-arn"] == CERTIFICATE
    assert annotations[prefix + "ssl-redirect"] == "443"
    assert annotations[prefix + "ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    assert json.loads(annotations[prefix + "listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    validate(https_ingress)


def test_service_sends_to_the_router_port(manifests):
    spec = one(manifests, "Service")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"name": "http", "port": 8001, "protocol": "TCP",
                              "targetPort": "http"}]
    assert selects(spec["selector"], pod_labels(manifests))
    assert container(manifests)["ports"] == [{"containerPort": 8001, "name": "http",
                                              "protocol": "TCP"}]


# -- the NetworkPolicy ----------------------------------------------------------------------


def test_network_policy_lets_in_the_load_balancer_prometheus_and_benchmarks_only(manifests):
    policy = one(manifests, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == pod_labels(manifests)
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    port = [{"port": 8001, "protocol": "TCP"}]
    assert policy["ingress"] == [
        {"from": [{"ipBlock": {"cidr": c}} for c in props().load_balancer_cidrs],
         "ports": port},
        {"from": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}], "ports": port},
        {"from": [{"podSelector": {"matchLabels": BENCHMARK_LABELS}}], "ports": port}]


def test_network_policy_lets_out_the_models_the_api_server_and_dns_only(manifests):
    egress = one(manifests, "NetworkPolicy")["spec"]["egress"]
    assert egress == [
        {"to": [{"podSelector": {"matchLabels": MODEL_SELECTOR}}],
         "ports": [{"port": VLLM_PORT, "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
        {"to": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]


def test_the_router_is_let_into_the_models_and_never_routes_to_itself(manifests):
    labels = pod_labels(manifests)
    assert selects(ROUTER_LABELS, labels)  # what the models' NetworkPolicy lets in
    assert not selects(MODEL_SELECTOR, labels)
    assert selects(MODEL_SELECTOR, {**MODEL_SELECTOR, "app.kubernetes.io/instance": "vllm-x"})


# -- the pod ------------------------------------------------------------------------------


def test_pod_runs_restricted_with_a_read_only_root(manifests):
    security = pod(manifests)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    router = container(manifests)
    assert router["securityContext"] == {
        "allowPrivilegeEscalation": False, "privileged": False,
        "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    volumes = {v["name"]: v for v in pod(manifests)["volumes"]}
    mounts = {m["mountPath"]: m for m in router["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    env = {e["name"]: e["value"] for e in router["env"]}
    assert env["HOME"] == "/tmp" and env["TMPDIR"] == "/tmp"


def test_probes_use_the_health_path_that_needs_no_engine(manifests):
    router = container(manifests)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert router[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert "/health" in upstream_routes()
    startup = router["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # heavy imports
    liveness = router["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_resources_request_cpu_and_limit_memory_only(manifests):
    assert container(manifests)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


def test_replicas_run_on_cpu_nodes_on_different_hosts(manifests):
    spec = pod(manifests)
    assert "tolerations" not in spec  # the GPU taint keeps it off GPU nodes
    assert GPU_TAINT_KEY not in json.dumps(spec)
    (term,) = spec["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": NODE_ROLE_LABEL, "operator": "In",
                                         "values": ["system", "general"]}]
    spreads = {s["topologyKey"]: s for s in spec["topologySpreadConstraints"]}
    assert spreads["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in spreads
    for spread in spreads.values():
        assert spread["maxSkew"] == 1
        assert spread["labelSelector"]["matchLabels"] == pod_labels(manifests)


def test_a_stopping_router_drains_as_long_as_an_engine(manifests):
    spec = pod(manifests)
    router = container(manifests)
    assert router["lifecycle"]["preStop"] == {"sleep": {"seconds": PRE_STOP_SECONDS}}
    assert DRAIN_SECONDS >= VLLM_DRAIN_SECONDS
    assert spec["terminationGracePeriodSeconds"] > PRE_STOP_SECONDS + DRAIN_SECONDS


def test_rollout_surges_and_disruptions_take_one_router_at_a_time(manifests):
    deployment = one(manifests, "Deployment")["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    budget = one(manifests, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"] == pod_labels(manifests)


# -- metrics ------------------------------------------------------------------------------


def upstream_metric_names() -> set[str]:
    """Names of the Gauges, Counters and Histograms the router's metrics_service defines."""
    names = set()
    for node in ast.walk(ast.parse((UPSTREAM / "metrics_service.py").read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"Gauge", "Counter", "Histogram"}):
            names.add(node.args[0].value)
    return names


def relabel(name: str, rules: list[dict]) -> str:
    """A `replace` metricRelabeling on __name__ as Prometheus applies it: the regex
    matches the whole value, and `$1` in the replacement is the first group."""
    for rule in rules:
        assert rule["action"] == "replace" and rule["sourceLabels"] == ["__name__"]
        match = re.fullmatch(rule["regex"], name)
        if match and rule["targetLabel"] == "__name__":
            name = match.expand(rule["replacement"].replace("$1", r"\1"))
    return name


def test_pod_monitor_scrapes_the_router_and_renames_its_vllm_series(manifests):
    monitor = one(manifests, "PodMonitor")
    assert selects(PROMETHEUS_SELECTOR_LABELS, monitor["metadata"]["labels"])
    assert monitor["spec"]["selector"]["matchLabels"] == pod_labels(manifests)
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    rules = endpoint["metricRelabelings"]
    upstream = upstream_metric_names()
    engine_series = {n for m in metrics.__dict__.values() if isinstance(m, metrics.Metric)
                     for n in m.stored_names()}
    # Without the renaming the router's series would mix with the engines' ...
    assert {"vllm:num_requests_running", "vllm:num_requests_waiting"} <= upstream & engine_series
    renamed = {relabel(name, rules) for name in upstream}
    # ... with it, none keeps a `vllm:` name.
    assert all(name.startswith("vllm_router:") for name in renamed), renamed
    assert relabel("vllm:num_requests_waiting", rules) == "vllm_router:num_requests_waiting"
    assert relabel("process_resident_memory_bytes", rules) == "process_resident_memory_bytes"


# -- the API key ----------------------------------------------------------------------------


_LEAKS = [
    re.compile(r"--api-key"),
    re.compile(r'"name"\s*:\s*"VLLM_API_KEY"\s*,\s*"value"'),
    re.compile(r'"kind"\s*:\s*"Secret"'),
    re.compile(r"resolve:secretsmanager"),
]


def leaks(text: str) -> list[str]:
    return [pattern.pattern for pattern in _LEAKS if pattern.search(text)]


def test_the_leak_scan_finds_a_planted_key():
    assert leaks('{"env": [{"name": "VLLM_API_KEY", "value": "abc"}]}')
    assert leaks('{"args": ["--api-key", "abc"]}')


def test_the_api_key_is_only_named_by_its_arn(manifests):
    text = json.dumps(manifests, sort_keys=True)
    assert not leaks(text)
    assert text.count(SECRET_ARN) == 1  # in the SecretProviderClass, nowhere else
    spc = one(manifests, "SecretProviderClass")
    parameters = spc["spec"]["parameters"]
    assert json.loads(parameters["objects"]) == [
        {"objectName": SECRET_ARN, "objectType": "secretsmanager", "objectAlias": "api-key"}]
    assert parameters["usePodIdentity"] == "true" and parameters["region"] == "us-east-1"
    volumes = {v["name"]: v for v in pod(manifests)["volumes"]}
    assert volumes["secrets"]["csi"]["volumeAttributes"] == {
        "secretProviderClass": spc["metadata"]["name"]}
    mounts = {m["name"]: m for m in container(manifests)["volumeMounts"]}
    assert mounts["secrets"] == {"name": "secrets", "mountPath": "/var/run/secrets/vllm-eks",
                                 "readOnly": True}


# -- props and hooks ----------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    ({"replicas": 0}, r"replicas=0: the endpoint needs at least 1 router replica"),
    ({"model_selector": {}}, r"model_selector is empty"),
    ({"model_selector": {"app.kubernetes.io/part-of": "vllm-eks"}},
     r"selects the router's own pods"),
    ({"api_server_cidrs": ()}, r"api_server_cidrs is empty"),
])
def test_bad_props_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        props(**overrides)


class TenantRouter(RouterChart):
    """A subclass overriding two hooks, as DESIGN.md section 4 describes."""

    def router_args(self) -> list[str]:
        return [*super().router_args(), "--request-stats-window", "30"]

    def ingress_paths(self) -> list[str]:
        return [*super().ingress_paths(), "/v1/embeddings"]


def test_hooks_land_in_the_manifests():
    objects = render(TenantRouter, ROUTER_NAME, props=props(replicas=3)).to_json()
    args = container(objects)["args"]
    assert args[-2:] == ["--request-stats-window", "30"]
    check_router_args(args)
    assert routed(one(objects, "Ingress"), "/v1/embeddings")
    assert one(objects, "Deployment")["spec"]["replicas"] == 3


def test_the_router_metrics_in_the_contract_are_the_routers_own(manifests):
    """Dashboards and alerts read router series from the metric contract; each is one the
    pinned router defines, with the same type, under the name its PodMonitor gives it."""
    from vllm_eks import metrics

    kinds = {}
    for node in ast.walk(ast.parse((UPSTREAM / "metrics_service.py").read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"Gauge", "Counter", "Histogram"}):
            kinds[node.args[0].value] = node.func.id.lower()
    assert metrics.ROUTER_METRICS
    for metric in metrics.ROUTER_METRICS:
        assert metric.name.startswith(metrics.ROUTER_PREFIX)
        upstream = "vllm:" + metric.name.removeprefix(metrics.ROUTER_PREFIX)
        assert kinds.get(upstream) == metric.kind.value, metric.name
        (endpoint,) = one(manifests, "PodMonitor")["spec"]["podMetricsEndpoints"]
        assert relabel(upstream, endpoint["metricRelabelings"]) == metric.name
