"""Observability and autoscaling: the metric contract holds for every synthesized PromQL
expression, dashboards and alerts are complete, the charts are pinned and configured,
KEDA scales on vLLM's queue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vllm_eks import metrics, versions
from vllm_eks.k8s_charts.router import ROUTER_NAME
from vllm_eks.k8s_charts.vllm import app_name
from vllm_eks.observability.alerts import alert_names, runbook_anchor
from vllm_eks.stacks import CLUSTER_STACK_ID

from .promql import metric_names
from .support import render_intrinsics

CLUSTER = CLUSTER_STACK_ID
HELM = "Custom::AWSCDK-EKS-HelmChart"
README = (Path(__file__).parent.parent / "README.md").read_text()
OPERATIONS = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()


def helm_values(env, chart: str) -> dict:
    (props,) = [r["Properties"] for r in env.resources(CLUSTER, HELM).values()
                if r["Properties"]["Chart"] == chart]
    return props, json.loads(render_intrinsics(props["Values"]))


def dashboards(env) -> dict[str, dict]:
    found = {}
    for obj in env.manifests():
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("labels", {}).get(
                "grafana_dashboard") == "1":
            for name, text in obj["data"].items():
                found[name] = json.loads(text)
    return found


def alert_rules(env) -> list[dict]:
    return [rule for obj in env.manifests() if obj["kind"] == "PrometheusRule"
            for group in obj["spec"]["groups"] for rule in group["rules"]]


def scaled_objects(env) -> dict[str, dict]:
    """Model key -> its ScaledObject (one per model, none for anything else)."""
    found = [o for o in env.manifests() if o["kind"] == "ScaledObject"]
    by_model = {o["metadata"]["labels"]["vllm-eks.io/model"]: o for o in found}
    assert len(by_model) == len(found) == len(env.config.models)
    return by_model


def scaled_object(env) -> dict:
    return scaled_objects(env)[env.config.models[0].key]


def every_expression(env) -> list[str]:
    """Every PromQL expression the environment ships: dashboard panels and variables,
    alert rules, autoscaling triggers."""
    expressions = []
    for dashboard in dashboards(env).values():
        expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        expressions += [v["definition"] for v in dashboard["templating"]["list"]
                        if v["type"] == "query"]
    expressions += [rule["expr"] for rule in alert_rules(env)]
    expressions += [t["metadata"]["query"] for o in scaled_objects(env).values()
                    for t in o["spec"]["triggers"]]
    return expressions


# -- the metric contract ------------------------------------------------------------------


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_every_expression_uses_only_contract_metrics(env_fixture, request):
    expressions = every_expression(request.getfixturevalue(env_fixture))
    assert len(expressions) > 30
    allowed = metrics.allowed_series()
    for expression in expressions:
        names = metric_names(expression)
        assert names, f"no metric in {expression!r}"
        assert names <= allowed, (names - allowed, expression)


def test_the_contract_check_catches_a_renamed_metric():
    allowed = metrics.allowed_series()
    assert not metric_names("avg(vllm:gpu_cache_usage_perc) > 0.9") <= allowed
    assert not metric_names('rate(vllm:generation_tokens{model_name="x"}[5m])') <= allowed
    assert metric_names("rate(vllm:generation_tokens_total[5m])") <= allowed


def test_the_contract_has_the_core_metrics_and_none_of_the_removed_names():
    names = {metric.name for metric in metrics.VLLM_METRICS}
    assert {"vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
            "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"} <= names
    assert not names & set(metrics.REMOVED_VLLM_METRICS)
    assert metrics.GENERATION_TOKENS.series == "vllm:generation_tokens_total"
    with pytest.raises(ValueError, match="is a histogram"):
        metrics.TIME_TO_FIRST_TOKEN.series


@pytest.mark.parametrize("env_fixture", ["default_env", "options_env"])
def test_no_removed_metric_name_appears_anywhere(env_fixture, request):
    env = request.getfixturevalue(env_fixture)
    files = env.text_files()
    for path in files:
        text = path.read_text(errors="ignore")
        for removed in metrics.REMOVED_VLLM_METRICS:
            assert removed not in text, (removed, path)
    # The scan sees the synthesized dashboards: a real name is found the same way.
    assert any("vllm:kv_cache_usage_perc" in p.read_text(errors="ignore") for p in files)


def test_dcgm_exports_exactly_the_contracts_gpu_metrics(default_env):
    (counters,) = [o for o in default_env.manifests() if o["kind"] == "ConfigMap"
                   and o["metadata"]["name"] == "vllm-eks-dcgm-counters"]
    fields = [line.split(",")[0].strip() for line in counters["data"]["counters.csv"].splitlines()
              if line and not line.startswith("#")]
    assert fields == [metric.name for metric in metrics.GPU_METRICS]
    _, values = helm_values(default_env, "dcgm-exporter")
    assert values["arguments"] == ["-f", "/etc/dcgm-exporter/vllm-eks/counters.csv"]


# -- dashboards ---------------------------------------------------------------------------


def test_dashboards_answer_the_questions(default_env):
    found = dashboards(default_env)
    assert set(found) == {"vllm-serving.json", "gpus.json"}
    serving = {p["title"] for p in found["vllm-serving.json"]["panels"]}
    assert serving == {
        "Request rate", "Time to first token", "Inter-token latency", "End-to-end latency",
        "Queue time", "Running and waiting requests", "KV-cache usage",
        "Prefix-cache hit rate", "Preemptions", "Tokens per second",
        "Router: requests per model", "Router: healthy model pods"}
    gpus = {p["title"] for p in found["gpus.json"]["panels"]}
    assert gpus == {"GPU utilization", "GPU memory used", "Power draw", "Temperature",
                    "XID errors", "Double-bit ECC errors"}
    for dashboard in found.values():
        assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            assert panel["targets"] and panel["description"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_latency_panels_show_p50_p95_p99_per_model(default_env):
    panels = {p["title"]: p for p in dashboards(default_env)["vllm-serving.json"]["panels"]}
    ttft = [t["expr"] for t in panels["Time to first token"]["targets"]]
    assert [e.split(",")[0] for e in ttft] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    assert all("by (le, model_name)" in e for e in ttft)


# -- alerts ------------------------------------------------------------------------------


def test_every_alert_has_summary_description_and_runbook(default_env):
    rules = alert_rules(default_env)
    assert [r["alert"] for r in rules] == alert_names()
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        anchor = runbook_anchor(rule["alert"])
        assert annotations["runbook_url"].endswith(f"#{anchor}")
        # GitHub's anchor of "### Runbook: <Alert>" is "runbook-<alert>".
        assert annotations["runbook_url"].startswith("docs/operations.md#")
        assert f"### Runbook: {rule['alert']}" in OPERATIONS, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning")


def test_ttft_slo_alerts_use_the_target_from_context(default_env, options_env):
    def slo_rules(env):
        return [r for r in alert_rules(env) if r["alert"].startswith("VllmTtftSlo")]

    default, tuned = slo_rules(default_env), slo_rules(options_env)
    assert [r["alert"] for r in default] == ["VllmTtftSloFastBurn", "VllmTtftSloSlowBurn"]
    for rule in default:
        assert rule["expr"].count("> 0.4") == 2  # two windows, both over the target
    assert all(r["expr"].count("> 0.25") == 2 for r in tuned)
    fast = default[0]["expr"]
    assert "[1h]" in fast and "[5m]" in fast


def test_gpu_and_node_alerts_exist(default_env):
    names = {r["alert"] for r in alert_rules(default_env)}
    assert {"GpuXidError", "GpuEccDoubleBitErrors", "GpuNodeNotReady", "VllmPodRestarts",
            "VllmKvCacheFull", "VllmQueueBacklog", "VllmPreemptions",
            "VllmHighErrorRate"} <= names


# -- autoscaling ---------------------------------------------------------------------------


def test_keda_scales_the_deployment_on_the_queue(default_env):
    spec = scaled_object(default_env)["spec"]
    name = app_name(default_env.config.models[0].plan.model.key)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": name}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 2)
    # Blind (no data, Prometheus down): keep what runs, never scale down.
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 1,
                                "behavior": "currentReplicasIfHigher"}
    queue = next(t for t in spec["triggers"] if t["name"] == "queue")
    served = default_env.config.models[0].plan.model.name
    assert queue["metadata"]["query"] == f'sum(vllm:num_requests_waiting{{model_name="{served}"}})'
    assert queue["metadata"]["ignoreNullValues"] == "false"  # no data -> fallback, not 0
    assert queue["metadata"]["serverAddress"].startswith(
        "http://kube-prometheus-stack-prometheus.monitoring.svc")
    assert "metricName" not in queue["metadata"]  # removed in KEDA 2.12
    deployment = next(o for o in default_env.manifests()
                      if o["kind"] == "Deployment" and o["metadata"]["name"] == name)
    assert "replicas" not in deployment["spec"]  # the HPA owns it


def test_each_model_scales_on_its_own_signals_within_its_bounds(options_env):
    objects = scaled_objects(options_env)
    assert list(objects) == [model.key for model in options_env.config.models]
    for model in options_env.config.models:
        spec = objects[model.key]["spec"]
        assert spec["scaleTargetRef"]["name"] == app_name(model.key)
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 3)
        assert spec["fallback"]["replicas"] == 2
        for trigger in spec["triggers"]:
            assert f'model_name="{model.served_name}"' in trigger["metadata"]["query"]


def test_alerts_are_per_model(options_env):
    rules = alert_rules(options_env)
    for model in options_env.config.models:
        mine = [r for r in rules if f'model_name="{model.served_name}"' in r["expr"]]
        assert {r["alert"] for r in mine} >= {"VllmTtftSloFastBurn", "VllmKvCacheFull"}


def test_monitoring_custom_resources_validate_against_upstream_crds(default_env):
    from .crd_validation import validate_custom_resource

    kinds = set()
    for obj in default_env.manifests():
        if obj["apiVersion"].startswith(("monitoring.coreos.com/", "keda.sh/")):
            validate_custom_resource(obj)
            kinds.add(obj["kind"])
    assert kinds == {"PodMonitor", "PrometheusRule", "ScaledObject"}


# -- the charts -------------------------------------------------------------------------


def test_prometheus_stack_is_pinned_and_opened_to_our_monitors(default_env, options_env):
    props, values = helm_values(default_env, "kube-prometheus-stack")
    assert props["Version"] == versions.KUBE_PROMETHEUS_STACK_CHART_VERSION
    assert props["Namespace"] == "monitoring"
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    for selector in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{selector}SelectorNilUsesHelmValues"] is False
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3-encrypted"
    assert claim["resources"]["requests"]["storage"] == "100Gi"
    for component in (spec, values["alertmanager"]["alertmanagerSpec"], values["grafana"],
                      values["prometheusOperator"]):
        assert component["nodeSelector"] == {"vllm-eks.io/node-role": "system"}
    for control_plane in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert values[control_plane] == {"enabled": False}
    _, tuned = helm_values(options_env, "kube-prometheus-stack")
    assert tuned["prometheus"]["prometheusSpec"]["retention"] == "30d"


def test_grafana_password_comes_from_secrets_manager(default_env):
    _, values = helm_values(default_env, "kube-prometheus-stack")
    grafana = values["grafana"]
    assert "adminPassword" not in grafana
    assert grafana["env"]["GF_SECURITY_ADMIN_PASSWORD"] == (
        "$__file{/etc/secrets/grafana/admin-password}")
    (mount,) = grafana["extraSecretMounts"]
    assert mount["csi"]["volumeAttributes"] == {"secretProviderClass": "grafana-admin"}
    (spc,) = [o for o in default_env.manifests() if o["kind"] == "SecretProviderClass"
              and o["metadata"]["namespace"] == "monitoring"]
    (secret,) = json.loads(spc["spec"]["parameters"]["objects"])
    assert secret["objectName"].startswith("${Ref:ObservabilityGrafanaAdminPassword")
    associations = {a["Properties"]["ServiceAccount"]: a["Properties"] for a in
                    default_env.resources(CLUSTER, "AWS::EKS::PodIdentityAssociation").values()}
    assert associations["grafana"]["Namespace"] == "monitoring"
    assert "ingress" not in grafana  # port-forward by default


def test_grafana_can_sit_behind_an_internal_alb(options_env):
    _, values = helm_values(options_env, "kube-prometheus-stack")
    annotations = values["grafana"]["ingress"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "10.0.0.0/16"


def test_dcgm_exporter_runs_unprivileged_on_gpu_nodes_only(default_env):
    props, values = helm_values(default_env, "dcgm-exporter")
    assert props["Version"] == versions.DCGM_EXPORTER_CHART_VERSION
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                      "effect": "NoSchedule"}]
    assert values["securityContext"]["privileged"] is False
    assert values["securityContext"]["capabilities"]["add"] == []  # else the chart adds SYS_ADMIN
    assert values["serviceMonitor"]["enabled"] is True


def test_no_nvidia_device_plugin_is_deployed(default_env):
    """Bottlerocket's NVIDIA variant has the device plugin built in."""
    for template in default_env.templates.values():
        assert "nvidia-device-plugin" not in json.dumps(template).lower()


def test_keda_is_pinned(default_env):
    props, values = helm_values(default_env, "keda")
    assert props["Version"] == versions.KEDA_CHART_VERSION
    assert values["nodeSelector"] == {"vllm-eks.io/node-role": "system"}


def test_vllm_pods_are_scraped(default_env):
    (monitor,) = [o for o in default_env.manifests() if o["kind"] == "PodMonitor"
                  and o["metadata"]["name"] != ROUTER_NAME]
    name = app_name(default_env.config.models[0].plan.model.key)
    assert monitor["metadata"]["namespace"] == "inference"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/instance": name}}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "http"


def test_the_router_is_scraped_under_its_own_metric_names(options_env):
    (monitor,) = [o for o in options_env.manifests() if o["kind"] == "PodMonitor"
                  and o["metadata"]["name"] == ROUTER_NAME]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    # Its vllm:* series are renamed, so dashboards, alerts and KEDA see the engines only.
    assert any(r.get("replacement") == "vllm_router:$1"
               for r in endpoint["metricRelabelings"])


def test_cloudwatch_is_opt_in(default_env, options_env):
    def addons(env):
        return {r["Properties"]["AddonName"] for r in env.resources(
            CLUSTER, "AWS::EKS::Addon").values()}

    assert "amazon-cloudwatch-observability" not in addons(default_env)
    assert "amazon-cloudwatch-observability" in addons(options_env)


def test_gp3_storage_class_for_prometheus(default_env):
    (storage_class,) = [o for o in default_env.manifests() if o["kind"] == "StorageClass"
                        and o["metadata"]["name"] == "gp3-encrypted"]
    # Retained volumes carry the environment's tag, so a teardown check finds them.
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true",
                                           "tagSpecification_1": "vllm-eks:environment=vllm-eks"}
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"


def test_the_docs_list_the_dashboards_and_runbooks():
    assert re.search(r"^## See what it does", README, re.M)
    assert "docs/operations.md" in README
    for alert in alert_names():
        assert f"### Runbook: {alert}" in OPERATIONS


def test_serving_alerts_are_scoped_to_the_model(default_env):
    served = default_env.config.models[0].plan.model.name
    name = f"{app_name(default_env.config.models[0].plan.model.key)}-alerts"
    (rules,) = [o for o in default_env.manifests() if o["kind"] == "PrometheusRule"
                and o["metadata"]["name"] == name]
    for rule in rules["spec"]["groups"][0]["rules"]:
        if rule["alert"] == "VllmPodRestarts":
            pods = f'pod=~"{app_name(default_env.config.models[0].key)}-[a-z0-9]+-[a-z0-9]{{5}}"'
            assert pods in rule["expr"]
        else:
            assert f'model_name="{served}"' in rule["expr"], rule["alert"]


def test_xid_alert_fires_on_a_new_error_not_forever(default_env):
    (xid,) = [r for r in alert_rules(default_env) if r["alert"] == "GpuXidError"]
    assert xid["expr"].startswith("changes(DCGM_FI_DEV_XID_ERRORS[10m]) > 0")


def test_grafana_gets_its_datasource_at_start_and_reloads_nothing(default_env):
    _, values = helm_values(default_env, "kube-prometheus-stack")
    grafana = values["grafana"]
    assert grafana["sidecar"]["datasources"] == {"enabled": False}
    assert grafana["sidecar"]["dashboards"]["skipReload"] is True
    (source,) = grafana["datasources"]["datasources.yaml"]["datasources"]
    assert source["url"].startswith("http://kube-prometheus-stack-prometheus.monitoring.svc")


def test_alert_receivers_come_from_labelled_alertmanager_configs(default_env):
    _, values = helm_values(default_env, "kube-prometheus-stack")
    spec = values["alertmanager"]["alertmanagerSpec"]
    assert spec["alertmanagerConfigSelector"] == {
        "matchLabels": {"vllm-eks.io/alertmanager-config": "true"}}
    assert "kind: AlertmanagerConfig" in OPERATIONS


def test_dcgm_scrape_timeout_fits_the_interval(default_env):
    _, values = helm_values(default_env, "dcgm-exporter")
    monitor = values["serviceMonitor"]
    assert int(monitor["scrapeTimeout"].rstrip("s")) <= int(monitor["interval"].rstrip("s"))


def test_model_manifests_are_replaced_when_the_model_changes(default_env, deepseek_env):
    """kubectl's prune skips custom resources: the model's manifests carry the model in
    their construct ID, so switching models deletes the old ScaledObject and rules."""
    def manifest_ids(env):
        return {k for k, r in env.templates["VllmProdStack"]["Resources"].items()
                if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"}

    assert any(k.startswith("VllmServiceObservabilityDeepseekR1DistillLlama8b")
               for k in manifest_ids(default_env))
    assert any(k.startswith("VllmServiceObservabilityDeepseekR1") and "Distill" not in k
               for k in manifest_ids(deepseek_env))


# -- what Helm renders: chart defaults merged with our values -------------------------------


def test_dcgm_exporter_renders_without_sys_admin(default_env):
    """The chart's default adds SYS_ADMIN; a map merge keeps it unless `add` is set. The
    merged securityContext is what the DaemonSet gets (README: no capabilities)."""
    from .helm_values import chart_defaults, merge

    defaults = chart_defaults("dcgm-exporter-4.8.2-values.yaml")
    assert defaults["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]  # upstream
    (chart,) = [r["Properties"] for r in default_env.resources(CLUSTER, HELM).values()
                if r["Properties"]["Chart"] == "dcgm-exporter"]
    rendered = merge(defaults, json.loads(chart["Values"]))["securityContext"]
    assert rendered["capabilities"] == {"add": [], "drop": ["ALL"]}
    assert rendered.get("privileged", False) is False
    assert rendered["allowPrivilegeEscalation"] is False


def test_the_merge_keeps_a_default_list_that_is_not_overridden():
    from .helm_values import merge

    defaults = {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}}
    ours = {"securityContext": {"capabilities": {"drop": ["ALL"]}}}
    assert merge(defaults, ours)["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]


def test_the_router_has_its_own_alerts_with_its_real_memory_limit(default_env):
    from vllm_eks.k8s_charts.router_pod import MEMORY_LIMIT_BYTES

    (rules,) = [o for o in default_env.manifests() if o["kind"] == "PrometheusRule"
                and o["metadata"]["name"] == "vllm-eks-router-alerts"]
    (group,) = rules["spec"]["groups"]
    by_name = {rule["alert"]: rule for rule in group["rules"]}
    assert set(by_name) == {"VllmRouterUnavailable", "VllmRouterSeesNoModel",
                            "VllmRouterMemoryHigh"}
    assert "vllm_router:healthy_pods_total" in by_name["VllmRouterSeesNoModel"]["expr"]
    assert 'deployment="vllm-router"' in by_name["VllmRouterUnavailable"]["expr"]
    assert "absent(" in by_name["VllmRouterUnavailable"]["expr"]  # gone counts as down
    # 85 % of the limit the router's container really gets.
    (router,) = [o for o in default_env.manifests() if o["kind"] == "Deployment"
                 and o["metadata"]["name"] == "vllm-router"]
    (container,) = router["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "2Gi" == (
        f"{MEMORY_LIMIT_BYTES // 1024**3}Gi")
    assert by_name["VllmRouterMemoryHigh"]["expr"].endswith(f"> {int(0.85 * 2 * 1024**3)}")


def test_each_models_restart_alert_matches_its_own_pods_only(options_env):
    from vllm_eks.models import catalog
    from vllm_eks.naming import app_name, deployment_pods

    def pod(key: str) -> str:
        return f"{app_name(key)}-7d9f8b6c5d-x2k4p"

    keys = sorted(catalog())  # deepseek-r1 is a prefix of every deepseek-r1-distill key
    for key in keys:
        pattern = re.compile(deployment_pods(app_name(key)))  # PromQL =~ is anchored
        assert [k for k in keys if pattern.fullmatch(pod(k))] == [key]
    # and the rendered rules use it
    rules = [r for r in alert_rules(options_env) if r["alert"] == "VllmPodRestarts"]
    assert sorted(re.search(r'pod=~"([^"]+)"', r["expr"])[1] for r in rules) == sorted(
        deployment_pods(app_name(m.key)) for m in options_env.config.models)
