"""The boto3 client factory, and the error handling every check shares: a denied call
is "could not check" naming the IAM action, any other AWS error is reported on its row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .report import Row, Status

# Error codes of a call the caller's policies do not allow.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})

# Seconds, not minutes: a check that cannot reach AWS says so quickly.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15,
                        retries={"mode": "standard", "max_attempts": 3})


class ClientFactory(Protocol):
    region: str

    def client(self, service: str) -> Any: ...


class Clients:
    """boto3 clients of one region from the default credential chain (environment,
    AWS_PROFILE, SSO, instance or container role). Tests pass ready (stubbed) clients."""

    def __init__(self, region: str, clients: Mapping[str, Any] | None = None):
        self.region = region
        self._clients: dict[str, Any] = dict(clients or {})
        self._session = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self._session is None:
                import boto3  # only when a check runs: `plan` does not need boto3

                self._session = boto3.session.Session(region_name=self.region)
            self._clients[service] = self._session.client(service, config=_CLIENT_CONFIG)
        return self._clients[service]


class CouldNotCheck(Exception):
    """A check could not reach a verdict (denied, or an unexpected AWS error)."""

    def __init__(self, detail: str, fix: str = ""):
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def iam_action(client: Any, operation: str) -> str:
    """`servicequotas:GetServiceQuota` for a client's `get_service_quota`."""
    prefix = client.meta.service_model.signing_name
    return f"{prefix}:{client.meta.method_to_api_mapping[operation]}"


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def call(client: Any, operation: str, *, expected: Iterable[str] = (), **params) -> dict:
    """Call `operation`; an error code in `expected` is raised for the check to handle,
    a denied call or any other AWS error becomes CouldNotCheck."""
    try:
        return getattr(client, operation)(**params)
    except ClientError as error:
        code = error_code(error)
        if code in expected:
            raise
        action = iam_action(client, operation)
        if code in DENIED_CODES:
            raise CouldNotCheck(f"{action} was denied to these credentials",
                                f"allow {action} (docs/preflight.md lists every action)") \
                from None
        message = error.response.get("Error", {}).get("Message", "")
        raise CouldNotCheck(f"{action} failed: {code}: {message}") from None
    except BotoCoreError as error:
        raise CouldNotCheck(f"{iam_action(client, operation)} failed: {error}") from None


def guarded(check: str, function: Callable[[], list[Row]]) -> list[Row]:
    """The rows of one check, or one "could not check" row."""
    try:
        return function()
    except CouldNotCheck as error:
        return [Row(Status.UNCHECKED, check, error.detail, error.fix)]
