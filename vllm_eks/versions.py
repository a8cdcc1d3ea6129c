"""Every pinned version the generated infrastructure depends on, in one place.

Moving to a new Kubernetes minor is a change to ``KUBERNETES_VERSION`` plus the
matching kubectl layer / cdk8s-plus packages in ``requirements.txt`` and the add-on
versions below. Nothing else in the package names a version.
"""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

# EKS can no longer create 1.30 (extended support ended 2026-07-23) or 1.31 (2026-11-26)
# clusters; 1.35 is in standard support until 2027-03-27.
KUBERNETES_MINOR = "1.35"
KUBERNETES_VERSION = eks.KubernetesVersion.V1_35
# The kubectl Lambda layer must match the cluster minor (client within one minor of the server).
KUBECTL_LAYER = KubectlV35Layer

# EKS managed add-ons. Unpinned add-ons get whatever EKS defaults to on deploy day, so two
# deploys of one commit could differ. Versions published for Kubernetes 1.35 (AWS add-on
# version tables, 2026-11); re-check with
#   aws eks describe-addon-versions --kubernetes-version 1.35 --addon-name <name>
EKS_ADDON_VERSIONS: dict[str, str] = {
    "vpc-cni": "v1.22.1-eksbuild.2",
    "coredns": "v1.14.2-eksbuild.4",
    "kube-proxy": "v1.35.3-eksbuild.13",
    "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
    "aws-efs-csi-driver": "v3.4.0-eksbuild.1",
    "aws-ebs-csi-driver": "v1.60.1-eksbuild.1",  # Prometheus and Alertmanager volumes
    "amazon-cloudwatch-observability": "v6.0.1-eksbuild.1",  # only with -c cloudwatch=true
}

# vLLM server image (entrypoint `vllm serve`). Never `:latest`.
VLLM_VERSION = "0.33.0"
VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"

# Karpenter: minimum 1.9 for Kubernetes 1.35. Both charts are OCI artifacts on ECR Public;
# the CRD chart is installed separately because Helm never upgrades a chart's crds/ folder.
KARPENTER_VERSION = "1.14.1"
KARPENTER_CHART_REPOSITORY = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_CRD_CHART_REPOSITORY = "oci://public.ecr.aws/karpenter/karpenter-crd"

# Bottlerocket release for Karpenter's EC2NodeClass alias (`bottlerocket@<version>`).
# Pinned: `@latest` drifts (replaces) every node each time a new AMI ships. Karpenter
# picks the aws-k8s-<minor>-nvidia variant of this release for GPU instance types.
BOTTLEROCKET_VERSION = "v1.68.1"

# Secrets Store CSI driver (mounts Secrets Manager secrets as files; rotation re-fetches
# them) and its AWS provider, installed as two charts so each is pinned on its own.
SECRETS_STORE_CSI_CHART_VERSION = "1.6.1"
SECRETS_STORE_CSI_CHART_REPOSITORY = (
    "https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts"
)
SECRETS_STORE_AWS_PROVIDER_CHART_VERSION = "3.1.3"
SECRETS_STORE_AWS_PROVIDER_CHART_REPOSITORY = (
    "https://aws.github.io/secrets-store-csi-driver-provider-aws"
)

# AWS Load Balancer Controller: chart version == controller version since v3.0.0
# (aws/eks-charts). aws-cdk-lib's AlbControllerVersion stops at v3.2.2, so the chart is
# installed directly.
ALB_CONTROLLER_CHART_VERSION = "3.5.0"
ALB_CONTROLLER_CHART_REPOSITORY = "https://aws.github.io/eks-charts"

# Observability. kube-prometheus-stack 88.2.0 ships Prometheus Operator v0.93.0, the
# version of the ServiceMonitor/PodMonitor/PrometheusRule CRDs the tests validate against
# (tests/fixtures/crds); move both together.
KUBE_PROMETHEUS_STACK_CHART_VERSION = "88.2.0"
KUBE_PROMETHEUS_STACK_CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
DCGM_EXPORTER_CHART_VERSION = "4.8.3"
DCGM_EXPORTER_CHART_REPOSITORY = "https://nvidia.github.io/dcgm-exporter/helm-charts"
# KEDA: chart version == KEDA version; ScaledObject CRD fixture from v2.20.2.
KEDA_CHART_VERSION = "2.20.2"
KEDA_CHART_REPOSITORY = "https://kedacore.github.io/charts"

# The CDK CLI (package.json pins the same version; a test keeps them equal). CDK Pipelines
# installs it in its self-mutation and asset steps.
CDK_CLI_VERSION = "2.1148.1"

# vLLM production-stack router (vllm-project/production-stack, src/vllm_router), from the
# chart release vllm-stack-0.1.12 = commit 66b60661 (2026-07-24). Its version tags move:
# .github/workflows/helm-release.yml pushes router:latest, router:v<helm/Chart.yaml
# version> and router:<github.sha> on every push to main touching helm/**, and
# router-docker-release.yml pushes router:latest, router:<setuptools-scm version> and
# router:<github.sha> on every push touching src/vllm_router/**, docker/** or
# pyproject.toml. So router:v0.1.12 was rebuilt from every later main commit while
# Chart.yaml still said 0.1.12. `${{ github.sha }}` is the full 40-hex commit id, no
# prefix; 66b60661 changed helm/ (Chart.yaml 0.1.11 -> 0.1.12), so helm-release.yml built
# router:<that sha> from it (src/, docker/ and pyproject.toml as at 4d750c9a, the last
# router change). A commit tag is only ever rebuilt from the same source; pin the digest
# instead once the registry is reachable from where this is edited.
ROUTER_CHART_VERSION = "0.1.12"
ROUTER_COMMIT = "66b60661aa3052810859a417559e9e830772a091"
ROUTER_IMAGE = f"ghcr.io/vllm-project/production-stack/router:{ROUTER_COMMIT}"

# LeaderWorkerSet (kubernetes-sigs/lws): the controller for models larger than one node,
# installed only when a model's plan spans nodes. The chart (OCI, registry.k8s.io) keeps
# its 1.3 MB CRD in crds/, which Helm installs once and never upgrades: after bumping
# this version, apply the new CRD first (docs/operations.md, "Upgrading LeaderWorkerSet").
LWS_VERSION = "0.10.0"
LWS_CHART_REPOSITORY = "oci://registry.k8s.io/lws/charts/lws"
LWS_IMAGE_TAG = f"v{LWS_VERSION}"

# Open WebUI (-c chat_ui=true only): the official chart (open-webui/helm-charts,
# charts/open-webui) and its image tag (the chart's appVersion), pinned here rather than
# left to the chart's default.
OPEN_WEBUI_CHART_VERSION = "16.0.0"
OPEN_WEBUI_CHART_REPOSITORY = "https://helm.openwebui.com/"
OPEN_WEBUI_IMAGE_TAG = "0.11.0"

# OpenTelemetry collector (-c tracing=true only): the upstream chart
# (open-telemetry/opentelemetry-helm-charts, charts/opentelemetry-collector) and the
# contrib image, the distribution with the awsxray exporter; tag = the chart's appVersion.
OTEL_COLLECTOR_CHART_VERSION = "0.170.0"
OTEL_COLLECTOR_CHART_REPOSITORY = "https://open-telemetry.github.io/opentelemetry-helm-charts"
OTEL_COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"
OTEL_COLLECTOR_IMAGE_TAG = "0.158.0"

# EFA (-c efa=true only). The device plugin chart (aws/eks-charts, stable/aws-efa-k8s-
# device-plugin at tag v0.0.242) and its image tag (the chart's appVersion); the EFA
# installer the EFA vLLM image (vllm_eks/images/vllm-efa) adds to VLLM_IMAGE: it brings
# libfabric and the AWS OFI NCCL plugin (/opt/amazon/ofi-nccl).
EFA_DEVICE_PLUGIN_CHART_VERSION = "v0.5.30"
EFA_DEVICE_PLUGIN_CHART_REPOSITORY = "https://aws.github.io/eks-charts"
EFA_DEVICE_PLUGIN_IMAGE_TAG = "v0.5.20"
EFA_INSTALLER_VERSION = "1.47.0"
