"""One snapshot per stack (asset hashes masked, embedded manifests parsed into JSON).

A snapshot shows what changed; it does not prove the change right. Read the diff
(`pytest --snapshot-update`, then `git diff tests/__snapshots__`) before accepting it.
"""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from vllm_eks.stacks import (
    CLUSTER_STACK_ID,
    MODEL_STORE_STACK_ID,
    NETWORK_STACK_ID,
    PROD_STACK_ID,
)

from .support import readable_template


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize(
    "stack", [NETWORK_STACK_ID, MODEL_STORE_STACK_ID, CLUSTER_STACK_ID, PROD_STACK_ID])
def test_stack_snapshot(default_env, snapshot_json, stack):
    assert readable_template(default_env.templates[stack]) == snapshot_json
