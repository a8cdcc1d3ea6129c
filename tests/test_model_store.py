"""The stateful model store (S3 + EFS + Hugging Face token), retained under pinned logical
IDs, and the cluster side of storage: CSI add-ons, their identities, the StorageClass."""

from __future__ import annotations

import json

import pytest

from vllm_eks import versions
from vllm_eks.constructs.model_store import (
    ACCESS_LOG_BUCKET_ID,
    FILE_SYSTEM_ID,
    HF_TOKEN_SECRET_ID,
    WEIGHTS_BUCKET_ID,
)
from vllm_eks.stacks import CLUSTER_STACK_ID, MODEL_STORE_STACK_ID

STORE, CLUSTER = MODEL_STORE_STACK_ID, CLUSTER_STACK_ID

# The logical IDs of the stateful resources, written out: if a refactoring changes one,
# CloudFormation would replace the resource (a new, empty bucket). This list changes
# only together with a migration plan.
PINNED_LOGICAL_IDS = {
    "WeightsBucket": "AWS::S3::Bucket",
    "AccessLogBucket": "AWS::S3::Bucket",
    "ModelCacheFileSystem": "AWS::EFS::FileSystem",
    "HuggingFaceTokenSecret": "AWS::SecretsManager::Secret",
}


def test_stateful_logical_ids_are_pinned_and_retained(default_env):
    assert {WEIGHTS_BUCKET_ID, ACCESS_LOG_BUCKET_ID, FILE_SYSTEM_ID, HF_TOKEN_SECRET_ID} == set(
        PINNED_LOGICAL_IDS)
    resources = default_env.templates[STORE]["Resources"]
    for logical_id, resource_type in PINNED_LOGICAL_IDS.items():
        resource = resources[logical_id]
        assert resource["Type"] == resource_type
        assert resource["DeletionPolicy"] == "Retain", logical_id
        assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_store_logical_ids_do_not_depend_on_the_model(default_env, deepseek_env):
    """Switching models must never replace the store."""
    for logical_id in PINNED_LOGICAL_IDS:
        assert logical_id in deepseek_env.templates[STORE]["Resources"]
    assert set(default_env.templates[STORE]["Resources"]) == set(
        deepseek_env.templates[STORE]["Resources"])


def test_store_stack_has_termination_protection(default_env):
    manifest = json.loads((default_env.outdir / "manifest.json").read_text())
    assert manifest["artifacts"][STORE]["properties"]["terminationProtection"] is True


def test_weights_bucket_is_private_encrypted_versioned_tls_only_and_logged(default_env):
    resources = default_env.templates[STORE]["Resources"]
    bucket = resources[WEIGHTS_BUCKET_ID]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": ACCESS_LOG_BUCKET_ID}
    policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"
                and r["Properties"]["Bucket"] == {"Ref": WEIGHTS_BUCKET_ID}]
    (statements,) = [p["PolicyDocument"]["Statement"] for p in policies]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_file_system_is_encrypted_elastic_backed_up_and_private(default_env):
    resources = default_env.templates[STORE]["Resources"]
    fs = resources[FILE_SYSTEM_ID]["Properties"]
    assert fs["Encrypted"] is True
    assert fs["ThroughputMode"] == "elastic"
    assert fs["BackupPolicy"] == {"Status": "ENABLED"}
    targets = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EFS::MountTarget"]
    assert len(targets) == 3
    for target in targets:
        assert "PrivateSubnet" in target["SubnetId"]["Fn::ImportValue"]


def test_nfs_is_open_only_to_the_cluster_nodes(default_env):
    store = default_env.templates[STORE]["Resources"]
    (group_id,) = [k for k, r in store.items() if r["Type"] == "AWS::EC2::SecurityGroup"]
    assert "SecurityGroupIngress" not in store[group_id]["Properties"]
    rules = [r["Properties"] for r in default_env.resources(
        CLUSTER, "AWS::EC2::SecurityGroupIngress").values()
        if group_id in json.dumps(r["Properties"]["GroupId"])]
    assert len(rules) == 1
    (rule,) = rules
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 2049, 2049)
    assert rule["SourceSecurityGroupId"]["Fn::GetAtt"][1] == "ClusterSecurityGroupId"
    assert "CidrIp" not in rule


def test_hugging_face_token_secret_holds_no_token(default_env):
    secret = default_env.templates[STORE]["Resources"][HF_TOKEN_SECRET_ID]["Properties"]
    assert "SecretString" not in secret
    assert json.loads(secret["GenerateSecretString"]["SecretStringTemplate"]) == {"token": ""}


def test_csi_drivers_are_pinned_add_ons_with_pod_identity(default_env):
    addons = {r["Properties"]["AddonName"]: r["Properties"]
              for r in default_env.resources(CLUSTER, "AWS::EKS::Addon").values()}
    expected = {"aws-efs-csi-driver": "efs-csi-controller-sa",
                "aws-ebs-csi-driver": "ebs-csi-controller-sa"}
    for name, service_account in expected.items():
        addon = addons[name]
        assert addon["AddonVersion"] == versions.EKS_ADDON_VERSIONS[name]
        assert addon["ResolveConflicts"] == "OVERWRITE"
        (association,) = addon["PodIdentityAssociations"]
        assert association["ServiceAccount"] == service_account
        role = default_env.templates[CLUSTER]["Resources"][association["RoleArn"]["Fn::GetAtt"][0]]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "pods.eks.amazonaws.com"}


def test_no_node_wide_s3_driver(default_env):
    """Nothing mounts the bucket (vLLM streams it, the staging Job uses the S3 API): no
    Mountpoint-for-S3 add-on and no role that reads the whole bucket from every node."""
    addons = {r["Properties"]["AddonName"]
              for r in default_env.resources(CLUSTER, "AWS::EKS::Addon").values()}
    assert "aws-mountpoint-s3-csi-driver" not in addons


def _inline_statements(env, role_prefix: str) -> list[dict]:
    roles = env.resources(CLUSTER, "AWS::IAM::Role")
    (role,) = [r for k, r in roles.items() if k.startswith(role_prefix)]
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_efs_driver_creates_access_points_only_on_our_file_system(default_env):
    statements = {s["Sid"]: s for s in _inline_statements(default_env, "StorageDriversEfsCsiRole")}
    only_driver_tag = {
        "Null": {"aws:RequestTag/efs.csi.aws.com/cluster": "false"},
        "ForAllValues:StringEquals": {"aws:TagKeys": "efs.csi.aws.com/cluster"}}
    create = statements["CreateAccessPoints"]
    assert create["Action"] == "elasticfilesystem:CreateAccessPoint"
    assert "ModelCacheFileSystem" in json.dumps(create["Resource"])
    assert create["Condition"] == only_driver_tag
    # A tagged create is also authorized as TagResource on the new access point.
    tag = statements["TagNewAccessPoints"]
    assert tag["Action"] == "elasticfilesystem:TagResource"
    assert json.dumps(tag["Resource"]).endswith(':access-point/*"]]}')
    assert tag["Condition"] == {**only_driver_tag, "StringEquals": {
        "elasticfilesystem:CreateAction": "CreateAccessPoint"}}
    delete = statements["DeleteOwnAccessPoints"]
    assert delete["Condition"] == {"Null": {"aws:ResourceTag/efs.csi.aws.com/cluster":
                                            "false"}}
    for statement in statements.values():
        if statement["Resource"] == "*":
            assert all(":Describe" in action for action in statement["Action"])


def test_efs_storage_class_provisions_access_points_and_keeps_data(default_env):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in default_env.manifests()}
    storage_class = objects[("StorageClass", "efs-model-cache")]
    assert storage_class["provisioner"] == "efs.csi.aws.com"
    assert storage_class["parameters"]["provisioningMode"] == "efs-ap"
    assert "ModelCacheFileSystem" in storage_class["parameters"]["fileSystemId"]
    assert storage_class["reclaimPolicy"] == "Retain"
    assert "tls" in storage_class["mountOptions"]
    claim = objects[("PersistentVolumeClaim", "model-cache")]
    assert claim["spec"]["storageClassName"] == "efs-model-cache"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_cluster_stack_never_replaces_store_resources(env_fixture, request):
    """The cluster only references the store (imports); it owns no bucket or file system."""
    env = request.getfixturevalue(env_fixture)
    for stack in (CLUSTER, "VllmProdStack"):
        types = {r["Type"] for r in env.templates[stack]["Resources"].values()}
        assert not types & {"AWS::S3::Bucket", "AWS::EFS::FileSystem"}
