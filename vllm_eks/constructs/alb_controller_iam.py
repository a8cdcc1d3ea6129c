"""IAM for the AWS Load Balancer Controller: the controller's upstream reference policy,
`docs/install/iam_policy.json` of kubernetes-sigs/aws-load-balancer-controller at tag
v3.5.0 (commit 11eb202c97e4), the version we pin (`versions.ALB_CONTROLLER_CHART_VERSION`,
chart `aws-load-balancer-controller` from https://aws.github.io/eks-charts).

A verbatim copy of that file is `tests/fixtures/iam/alb_controller_iam_policy.json`
(provenance in SOURCES.txt there), and
`tests/test_iam.py::test_alb_controller_policy_matches_upstream` compares the synthesized
policy with it statement by statement (upstream has no Sids; `ALB_SIDS_IN_UPSTREAM_ORDER`
there maps ours onto its order). On a controller upgrade, re-diff:

    cd <clone of kubernetes-sigs/aws-load-balancer-controller>
    git show v<new>:docs/install/iam_policy.json > /tmp/iam_policy.json
    diff <vllm-eks>/tests/fixtures/iam/alb_controller_iam_policy.json /tmp/iam_policy.json

then copy the new file over the fixture, update SOURCES.txt and this module, and run
`pytest tests/test_iam.py`: every action, resource or condition that differs is reported
with its Sid.

Everything is translated as upstream has it (same statements in the same order, same
actions, resources and conditions), with two changes: `arn:aws:` becomes
`arn:{partition}:`, and the region/account wildcards of ARNs (`ec2:*:*:security-group/*`,
`elasticloadbalancing:*:*:...`) are pinned to the environment's region and account.
Upstream's tag conditions only require that the `elbv2.k8s.aws/cluster` tag is present
(Null checks), not that it names this cluster; that is kept as is.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
REQUEST_TAG = f"aws:RequestTag/{CLUSTER_TAG}"
RESOURCE_TAG = f"aws:ResourceTag/{CLUSTER_TAG}"


def controller_policy_statements(
    *, partition: str = cdk.Aws.PARTITION,
    region: str = cdk.Aws.REGION, account: str = cdk.Aws.ACCOUNT_ID,
) -> list[iam.PolicyStatement]:
    """Every statement of the upstream v3.5.0 policy: service-linked role, discovery,
    certificate/WAF/Shield integration, security groups, load balancers, target groups,
    listeners and rules. Upstream does not scope by cluster name (its conditions only
    test that the cluster tag is present), so neither does this."""

    # Upstream writes these ARNs with `*:*` for region and account; every environment is
    # one region in one account, so they are pinned to it (the only narrowing made here).
    def elb_arn(resource: str) -> str:
        return f"arn:{partition}:elasticloadbalancing:{region}:{account}:{resource}"

    security_groups = f"arn:{partition}:ec2:{region}:{account}:security-group/*"
    load_balancers_and_target_groups = [
        elb_arn("targetgroup/*/*"),
        elb_arn("loadbalancer/net/*/*"),
        elb_arn("loadbalancer/app/*/*"),
    ]
    owned_resource = {"Null": {RESOURCE_TAG: "false"}}
    return [
        # -- service-linked role and discovery (read-only; no resource ARNs) --------------
        iam.PolicyStatement(
            sid="AllowElbServiceLinkedRoleCreation",
            actions=["iam:CreateServiceLinkedRole"],
            resources=["*"],
            conditions={"StringEquals": {
                "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            sid="AllowEc2AndElbDescribeActions",
            actions=[
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "ec2:DescribeIpamPools",
                "ec2:DescribeRouteTables",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeCapacityReservation",
            ],
            resources=["*"],
        ),
        # -- certificates, WAF, Shield and Cognito for listeners -------------------------
        iam.PolicyStatement(
            sid="AllowCertificateWafShieldCognitoIntegration",
            actions=[
                "cognito-idp:DescribeUserPoolClient",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                "waf-regional:GetWebACL",
                "waf-regional:GetWebACLForResource",
                "waf-regional:AssociateWebACL",
                "waf-regional:DisassociateWebACL",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            resources=["*"],
        ),
        # -- security groups --------------------------------------------------------------
        # Unconditioned upstream: the controller opens node/pod security groups (which it
        # does not own) to its load balancers' traffic.
        iam.PolicyStatement(
            sid="AllowSecurityGroupIngressRules",
            actions=["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AllowSecurityGroupCreation",
            actions=["ec2:CreateSecurityGroup"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AllowTaggingSecurityGroupsOnCreation",
            actions=["ec2:CreateTags"],
            resources=[security_groups],
            conditions={
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                "Null": {REQUEST_TAG: "false"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowTaggingOwnedSecurityGroups",
            actions=["ec2:CreateTags", "ec2:DeleteTags"],
            resources=[security_groups],
            conditions={"Null": {REQUEST_TAG: "true", RESOURCE_TAG: "false"}},
        ),
        iam.PolicyStatement(
            sid="AllowManagingOwnedSecurityGroups",
            actions=[
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            resources=["*"],
            conditions=owned_resource,
        ),
        # -- load balancers, target groups, listeners, rules -----------------------------
        iam.PolicyStatement(
            sid="AllowCreatingTaggedLoadBalancersAndTargetGroups",
            actions=[
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup",
            ],
            resources=["*"],
            conditions={"Null": {REQUEST_TAG: "false"}},
        ),
        iam.PolicyStatement(
            sid="AllowListenerAndRuleLifecycle",
            actions=[
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteRule",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AllowTaggingOwnedLoadBalancersAndTargetGroups",
            actions=["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            resources=load_balancers_and_target_groups,
            conditions={"Null": {REQUEST_TAG: "true", RESOURCE_TAG: "false"}},
        ),
        iam.PolicyStatement(
            sid="AllowTaggingListenersAndRules",
            actions=["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            resources=[
                elb_arn("listener/net/*/*/*"),
                elb_arn("listener/app/*/*/*"),
                elb_arn("listener-rule/net/*/*/*"),
                elb_arn("listener-rule/app/*/*/*"),
            ],
        ),
        iam.PolicyStatement(
            sid="AllowModifyingOwnedLoadBalancersAndTargetGroups",
            actions=[
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            resources=["*"],
            conditions=owned_resource,
        ),
        iam.PolicyStatement(
            sid="AllowTaggingLoadBalancersAndTargetGroupsOnCreation",
            actions=["elasticloadbalancing:AddTags"],
            resources=load_balancers_and_target_groups,
            conditions={
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                },
                "Null": {REQUEST_TAG: "false"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowTargetRegistration",
            actions=[
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:DeregisterTargets",
            ],
            resources=[elb_arn("targetgroup/*/*")],
        ),
        iam.PolicyStatement(
            sid="AllowListenerAndRuleUpdates",
            actions=[
                "elasticloadbalancing:SetWebAcl",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
            ],
            resources=["*"],
        ),
    ]

