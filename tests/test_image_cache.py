"""Opt-in ECR pull-through cache of Docker Hub (`-c docker_hub_secret_arn=`): the rule is
this environment's, every container of the vLLM image pulls through it, and the nodes may
fill it under its prefix only."""

from __future__ import annotations

import json

import pytest

from vllm_eks import versions
from vllm_eks.config import ConfigError, EnvironmentConfig

from .support import render_intrinsics, synth_environment

SECRET = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:"
          "ecr-pullthroughcache/docker-hub-AbCdEf")
REGISTRY = "${Ref:AWS::AccountId}.dkr.ecr.${Ref:AWS::Region}.${Ref:AWS::URLSuffix}"


# A realistic environment name: `<name>-docker-hub` would pass ECR's 30 characters.
NAME = "llm-serving-production"


@pytest.fixture(scope="module")
def cached_env(tmp_path_factory):
    return synth_environment({"docker_hub_secret_arn": SECRET, "cluster_name": NAME},
                             tmp_path_factory.mktemp("image-cache"))


def prefix(env) -> str:
    return env.config.image_cache_prefix


def test_the_rule_caches_docker_hub_with_the_given_credentials(cached_env):
    (rule,) = cached_env.resources(f"VllmClusterStack-{NAME}",
                                   "AWS::ECR::PullThroughCacheRule").values()
    assert rule["Properties"] == {
        "EcrRepositoryPrefix": prefix(cached_env), "UpstreamRegistry": "docker-hub",
        "UpstreamRegistryUrl": "registry-1.docker.io", "CredentialArn": SECRET}
    assert prefix(cached_env).startswith("llm-serving-") and len(prefix(cached_env)) <= 30


def test_the_cached_environment_passes_cfn_lint(cached_env):
    """ECR's limits (a lowercase prefix of at most 30 characters) are in cfn-lint's
    resource spec: a name that breaks them would fail the cluster stack mid-deploy."""
    import subprocess

    from .test_validators import CFN_LINT, CFN_LINT_IGNORED

    template = cached_env.outdir / f"VllmClusterStack-{NAME}.template.json"
    result = subprocess.run([CFN_LINT, str(template), "--ignore-checks", *CFN_LINT_IGNORED],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_vllm_image_container_pulls_through_the_cache(cached_env, default_env):
    def images(env) -> list[str]:
        found = []
        for obj in env.manifests():
            if obj["kind"] in ("Deployment", "Job"):
                spec = obj["spec"]["template"]["spec"]
                found += [c["image"] for c in spec["containers"] + spec.get("initContainers", [])]
        return found

    # The router's image is on ghcr.io, which a Docker Hub cache does not serve.
    router = versions.ROUTER_IMAGE
    cached = [image for image in images(cached_env) if image != router]
    assert len(cached) == 3  # vLLM, its wait-for-weights init container, the staging Job
    assert set(cached) == {f"{REGISTRY}/{prefix(cached_env)}/vllm/vllm-openai:v0.33.0"}
    assert set(images(default_env)) == {"vllm/vllm-openai:v0.33.0", router}  # opt-in only


def test_nodes_may_fill_only_this_environments_cache(cached_env):
    policies = cached_env.resources(f"VllmClusterStack-{NAME}", "AWS::IAM::Policy")
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
            f':repository/{prefix(cached_env)}/*"')


@pytest.mark.parametrize(("value", "message"), [
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:docker-hub-AbCdEf",
     r"is not the ARN of a Secrets Manager secret named ecr-pullthroughcache/<name>"),
    (SECRET.replace("us-east-1", "eu-west-1"),
     r"-c docker_hub_secret_arn is in eu-west-1, but the environment is in us-east-1"),
])
def test_a_wrong_secret_is_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        EnvironmentConfig.from_context({"docker_hub_secret_arn": value}.get)
