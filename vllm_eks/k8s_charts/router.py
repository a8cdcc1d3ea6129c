"""The router chart: the environment's one OpenAI endpoint in front of every model.

The router is the vLLM production-stack router (`versions.ROUTER_IMAGE`; docs/router.md).
It watches the model pods of its namespace (label selector `model_selector`), asks each
Ready one for its models (`/v1/models`, with the API key), and proxies each request to a
pod serving the request's `model`: the same pod for the same `x-session-id` header (a
consistent hash, identical in every router replica), else the one with the fewest
recent requests. It forwards the client's Authorization header unchanged, so vLLM still
checks the key.

`RouterChart` holds the ServiceAccount, the Role (pods get/list/watch) and its binding,
the SecretProviderClass of the API key, the Deployment, Service, PodDisruptionBudget, the
environment's one Ingress (an ALB), the NetworkPolicy and the PodMonitor; the pod itself
is built by `RouterPodMixin` (router_pod.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..openai_api import FIXED_RESPONSE_MAX_BYTES, model_list
from .model_pods import BENCHMARK_LABELS, MODEL_SELECTOR, ROUTER_LABELS, ROUTER_NAME
from .monitoring import PROMETHEUS_SELECTOR_LABELS
from .objects import (
    cluster_ip_service,
    custom_resource,
    dns_egress,
    namespace_selector,
    secret_provider_class,
    surge_rollout,
    tcp_ports,
)
from .router_pod import (
    DRAIN_SECONDS,
    ENGINE_PORT,
    HEALTH_PATH,
    PORT,
    PORT_NAME,
    PRE_STOP_SECONDS,
    RouterPodMixin,
)

__all__ = [
    "API_PATHS", "DRAIN_SECONDS", "ENGINE_PORT", "FIXED_RESPONSE_MAX_BYTES", "HEALTH_PATH",
    "MODELS_ACTION", "MODELS_PATH", "MODEL_SELECTOR", "PORT",
    "PORT_NAME", "PRE_STOP_SECONDS", "ROUTER_LABELS", "ROUTER_NAME", "ROUTER_POD_LABELS",
    "IngressSettings", "RouterChart", "RouterChartProps", "RouterPodMixin",
]

# What the load balancer routes: the OpenAI calls the models serve, the model list and
# the health check, each matched exactly. Everything else (vLLM's keyless /invocations,
# the router's /engines, /metrics, /version, /v1/files, /v1/batches, /sleep ...) gets the
# load balancer's 404. /v1/embeddings is left out: the router would proxy it, but no model
# of the catalog is an embedding model.
MODELS_PATH = "/v1/models"
API_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/responses", MODELS_PATH,
             HEALTH_PATH)
# /v1/models is answered by the load balancer itself (a fixed response naming the served
# models, openai_api.model_list), not by the router: the router answers it without a key
# and passes on what each vLLM reports, including `root`, the weights' location
# (s3://<bucket>/...). The ALB's action name:
MODELS_ACTION = "served-models"
SCRAPE_INTERVAL = "15s"
# The router's pods: the models' NetworkPolicies let in ROUTER_LABELS (model_pods.py).
ROUTER_POD_LABELS = {**ROUTER_LABELS, "app.kubernetes.io/instance": ROUTER_NAME,
                     "app.kubernetes.io/component": "router"}


def router_url(namespace: str) -> str:
    """The router's in-cluster URL (its Service), for clients inside the cluster."""
    return f"http://{ROUTER_NAME}.{namespace}.svc:{PORT}"


@dataclass(frozen=True, kw_only=True)
class IngressSettings:
    scheme: str  # "internal" or "internet-facing"
    certificate_arn: str | None  # None: HTTP only
    allowed_cidrs: tuple[str, ...]
    idle_timeout_seconds: int = 900  # long non-streamed generations must not be cut
    web_acl_arn: str | None = None  # the AWS WAF web ACL (may be a CDK token); None: none
    # An ALB shared with other Ingresses (the chat UI's): its group name; None: its own.
    group: str | None = None
    group_order: int = 10  # the API's exact paths before the chat UI's catch-all


@dataclass(frozen=True, kw_only=True)
class RouterChartProps:
    api_key_secret_arn: str  # Secrets Manager; may be a CDK token. Lists the models with it.
    region: str  # of the secret (the SecretProviderClass)
    ingress: IngressSettings  # the environment's load balancer, in front of the router
    served_models: tuple[str, ...]  # the names clients pass as `model`: /v1/models lists them
    load_balancer_cidrs: tuple[str, ...]  # subnets the load balancer sends from
    namespace: str = "inference"  # the models' namespace: the router watches only its own
    monitoring_namespace: str = "monitoring"  # Prometheus scrapes /metrics from there
    # The model pods' labels (default: every VllmChart's pods).
    model_selector: dict[str, str] = field(default_factory=lambda: dict(MODEL_SELECTOR))
    # Every replica routes a session to the same pod, so any count works; 2 keeps the
    # endpoint up through a node drain or a restart.
    replicas: int = 2
    session_header: str = "x-session-id"  # requests with the same value go to one pod
    # Where the Kubernetes API may be reached on 443. Default: anywhere. The router calls
    # the `kubernetes` Service's ClusterIP, which kube-proxy translates to the control
    # plane's ENIs in the VPC (or the public endpoint), and those move on control-plane
    # updates; whichever address the policy engine sees must be allowed. A narrower list
    # (the VPC CIDR and the Service's ClusterIP) works where that is known to hold.
    api_server_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    # Pods of other namespaces that call the router in-cluster, by (namespace, pod labels):
    # the chat UI's.
    clients: tuple[tuple[str, dict[str, str]], ...] = ()

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"RouterChartProps.replicas={self.replicas}: the endpoint needs "
                             "at least 1 router replica (2 or more to survive a node drain)")
        if not self.model_selector:
            raise ValueError("RouterChartProps.model_selector is empty: the router would send "
                             "to every pod of the namespace; pass the model pods' labels")
        if all(ROUTER_POD_LABELS.get(key) == value
               for key, value in self.model_selector.items()):
            raise ValueError(f"RouterChartProps.model_selector={self.model_selector} selects "
                             "the router's own pods; pass the model pods' labels")
        if not self.served_models:
            raise ValueError("RouterChartProps.served_models is empty: pass the served names "
                             "of the environment's models (what /v1/models lists)")
        if not self.api_server_cidrs:
            raise ValueError("RouterChartProps.api_server_cidrs is empty: the router could "
                             "not watch the model pods; pass ('0.0.0.0/0',) or the API's CIDRs")


class RouterChart(RouterPodMixin, cdk8s.Chart):
    """ServiceAccount, Role, RoleBinding, SecretProviderClass, Deployment, Service,
    PodDisruptionBudget, Ingress, NetworkPolicy and PodMonitor of the router.

    Hooks a subclass may override (never `__init__`): `router_args()`, `env()`,
    `container()`, `resources()`, `volumes()`, `pod_spec()` (RouterPodMixin,
    router_pod.py); `secret_objects()`, `ingress_annotations()`, `ingress_paths()`,
    `models_response()`, `metric_relabelings()` (here).
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: RouterChartProps) -> None:
        super().__init__(scope, construct_id, namespace=props.namespace,
                         disable_resource_name_hashes=True)
        self.props = props
        self.name = ROUTER_NAME
        self.app_labels = dict(ROUTER_POD_LABELS)
        self._service_account()
        self._secret_provider_class()
        self._deployment()
        self._service()
        self._disruption_budget()
        self._ingress()
        self._network_policy()
        self._pod_monitor()

    # -- hooks -------------------------------------------------------------------------

    def secret_objects(self) -> list[dict]:
        """Secrets Manager objects mounted as files under SECRETS_DIR."""
        return [{"objectName": self.props.api_key_secret_arn, "objectType": "secretsmanager",
                 "objectAlias": "api-key"}]

    def ingress_paths(self) -> list[str]:
        """The paths the load balancer forwards (each an Exact match; MODELS_PATH is the
        load balancer's own fixed answer, `models_response()`)."""
        return list(API_PATHS)

    def models_response(self) -> str:
        """The body of GET /v1/models: OpenAI's model list, naming each served model and
        nothing else, so it needs no key."""
        body = model_list(self.props.served_models)
        if len(body.encode()) > FIXED_RESPONSE_MAX_BYTES:  # the config refuses it first
            raise ValueError(
                f"the /v1/models answer for {len(self.props.served_models)} models is "
                f"{len(body.encode())} bytes; the load balancer's fixed response holds at "
                f"most {FIXED_RESPONSE_MAX_BYTES}: serve fewer models per environment (or "
                "shorter served names)")
        return body

    def ingress_annotations(self) -> dict[str, str]:
        """AWS Load Balancer Controller settings of the endpoint."""
        ingress = self.props.ingress
        annotations = {
            "alb.ingress.kubernetes.io/scheme": ingress.scheme,
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(ingress.allowed_cidrs),
            "alb.ingress.kubernetes.io/healthcheck-path": HEALTH_PATH,
            "alb.ingress.kubernetes.io/success-codes": "200",
            "alb.ingress.kubernetes.io/load-balancer-attributes": ",".join([
                f"idle_timeout.timeout_seconds={ingress.idle_timeout_seconds}",
                "routing.http.drop_invalid_header_fields.enabled=true",
            ]),
            "alb.ingress.kubernetes.io/target-group-attributes": ",".join([
                # Streams in flight on a deregistered router run until its drain ends.
                f"deregistration_delay.timeout_seconds={PRE_STOP_SECONDS + DRAIN_SECONDS}",
                # Streams last from seconds to many minutes: send new ones to the router
                # with the fewest in flight, not in turn.
                "load_balancing.algorithm.type=least_outstanding_requests",
            ]),
        }
        annotations[f"alb.ingress.kubernetes.io/actions.{MODELS_ACTION}"] = json.dumps({
            "type": "fixed-response", "fixedResponseConfig": {
                "contentType": "application/json", "statusCode": "200",
                "messageBody": self.models_response()}}, separators=(",", ":"))
        if ingress.certificate_arn:
            annotations.update({
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
                "alb.ingress.kubernetes.io/certificate-arn": ingress.certificate_arn,
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            })
        else:
            annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
        if ingress.web_acl_arn:
            annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] = ingress.web_acl_arn
        if ingress.group:
            annotations["alb.ingress.kubernetes.io/group.name"] = ingress.group
            annotations["alb.ingress.kubernetes.io/group.order"] = str(ingress.group_order)
        return annotations

    def metric_relabelings(self) -> list[dict]:
        """The router exports its own series under vLLM's `vllm:` names (some, such as
        `vllm:num_requests_waiting`, are vLLM's exact names with other labels): stored as
        `vllm_router:*`, so dashboards, alerts and autoscaling on `vllm:` see engines only."""
        return [{"sourceLabels": ["__name__"], "regex": "vllm:(.*)",
                 "targetLabel": "__name__", "replacement": "vllm_router:$1",
                 "action": "replace"}]

    # -- objects -----------------------------------------------------------------------

    def _metadata(self, name: str | None = None, **extra) -> k8s.ObjectMeta:
        return k8s.ObjectMeta(name=name or self.name, labels=self.app_labels, **extra)

    def _service_account(self) -> None:
        # Its AWS role (read the API key) comes from the EKS Pod Identity association the
        # CDK construct creates for this name.
        k8s.KubeServiceAccount(self, "ServiceAccount", metadata=self._metadata(),
                               automount_service_account_token=True)
        # Discovery lists and watches pods, and reads one pod to see whether it runs in
        # sleep mode. No `patch`: only the router's /sleep and /wake_up label pods, and
        # the load balancer does not route them.
        k8s.KubeRole(self, "Role", metadata=self._metadata(), rules=[k8s.PolicyRule(
            api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"])])
        k8s.KubeRoleBinding(
            self, "RoleBinding", metadata=self._metadata(),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                 name=self.name),
            subjects=[k8s.Subject(kind="ServiceAccount", name=self.name,
                                  namespace=self.props.namespace)])

    def _secret_provider_class(self) -> None:
        secret_provider_class(self, "SecretProviderClass",
                              name=self.secret_provider_class_name, labels=self.app_labels,
                              objects=self.secret_objects(), region=self.props.region)

    def _deployment(self) -> None:
        k8s.KubeDeployment(
            self, "Deployment", metadata=self._metadata(),
            spec=k8s.DeploymentSpec(
                replicas=self.props.replicas,
                selector=k8s.LabelSelector(match_labels=self.app_labels),
                # A new router is registered with the load balancer (readiness gate)
                # before an old one starts draining: no capacity dip on rollout.
                strategy=surge_rollout(),
                template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=self.app_labels),
                                             spec=self.pod_spec()),
            ),
        )

    def _service(self) -> None:
        cluster_ip_service(self, "Service", metadata=self._metadata(), selector=self.app_labels,
                           port=PORT, port_name=PORT_NAME)

    def _disruption_budget(self) -> None:
        # maxUnavailable: a drain takes one router at a time and never blocks on one.
        k8s.KubePodDisruptionBudget(
            self, "DisruptionBudget", metadata=self._metadata(),
            spec=k8s.PodDisruptionBudgetSpec(
                max_unavailable=k8s.IntOrString.from_number(1),
                selector=k8s.LabelSelector(match_labels=self.app_labels)))

    def _ingress(self) -> None:
        backend = k8s.IngressBackend(service=k8s.IngressServiceBackend(
            name=self.name, port=k8s.ServiceBackendPort(name=PORT_NAME)))
        # The controller's convention for an annotation action: the action's name as the
        # service, `use-annotation` as the port.
        fixed = k8s.IngressBackend(service=k8s.IngressServiceBackend(
            name=MODELS_ACTION, port=k8s.ServiceBackendPort(name="use-annotation")))
        # No default backend, on purpose: a path without a rule gets the load balancer's
        # 404 and never reaches a pod.
        k8s.KubeIngress(
            self, "Ingress", metadata=self._metadata(annotations=self.ingress_annotations()),
            spec=k8s.IngressSpec(
                ingress_class_name="alb",
                rules=[k8s.IngressRule(http=k8s.HttpIngressRuleValue(paths=[
                    k8s.HttpIngressPath(path=path, path_type="Exact",
                                        backend=fixed if path == MODELS_PATH else backend)
                    for path in self.ingress_paths()]))]))

    def _network_policy(self) -> None:
        load_balancer = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr))
                         for cidr in self.props.load_balancer_cidrs]
        prometheus = [k8s.NetworkPolicyPeer(
            namespace_selector=namespace_selector(self.props.monitoring_namespace))]
        models = [k8s.NetworkPolicyPeer(
            pod_selector=k8s.LabelSelector(match_labels=self.props.model_selector))]
        benchmarks = [k8s.NetworkPolicyPeer(
            pod_selector=k8s.LabelSelector(match_labels=BENCHMARK_LABELS))]
        api_server = [k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr))
                      for cidr in self.props.api_server_cidrs]
        clients = [k8s.NetworkPolicyPeer(namespace_selector=namespace_selector(name),
                                         pod_selector=k8s.LabelSelector(match_labels=labels))
                   for name, labels in self.props.clients]
        k8s.KubeNetworkPolicy(
            self, "NetworkPolicy", metadata=self._metadata(),
            spec=k8s.NetworkPolicySpec(
                pod_selector=k8s.LabelSelector(match_labels=self.app_labels),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.NetworkPolicyIngressRule(from_=load_balancer, ports=tcp_ports(PORT)),
                         k8s.NetworkPolicyIngressRule(from_=prometheus, ports=tcp_ports(PORT)),
                         k8s.NetworkPolicyIngressRule(from_=benchmarks, ports=tcp_ports(PORT)),
                         *([k8s.NetworkPolicyIngressRule(from_=clients, ports=tcp_ports(PORT))]
                           if clients else [])],
                # No AWS API: the CSI driver fetches the key with the pod's identity.
                egress=[k8s.NetworkPolicyEgressRule(to=models, ports=tcp_ports(ENGINE_PORT)),
                        k8s.NetworkPolicyEgressRule(to=api_server, ports=tcp_ports(443)),
                        # DNS is also opened namespace-wide by the namespace chart;
                        # stated here so the router's policy is complete on its own.
                        dns_egress()]))

    def _pod_monitor(self) -> None:
        custom_resource(
            self, "PodMonitor", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
            name=self.name, labels={**self.app_labels, **PROMETHEUS_SELECTOR_LABELS},
            spec={"selector": {"matchLabels": self.app_labels},
                  "podMetricsEndpoints": [{
                      "port": PORT_NAME, "path": "/metrics", "interval": SCRAPE_INTERVAL,
                      "metricRelabelings": self.metric_relabelings()}]})
