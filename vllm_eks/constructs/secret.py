"""Secrets Manager secrets that AWS does not rotate: each says how it is replaced instead."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..nag import acknowledge


def random_alphanumeric(length: int) -> secretsmanager.SecretStringGenerator:
    """A generated password of letters and digits: safe in a header, a URL or a shell."""
    return secretsmanager.SecretStringGenerator(password_length=length,
                                                exclude_punctuation=True)


def manually_rotated_secret(scope: Construct, construct_id: str, *, description: str,
                            value: secretsmanager.SecretStringGenerator, rotation: str,
                            removal_policy: cdk.RemovalPolicy | None = None,
                            ) -> secretsmanager.Secret:
    """A secret generated from `value`, without a rotation Lambda; cdk-nag's SMG4 finding
    (no automatic rotation) is acknowledged with `rotation`: why AWS cannot rotate it and
    how an operator replaces it. `removal_policy` None: deleted with its stack."""
    secret = secretsmanager.Secret(scope, construct_id, description=description,
                                   generate_secret_string=value,
                                   removal_policy=removal_policy)
    acknowledge(secret, "AwsSolutions::AwsSolutions-SMG4", rotation)
    return secret
