"""VllmModelStoreStack: the stateful stack (weights bucket, EFS cache, Hugging Face token).

Termination protection is on and every resource is retained: deleting or renaming the
stack never deletes weights. Nothing here depends on the cluster.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ..config import EnvironmentConfig
from ..constructs.model_store import ModelStore, ModelStoreProps


class ModelStoreStack(cdk.Stack):
    """Holds the ModelStore construct."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 vpc: ec2.IVpc, **kwargs) -> None:
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.store = ModelStore(
            self, "ModelStore",
            props=ModelStoreProps(vpc=vpc, environment_name=config.cluster.name),
        )
        cdk.CfnOutput(self, "WeightsBucketName", value=self.store.bucket.bucket_name)
        cdk.CfnOutput(self, "FileSystemId", value=self.store.file_system.file_system_id)
        cdk.CfnOutput(
            self, "HuggingFaceTokenSecretArn", value=self.store.hf_token_secret.secret_arn,
            description="Put a Hugging Face token here for gated models (see README)",
        )
