"""StorageClasses: EFS through access points (the shared model cache) and encrypted gp3
EBS (Prometheus and Alertmanager)."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from ..labels import ENVIRONMENT_TAG
from .pod_security import POD_GID, POD_UID

EFS_STORAGE_CLASS = "efs-model-cache"
GP3_STORAGE_CLASS = "gp3-encrypted"


@dataclass(frozen=True, kw_only=True)
class StorageClassesProps:
    file_system_id: str  # may be a CDK token
    # Tags the EBS volumes `vllm-eks:environment=<name>`: they are retained after a
    # teardown, and the tag is how docs/teardown.md finds them. None: no tag.
    environment_name: str | None = None


class StorageClassesChart(cdk8s.Chart):
    """`efs-model-cache` gives every PersistentVolumeClaim its own EFS access point, rooted
    at `/vllm-eks/<namespace>/<claim>` and owned by the pods' UID; `gp3-encrypted` makes
    encrypted gp3 EBS volumes in the zone of the pod that first uses them."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: StorageClassesProps) -> None:
        super().__init__(scope, construct_id, disable_resource_name_hashes=True)
        k8s.KubeStorageClass(
            self, "StorageClass",
            metadata=k8s.ObjectMeta(name=EFS_STORAGE_CLASS,
                                    labels={"app.kubernetes.io/part-of": "vllm-eks"}),
            provisioner="efs.csi.aws.com",
            parameters={
                "provisioningMode": "efs-ap",
                "fileSystemId": props.file_system_id,
                "directoryPerms": "750",
                "uid": str(POD_UID),
                "gid": str(POD_GID),
                "basePath": "/vllm-eks",
                # A deterministic directory per claim: a re-created claim finds its data.
                "subPathPattern": "${.PVC.namespace}/${.PVC.name}",
                "ensureUniqueDirectory": "false",
            },
            # Weights are expensive to stage again: deleting a claim keeps the data.
            reclaim_policy="Retain",
            volume_binding_mode="Immediate",
            mount_options=["tls"],  # NFS over TLS (efs-utils)
            allow_volume_expansion=False,  # EFS is elastic; sizes are not enforced
        )
        k8s.KubeStorageClass(
            self, "Gp3",
            metadata=k8s.ObjectMeta(name=GP3_STORAGE_CLASS,
                                    labels={"app.kubernetes.io/part-of": "vllm-eks"}),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", **(
                {"tagSpecification_1": f"{ENVIRONMENT_TAG}={props.environment_name}"}
                if props.environment_name else {})},
            reclaim_policy="Retain",  # metrics history survives a chart reinstall
            volume_binding_mode="WaitForFirstConsumer",  # the volume's AZ follows the pod
            allow_volume_expansion=True,
        )
