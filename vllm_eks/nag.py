"""cdk-nag: AwsSolutions checks run as a validation plugin on every synth.

Findings fail the synth. Each accepted finding is acknowledged where it arises, at the
narrowest scope, with its reason (see `acknowledge`).
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def enable_nag(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cdk-nag finding for `scope` and its children, with the reason why."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
