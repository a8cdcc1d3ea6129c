"""The order in which the cluster stack installs its Helm releases.

CloudFormation creates every resource as soon as what it depends on exists, so releases
with no ordering between them install side by side. The orderings that are real are
stated where they are made (a CRD before objects of its kind, a controller whose webhook
has `failurePolicy: Fail` before what it admits, a secret mount before a release that
waits for the pod mounting it). On top of those, `in_lane` chains releases for one reason
only: each release in flight holds Lambda executions, and new accounts have a reduced
Lambda concurrency quota.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no CDK import at run time: preflight reads the numbers below
    from constructs import Construct

# Helm releases installing at once, at most. Each one holds KUBECTL_LAMBDA_EXECUTIONS
# concurrent Lambda executions for as long as Helm waits for its pods: the custom
# resource provider's onEvent function invokes the kubectl function and waits for it.
# "New AWS accounts have reduced concurrency and memory quotas" (Lambda quotas,
# docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), as low as 10
# concurrent executions; three releases (6) leave room for the manifests applied beside
# them. `python -m vllm_eks preflight` checks the account's quota.
RELEASES_IN_FLIGHT = 3
KUBECTL_LAMBDA_EXECUTIONS = 2
# Custom resources of the kubectl provider (releases, manifests) that one stack can
# create at once, at most: the three releases and two manifests beside them
# (tests/test_install_order.py measures every synthesized stack against it).
KUBECTL_RESOURCES_IN_FLIGHT = 5
# What the account's Lambda concurrency quota must allow for a deploy not to be throttled.
LAMBDA_CONCURRENCY_NEEDED = KUBECTL_RESOURCES_IN_FLIGHT * KUBECTL_LAMBDA_EXECUTIONS


def in_lane(*steps: Construct) -> None:
    """Install `steps` one after another, each after the one before it: a lane. The
    cluster stack puts its releases in at most RELEASES_IN_FLIGHT lanes; the order
    inside a lane has no reason but that cap (tests/test_install_order.py checks that no
    more releases can ever install at once)."""
    for before, step in zip(steps, steps[1:]):
        step.node.add_dependency(before)
