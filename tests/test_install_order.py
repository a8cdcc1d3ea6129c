"""The cluster stack's Helm releases install side by side, in at most three lanes, and
every release that waits for another says why (vllm_eks/install_order.py)."""

from __future__ import annotations

import json

import pytest

from vllm_eks.deploy_estimate import dependencies, max_in_flight, prerequisites
from vllm_eks.install_order import KUBECTL_RESOURCES_IN_FLIGHT, RELEASES_IN_FLIGHT

HELM = "Custom::AWSCDK-EKS-HelmChart"
KUBECTL = {HELM, "Custom::AWSCDK-EKS-KubernetesResource",
           "Custom::AWSCDK-EKS-KubernetesObjectValue"}
CLUSTER = "VllmClusterStack"
LANE = "lane: at most three releases at once (install_order.RELEASES_IN_FLIGHT)"

# Every release that waits directly for another, by chart, and why. A new ordering fails
# test_every_release_that_waits_for_another_has_a_reason until it is stated here.
REASONS = {
    ("karpenter", "karpenter-crd"): "the controller's chart skips the CRDs the CRD chart owns",
    ("dcgm-exporter", "kube-prometheus-stack"): "its ServiceMonitor needs the CRD",
    ("secrets-store-csi-driver-provider-aws", "karpenter-crd"): LANE,
    ("karpenter", "secrets-store-csi-driver-provider-aws"): LANE,
    ("aws-efa-k8s-device-plugin", "karpenter"): LANE,
    ("keda", "aws-load-balancer-controller"): LANE,
    ("lws", "keda"): LANE,
    ("opentelemetry-collector", "keda"): LANE,
}


def releases(template: dict) -> dict[str, str]:
    """chart name -> logical ID of each Helm release in a template."""
    return {resource["Properties"]["Chart"]: name
            for name, resource in template["Resources"].items() if resource["Type"] == HELM}


def release_waits(template: dict) -> set[tuple[str, str]]:
    """(chart, chart it waits for directly) over a template's releases."""
    resources = template["Resources"]
    by_id = {name: chart for chart, name in releases(template).items()}
    return {(by_id[name], by_id[dep]) for name in by_id
            for dep in dependencies(resources[name], resources) if dep in by_id}


@pytest.fixture(scope="module")
def environments(default_env, multinode_env, options_env, front_door_env):
    """The default, DeepSeek-R1 over EFA (EFA device plugin, LeaderWorkerSet), two
    models with Grafana's ALB, and the front door (the OpenTelemetry collector, Open
    WebUI)."""
    return {"default": default_env, "multinode": multinode_env, "options": options_env,
            "front_door": front_door_env}


def test_every_release_that_waits_for_another_has_a_reason(environments):
    seen: set[tuple[str, str]] = set()
    for name, env in environments.items():
        waits = release_waits(env.templates[CLUSTER])
        unexplained = waits - REASONS.keys()
        assert not unexplained, f"{name}: releases wait for others without a reason: {unexplained}"
        seen |= waits
    assert seen == REASONS.keys(), f"stated but no longer made: {REASONS.keys() - seen}"


def test_no_more_releases_than_the_lambda_budget_install_at_once(environments):
    for name, env in environments.items():
        template = env.templates[CLUSTER]
        assert len(releases(template)) > RELEASES_IN_FLIGHT
        assert max_in_flight(template, {HELM}) == RELEASES_IN_FLIGHT, name
        for stack, stack_template in env.templates.items():
            assert max_in_flight(stack_template, KUBECTL) <= KUBECTL_RESOURCES_IN_FLIGHT, (
                f"{name} {stack}: more kubectl custom resources at once than "
                "install_order.KUBECTL_RESOURCES_IN_FLIGHT (preflight's Lambda check)")


def test_max_in_flight_counts_what_can_run_at_once():
    def resource(*after: str) -> dict:
        return {"Type": HELM, "DependsOn": list(after)}

    template = {"Resources": {"A": resource(), "B": resource("A"), "C": resource(),
                              "D": resource("C"), "E": resource("A", "C")}}
    # B, D and E wait for A or C, but not for each other.
    assert max_in_flight(template, {HELM}) == 3
    template["Resources"]["E"]["DependsOn"] = ["B", "D"]
    assert max_in_flight(template, {HELM}) == 2


def test_prometheus_waits_for_what_grafana_and_its_volumes_need_and_nothing_else(environments):
    for name, env in environments.items():
        template = env.templates[CLUSTER]
        charts = releases(template)
        before = prerequisites(template)[charts["kube-prometheus-stack"]]
        for needed in ("secrets-store-csi-driver", "secrets-store-csi-driver-provider-aws"):
            assert charts[needed] in before, f"{name}: Grafana mounts its password"
        assert any(n.startswith("StorageDriversStorageClasses") for n in before), name
        grafana_alb = env.config.observability.grafana_alb
        assert (charts["aws-load-balancer-controller"] in before) is grafana_alb, (
            f"{name}: Grafana's Ingress waits for the ALB webhook exactly when it exists")
        for unrelated in ("karpenter", "keda", "lws", "aws-efa-k8s-device-plugin"):
            assert charts.get(unrelated) not in before, f"{name}: waits for {unrelated}"


def test_releases_with_pods_wait_for_nodes_and_dns(environments):
    for name, env in environments.items():
        template = env.templates[CLUSTER]
        after = prerequisites(template)
        core_dns = next(n for n, r in template["Resources"].items()
                        if r["Type"] == "AWS::EKS::Addon"
                        and r["Properties"]["AddonName"] == "coredns")
        for chart, release in releases(template).items():
            if chart != "karpenter-crd":  # CRDs only
                assert core_dns in after[release], f"{name}: {chart} before CoreDNS"


def test_the_alb_controller_admits_no_service(default_env):
    template = default_env.templates[CLUSTER]
    values = json.dumps(template["Resources"][releases(template)["aws-load-balancer-controller"]]
                        ["Properties"]["Values"])
    assert '\\"enableServiceMutatorWebhook\\":false' in values
