"""The teardown itself, free of AWS and the network: what the guard deletes (kinds and
phases, exactly the ClusterRole's), and the delete-and-wait loop under a deadline, with
the Kubernetes API (`Request`) and the clock passed in, so tests drive it with fakes.

1. every Ingress and every Service of type LoadBalancer (the AWS Load Balancer Controller
   removes their finalizers only after their load balancer and target groups are gone);
2. every Karpenter NodePool (nothing new launches) and every NodeClaim (Karpenter removes
   the finalizer only after the instance is terminated).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

POLL_SECONDS = 10
MAX_LISTED = 20  # a CloudFormation response must stay under 4 KB
MAX_REASON = 3000


# -- Kubernetes kinds --------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """A resource type the guard lists and deletes (exactly the ClusterRole's)."""

    plural: str  # the API's resource name, as in the ClusterRole
    group_version: str  # "v1" for the core group
    namespaced: bool
    label: str  # how messages name one object
    select: Callable[[dict], bool] = field(default=lambda obj: True, compare=False)

    def prefix(self) -> str:
        return "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"

    def collection(self) -> str:
        return f"{self.prefix()}/{self.plural}"

    def item(self, namespace: str | None, name: str) -> str:
        quote = urllib.parse.quote
        if self.namespaced:
            return f"{self.prefix()}/namespaces/{quote(namespace, safe='')}/{self.plural}/" \
                   f"{quote(name, safe='')}"
        return f"{self.prefix()}/{self.plural}/{quote(name, safe='')}"


INGRESSES = Kind("ingresses", "networking.k8s.io/v1", True, "ingress")
LOAD_BALANCER_SERVICES = Kind(
    "services", "v1", True, "service (type LoadBalancer)",
    select=lambda obj: (obj.get("spec") or {}).get("type") == "LoadBalancer")
NODEPOOLS = Kind("nodepools", "karpenter.sh/v1", False, "nodepool")
NODECLAIMS = Kind("nodeclaims", "karpenter.sh/v1", False, "nodeclaim")


@dataclass(frozen=True)
class Phase:
    """Delete `delete` (in this order), and wait until nothing of `wait_for` remains."""

    name: str
    delete: tuple[Kind, ...]
    wait_for: tuple[Kind, ...]
    inspect: tuple[str, ...]  # kubectl commands that show what is left


PHASES = (
    Phase("load balancers", (INGRESSES, LOAD_BALANCER_SERVICES),
          (INGRESSES, LOAD_BALANCER_SERVICES),
          ("kubectl get ingress -A",
           "kubectl get service -A | grep LoadBalancer",
           "kubectl -n kube-system logs deploy/aws-load-balancer-controller")),
    Phase("Karpenter nodes", (NODEPOOLS, NODECLAIMS), (NODECLAIMS,),
          ("kubectl get nodepools,nodeclaims",
           "kubectl describe nodeclaim <name>",
           "kubectl -n kube-system logs deploy/karpenter")),
)


class ApiError(Exception):
    hint = ""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        super().__init__(f"{method} {path}: {status or 'no answer'} {detail[:300]}{self.hint}")
        self.status = status


class AccessDenied(ApiError):
    """401/403: the access entry or the ClusterRole is missing; waiting will not help."""

    hint = (" (the handler role's EKS access entry, group vllm-eks-teardown, or the "
            "vllm-eks-teardown ClusterRole/ClusterRoleBinding is missing)")


class TeardownIncomplete(Exception):
    """The deadline passed with objects left."""


# A request to the Kubernetes API: (method, path) -> (HTTP status or None, parsed body)
# (kube.kubernetes_request).
Request = Callable[..., tuple]


class Api:
    """List and delete through `request`; 404 means gone (or its CRD is)."""

    def __init__(self, request: Request, log: Callable[[str], None] = print) -> None:
        self._request, self._log = request, log

    def _call(self, method: str, path: str) -> dict:
        status, body = self._request(method, path)
        if status == 404:
            return {}
        if status in (401, 403):
            raise AccessDenied(method, path, status, json.dumps(body))
        if status is None or not 200 <= status < 300:
            raise ApiError(method, path, status, json.dumps(body) if body else "")
        return body or {}

    def list(self, kind: Kind) -> list[dict]:
        return [obj for obj in self._call("GET", kind.collection()).get("items", [])
                if kind.select(obj)]

    def delete(self, kind: Kind, obj: dict) -> None:
        meta = obj["metadata"]
        self._call("DELETE", kind.item(meta.get("namespace"), meta["name"]))
        self._log(f"deleted {kind.label} {describe(kind, obj)}")


def describe(kind: Kind, obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if kind.namespaced else meta["name"]


# -- the teardown ---------------------------------------------------------------------------

class Clock:
    """Monotonic time and sleep; tests pass a fake that advances on sleep."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def teardown(api: Api, clock: Clock, budget_seconds: float,
             log: Callable[[str], None] = print) -> str:
    """Run the phases in order under one deadline; return a summary, or raise
    TeardownIncomplete naming what is left. A phase that runs out of time does not stop
    the next one from issuing its deletes (so instances start terminating), but the
    delete fails."""
    deadline = clock.now() + budget_seconds
    summary, left = [], []
    for phase in PHASES:
        removed, remaining, last_error = run_phase(api, clock, phase, deadline, log)
        summary.append(f"{phase.name}: {removed} deleted")
        if remaining or last_error:
            left.append((phase, remaining, last_error))
    if left:
        raise TeardownIncomplete(incomplete_message(left, budget_seconds))
    return "; ".join(summary)


def run_phase(api: Api, clock: Clock, phase: Phase, deadline: float,
              log: Callable[[str], None]) -> tuple[int, list[str], str | None]:
    """Delete and wait: each round lists the phase's kinds, deletes what is not being
    deleted yet (something may have appeared since: a NodeClaim launched just before its
    NodePool went) and stops when nothing of `wait_for` remains. Returns (objects deleted,
    what is left, the last API error when the API did not answer)."""
    deleted: set[str] = set()  # by uid: an object recreated under its name is new
    while True:
        remaining, last_error = [], None
        try:
            for kind in phase.delete:
                for obj in api.list(kind):
                    key = obj["metadata"].get("uid") or f"{kind.plural}/{describe(kind, obj)}"
                    if not obj["metadata"].get("deletionTimestamp") and key not in deleted:
                        api.delete(kind, obj)
                        deleted.add(key)
                    if kind in phase.wait_for:
                        remaining.append(f"{kind.label} {describe(kind, obj)}")
        except AccessDenied:
            raise
        except ApiError as error:  # transient (throttling, a restarting endpoint): retry
            last_error = str(error)
            log(f"{phase.name}: {error}; retrying")
        if not remaining and last_error is None:
            log(f"{phase.name}: none left ({len(deleted)} deleted)")
            return len(deleted), [], None
        if clock.now() + POLL_SECONDS > deadline:
            return len(deleted), remaining, last_error
        if remaining:
            log(f"{phase.name}: waiting for {len(remaining)}: {', '.join(remaining[:5])}")
        clock.sleep(POLL_SECONDS)


def incomplete_message(left: list[tuple[Phase, list[str], str | None]],
                       budget_seconds: float) -> str:
    parts = [f"Teardown guard: not everything was gone after {int(budget_seconds)} s; "
             "AWS resources may still be running (and billing)."]
    for phase, remaining, last_error in left:
        shown = ", ".join(remaining[:MAX_LISTED])
        more = f" and {len(remaining) - MAX_LISTED} more" if len(remaining) > MAX_LISTED else ""
        text = f" {phase.name} still present: {shown}{more}." if remaining else ""
        if last_error:
            text += f" {phase.name}: the API did not answer: {last_error}."
        text += " Inspect: " + "; ".join(phase.inspect) + "."
        parts.append(text)
    parts.append(" Their deletion continues in the cluster: retry the stack deletion "
                 "(cdk destroy) once they are gone (docs/teardown.md).")
    return "".join(parts)[:MAX_REASON]
