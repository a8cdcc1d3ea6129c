"""Run every check against the account and print the report."""

from __future__ import annotations

import sys
from typing import TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)

from ..config import EnvironmentConfig
from .aws import ClientFactory, Clients, error_code, guarded
from .capacity import check_gpu_quotas, check_offerings, check_standard_quota
from .checks import (
    Target,
    check_addons,
    check_bootstrap,
    check_bottlerocket_ami,
    check_lambda_concurrency,
)
from .inputs import check_admin_role, check_certificate
from .report import Row, Status, exit_status, render, summary

# (name on a "could not check" row, check) in report order; credentials come first.
CHECK_FUNCTIONS = (
    ("CDK bootstrap", check_bootstrap),
    ("GPU quota", check_gpu_quotas),
    ("CPU quota L-1216C47A", check_standard_quota),
    ("AZ offerings", check_offerings),
    ("Bottlerocket AMI", check_bottlerocket_ami),
    ("EKS add-ons", check_addons),
    ("Lambda concurrency", check_lambda_concurrency),
    ("certificate", check_certificate),
    ("admin role", check_admin_role),
)


def _no_credentials(region: str, reason: str) -> str:
    return (f"vllm-eks preflight: {reason}: configure credentials with `aws configure` or "
            "`aws sso login`, or set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY); the region checked is {region} (--region to change)")


def identity(config: EnvironmentConfig, clients: ClientFactory) -> tuple[dict | None, str]:
    """The caller identity, or None and the one line to print instead."""
    try:
        return clients.client("sts").get_caller_identity(), ""
    except (NoCredentialsError, PartialCredentialsError) as error:
        return None, _no_credentials(config.region, f"no usable AWS credentials ({error})")
    except (ProfileNotFound, SSOError, TokenRetrievalError, CredentialRetrievalError) as error:
        return None, _no_credentials(config.region, str(error))
    except ClientError as error:  # expired or invalid keys
        return None, _no_credentials(
            config.region, f"the credentials were refused ({error_code(error)})")
    except BotoCoreError as error:  # no network, ...
        return None, f"vllm-eks preflight: cannot call AWS STS in {config.region}: {error}"


def run_preflight(config: EnvironmentConfig, clients: ClientFactory | None = None,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print one row per check and a summary; 0 when no row is a problem."""
    out, err = out or sys.stdout, err or sys.stderr
    clients = clients or Clients(config.region)
    caller, message = identity(config, clients)
    if caller is None:
        print(message, file=err)
        return 1
    account = caller["Account"]
    rows = [Row(Status.OK, "credentials", f"{caller['Arn']} (account {account})")]
    if config.account is not None and config.account != account:
        rows = [Row(Status.PROBLEM, "credentials",
                    f"{caller['Arn']} is in account {account}, but -c account is "
                    f"{config.account}: cdk deploy would refuse these credentials",
                    f"use credentials of {config.account} (AWS_PROFILE), or drop -c account")]
    target = Target(config=config, clients=clients, account=account)
    for name, check in CHECK_FUNCTIONS:
        rows += guarded(name, lambda check=check: check(target))
    placements = ", ".join(f"{m.key} on {m.plan.instance_type} ({m.plan.capacity.value})"
                           for m in config.models)
    print(f"vllm-eks preflight: {placements}, account {account}, region {config.region}, zones "
          f"{','.join(config.network.availability_zones)}", file=out)
    print(render(rows), file=out)
    print(summary(rows), file=out)
    return exit_status(rows)
