"""What a model's pods share, the vLLM server's and its weights-staging Job's: object
names, mount paths, the vLLM-image container under the restricted securityContext, and
the egress every one of them needs."""

from __future__ import annotations

import aws_cdk as cdk
from cdk8s_plus_35 import k8s

from .. import versions
from ..labels import NODE_ROLE_LABEL
from ..naming import ROUTER_NAME, app_name
from .pod_security import container_security_context

SCRIPTS_DIR = "/opt/vllm-eks"
EFS_MOUNT = "/models"
STAGE_SCRIPT = "stage_weights.py"
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"  # EKS Pod Identity agent (link-local)


# The environment's router (router.py): its name, and the labels of its pods, which the
# models' NetworkPolicies let in.
# The labels every model pod that serves HTTP carries (VllmChart's app labels, with the
# instance and the model), and no other pod: the router sends to what they select.
MODEL_SELECTOR = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/part-of": "vllm-eks"}
ROUTER_LABELS = {"app.kubernetes.io/name": ROUTER_NAME, "app.kubernetes.io/part-of": "vllm-eks"}
# Every model's benchmark pods (benchmark.py): the router's NetworkPolicy lets them in.
BENCHMARK_LABELS = {"app.kubernetes.io/name": "vllm-benchmark",
                    "app.kubernetes.io/part-of": "vllm-eks"}


def server_account(model_key: str) -> str:
    """The ServiceAccount of a model's vLLM pods. Named apart from the Deployment (and
    from the unsuffixed name an environment of one model used): EKS refuses a second Pod
    Identity association for one service account, and CloudFormation creates a resource
    whose logical ID changed before it deletes the old one, so an upgrade that moved the
    association to a per-model ID would fail on the old name."""
    return app_name(model_key, "server")


def scripts_configmap(model_key: str) -> str:
    """The ConfigMap (weights-staging chart) holding the staging script."""
    return app_name(model_key, "scripts")


def efs_model_dir(model_prefix: str) -> str:
    """Where a staged model (revision) lives on the shared EFS volume."""
    return f"{EFS_MOUNT}/{model_prefix.strip('/')}"


def vllm_image(cache_prefix: str | None) -> str:
    """The pinned vLLM image: from Docker Hub, or through the environment's ECR
    pull-through cache (`<account>.dkr.ecr.<region>.<suffix>/<prefix>/vllm/vllm-openai`)
    when it has one."""
    if cache_prefix is None:
        return versions.VLLM_IMAGE
    registry = f"{cdk.Aws.ACCOUNT_ID}.dkr.ecr.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
    return f"{registry}/{cache_prefix}/{versions.VLLM_IMAGE}"


def vllm_image_container(*, name: str, image: str, command: list[str],
                         env: list[k8s.EnvVar], resources: k8s.ResourceRequirements,
                         volume_mounts: list[k8s.VolumeMount], **options) -> k8s.Container:
    """A container of the pinned vLLM image (`vllm_image()`: python3, huggingface_hub and
    boto3 come with it, and a node that serves has already pulled it) under the
    restricted securityContext; `options` are further `k8s.Container` fields (args,
    ports, probes)."""
    return k8s.Container(name=name, image=image, command=command, env=env,
                         resources=resources, security_context=container_security_context(),
                         volume_mounts=volume_mounts, **options)


def stage_script_container(*, name: str, image: str, mode: str, env: dict[str, str], cpu: str,
                           memory: str, memory_limit: str,
                           volume_mounts: list[k8s.VolumeMount]) -> k8s.Container:
    """The staging script run in `mode`: `stage` (the Job) or `wait` (vLLM's init
    container). It is mounted under SCRIPTS_DIR from the pod's `scripts` volume (the
    model's scripts ConfigMap), ahead of `volume_mounts`."""
    scripts = k8s.VolumeMount(name="scripts", mount_path=SCRIPTS_DIR, read_only=True)
    return vllm_image_container(
        name=name, image=image,
        command=["python3", f"{SCRIPTS_DIR}/{STAGE_SCRIPT}", mode],
        env=[k8s.EnvVar(name=key, value=value) for key, value in env.items()],
        resources=k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string(cpu),
                      "memory": k8s.Quantity.from_string(memory)},
            limits={"memory": k8s.Quantity.from_string(memory_limit)}),
        volume_mounts=[scripts, *volume_mounts],
    )


def cpu_nodes_only() -> k8s.Affinity:
    """System or general (CPU) nodes: a GPU node's capacity is for serving."""
    return k8s.Affinity(node_affinity=k8s.NodeAffinity(
        required_during_scheduling_ignored_during_execution=k8s.NodeSelector(
            node_selector_terms=[k8s.NodeSelectorTerm(match_expressions=[
                k8s.NodeSelectorRequirement(key=NODE_ROLE_LABEL, operator="In",
                                            values=["system", "general"])])])))


def egress_to_aws_apis() -> list[k8s.NetworkPolicyEgressRule]:
    """HTTPS out (S3 through the gateway endpoint, Secrets Manager, STS, Hugging Face)
    and the node-local EKS Pod Identity agent that hands out credentials. DNS is allowed
    for the whole namespace by the namespace chart."""
    return [
        k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr="0.0.0.0/0"))],
            ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(443),
                                         protocol="TCP")]),
        k8s.NetworkPolicyEgressRule(
            to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=POD_IDENTITY_AGENT_CIDR))],
            ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(80),
                                         protocol="TCP")]),
    ]
