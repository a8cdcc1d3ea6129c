"""The Kubernetes API from a Lambda function, with the standard library: an EKS bearer
token for the function's role (a presigned STS GetCallerIdentity URL, signed locally) and
HTTPS to the cluster endpoint trusting only the cluster's CA. An EKS access entry maps the
role to a Kubernetes group, which RBAC gives exactly what the handler does. Shared by the
teardown guard (index.py) and the benchmark gate (benchmark_gate.py)."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Callable

REQUEST_TIMEOUT_SECONDS = 15
TOKEN_LIFETIME_SECONDS = 300  # EKS accepts a token for 15 minutes after signing

# A request to the Kubernetes API: (method, path[, JSON body]) -> (HTTP status or None,
# parsed body).
Request = Callable[..., tuple]


def eks_token(cluster_name: str, region: str, session=None) -> str:
    """An EKS bearer token: the presigned URL of STS GetCallerIdentity with the header
    x-k8s-aws-id=<cluster name>, base64url without padding, prefixed `k8s-aws-v1.`.
    Signing is local: no STS call and no IAM permission."""
    import botocore.session
    from botocore.signers import RequestSigner

    session = session or botocore.session.get_session()
    sts = session.create_client("sts", region_name=region)
    signer = RequestSigner(sts.meta.service_model.service_id, region, "sts", "v4",
                           session.get_credentials(), session.get_component("event_emitter"))
    url = signer.generate_presigned_url(
        {"method": "GET",
         "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity"
                "&Version=2011-06-15",
         "body": {}, "headers": {"x-k8s-aws-id": cluster_name}, "context": {}},
        region_name=region, expires_in=60, operation_name="")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def kubernetes_request(endpoint: str, certificate_authority: str,
                       token: Callable[[], str]) -> Request:
    """HTTPS to the cluster endpoint, trusting only the cluster's CA."""
    context = ssl.create_default_context(
        cadata=base64.b64decode(certificate_authority).decode())

    def request(method: str, path: str, body: dict | None = None) -> tuple:
        headers = {"Authorization": f"Bearer {token()}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        call = urllib.request.Request(f"{endpoint.rstrip('/')}{path}", method=method,
                                      headers=headers, data=data)
        try:
            with urllib.request.urlopen(call, context=context,
                                        timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {"message": text[:300]}
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            return None, {"message": str(error)}

    return request


def connect_to_cluster(cluster_name: str, endpoint: str, certificate_authority: str,
                       region: str) -> Request:
    """A request function for the cluster, its token re-signed every few minutes."""
    cached: dict = {}

    def token() -> str:
        if cached.get("until", 0) < time.monotonic():
            cached["value"] = eks_token(cluster_name, region)
            cached["until"] = time.monotonic() + TOKEN_LIFETIME_SECONDS
        return cached["value"]

    return kubernetes_request(endpoint, certificate_authority, token)
