"""The one function that builds an environment's stacks, for the CLI app and for a
pipeline Stage alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct

from ..config import ClusterConfig, EnvironmentConfig
from ..labels import ENVIRONMENT_TAG
from .cluster_stack import ClusterStack
from .model_store_stack import ModelStoreStack
from .network_stack import NetworkStack
from .prod_stack import ProdStack

# Stack IDs are an external contract (CloudFormation stack names): never rename them.
# These are the default environment's; another environment's carry its name (stack_id).
NETWORK_STACK_ID = "VllmNetworkStack"
MODEL_STORE_STACK_ID = "VllmModelStoreStack"
CLUSTER_STACK_ID = "VllmClusterStack"
PROD_STACK_ID = "VllmProdStack"


def stack_id(base: str, environment_name: str) -> str:
    """The stack ID (and CloudFormation stack name) of one of an environment's stacks in
    the CLI app: `VllmProdStack` for the default environment (`-c cluster_name` unset), so
    `cdk deploy VllmProdStack` stays what it was; `VllmProdStack-team-b` for
    `-c cluster_name=team-b`, so two environments in one account and region never
    update each other's stacks."""
    if environment_name == ClusterConfig().name:
        return base
    return f"{base}-{environment_name}"


@dataclass(frozen=True)
class EnvironmentStacks:
    network: NetworkStack
    model_store: ModelStoreStack
    cluster: ClusterStack
    prod: ProdStack

    def all(self) -> tuple[cdk.Stack, ...]:
        return (self.network, self.model_store, self.cluster, self.prod)


def build_environment(
    scope: Construct, config: EnvironmentConfig,
    synthesizer: Callable[[], cdk.IStackSynthesizer] | None = None,
) -> EnvironmentStacks:
    """Create the environment's stacks in `scope` (a cdk.App or a cdk.Stage). A pipeline
    passes `synthesizer`, a factory (each stack needs its own instance)."""
    env = cdk.Environment(account=config.account, region=config.region)

    # In the CLI app, stack names carry the environment (two environments may share an
    # account and region). A pipeline Stage already prefixes its stacks with the stage's
    # name (`Dev-VllmProdStack`), and renaming a deployed stack would replace it.
    name = config.cluster.name if isinstance(scope, cdk.App) else ClusterConfig().name

    def options() -> dict:
        return {"env": env, "synthesizer": synthesizer()} if synthesizer else {"env": env}

    network = NetworkStack(
        scope, stack_id(NETWORK_STACK_ID, name), config=config, **options(),
        description="vllm-eks network: VPC over three AZs, NAT, endpoints, flow logs",
    )
    model_store = ModelStoreStack(
        scope, stack_id(MODEL_STORE_STACK_ID, name), config=config, **options(), vpc=network.network.vpc,
        description="vllm-eks model store (stateful, retained): S3 weights, EFS cache",
    )
    cluster = ClusterStack(
        scope, stack_id(CLUSTER_STACK_ID, name), config=config, **options(), vpc=network.network.vpc,
        store=model_store.store,
        description="vllm-eks cluster: EKS, Bottlerocket system nodes, Karpenter, add-ons",
    )
    prod = ProdStack(
        scope, stack_id(PROD_STACK_ID, name), config=config, **options(),
        cluster=cluster.gpu_cluster.cluster, store=model_store.store, vpc=network.network.vpc,
        description=f"vllm-eks workloads: serving {', '.join(m.key for m in config.models)}",
    )
    # Explicit, so `cdk deploy VllmProdStack` deploys everything even where no reference
    # links two stacks. The store comes before the cluster and never depends on it.
    model_store.add_stack_dependency(network)
    cluster.add_stack_dependency(model_store)
    prod.add_stack_dependency(cluster)
    for stack in (network, model_store, cluster, prod):
        cdk.Tags.of(stack).add(ENVIRONMENT_TAG, config.cluster.name)
    return EnvironmentStacks(network=network, model_store=model_store, cluster=cluster,
                             prod=prod)
