"""ModelStore: the stateful part of the environment, where model weights live."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..nag import acknowledge
from .secret import manually_rotated_secret

# Logical IDs of the stateful resources, pinned: CloudFormation replaces (deletes and
# recreates) a resource whose logical ID changes, so a refactoring must never move them.
WEIGHTS_BUCKET_ID = "WeightsBucket"
ACCESS_LOG_BUCKET_ID = "AccessLogBucket"
FILE_SYSTEM_ID = "ModelCacheFileSystem"
HF_TOKEN_SECRET_ID = "HuggingFaceTokenSecret"

# JSON key of the Hugging Face token in its secret; empty means anonymous downloads.
HF_TOKEN_KEY = "token"


def model_prefix(model_key: str) -> str:
    """The S3 key prefix a model's weights are staged under (one sub-prefix per revision)."""
    return f"{model_key}/"


@dataclass(frozen=True, kw_only=True)
class ModelStoreProps:
    vpc: ec2.IVpc  # the file system's mount targets go in its private subnets
    environment_name: str  # the cluster name; named in descriptions


class ModelStore(Construct):
    """The S3 weights bucket (with its access-log bucket), the EFS model cache, and the
    Secrets Manager secret that holds a Hugging Face token. Everything is retained when
    the stack is deleted, and the logical IDs are pinned (see the constants above).

    Its security group (`file_system_security_group`) has no ingress of its own: NFS is
    opened to the cluster by the cluster stack (StorageDrivers), so this stack never
    depends on the cluster. Nothing here is meant to be overridden.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: ModelStoreProps) -> None:
        super().__init__(scope, construct_id)
        retain = cdk.RemovalPolicy.RETAIN
        self.access_log_bucket = s3.Bucket(
            self, ACCESS_LOG_BUCKET_ID,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # ACLs off; log delivery is granted by the bucket policy instead.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            removal_policy=retain,
        )
        acknowledge(
            self.access_log_bucket, "AwsSolutions::AwsSolutions-S1",
            "This bucket receives the weights bucket's server access logs; logging it "
            "into itself would log every log delivery.",
        )
        self.bucket = s3.Bucket(
            self, WEIGHTS_BUCKET_ID,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="weights-bucket/",
            lifecycle_rules=[
                # Re-staged weights leave old versions behind; a 688 GB model must not be
                # billed twice forever.
                s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(30),
                                 abort_incomplete_multipart_upload_after=cdk.Duration.days(7)),
            ],
            removal_policy=retain,
        )

        self.file_system_security_group = ec2.SecurityGroup(
            self, "FileSystemSecurityGroup", vpc=props.vpc, allow_all_outbound=False,
            description="NFS to the model cache; ingress only from the EKS cluster nodes",
        )
        self.file_system = efs.FileSystem(
            self, FILE_SYSTEM_ID,
            vpc=props.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_group=self.file_system_security_group,
            encrypted=True,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            enable_automatic_backups=True,
            removal_policy=retain,
        )

        self.hf_token_secret = manually_rotated_secret(
            self, HF_TOKEN_SECRET_ID,
            # No fixed name: the secret is retained, and a fixed name would block a
            # re-created stack. The stack output and the tag find it.
            description=f"vllm-eks {props.environment_name}: Hugging Face token for gated "
            "models; put-secret-value "
            f'\'{{"{HF_TOKEN_KEY}":"hf_..."}}\'. Empty: anonymous downloads.',
            # The template carries only this empty template; the token is set out of band
            # and never passes through CloudFormation.
            value=secretsmanager.SecretStringGenerator(
                secret_string_template=f'{{"{HF_TOKEN_KEY}": ""}}',
                generate_string_key="unused",
                password_length=8,
            ),
            rotation="A Hugging Face token is issued by Hugging Face, not generated here: AWS "
            "cannot rotate it; the README shows how to replace it (no redeploy needed).",
            removal_policy=retain,
        )
        for resource, logical_id in (
            (self.bucket, WEIGHTS_BUCKET_ID),
            (self.access_log_bucket, ACCESS_LOG_BUCKET_ID),
            (self.file_system, FILE_SYSTEM_ID),
            (self.hf_token_secret, HF_TOKEN_SECRET_ID),
        ):
            resource.node.default_child.override_logical_id(logical_id)
