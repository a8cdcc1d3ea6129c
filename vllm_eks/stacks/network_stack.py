"""VllmNetworkStack: the VPC, kept apart so cluster changes never touch the network."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs import Network, NetworkProps


class NetworkStack(cdk.Stack):
    """Holds the Network construct; exports nothing by name (stacks pass objects)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = Network(
            self,
            "Network",
            props=NetworkProps(config=config.network, cluster_name=config.cluster.name),
        )
