"""The validators' fixtures are of the versions we deploy: the CRD schemas in
tests/fixtures/crds were copied from the tags that vllm_eks/versions.py pins. A version
bump without new fixtures would validate tomorrow's objects against yesterday's schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vllm_eks import versions

from .crd_validation import CRD_DIR

SOURCE_LINE = re.compile(
    r"^(?P<file>\S+\.yaml)\s+<-\s+(?P<repo>\S+)\s+@\s+(?P<tag>v\S+)"
    r"(?:\s+\(unchanged through (?P<through>v\S+)\))?\s+:\s+(?P<path>\S+)$")

# kube-prometheus-stack pins the Prometheus Operator whose CRDs it installs (the chart's
# appVersion); a chart bump must record its operator version here and bring its CRDs.
KUBE_PROMETHEUS_STACK_OPERATOR = {"88.2.0": "v0.93.0"}


def pinned_tags() -> dict[str, str]:
    """Upstream repository -> the tag its CRDs must come from."""
    return {
        "aws/karpenter-provider-aws": f"v{versions.KARPENTER_VERSION}",
        "kubernetes-sigs/secrets-store-csi-driver":
            f"v{versions.SECRETS_STORE_CSI_CHART_VERSION}",
        "prometheus-operator/prometheus-operator":
            KUBE_PROMETHEUS_STACK_OPERATOR[versions.KUBE_PROMETHEUS_STACK_CHART_VERSION],
        "kedacore/keda": f"v{versions.KEDA_CHART_VERSION}",
        "kubernetes-sigs/lws": f"v{versions.LWS_VERSION}",
    }


def sources(directory: Path = CRD_DIR) -> list[re.Match]:
    lines = (directory / "SOURCES.txt").read_text().splitlines()
    return [m for m in map(SOURCE_LINE.match, lines) if m]


def test_every_crd_fixture_has_a_source_line():
    listed = {m["file"] for m in sources()}
    assert listed == {p.name for p in CRD_DIR.glob("*.yaml")}


def test_the_pinned_kube_prometheus_stack_has_a_recorded_operator_version():
    assert versions.KUBE_PROMETHEUS_STACK_CHART_VERSION in KUBE_PROMETHEUS_STACK_OPERATOR, (
        "kube-prometheus-stack was bumped: record the Prometheus Operator version it ships "
        "(its Chart.yaml appVersion) and copy that operator's CRDs into tests/fixtures/crds")


@pytest.mark.parametrize("line", sources(), ids=lambda m: m["file"])
def test_crd_fixture_tag_is_the_pinned_version(line):
    pinned = pinned_tags()
    assert line["repo"] in pinned, f"{line['repo']}: no pin in vllm_eks/versions.py"
    assert pinned[line["repo"]] in (line["tag"], line["through"]), (
        f"{line['file']} comes from {line['repo']} {line['tag']}, but vllm_eks/versions.py "
        f"pins {pinned[line['repo']]}: copy the CRD from that tag and update SOURCES.txt")


def test_a_bumped_pin_without_new_fixtures_fails(tmp_path, monkeypatch):
    (tmp_path / "SOURCES.txt").write_text(
        "keda.sh_scaledobjects.yaml <- kedacore/keda @ v2.20.2 : config/crd/bases/x.yaml\n")
    (line,) = sources(tmp_path)
    monkeypatch.setattr(versions, "KEDA_CHART_VERSION", "2.21.0")
    with pytest.raises(AssertionError, match="pins v2.21.0"):
        test_crd_fixture_tag_is_the_pinned_version(line)
