"""What the environment's endpoint answers itself: the OpenAI model list of the served
names, a fixed response of the load balancer (k8s_charts/router.py). No CDK imports: the
config checks its size at parse time."""

from __future__ import annotations

import json
from collections.abc import Iterable

# An ALB fixed response's body holds at most this many bytes (ELB API, FixedResponseConfig
# MessageBody: "Maximum length of 1024").
FIXED_RESPONSE_MAX_BYTES = 1024


def model_list(served_names: Iterable[str]) -> str:
    """GET /v1/models: an OpenAI model object per served name, and nothing else."""
    return json.dumps({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "vllm-eks"}
        for name in served_names]}, separators=(",", ":"))
