"""ImageCache: an ECR pull-through cache of Docker Hub for the vLLM image (opt-in).

Without it every new GPU node pulls the ~12 GB vLLM image from Docker Hub through NAT:
anonymous pulls are rate-limited per IP (a NAT gateway's IP is shared by every node of
its zone), and NAT bills per GB. Through the cache, the first pull imports the image into
this account's ECR and later pulls come from ECR (layers served from S3 through the VPC's
gateway endpoint, the API through the ECR interface endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from ..nag import acknowledge_wildcards

DOCKER_HUB_REGISTRY = "registry-1.docker.io"


@dataclass(frozen=True, kw_only=True)
class ImageCacheProps:
    # ECR repository prefix of the cache: unique in an account and region, so one per
    # environment (EnvironmentConfig.image_cache_prefix).
    prefix: str
    # Secrets Manager secret `ecr-pullthroughcache/<name>` with Docker Hub credentials
    # ({"username": ..., "accessToken": ...}); ECR requires credentials for Docker Hub.
    docker_hub_secret_arn: str
    # Roles of the nodes that pull the image (system nodes run the staging Job; GPU nodes
    # serve): each may import and read images under the prefix only.
    node_roles: tuple[iam.IRole, ...]


class ImageCache(Construct):
    """The pull-through cache rule and the nodes' right to fill it. No hooks."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ImageCacheProps) -> None:
        super().__init__(scope, construct_id)
        self.rule = ecr.CfnPullThroughCacheRule(
            self, "Rule",
            ecr_repository_prefix=props.prefix,
            upstream_registry="docker-hub",
            upstream_registry_url=DOCKER_HUB_REGISTRY,
            credential_arn=props.docker_hub_secret_arn,
        )
        stack = cdk.Stack.of(self)
        repositories = stack.format_arn(service="ecr", resource="repository",
                                        resource_name=f"{props.prefix}/*")
        # The first pull of an image creates its repository and imports it; the managed
        # AmazonEC2ContainerRegistryPullOnly policy of the nodes reads it afterwards.
        statement = iam.PolicyStatement(
            sid="FillPullThroughCache",
            actions=["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
            resources=[repositories],
        )
        for role in props.node_roles:
            role.add_to_principal_policy(statement)
            acknowledge_wildcards(
                role, [statement],
                "The cache creates one repository per upstream image on its first pull, "
                "under this environment's prefix only; their names are Docker Hub's.")
