"""`python -m vllm_eks preflight`: read-only checks of the real AWS account, in seconds,
of everything that would otherwise fail half-way through a 40-minute `cdk deploy`.

    report.py    Status, Row and the printed table
    aws.py       the boto3 client factory and the error handling every check shares
    checks.py    account-wide checks: CDK bootstrap, Bottlerocket AMI, EKS add-ons,
                 Lambda concurrency
    capacity.py  EC2 vCPU quotas and instance type offerings per AZ
    inputs.py    the account resources the options point at (certificate, admin role)
    options.py   the command's options and their mapping to `-c` context keys
    runner.py    runs every check and prints the report

This module imports nothing from boto3: the CLI reads CHECKS for its help text without
paying for (or requiring) boto3 unless the command runs.
"""

from __future__ import annotations

# (name, what it checks) in the order the report lists them; the --help text and
# docs/preflight.md describe the same list.
CHECKS: tuple[tuple[str, str], ...] = (
    ("credentials", "sts:GetCallerIdentity works; the account matches -c account if given"),
    ("CDK bootstrap", "SSM /cdk-bootstrap/hnb659fds/version exists and is new enough"),
    ("GPU quota", "the EC2 vCPU quotas of the planned (and fallback) instance families for "
                  "the capacity type cover one node and Karpenter's gpu_limit"),
    ("CPU quota", "the system node group and Karpenter's general pool fit the On-Demand "
                  "Standard vCPU quota"),
    ("AZ offerings", "the planned instance type is offered in the configured AZs"),
    ("Bottlerocket AMI", "the pinned Bottlerocket NVIDIA AMI exists for the pinned "
                         "Kubernetes minor in the region"),
    ("EKS add-ons", "every pinned add-on version is published for the Kubernetes minor"),
    ("Lambda concurrency", "the account's unreserved Lambda concurrency covers the kubectl "
                           "custom resources the cluster stack runs at once"),
    ("certificate", "the ACM certificate is ISSUED, in the region and covers the hostname"),
    ("admin role", "the admin IAM role exists"),
)

# Every IAM action the checks call (docs/preflight.md lists them as a policy).
IAM_ACTIONS: tuple[str, ...] = (
    "sts:GetCallerIdentity",
    "ssm:GetParameter",
    "servicequotas:GetServiceQuota",
    "servicequotas:GetAWSDefaultServiceQuota",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstanceTypeOfferings",
    "eks:DescribeAddonVersions",
    "lambda:GetAccountSettings",
    "acm:DescribeCertificate",
    "iam:GetRole",
)
