"""Targeted assertions on the synthesized stacks: the invariants that matter in production."""

from __future__ import annotations

import json

import pytest

from vllm_eks import versions
from vllm_eks.models import GPU_INSTANCES
from vllm_eks.stacks import (
    CLUSTER_STACK_ID,
    MODEL_STORE_STACK_ID,
    NETWORK_STACK_ID,
    PROD_STACK_ID,
)

from .support import synth_environment

NETWORK, CLUSTER, PROD = NETWORK_STACK_ID, CLUSTER_STACK_ID, PROD_STACK_ID
MODEL_STORE = MODEL_STORE_STACK_ID


def only(resources: dict[str, dict]) -> dict:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))["Properties"]


def nodegroups(env) -> dict[str, dict]:
    return {
        props["AmiType"]: props
        for props in (r["Properties"] for r in env.resources(CLUSTER, "AWS::EKS::Nodegroup").values())
    }


def launch_template_of(env, nodegroup: dict) -> dict:
    logical_id = nodegroup["LaunchTemplate"]["Id"]["Ref"]
    return env.templates[CLUSTER]["Resources"][logical_id]["Properties"]["LaunchTemplateData"]


# -- stacks ----------------------------------------------------------------------------


def test_prod_stack_depends_on_every_other_stack(default_env):
    manifest = json.loads((default_env.outdir / "manifest.json").read_text())
    deps = {name: set(a.get("dependencies", [])) for name, a in manifest["artifacts"].items()}
    assert CLUSTER in deps[PROD]
    assert MODEL_STORE in deps[CLUSTER]
    assert NETWORK in deps[MODEL_STORE]
    # The stateful stack never waits for (or references) the cluster.
    assert CLUSTER not in deps[MODEL_STORE]
    assert set(default_env.templates) == {NETWORK, MODEL_STORE, CLUSTER, PROD}


# -- network ---------------------------------------------------------------------------


def test_vpc_spans_three_explicit_azs_with_public_and_private_subnets(default_env):
    subnets = [r["Properties"] for r in default_env.resources(NETWORK, "AWS::EC2::Subnet").values()]
    zones = {s["AvailabilityZone"] for s in subnets}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}

    def tagged(key):
        return [s for s in subnets if any(t["Key"] == key for t in s["Tags"])]

    public = [s for s in tagged("kubernetes.io/role/elb") if s["MapPublicIpOnLaunch"] is False]
    internal_lb = tagged("kubernetes.io/role/internal-elb")
    private = tagged("karpenter.sh/discovery")
    assert len(public) == 3 and len(internal_lb) == 3 and len(private) == 3
    # Internal load balancers get subnets of their own (/24, no pods), never the node
    # subnets (/19) where every pod has an address.
    assert all(s["CidrBlock"].endswith("/24") for s in internal_lb)
    assert not {s["CidrBlock"] for s in internal_lb} & {s["CidrBlock"] for s in private}
    for subnet in private:
        tags = {t["Key"]: t["Value"] for t in subnet["Tags"]}
        assert tags["karpenter.sh/discovery"] == default_env.config.cluster.name


def test_one_nat_gateway_per_az_by_default(default_env):
    assert len(default_env.resources(NETWORK, "AWS::EC2::NatGateway")) == 3


def test_nat_gateways_can_be_reduced_for_dev(tmp_path):
    env = synth_environment({"nat_gateways": "1"}, tmp_path)
    assert len(env.resources(NETWORK, "AWS::EC2::NatGateway")) == 1


def test_vpc_endpoints(default_env):
    endpoints = [r["Properties"] for r in default_env.resources(NETWORK, "AWS::EC2::VPCEndpoint").values()]
    names = set()
    for endpoint in endpoints:
        service = json.dumps(endpoint["ServiceName"])
        names.add(service.split(".")[-1].strip('"]}'))
        if endpoint.get("VpcEndpointType") == "Interface":
            assert endpoint["PrivateDnsEnabled"] is True
    assert {"s3", "api", "dkr", "sts", "ec2", "logs"} <= names, names
    gateway = [e for e in endpoints if e.get("VpcEndpointType", "Gateway") == "Gateway"]
    assert len(gateway) == 1 and "s3" in json.dumps(gateway[0]["ServiceName"])


def test_interface_endpoints_accept_https_from_the_vpc_only(default_env):
    groups = default_env.resources(NETWORK, "AWS::EC2::SecurityGroup")
    endpoint_group = next(g["Properties"] for k, g in groups.items() if "Endpoint" in k)
    assert endpoint_group["SecurityGroupIngress"] == [
        {"CidrIp": "10.0.0.0/16", "Description": "HTTPS from inside the VPC",
         "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ]


def test_flow_logs_capture_all_traffic_and_are_retained(default_env):
    flow_log = only(default_env.resources(NETWORK, "AWS::EC2::FlowLog"))
    assert flow_log["TrafficType"] == "ALL"
    log_group = next(iter(default_env.resources(NETWORK, "AWS::Logs::LogGroup").values()))
    assert log_group["DeletionPolicy"] == "Retain"
    assert log_group["Properties"]["RetentionInDays"] == 365


# -- cluster ---------------------------------------------------------------------------


def test_cluster_version_logging_encryption_and_capacity_mode(default_env):
    cluster = only(default_env.resources(CLUSTER, "AWS::EKS::Cluster"))
    assert cluster["Version"] == versions.KUBERNETES_MINOR == "1.35"
    assert cluster["AccessConfig"]["AuthenticationMode"] == "API"
    assert cluster["ComputeConfig"] == {"Enabled": False}  # not EKS Auto Mode
    assert cluster["BootstrapSelfManagedAddons"] is False
    assert {t["Type"] for t in cluster["Logging"]["ClusterLogging"]["EnabledTypes"]} == {
        "api", "audit", "authenticator", "controllerManager", "scheduler"}
    assert cluster["EncryptionConfig"][0]["Resources"] == ["secrets"]
    key = only(default_env.resources(CLUSTER, "AWS::KMS::Key"))
    assert key["EnableKeyRotation"] is True


def test_api_endpoint_is_private_by_default(default_env):
    vpc_config = only(default_env.resources(CLUSTER, "AWS::EKS::Cluster"))["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is False


def test_kubectl_layer_matches_the_cluster_minor(default_env):
    layers = default_env.resources(CLUSTER, "AWS::Lambda::LayerVersion")
    assert any("kubectl" in (r["Properties"].get("Description") or "") and "1.35" in
               r["Properties"]["Description"] for r in layers.values()), [
        r["Properties"].get("Description") for r in layers.values()]


def test_public_endpoint_restricted_and_admin_entry(tmp_path):
    env = synth_environment(
        {"api_allowed_cidrs": "203.0.113.0/24",
         "admin_role_arn": "arn:aws:iam::123456789012:role/PlatformAdmin"},
        tmp_path,
    )
    vpc_config = only(env.resources(CLUSTER, "AWS::EKS::Cluster"))["ResourcesVpcConfig"]
    assert vpc_config["EndpointPublicAccess"] is True
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["PublicAccessCidrs"] == ["203.0.113.0/24"]
    entries = [r["Properties"] for r in env.resources(CLUSTER, "AWS::EKS::AccessEntry").values()]
    admin = [e for e in entries if e["PrincipalArn"] ==
             "arn:aws:iam::123456789012:role/PlatformAdmin"]
    assert len(admin) == 1
    assert "AmazonEKSClusterAdminPolicy" in json.dumps(admin[0]["AccessPolicies"])


def test_addons_are_pinned_and_network_policy_is_enforced(default_env):
    addons = {r["Properties"]["AddonName"]: r["Properties"]
              for r in default_env.resources(CLUSTER, "AWS::EKS::Addon").values()}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent",
                           "aws-efs-csi-driver", "aws-ebs-csi-driver"}
    for name, props in addons.items():
        assert props["AddonVersion"] == versions.EKS_ADDON_VERSIONS[name]
    assert json.loads(addons["vpc-cni"]["ConfigurationValues"]) == {"enableNetworkPolicy": "true"}


def test_node_groups_wait_for_the_cni_and_coredns_waits_for_nodes(default_env):
    resources = default_env.templates[CLUSTER]["Resources"]
    addon_ids = {r["Properties"]["AddonName"]: k for k, r in resources.items()
                 if r["Type"] == "AWS::EKS::Addon"}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::EKS::Nodegroup":
            assert {addon_ids["vpc-cni"], addon_ids["kube-proxy"]} <= set(resource["DependsOn"])
    system_id = next(k for k, r in resources.items() if r["Type"] == "AWS::EKS::Nodegroup"
                     and r["Properties"]["AmiType"] == "BOTTLEROCKET_x86_64")
    assert system_id in resources[addon_ids["coredns"]]["DependsOn"]


def test_system_node_group_is_bottlerocket_on_demand_across_azs(default_env):
    system = nodegroups(default_env)["BOTTLEROCKET_x86_64"]
    assert system["CapacityType"] == "ON_DEMAND"
    assert system["ScalingConfig"]["MinSize"] >= 2
    assert len(system["Subnets"]) == 3
    assert "Taints" not in system


@pytest.mark.parametrize("env_fixture", ["default_env", "deepseek_env"])
def test_nothing_cloudformation_waits_on_needs_a_gpu_instance(env_fixture, request):
    """With no GPU quota or capacity every stack still completes: GPU nodes come only from
    Karpenter, after deploy, when vLLM pods ask. No node group, launch template, instance
    or Auto Scaling group of any template names a GPU instance type."""
    env = request.getfixturevalue(env_fixture)
    (only_group,) = nodegroups(env).values()  # the system node group, CPU only
    assert only_group["AmiType"] == "BOTTLEROCKET_x86_64"
    gpu_types = set(GPU_INSTANCES)
    waited_on = ("AWS::EKS::Nodegroup", "AWS::EC2::LaunchTemplate", "AWS::EC2::Instance",
                 "AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::EC2Fleet")
    for stack, template in env.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in waited_on:
                text = json.dumps(resource["Properties"])
                assert not [t for t in gpu_types if f'"{t}"' in text], (stack, logical_id)
                assert "NVIDIA" not in text, (stack, logical_id)


def test_launch_templates_encrypt_volumes_and_require_imdsv2(default_env):
    data = launch_template_of(default_env, nodegroups(default_env)["BOTTLEROCKET_x86_64"])
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    devices = {d["DeviceName"]: d["Ebs"] for d in data["BlockDeviceMappings"]}
    assert set(devices) == {"/dev/xvda", "/dev/xvdb"}
    for ebs in devices.values():
        assert ebs["Encrypted"] is True and ebs["VolumeType"] == "gp3"
    assert "ImageId" not in data  # EKS supplies the Bottlerocket AMI
    assert "UserData" not in data


# -- workloads ---------------------------------------------------------------------------


def test_inference_namespace_and_plan_are_published(default_env):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in default_env.manifests()}
    namespace = objects[("Namespace", "inference")]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    plan_map = objects[("ConfigMap", "vllm-eks-plan")]
    (key, published), = json.loads(plan_map["data"]["plan.json"]).items()
    assert key == published["model"] == default_env.config.models[0].plan.model.key
    assert published["instanceType"] == default_env.config.models[0].plan.instance_type


def test_outputs_name_the_model_and_the_kubeconfig_command(default_env):
    outputs = default_env.templates[PROD]["Outputs"]
    assert outputs["Models"]["Value"] == default_env.config.models[0].plan.model.key
    plan = default_env.config.models[0].plan
    assert outputs["Placements"]["Value"] == (
        f"{plan.model.key}: {plan.instance_type} x1, TP {plan.tensor_parallel}, "
        f"max_model_len {plan.max_model_len}, on-demand")
    command = json.dumps(default_env.templates[CLUSTER]["Outputs"]["UpdateKubeconfigCommand"])
    assert "aws eks update-kubeconfig" in command
