"""Several models in one environment: adding a model adds only that model's resources,
and the shared ones (the router's model list, the published plan) change as they must."""

from __future__ import annotations

from vllm_eks.naming import pascal_case
from vllm_eks.stacks import PROD_STACK_ID

from .test_karpenter import custom_resources


def model_resources(resources: dict, key: str) -> dict:
    """The resources whose logical ID names the model (ModelServer.model_id)."""
    return {k: r for k, r in resources.items() if pascal_case(key) in k}


def test_adding_a_model_leaves_the_other_models_resources_untouched(default_env,
                                                                     two_models_env):
    one = default_env.templates[PROD_STACK_ID]["Resources"]
    two = two_models_env.templates[PROD_STACK_ID]["Resources"]
    first, second = (m.key for m in two_models_env.config.models)
    mine = model_resources(one, first)
    assert len(mine) >= 8  # roles, policies, associations, three manifests
    assert model_resources(two, first) == mine
    # What the second model added is its own, and nothing else is new.
    added = set(two) - set(one)
    assert added == set(model_resources(two, second))
    assert not set(one) - set(two)
    # Shared resources that change: the router (its /v1/models list), the published plan
    # and the smoke test (which calls every model); the API key and everything else stay
    # as they were. (DependsOn lists grow with the new resources: an ordering, no update.)
    def without_order(resource: dict) -> dict:
        return {k: v for k, v in resource.items() if k != "DependsOn"}

    changed = {k for k in set(one) & set(two) if without_order(one[k]) != without_order(two[k])}
    assert {k.rstrip("0123456789ABCDEF") for k in changed} == {"VllmServiceRouter",
                                                                "InferenceNamespace",
                                                                "SmokeTestFunction"}


def gpu_pool(env) -> dict:
    return custom_resources(env)[("NodePool", "gpu")]["spec"]


def test_the_gpu_pool_grows_by_the_new_models_types_and_gpus(default_env, two_models_env):
    def types(env) -> list[str]:
        requirements = gpu_pool(env)["template"]["spec"]["requirements"]
        return {r["key"]: r["values"] for r in requirements}["node.kubernetes.io/instance-type"]

    old, new = types(default_env), types(two_models_env)
    assert new[:len(old)] == old
    second = two_models_env.config.models[1]
    assert set(new) - set(old) <= set(two_models_env.config.instance_types(second))

    def limit(env) -> int:
        return int(gpu_pool(env)["limits"]["nvidia.com/gpu"])

    # The second model's max_replicas (2) plus its surge replica, one g6.xlarge GPU each.
    assert limit(two_models_env) == limit(default_env) + 3


def test_every_model_is_in_the_outputs(two_models_env):
    outputs = two_models_env.templates[PROD_STACK_ID]["Outputs"]
    keys = [m.key for m in two_models_env.config.models]
    assert outputs["Models"]["Value"] == ",".join(keys)
    assert all(f"{key}:" in outputs["Placements"]["Value"] for key in keys)
