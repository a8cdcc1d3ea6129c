"""EKS Pod Identity for in-cluster software: an IAM role a service account may assume,
its association, and a pinned EKS add-on whose service account gets such a role."""

from __future__ import annotations

import json

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

from .. import versions
from ..nag import acknowledge, acknowledge_wildcards
from ..naming import pascal_case

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_role(scope: Construct, construct_id: str, *, description: str,
                      statements: list[iam.PolicyStatement] | None = None,
                      wildcard_reason: str | None = None,
                      aws_managed_policy: str | None = None,
                      managed_policy_reason: str | None = None) -> iam.Role:
    """A role EKS Pod Identity hands to a service account (AssumeRole + TagSession from
    `pods.eks.amazonaws.com`), with `statements` as its inline policy (wildcards in them
    acknowledged to cdk-nag with `wildcard_reason`) and/or one AWS managed policy
    (acknowledged with `managed_policy_reason`)."""
    role = iam.Role(
        scope, construct_id,
        assumed_by=iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL).with_session_tags(),
        description=description,
        inline_policies=({"Policy": iam.PolicyDocument(statements=statements)}
                         if statements else None),
    )
    if statements and wildcard_reason:
        acknowledge_wildcards(role, statements, wildcard_reason)
    if aws_managed_policy:
        if not managed_policy_reason:
            raise ValueError(f"say why {construct_id} needs {aws_managed_policy}")
        role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(
            aws_managed_policy))
        acknowledge(role, "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam"
                    f"::aws:policy/{aws_managed_policy}]", managed_policy_reason)
    return role


def associate(scope: Construct, construct_id: str, *, cluster: eks.ICluster, namespace: str,
              service_account: str, role: iam.IRole,
              pod_identity_agent: IDependable | None = None) -> eks.CfnPodIdentityAssociation:
    """Bind `role` to a service account, after `pod_identity_agent` (the
    eks-pod-identity-agent add-on) when given; None: the caller orders it, e.g. by a stack
    dependency. Not `Cluster.add_service_account`, which would add an unpinned
    eks-pod-identity-agent add-on next to our pinned one."""
    association = eks.CfnPodIdentityAssociation(
        scope, construct_id, cluster_name=cluster.cluster_name, namespace=namespace,
        service_account=service_account, role_arn=role.role_arn,
    )
    if pod_identity_agent is not None:
        association.node.add_dependency(pod_identity_agent)
    return association


def pod_identity_addon(scope: Construct, *, cluster: eks.ICluster,
                       pod_identity_agent: IDependable, name: str, service_account: str,
                       role: iam.IRole, configuration: dict | None = None) -> eks.CfnAddon:
    """A pinned EKS add-on (versions.EKS_ADDON_VERSIONS) whose service account gets `role`
    through EKS Pod Identity (`eks.Addon` takes no role, hence the L1), created after
    `pod_identity_agent` (the eks-pod-identity-agent add-on). Its construct ID is derived
    from the add-on name."""
    addon = eks.CfnAddon(
        scope, pascal_case(name) + "Addon",
        cluster_name=cluster.cluster_name,
        addon_name=name,
        addon_version=versions.EKS_ADDON_VERSIONS[name],
        resolve_conflicts="OVERWRITE",
        configuration_values=json.dumps(configuration) if configuration else None,
        preserve_on_delete=False,
        pod_identity_associations=[eks.CfnAddon.PodIdentityAssociationProperty(
            service_account=service_account, role_arn=role.role_arn)],
    )
    # Its pods get credentials from the Pod Identity agent.
    addon.node.add_dependency(pod_identity_agent)
    return addon
