"""Context parsing: every `-c` key is validated at synth time with a message that names
the key, the bad value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_eks.config import (
    CONTEXT_KEYS,
    ConfigError,
    EndpointScheme,
    EnvironmentConfig,
    check_context_keys,
)
from vllm_eks.models import DEFAULT_MODEL_KEY, CapacityType, PlanError, UnknownModelError
from vllm_eks.models.sources import ModelSource


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def parse(**context) -> EnvironmentConfig:
    return EnvironmentConfig.from_context(context.get)


def test_defaults():
    config = parse()
    assert config.region == "us-east-1"
    assert config.account is None
    assert config.network.availability_zones == ("us-east-1a", "us-east-1b", "us-east-1c")
    assert config.network.nat_gateways == 3
    assert config.cluster.api_allowed_cidrs == ()
    # One per AZ: Prometheus' EBS volume is zonal and must always find a node in its zone.
    assert config.cluster.system_nodes == 3
    assert [model.key for model in config.models] == [DEFAULT_MODEL_KEY]
    assert config.models[0].plan.capacity is CapacityType.ON_DEMAND
    assert config.model_source is ModelSource.S3
    # Secure by default: an internal load balancer reachable from the VPC only.
    assert config.endpoint.scheme is EndpointScheme.INTERNAL
    assert config.endpoint.allowed_cidrs == (config.network.cidr,)
    assert not config.endpoint.https


def test_public_endpoint_needs_https_and_named_clients():
    config = parse(endpoint_scheme="internet-facing", certificate_arn=CERTIFICATE,
                   endpoint_allowed_cidrs="203.0.113.0/24,198.51.100.0/24", model_source="efs")
    assert config.endpoint.scheme is EndpointScheme.INTERNET_FACING
    assert config.endpoint.https and config.endpoint.certificate_arn == CERTIFICATE
    assert config.endpoint.allowed_cidrs == ("203.0.113.0/24", "198.51.100.0/24")
    assert config.model_source is ModelSource.EFS
    named = parse(endpoint_hostname="llm.example.com")
    assert named.endpoint.hostname == "llm.example.com"


def test_model_revision_defaults_to_main_and_may_be_pinned():
    assert parse().models[0].revision == "main"
    commit = "56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad"
    assert parse(model_revision=commit).models[0].revision == commit


def test_cli_strings_are_converted():
    config = parse(model="deepseek-r1-distill-qwen-32b", tensor_parallel="4",
                   max_model_len="8192", capacity="spot", nat_gateways="1",
                   api_allowed_cidrs="203.0.113.0/24, 198.51.100.7/32", region="eu-west-1",
                   account="123456789012", gpu_limit="16")
    (model,) = config.models
    assert model.plan.tensor_parallel == 4
    assert model.plan.max_model_len == 8192
    assert model.plan.capacity is CapacityType.SPOT
    assert config.network.nat_gateways == 1
    assert config.network.availability_zones[0] == "eu-west-1a"
    assert config.cluster.api_allowed_cidrs == ("203.0.113.0/24", "198.51.100.7/32")
    assert config.gpu_limit == 16


def test_cdk_json_values_may_be_typed():
    config = parse(max_model_len=4096, api_allowed_cidrs=["10.1.0.0/16"])
    assert config.models[0].plan.max_model_len == 4096
    assert config.cluster.api_allowed_cidrs == ("10.1.0.0/16",)


def test_every_context_key_is_documented_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [key for key in CONTEXT_KEYS if f"`{key}`" not in readme]
    assert not missing, f"README does not document: {missing}"


@pytest.mark.parametrize(
    ("context", "error", "message"),
    [
        ({"model": "llama"}, UnknownModelError,
         r"unknown model 'llama'; pass -c model=<one of: deepseek-r1, "),
        ({"tensor_parallel": "3"}, PlanError,
         r"tensor_parallel=3 is invalid for deepseek-r1-distill-llama-8b: it must divide the "
         r"32 attention heads"),
        ({"model": "deepseek-r1", "instance_type": "g5.xlarge"}, PlanError,
         r"(?s)no single- or multi-node \(up to 4 nodes\) placement fits deepseek-r1: it "
         r"needs about \d+ GB"),
        ({"api_allowed_cidrs": "10.0.0.300/24"}, ConfigError,
         r"-c api_allowed_cidrs: '10.0.0.300/24' is not a valid IPv4 CIDR"),
        ({"api_allowed_cidrs": "10.0.0.1/24"}, ConfigError,
         r"'10.0.0.1/24' is not a valid IPv4 CIDR \(10.0.0.1/24 has host bits set\)"),
        ({"vpc_cidr": "banana"}, ConfigError, r"-c vpc_cidr: 'banana' is not a valid IPv4"),
        ({"vpc_cidr": "10.0.0.0/24"}, ConfigError,
         r"-c vpc_cidr=10.0.0.0/24 is a /24: the subnet layout .* is cut from exactly a /16"),
        ({"vpc_cidr": "10.0.0.0/8"}, ConfigError, r"-c vpc_cidr=10.0.0.0/8 is a /8: .* pass "
         r"e.g. -c vpc_cidr=10.0.0.0/16"),
        # Three /19s, three public and three load-balancer /24s do not fit a /17.
        ({"vpc_cidr": "10.8.0.0/17"}, ConfigError,
         r"vpc_cidr=10.8.0.0/17 is a /17"),
        ({"max_model_len": "32k"}, ConfigError,
         r"-c max_model_len='32k' is not a whole number; pass e.g. -c max_model_len="),
        ({"max_model_len": "100"}, ConfigError, r"-c max_model_len=100 must be at least 256"),
        ({"tensor_parallel": "two"}, ConfigError, r"-c tensor_parallel='two' is not a whole"),
        ({"min_concurrency": "0"}, ConfigError, r"-c min_concurrency=0 must be at least 1"),
        ({"gpu_memory_utilization": "high"}, ConfigError,
         r"-c gpu_memory_utilization='high' is not a number"),
        ({"gpu_memory_utilization": "1.5"}, ConfigError, r"must be between 0 and 1"),
        ({"capacity": "reserved"}, ConfigError,
         r"-c capacity='reserved' is not a capacity type; pass -c capacity=<one of: "
         r"on-demand, spot>"),
        ({"instance_type": "G6E XLARGE"}, ConfigError, r"is not an EC2 instance type"),
        ({"account": "1234"}, ConfigError, r"-c account='1234' must be a 12-digit"),
        ({"region": "mars-1"}, ConfigError, r"-c region='mars-1' is not an AWS region"),
        ({"region": "xx-fake-1"}, ConfigError,
         r"-c region='xx-fake-1' is not an AWS region vllm-eks knows; pass one of .*us-east-1"),
        ({"model": ""}, ConfigError, r"-c model= has an empty value; pass a value"),
        ({"region": "  "}, ConfigError, r"-c region= has an empty value"),
        ({"availability_zones": "us-east-1a,us-east-1b"}, ConfigError,
         r"must name three distinct zones"),
        ({"availability_zones": "us-east-1a,us-east-1b,eu-west-1c"}, ConfigError,
         r"'eu-west-1c' is not a zone of region us-east-1"),
        ({"nat_gateways": "4"}, ConfigError, r"-c nat_gateways=4: at most one per AZ"),
        ({"nat_gateways": "0"}, ConfigError, r"-c nat_gateways=0 must be at least 1"),
        ({"cluster_name": "-bad"}, ConfigError,
         r"-c cluster_name='-bad' must be 1-40 lowercase letters, digits and '-'"),
        ({"cluster_name": "Team_B"}, ConfigError, r"-c cluster_name='Team_B' must be 1-40"),
        ({"cluster_name": "a" * 41}, ConfigError, r"must be 1-40 lowercase letters"),
        ({"admin_role_arn": "arn:aws:iam::123:user/me"}, ConfigError,
         r"-c admin_role_arn='arn:aws:iam::123:user/me' is not an IAM role ARN"),
        ({"system_nodes": "1"}, ConfigError, r"-c system_nodes=1 must be at least 2"),
        ({"model_source": "gcs"}, ConfigError,
         r"-c model_source='gcs' is not a model source; pass -c model_source=<one of: s3, "
         r"efs, hf>"),
        ({"endpoint_scheme": "internet_facing"}, ConfigError,
         r"-c endpoint_scheme='internet_facing' is not a load balancer scheme; pass "
         r"-c endpoint_scheme=<one of: internal, internet-facing>"),
        ({"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/my-cert"},
         ConfigError, r"-c certificate_arn='arn:aws:acm:us-east-1:123456789012:certificate/"
         r"my-cert' is not an ACM certificate ARN; pass arn:aws:acm:<region>"),
        ({"certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1")}, ConfigError,
         r"-c certificate_arn is in eu-west-1, but the load balancer is in us-east-1"),
        ({"endpoint_scheme": "internet-facing", "endpoint_allowed_cidrs": "0.0.0.0/0"},
         ConfigError, r"-c endpoint_scheme=internet-facing needs HTTPS: pass -c certificate_arn="),
        ({"endpoint_scheme": "internet-facing", "certificate_arn": CERTIFICATE}, ConfigError,
         r"-c endpoint_scheme=internet-facing needs -c endpoint_allowed_cidrs="),
        ({"min_replicas": "3", "max_replicas": "2"}, ConfigError,
         r"-c min_replicas=3 is above -c max_replicas=2; raise -c max_replicas to at least 3"),
        ({"max_replicas": "9", "gpu_limit": "4"}, ConfigError,
         r"-c gpu_limit=4 is too small: max_replicas plus the one surge replica of a "
         r"rolling update need 10 GPUs in whole nodes \(deepseek-r1-distill-llama-8b 10 "
         r"\(9\+1 replicas on g6e.xlarge\)\); pass -c gpu_limit=10 or lower -c max_replicas"),
        ({"max_replicas": "4", "gpu_limit": "4"}, ConfigError,  # no room for the surge
         r"pass -c gpu_limit=5 or lower -c max_replicas"),
        ({"min_replicas": "0"}, ConfigError,
         r"-c min_replicas=0 \(scale to zero\) is not offered: KEDA scales on vLLM's own "),
        ({"ttft_slo_ms": "fast"}, ConfigError,
         r"-c ttft_slo_ms='fast' is not a positive number; pass e.g. -c ttft_slo_ms=400"),
        ({"ttft_slo_ms": "-5"}, ConfigError, r"-c ttft_slo_ms='-5' is not a positive number"),
        ({"prometheus_retention_days": "-3"}, ConfigError,
         r"-c prometheus_retention_days='-3' is not a whole number"),
        ({"prometheus_retention_days": "0"}, ConfigError,
         r"-c prometheus_retention_days=0 must be at least 1"),
        ({"prometheus_storage_gib": "5"}, ConfigError,
         r"-c prometheus_storage_gib=5 must be at least 10"),
        ({"cloudwatch": "maybe"}, ConfigError,
         r"-c cloudwatch='maybe' is not true or false; pass -c cloudwatch=true"),
        ({"endpoint_hostname": "https://llm.example.com"}, ConfigError,
         r"-c endpoint_hostname='https://llm.example.com' is not a DNS name"),
        ({"model_revision": "refs/pr/1"}, ConfigError,
         r"-c model_revision='refs/pr/1' is not a Hugging Face branch, tag or commit name"),
        ({"endpoint_allowed_cidrs": "203.0.113.0/33"}, ConfigError,
         r"-c endpoint_allowed_cidrs: '203.0.113.0/33' is not a valid IPv4 CIDR"),
    ],
)
def test_bad_input_fails_with_a_clear_message(context, error, message):
    with pytest.raises(error, match=message):
        parse(**context)


def test_every_catalog_model_is_listed_in_the_readme():
    from vllm_eks.models.catalog import BUILT_IN_MODELS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [m.key for m in BUILT_IN_MODELS if f"`{m.key}`" not in readme]
    assert not missing, f"README does not list: {missing}"


@pytest.mark.parametrize(("keys", "message"), [
    (["modle"], r"-c modle is not an option of vllm-eks; did you mean -c model\?"),
    (["max_replica"], r"did you mean -c max_replicas\?"),
    (["frobnicate"], r"-c frobnicate is not an option of vllm-eks; see the options table"),
    (["gpu_nodes_min"], r"-c gpu_nodes_min was removed: GPU nodes come only from Karpenter"),
])
def test_unknown_context_keys_are_refused_with_the_nearest_key(keys, message):
    with pytest.raises(ConfigError, match=message):
        check_context_keys(keys)


def test_cdk_own_context_keys_pass():
    check_context_keys(["model", "@aws-cdk/core:enablePartitionLiterals",
                        "aws:cdk:enable-path-metadata", "acknowledged-issue-numbers",
                        "availability-zones:account=123456789012:region=us-east-1"])


def test_default_gpu_limit_leaves_room_for_a_surge_replica():
    config = parse(max_replicas="3")  # 1 GPU per replica and node for the default model
    assert config.gpu_limit == 4
    deepseek = parse(model="deepseek-r1")  # 8 GPUs per replica and node; max_replicas 2
    assert deepseek.gpu_limit == 24


def test_derived_names_stay_within_their_limits_and_distinct():
    from vllm_eks.config.environment import bounded_name

    secret = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:"
              "ecr-pullthroughcache/docker-hub-AbCdEf")
    long_a = parse(cluster_name="llm-serving-production-a", docker_hub_secret_arn=secret)
    long_b = parse(cluster_name="llm-serving-production-b", docker_hub_secret_arn=secret)
    assert len(long_a.image_cache_prefix) <= 30 and long_a.image_cache_prefix.islower()
    assert long_a.image_cache_prefix != long_b.image_cache_prefix
    assert parse(docker_hub_secret_arn=secret).image_cache_prefix == "vllm-eks-docker-hub"
    assert bounded_name("a" * 40, "teardown-guard", 64) == "a" * 40 + "-teardown-guard"


def test_a_pipeline_stage_with_an_unknown_key_is_refused():
    from vllm_eks.pipeline_config import PipelineConfigError, StageConfig

    stage = StageConfig(name="dev", account="222222222222", region="us-east-1",
                        context={"modle": "deepseek-r1"})
    with pytest.raises(PipelineConfigError, match=r"stage 'dev': -c modle is not an option "
                                                  r"of vllm-eks; did you mean -c model\?"):
        stage.environment("111111111111")


SMALL = "deepseek-r1-distill-qwen-1.5b"
TWO = f"{DEFAULT_MODEL_KEY},{SMALL}"


def test_several_models_are_planned_each_in_the_order_given():
    config = parse(models=f"{SMALL},{DEFAULT_MODEL_KEY}")
    assert [model.key for model in config.models] == [SMALL, DEFAULT_MODEL_KEY]
    assert config.plans == tuple(model.plan for model in config.models)
    alone = parse(model=SMALL).models[0]
    assert config.models[0].plan.instance_type == alone.plan.instance_type
    # Each model's max_replicas + 1 surge replica, on its own nodes' GPUs.
    assert config.gpu_limit == 3 * 1 + 3 * 1


def test_per_model_values_apply_to_one_model_or_every_model():
    config = parse(models=TWO, max_model_len=f"{DEFAULT_MODEL_KEY}:8192",
                   max_replicas=f"{SMALL}:3,{DEFAULT_MODEL_KEY}:2", capacity="spot")
    big, small = config.models
    assert big.plan.max_model_len == 8192
    assert small.plan.max_model_len == parse(model=SMALL).models[0].plan.max_model_len
    assert (big.autoscaling.max_replicas, small.autoscaling.max_replicas) == (2, 3)
    assert big.plan.capacity is small.plan.capacity is CapacityType.SPOT
    # pipeline.json may give an object
    typed = parse(models=[DEFAULT_MODEL_KEY, SMALL], model_revision={SMALL: "v1.0"})
    assert [m.revision for m in typed.models] == ["main", "v1.0"]


@pytest.mark.parametrize(("context", "error", "message"), [
    ({"models": ""}, ConfigError, r"-c models= has an empty value"),
    ({"models": ","}, ConfigError, r"-c models=',' has an empty entry"),
    ({"models": f"{SMALL},,{DEFAULT_MODEL_KEY}"}, ConfigError, r"has an empty entry"),
    ({"models": f"{SMALL},{SMALL}"}, ConfigError,
     rf"-c models lists {SMALL} more than once; list each model once"),
    ({"models": f"{SMALL},llama-9000"}, ConfigError,
     rf"-c models={SMALL},llama-9000: unknown model 'llama-9000'; list catalog keys \(one of: "
     r".*deepseek-r1"),
    ({"models": SMALL, "model": SMALL}, ConfigError, r"-c model and -c models are both set"),
    ({"models": TWO, "max_model_len": "deepseek-r1:8192"}, ConfigError,
     r"-c max_model_len sets a value for 'deepseek-r1', which is not a model of this "
     r"environment \(deepseek-r1-distill-llama-8b, deepseek-r1-distill-qwen-1.5b\); add it"),
    ({"models": TWO, "max_model_len": f"{SMALL}:8192,{SMALL}:4096"}, ConfigError,
     rf"-c max_model_len sets '{SMALL}' twice"),
    ({"models": TWO, "max_model_len": f"{SMALL}:8192,4096"}, ConfigError,
     r"'4096' is not <model>:<value>; pass one value for every model"),
    ({"models": TWO, "max_replicas": f"{SMALL}:x"}, ConfigError,
     rf"model {SMALL}: -c max_replicas='x' is not a whole number"),
    ({"models": TWO, "tensor_parallel": f"{DEFAULT_MODEL_KEY}:3"}, PlanError,
     rf"model {DEFAULT_MODEL_KEY}: "),
    ({"models": TWO, "max_replicas": f"{SMALL}:4", "gpu_limit": "6"}, ConfigError,
     r"-c gpu_limit=6 is too small: .* need 8 GPUs in whole nodes \(deepseek-r1-distill-"
     r"llama-8b 3 \(2\+1 replicas on g6e.xlarge\), deepseek-r1-distill-qwen-1.5b 5 "
     r"\(4\+1 replicas on g6.xlarge\)\); pass -c gpu_limit=8"),
])
def test_bad_model_lists_fail_with_a_clear_message(context, error, message):
    with pytest.raises(error, match=message):
        parse(**context)


def test_two_models_served_under_one_name_are_refused():
    import dataclasses

    from vllm_eks.models import get_model, register

    small = get_model(SMALL)
    twin = dataclasses.replace(small, key="qwen-small-copy", served_name=small.name)
    register(twin)
    with pytest.raises(ConfigError, match=r"models deepseek-r1-distill-qwen-1.5b and "
                       r"qwen-small-copy are both served as '.*', so a request's `model` "
                       r"field could not tell them apart"):
        parse(models=f"{SMALL},qwen-small-copy")


def test_a_pipeline_stage_may_serve_several_models_with_per_model_values():
    from vllm_eks.pipeline_config import PipelineConfigError, StageConfig

    stage = StageConfig(name="staging", account="333333333333", region="us-east-1", context={
        "models": TWO, "max_replicas": {SMALL: "3"},
        "max_model_len": {DEFAULT_MODEL_KEY: 8192}})
    config = stage.environment("111111111111")
    assert [m.autoscaling.max_replicas for m in config.models] == [2, 3]
    assert config.models[0].plan.max_model_len == 8192
    wrong = StageConfig(name="prod", account="444444444444", region="us-east-1",
                        context={"model": SMALL, "max_replicas": {DEFAULT_MODEL_KEY: "3"}})
    with pytest.raises(PipelineConfigError, match=r"stage 'prod': -c max_replicas sets a value "
                       rf"for '{DEFAULT_MODEL_KEY}', which is not a model of this environment"):
        wrong.environment("111111111111")


def test_models_whose_derived_names_collide_are_refused():
    import dataclasses

    from vllm_eks.models import get_model, register

    small = get_model(SMALL)
    register(dataclasses.replace(small, key="deepseek-r1-distill-qwen-1-5b",
                                 served_name="other-name"))
    with pytest.raises(ConfigError, match=r"models deepseek-r1-distill-qwen-1.5b and "
                       r"deepseek-r1-distill-qwen-1-5b would share the name "
                       r"'vllm-deepseek-r1-distill-qwen-1-5b'"):
        parse(models=f"{SMALL},deepseek-r1-distill-qwen-1-5b")
    register(dataclasses.replace(small, key="router", served_name="router"))
    with pytest.raises(ConfigError, match=r"model router: its objects would be named "
                       r"'vllm-router', like the router's"):
        parse(model="router")


def test_more_models_than_the_fixed_model_list_holds_are_refused():
    import dataclasses

    from vllm_eks.models import get_model, register

    small = get_model(SMALL)
    keys = [f"a-rather-long-key-for-a-registered-model-{i}" for i in range(12)]
    for key in keys:
        register(dataclasses.replace(small, key=key, served_name=""))
    with pytest.raises(ConfigError, match=r"-c models: the list of 12 served names is \d+ "
                       r"bytes as /v1/models answers it, over the 1024 bytes"):
        parse(models=",".join(keys))


@pytest.mark.parametrize(("context", "message"), [
    ({"efa": "true"}, r"-c efa=true: no model spans nodes, and EFA only carries the traffic"),
    ({"model": "deepseek-r1-distill-llama-8b", "nodes": "2", "efa": "true"},
     r"-c efa=true: deepseek-r1-distill-llama-8b may run on g6.xlarge, which has no EFA; "
     r"pass "
     r"-c instance_type=<one with EFA: .*p5.48xlarge"),
    ({"efa": "maybe"}, r"-c efa='maybe' is not true or false"),
])
def test_efa_is_refused_where_it_cannot_help(context, message):
    with pytest.raises(ConfigError, match=message):
        parse(**context)


def test_efa_applies_to_the_multi_node_models_only():
    config = parse(models=f"deepseek-r1,{SMALL}", instance_type="deepseek-r1:p5.48xlarge",
                   efa="true")
    assert [m.key for m in config.efa_models] == ["deepseek-r1"]
