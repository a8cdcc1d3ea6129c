"""Teardown guard: a CloudFormation custom resource (Lambda-backed, no provider framework)
that does nothing on Create and Update and, when its stack is deleted, removes what the
in-cluster controllers created in AWS (load balancers, Karpenter nodes) while those
controllers still run (cleanup.py). It waits until they are gone, within a deadline inside
the Lambda's 15 minutes; when something is left it FAILS the delete, naming what is left
and how to inspect it: a failed stack deletion is visible and retryable, GPU instances
left running are not.

A Delete while the stack is not being deleted (the resource removed from the template, an
update rolled back) removes nothing: the stack's status is read first.

It talks to the Kubernetes API through kube.py, as the handler's role, which an EKS access
entry maps to a Kubernetes group. boto3/botocore come with the Lambda runtime and are
imported only where AWS is called.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Callable

try:  # a package in the repository (tests); top-level modules in the Lambda
    from . import cleanup
    from .kube import connect_to_cluster, eks_token  # noqa: F401 - eks_token for tests
except ImportError:
    import cleanup
    from kube import connect_to_cluster, eks_token  # noqa: F401

# The Lambda runs for at most 15 minutes: stop waiting at 13, leaving time to answer.
DEADLINE_SECONDS = 13 * 60
RESPONSE_MARGIN_SECONDS = 60
# Stack statuses in which a Delete means the whole stack goes (a deletion, or the
# rollback of a failed creation). In any other status (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS,
# UPDATE_ROLLBACK_IN_PROGRESS, ...) the cluster stays and nothing may be removed.
TEARDOWN_STATUSES = frozenset({"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})


# -- CloudFormation --------------------------------------------------------------------------

def physical_id(event: dict) -> str:
    """Stable across updates: a new ID would make CloudFormation delete the old one."""
    cluster = (event.get("ResourceProperties") or {}).get("ClusterName", "vllm-eks")
    return event.get("PhysicalResourceId") or f"{cluster}-teardown-guard"


def on_event(event: dict, *, budget_seconds: float, connect: Callable[[dict], cleanup.Api],
             clock: cleanup.Clock, stack_status: Callable[[str], str],
             log: Callable[[str], None] = print) -> str:
    """Handle one request; return the reason to report with SUCCESS, or raise."""
    request_type = event["RequestType"]
    if request_type in ("Create", "Update"):
        return f"{request_type}: nothing to do (the guard acts when the stack is deleted)"
    if request_type != "Delete":
        raise ValueError(f"unknown RequestType {request_type!r}")
    status = stack_status(event["StackId"])
    if status not in TEARDOWN_STATUSES:
        log(f"stack is {status}: not a deletion, nothing removed")
        return (f"Delete while the stack is {status} (the guard was removed or replaced, "
                "not the cluster): nothing was removed")
    return cleanup.teardown(connect(event["ResourceProperties"]), clock, budget_seconds, log)


def process(event: dict, *, budget_seconds: float, connect: Callable[[dict], cleanup.Api],
            clock: cleanup.Clock, stack_status: Callable[[str], str],
            put: Callable[[str, bytes], None], log: Callable[[str], None] = print) -> dict:
    """Handle the request and report the outcome to CloudFormation (every outcome: an
    exception must never leave CloudFormation waiting). Returns the response sent."""
    try:
        reason = on_event(event, budget_seconds=budget_seconds, connect=connect,
                          clock=clock, stack_status=stack_status, log=log)
        status = "SUCCESS"
    except cleanup.TeardownIncomplete as error:
        status, reason = "FAILED", str(error)
    except Exception as error:  # noqa: BLE001 - reported, never swallowed
        status = "FAILED"
        reason = (f"Teardown guard {event.get('RequestType')} failed: "
                  f"{type(error).__name__}: {error}")[:cleanup.MAX_REASON]
    log(f"{status}: {reason}")
    response = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id(event),
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": {},
    }
    put(event["ResponseURL"], json.dumps(response).encode())
    return response


# -- AWS and the network ----------------------------------------------------------------------

def connect(properties: dict) -> cleanup.Api:
    return cleanup.Api(connect_to_cluster(
        properties["ClusterName"], properties["ClusterEndpoint"],
        properties["CertificateAuthorityData"], os.environ["AWS_REGION"]))


def stack_status(stack_id: str) -> str:
    import boto3
    from botocore.config import Config

    client = boto3.client("cloudformation", config=Config(
        connect_timeout=10, read_timeout=20, retries={"max_attempts": 5, "mode": "standard"}))
    return client.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]


def put_response(url: str, body: bytes) -> None:
    """PUT to CloudFormation's presigned S3 URL (no Content-Type: it is not signed)."""
    for attempt in range(5):
        request = urllib.request.Request(url, data=body, method="PUT", headers={
            "Content-Type": "", "Content-Length": str(len(body))})
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            print(f"sending the response failed ({error}); attempt {attempt + 1} of 5")
            time.sleep(2 ** attempt)
    raise RuntimeError("could not send the response to CloudFormation")


def handler(event, context):
    print(json.dumps({k: v for k, v in event.items() if k != "ResponseURL"}))
    budget = min(DEADLINE_SECONDS,
                 context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS)
    process(event, budget_seconds=budget, connect=connect, clock=cleanup.Clock(),
            stack_status=stack_status, put=put_response)
