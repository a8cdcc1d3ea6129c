"""The chat UI's own objects (-c chat_ui=true): its namespace, the SecretProviderClass of
the API key it calls the endpoint with, and its NetworkPolicy. Open WebUI itself comes
from its chart (constructs/chat_ui.py)."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .model_pods import ROUTER_LABELS
from .objects import dns_egress, namespace_selector, secret_provider_class, tcp_ports
from .pod_security import pod_security_admission_labels

CHAT_NAMESPACE = "chat"
CHAT_RELEASE = "open-webui"
CHAT_SERVICE_ACCOUNT = "open-webui"
CHAT_PORT = 8080  # the container's (the chart's Service maps 80 to it)
CHAT_SECRETS = "open-webui-api-key"
CHAT_SECRETS_DIR = "/mnt/secrets"
# The chart's pod labels (release name = chart name).
CHAT_POD_LABELS = {"app.kubernetes.io/instance": CHAT_RELEASE,
                   "app.kubernetes.io/component": CHAT_RELEASE}
LABELS = {"app.kubernetes.io/part-of": "vllm-eks", "app.kubernetes.io/name": CHAT_RELEASE}


@dataclass(frozen=True, kw_only=True)
class ChatUiChartProps:
    api_key_secret_arn: str  # Secrets Manager; may be a CDK token
    region: str  # of the secret
    load_balancer_cidrs: tuple[str, ...]  # the only senders: the ALB's subnets
    router_namespace: str  # where the router runs (the UI's one upstream)
    router_port: int


class ChatUiChart(cdk8s.Chart):
    """Namespace `chat` (Pod Security baseline enforced, restricted warned: Open WebUI's
    image runs as root), the SecretProviderClass mounting the API key as a file, and a
    NetworkPolicy: in only from the load balancer's subnets (the UI trusts the identity
    header the ALB sets, so nothing else may reach it), out only to the router, DNS and
    HTTPS.

    Hook a subclass may override: `egress()`."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ChatUiChartProps) -> None:
        super().__init__(scope, construct_id, namespace=CHAT_NAMESPACE,
                         disable_resource_name_hashes=True)
        self.props = props
        k8s.KubeNamespace(self, "Namespace", metadata=k8s.ObjectMeta(
            name=CHAT_NAMESPACE, labels={
                **LABELS, **pod_security_admission_labels(enforce="baseline",
                                                          report="restricted")}))
        secret_provider_class(
            self, "ApiKey", name=CHAT_SECRETS, labels=LABELS, region=props.region,
            objects=[{"objectName": props.api_key_secret_arn, "objectType": "secretsmanager",
                      "objectAlias": "api-key"}])
        load_balancer = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr))
                         for cidr in props.load_balancer_cidrs]
        k8s.KubeNetworkPolicy(
            self, "NetworkPolicy",
            metadata=k8s.ObjectMeta(name=CHAT_RELEASE, labels=LABELS),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=CHAT_POD_LABELS),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=load_balancer,
                                                      ports=tcp_ports(CHAT_PORT))],
                egress=self.egress()))

    def egress(self) -> list[k8s.NetworkPolicyEgressRule]:
        """The router (the endpoint in-cluster), DNS, and HTTPS (Open WebUI fetches its
        embedding model from Hugging Face at its first start)."""
        return [
            k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(
                    namespace_selector=namespace_selector(self.props.router_namespace),
                    pod_selector=k8s.LabelSelector(match_labels=ROUTER_LABELS))],
                ports=tcp_ports(self.props.router_port)),
            dns_egress(),
            k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr="0.0.0.0/0"))],
                ports=tcp_ports(443)),
        ]
