"""The router chart's pod: the router container (launcher, arguments, environment, probes,
draining, resources), its volumes, and the pod spec (security context, CPU nodes, spread).

`RouterPodMixin` holds these as methods of `RouterChart` (router.py). Hooks defined here:
`router_args()`, `env()`, `container()`, `resources()`, `volumes()`, `pod_spec()`.
Facts about the upstream router are cited from vllm-project/production-stack at
versions.ROUTER_COMMIT (docs/router.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdk8s_plus_35 import k8s

from .. import versions
from ..labels import NODE_ROLE_LABEL
from .pod_security import container_security_context, pod_security_context
from .vllm_pod import PORT as ENGINE_PORT
from .vllm_pod import SECRETS_DIR, SECRETS_STORE_DRIVER, SHUTDOWN_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from .router import RouterChartProps

PORT = 8001  # the router's default (parser.py --port)
PORT_NAME = "http"
# 200 while the router's discovery and stats threads live, engines or not
# (main_router.py /health): fit for liveness as well as readiness.
HEALTH_PATH = "/health"
# docker/Dockerfile ENTRYPOINT. The image is python:3.12-slim (Debian): /bin/sh exists.
ENTRYPOINT = "/opt/venv/bin/vllm-router"
# Draining: the pause lets the load balancer deregister the pod before the router stops
# accepting; uvicorn then waits for the requests in flight (no shutdown timeout is set),
# and a stream through the router lives as long as the vLLM engine lets it drain.
PRE_STOP_SECONDS = 15
DRAIN_SECONDS = SHUTDOWN_TIMEOUT_SECONDS
TERMINATION_GRACE_SECONDS = PRE_STOP_SECONDS + DRAIN_SECONDS + 30
ENGINE_STATS_INTERVAL_SECONDS = 15
# The image imports torch, transformers and vLLM 0.13 (its lmcache and semantic-cache
# extras) and ships no bytecode cache: the first /health can take a minute or more.
# The router's memory limit (its alert fires at 85 % of it: observability/alerts.py).
MEMORY_LIMIT_BYTES = 2 * 1024**3
STARTUP_PROBE_PERIOD_SECONDS = 5
STARTUP_BUDGET_SECONDS = 300


class RouterPodMixin:
    """The pod of `RouterChart`, never used on its own: reads the `props`, `name` and
    `app_labels` that `RouterChart.__init__` sets. Hooks: `router_args()`, `env()`,
    `container()`, `resources()`, `volumes()`, `pod_spec()`."""

    props: RouterChartProps
    name: str
    app_labels: dict[str, str]

    @property
    def secret_provider_class_name(self) -> str:
        return f"{self.name}-secrets"

    # -- hooks -------------------------------------------------------------------------

    def router_args(self) -> list[str]:
        """`vllm-router` arguments (each flag is checked against the pinned parser.py)."""
        selector = ",".join(f"{key}={value}" for key, value in self.props.model_selector.items())
        return [
            "--host", "0.0.0.0",
            "--port", str(PORT),
            # Each Ready model pod by its IP, in this namespace only (a Role, not a
            # ClusterRole); a terminating pod gets no new requests.
            "--service-discovery", "k8s",
            "--k8s-service-discovery-type", "pod-ip",
            "--k8s-namespace", self.props.namespace,
            "--k8s-port", str(ENGINE_PORT),
            "--k8s-label-selector", selector,
            # Re-list the pods every minute: a pod whose first /v1/models call failed is
            # otherwise skipped until its next change or the API server's watch timeout
            # (the default 0 leaves it to the server: 30-60 minutes).
            "--k8s-watcher-timeout-seconds", "60",
            # A consistent hash of the header over the model's pods (md5, the same in every
            # replica): a conversation keeps hitting the pod that has its prefix cached.
            # Without the header: the pod with the fewest recent requests. `prefixaware`
            # is not used: its prefix tree is per replica and never evicts (#687).
            "--routing-logic", "session",
            "--session-key", self.props.session_header,
            # A request whose pod fails before answering (connection refused or reset: it
            # died before discovery saw it go) is retried once on another pod of the model;
            # an error response, or one after the response started, goes to the client.
            "--max-instance-failover-reroute-attempts", "1",
            "--engine-stats-interval", str(ENGINE_STATS_INTERVAL_SECONDS),
            # Never debug or trace: at debug the router logs every request's headers,
            # Authorization included, unredacted (request.py).
            "--log-level", "info",
            "--log-format", "json",
        ]

    def env(self) -> list[k8s.EnvVar]:
        """The root filesystem is read-only: everything that may write goes to /tmp."""
        values = {
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "XDG_CACHE_HOME": "/tmp/.cache",
            "XDG_CONFIG_HOME": "/tmp/.config",
            "HF_HOME": "/tmp/huggingface",
            "HF_HUB_OFFLINE": "1",  # the router loads no model (no semantic cache)
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            # The UID has no passwd entry; libraries that look the user up read these.
            "USER": self.name,
            "LOGNAME": self.name,
        }
        return [k8s.EnvVar(name=key, value=value) for key, value in values.items()]

    def resources(self) -> k8s.ResourceRequirements:
        """No CPU limit (throttling stalls the event loop every stream goes through);
        memory limited so the known slow growth (#707) ends in a restart of one replica,
        not a starved node."""
        return k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string("500m"),
                      "memory": k8s.Quantity.from_string("1Gi")},
            limits={"memory": k8s.Quantity.from_string(f"{MEMORY_LIMIT_BYTES // 1024**3}Gi")})

    def volumes(self) -> list[k8s.Volume]:
        return [
            k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(
                size_limit=k8s.Quantity.from_string("1Gi"))),
            k8s.Volume(name="secrets", csi=k8s.CsiVolumeSource(
                driver=SECRETS_STORE_DRIVER, read_only=True,
                volume_attributes={"secretProviderClass": self.secret_provider_class_name})),
        ]

    def container(self) -> k8s.Container:
        # The router sends the key (VLLM_API_KEY, service_discovery.py) when it lists each
        # pod's models. It is read from the mounted secret into the router's environment
        # only: never a manifest, a ConfigMap or a Kubernetes Secret. An empty key would
        # list no model: fail at start instead. `exec` makes the router PID 1, so it gets
        # SIGTERM and drains.
        launcher = "; ".join([
            "set -eu",
            f'VLLM_API_KEY="$(cat {SECRETS_DIR}/api-key)"',
            '[ -n "$VLLM_API_KEY" ] || { echo "vllm-eks: the API key file is empty" >&2; '
            "exit 1; }",
            "export VLLM_API_KEY",
            f'exec {ENTRYPOINT} "$@"',
        ])
        http = k8s.HttpGetAction(path=HEALTH_PATH, port=k8s.IntOrString.from_string(PORT_NAME))
        return k8s.Container(
            name="router", image=versions.ROUTER_IMAGE,
            command=["/bin/sh", "-c", launcher, self.name],
            args=self.router_args(),
            env=self.env(),
            ports=[k8s.ContainerPort(name=PORT_NAME, container_port=PORT, protocol="TCP")],
            resources=self.resources(),
            security_context=container_security_context(),
            startup_probe=k8s.Probe(
                http_get=http, period_seconds=STARTUP_PROBE_PERIOD_SECONDS, timeout_seconds=3,
                failure_threshold=STARTUP_BUDGET_SECONDS // STARTUP_PROBE_PERIOD_SECONDS),
            readiness_probe=k8s.Probe(http_get=http, period_seconds=5, timeout_seconds=3,
                                      failure_threshold=3),
            # A minute unanswered (a blocked event loop) restarts it; shorter would cut
            # the streams through it on a long pause.
            liveness_probe=k8s.Probe(http_get=http, period_seconds=10, timeout_seconds=5,
                                     failure_threshold=6),
            lifecycle=k8s.Lifecycle(pre_stop=k8s.LifecycleHandler(
                sleep=k8s.SleepAction(seconds=PRE_STOP_SECONDS))),
            volume_mounts=[
                k8s.VolumeMount(name="tmp", mount_path="/tmp"),
                k8s.VolumeMount(name="secrets", mount_path=SECRETS_DIR, read_only=True),
            ],
        )

    def pod_spec(self) -> k8s.PodSpec:
        selector = k8s.LabelSelector(match_labels=self.app_labels)
        return k8s.PodSpec(
            service_account_name=self.name,
            automount_service_account_token=True,  # it watches pods through the API
            security_context=pod_security_context(),
            containers=[self.container()],
            volumes=self.volumes(),
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            # CPU nodes only (no GPU toleration): the system node group first, Karpenter's
            # general pool when it is full.
            affinity=k8s.Affinity(node_affinity=k8s.NodeAffinity(
                required_during_scheduling_ignored_during_execution=k8s.NodeSelector(
                    node_selector_terms=[k8s.NodeSelectorTerm(match_expressions=[
                        k8s.NodeSelectorRequirement(key=NODE_ROLE_LABEL, operator="In",
                                                    values=["system", "general"])])]),
                preferred_during_scheduling_ignored_during_execution=[
                    k8s.PreferredSchedulingTerm(weight=100, preference=k8s.NodeSelectorTerm(
                        match_expressions=[k8s.NodeSelectorRequirement(
                            key=NODE_ROLE_LABEL, operator="In", values=["system"])]))])),
            # Replicas on different nodes whenever there are enough (a hard skew of one),
            # and across zones where the nodes allow.
            topology_spread_constraints=[
                k8s.TopologySpreadConstraint(
                    max_skew=1, topology_key="kubernetes.io/hostname",
                    when_unsatisfiable="DoNotSchedule", label_selector=selector),
                k8s.TopologySpreadConstraint(
                    max_skew=1, topology_key="topology.kubernetes.io/zone",
                    when_unsatisfiable="ScheduleAnyway", label_selector=selector),
            ],
        )
