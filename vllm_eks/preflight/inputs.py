"""The account resources the options point at: the ACM certificate and the admin role."""

from __future__ import annotations

from botocore.exceptions import ClientError

from .aws import call, error_code
from .checks import Target
from .report import Row, Status


def covers(name: str, hostname: str) -> bool:
    """Whether a certificate name covers `hostname`: exactly, or as a wildcard
    `*.example.com` covering exactly one label (`a.example.com`, not `example.com` nor
    `a.b.example.com`)."""
    name, hostname = name.lower().rstrip("."), hostname.lower().rstrip(".")
    if name.startswith("*."):
        label, _, rest = hostname.partition(".")
        return bool(label) and rest == name[2:]
    return name == hostname


def _arn_parts(arn: str) -> tuple[str, str]:
    """(region, account) of an ARN."""
    parts = arn.split(":")
    return parts[3], parts[4]


def check_certificate(target: Target) -> list[Row]:
    endpoint = target.config.endpoint
    arn, hostname = endpoint.certificate_arn, endpoint.hostname
    what = "certificate"
    if arn is None:
        return [Row(Status.OK, what, "no certificate_arn: the endpoint is HTTP only")]
    region, account = _arn_parts(arn)
    if account != target.account:
        return [Row(Status.PROBLEM, what,
                    f"{arn} belongs to account {account}, but these credentials deploy to "
                    f"{target.account}: a load balancer only uses its own account's "
                    "certificates", "request or import the certificate in "
                    f"{target.account} ({region})")]
    if region != target.config.region:  # config validation refuses this; kept for safety
        return [Row(Status.PROBLEM, what, f"{arn} is in {region}, the endpoint in "
                                          f"{target.config.region}",
                    f"request or import the certificate in {target.config.region}")]
    try:
        certificate = call(target.client("acm"), "describe_certificate", CertificateArn=arn,
                           expected=("ResourceNotFoundException",
                                     "InvalidArnException"))["Certificate"]
    except ClientError as error:
        return [Row(Status.PROBLEM, what, f"{arn} does not exist ({error_code(error)})",
                    "pass the ARN of an issued certificate (aws acm list-certificates "
                    f"--region {region})")]
    names = [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]
    names = list(dict.fromkeys(n for n in names if n))
    status = certificate.get("Status", "UNKNOWN")
    rows = []
    if status != "ISSUED":
        rows.append(Row(Status.PROBLEM, what,
                        f"{arn} ({', '.join(names)}) is {status}, not ISSUED: the HTTPS "
                        "listener would fail to create",
                        "complete its validation (DNS record) or use an issued certificate"
                        if status == "PENDING_VALIDATION" else
                        "request a new certificate and pass its ARN"))
    if hostname is None:
        rows.append(Row(Status.WARNING, what,
                        f"no endpoint_hostname: clients reach the load balancer's own DNS "
                        f"name, which {', '.join(names)} does not cover, so TLS clients "
                        "refuse it", "pass --endpoint-hostname (-c endpoint_hostname) with a "
                        "name the certificate covers, and point it (CNAME/alias) at the "
                        "LoadBalancerDnsName output"))
    elif not any(covers(name, hostname) for name in names):
        rows.append(Row(Status.PROBLEM, what,
                        f"{arn} covers {', '.join(names)}, not {hostname}: TLS clients would "
                        "refuse the endpoint",
                        f"use a certificate for {hostname} (or *.{hostname.partition('.')[2]}),"
                        " or change --endpoint-hostname"))
    return rows or [Row(Status.OK, what, f"{arn} is ISSUED and covers {hostname}")]


def check_admin_role(target: Target) -> list[Row]:
    arn = target.config.cluster.admin_role_arn
    what = "admin role"
    if arn is None:
        return [Row(Status.OK, what, "no admin_role_arn: only the deploying CloudFormation "
                                     "role administers the cluster")]
    _, account = _arn_parts(arn)
    if account != target.account:
        return [Row(Status.UNCHECKED, what,
                    f"{arn} is in account {account}; these credentials (account "
                    f"{target.account}) cannot read it")]
    name = arn.rsplit("/", 1)[1]
    try:
        role = call(target.client("iam"), "get_role", RoleName=name,
                    expected=("NoSuchEntity",))["Role"]
    except ClientError:
        return [Row(Status.PROBLEM, what,
                    f"role {name} does not exist in account {account}: the EKS access entry "
                    "would fail to create", "create the role, or pass the ARN of an existing "
                    "one (aws iam list-roles)")]
    if role["Arn"] != arn:
        return [Row(Status.PROBLEM, what,
                    f"role {name} exists as {role['Arn']}, not {arn} (its path differs)",
                    f"pass --admin-role-arn {role['Arn']}")]
    return [Row(Status.OK, what, f"{arn} exists")]
