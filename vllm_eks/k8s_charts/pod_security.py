"""The one securityContext every pod vllm-eks runs in the inference namespace uses.

It satisfies Pod Security `restricted`: a fixed non-root UID, no privilege escalation,
no capabilities, the runtime's default seccomp profile, and a read-only root filesystem
(writable paths are emptyDir volumes). The EFS StorageClass creates access points owned
by the same UID, so shared-cache files are readable by every pod.
"""

from __future__ import annotations

from cdk8s_plus_35 import k8s

from ..versions import KUBERNETES_MINOR

POD_UID = 2000
POD_GID = 2000


def pod_security_context() -> k8s.PodSecurityContext:
    return k8s.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=POD_UID,
        run_as_group=POD_GID,
        fs_group=POD_GID,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.SecurityContext:
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def pod_security_admission_labels(*, enforce: str, report: str) -> dict[str, str]:
    """Namespace labels: enforce one Pod Security level, warn and audit against another,
    each pinned to the cluster's Kubernetes minor so an upgrade never changes the rules."""
    labels = {}
    for mode, level in (("enforce", enforce), ("warn", report), ("audit", report)):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = f"v{KUBERNETES_MINOR}"
    return labels
