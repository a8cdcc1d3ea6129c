"""The AWS regions vllm-eks deploys to: commercial regions (partition `aws`) with EKS.

A name that only looks like a region (`xx-fake-1`) would synthesize and fail at deploy;
it is refused at synth instead. Add a region here when AWS opens one.
"""

from __future__ import annotations

KNOWN_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
    "eu-south-1", "eu-south-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-7", "ap-south-1", "ap-south-2", "ap-east-1",
    "me-south-1", "me-central-1", "il-central-1", "sa-east-1", "af-south-1", "mx-central-1",
})
