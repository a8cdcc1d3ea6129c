"""The EFS StorageClass: dynamic provisioning through EFS access points."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from cdk8s_plus_35 import k8s
from constructs import Construct

from .pod_security import POD_GID, POD_UID

EFS_STORAGE_CLASS = "efs-model-cache"


@dataclass(frozen=True, kw_only=True)
class EfsStorageClassProps:
    file_system_id: str  # may be a CDK token


class EfsStorageClassChart(cdk8s.Chart):
    """A StorageClass that gives every PersistentVolumeClaim its own EFS access point,
    rooted at `/vllm-eks/<namespace>/<claim>` and owned by the pods' UID."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 props: EfsStorageClassProps) -> None:
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
