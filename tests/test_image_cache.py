"""Opt-in ECR pull-through cache of Docker Hub (`-c docker_hub_secret_arn=`): the rule is
this environment's, every container of the vLLM image pulls through it, and the nodes may
fill it under its prefix only."""

from __future__ import annotations

import json

import pytest

from vllm_eks.config import ConfigError, EnvironmentConfig

from .support import render_intrinsics, synth_environment

SECRET = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:"
          "ecr-pullthroughcache/docker-hub-AbCdEf")
REGISTRY = "${Ref:AWS::AccountId}.dkr.ecr.${Ref:AWS::Region}.${Ref:AWS::URLSuffix}"


@pytest.fixture(scope="module")
def cached_env(tmp_path_factory):
    return synth_environment({"docker_hub_secret_arn": SECRET},
                             tmp_path_factory.mktemp("image-cache"))


def test_the_rule_caches_docker_hub_with_the_given_credentials(cached_env):
    (rule,) = cached_env.resources("VllmClusterStack",
                                   "AWS::ECR::PullThroughCacheRule").values()
    assert rule["Properties"] == {
        "EcrRepositoryPrefix": "vllm-eks-docker-hub", "UpstreamRegistry": "docker-hub",
        "UpstreamRegistryUrl": "registry-1.docker.io", "CredentialArn": SECRET}


def test_every_vllm_image_container_pulls_through_the_cache(cached_env, default_env):
    def images(env) -> list[str]:
        found = []
        for obj in env.manifests():
            if obj["kind"] in ("Deployment", "Job"):
                spec = obj["spec"]["template"]["spec"]
                found += [c["image"] for c in spec["containers"] + spec.get("initContainers", [])]
        return found

    cached = images(cached_env)
    assert len(cached) == 3  # vLLM, its wait-for-weights init container, the staging Job
    assert set(cached) == {f"{REGISTRY}/vllm-eks-docker-hub/vllm/vllm-openai:v0.33.0"}
    assert set(images(default_env)) == {"vllm/vllm-openai:v0.33.0"}  # opt-in only


def test_nodes_may_fill_only_this_environments_cache(cached_env):
    policies = cached_env.resources("VllmClusterStack", "AWS::IAM::Policy")
    granted = {}
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "FillPullThroughCache":
                roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
                granted.update({role: statement for role in roles})
    assert sorted(role.split("NodeRole")[0] for role in granted) == ["GpuCluster", "Karpenter"]
    for statement in granted.values():
        assert sorted(statement["Action"]) == ["ecr:BatchImportUpstreamImage",
                                               "ecr:CreateRepository"]
        assert json.dumps(render_intrinsics(statement["Resource"])).endswith(
            ':repository/vllm-eks-docker-hub/*"')


@pytest.mark.parametrize(("value", "message"), [
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf",
     r"is not the ARN of a Secrets Manager secret named ecr-pullthroughcache/<name>"),
    (SECRET.replace("us-east-1", "eu-west-1"),
     r"-c docker_hub_secret_arn is in eu-west-1, but the environment is in us-east-1"),
])
def test_a_wrong_secret_is_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        EnvironmentConfig.from_context({"docker_hub_secret_arn": value}.get)
