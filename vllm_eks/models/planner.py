"""The planner: the cheapest GPU placement that serves a model, on one node when one fits.

A placement is (instance type, tensor-parallel size, nodes). It fits when, on each GPU,
the model's shard of the weights, its share of the KV cache for `min_concurrency`
sequences at `max_model_len`, and a fixed per-GPU reserve for activations and the CUDA
context stay under `gpu_memory_utilization` of the GPU's memory. Among placements that
fit, the cheapest wins; on a tie, fewer GPUs, then the larger KV-cache headroom.

A multi-node placement is N identical nodes: tensor parallel across every GPU of a node,
pipeline parallel across the nodes (PP = N). The weights are split over TP x PP GPUs;
each pipeline stage holds the KV cache of its own layers (MLA: replicated on every TP
rank of the stage; GQA: split or replicated as on one node), so the group's KV cache per
sequence is the single-node figure spread over the stages. It is chosen only when no
single node fits, when the pinned instance type needs it, or when `nodes` is pinned.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .instances import GPU_INSTANCES, PRICE_REGION, PRICES_CHECKED, GpuInstance
from .profile import GB, GIB, ModelProfile

# Memory vLLM needs on each GPU besides weights and KV cache: activations of the profiling
# forward pass, CUDA graphs, NCCL buffers and the CUDA context. 1.5 GiB holds for the
# batch sizes vLLM captures by default on these GPUs.
ACTIVATION_RESERVE_BYTES_PER_GPU = int(1.5 * GIB)

DEFAULT_MIN_CONCURRENCY = 8

# Fallback instance types (used when the chosen type is short of capacity) are limited to
# placements within this factor of the chosen price, and to this many: a shortage of
# g6e.xlarge should not silently put an 8B model on a $60/hour node.
FALLBACK_MAX_PRICE_FACTOR = 3.0
FALLBACK_MAX_COUNT = 5
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90


# Shorter contexts leave no room for a prompt and an answer; also the -c minimum.
MIN_MODEL_LEN = 256

# The most nodes one replica spans. Each pipeline stage adds a hop per token and a node
# that can fail the whole group; beyond this, a larger GPU type is the better answer.
MAX_NODES = 4


class CapacityType(enum.Enum):
    """Where GPU nodes come from."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"


class PlanError(ValueError):
    """No placement satisfies the model and the pins; the message says what was tried."""


@dataclass(frozen=True, kw_only=True)
class PlanRequest:
    """What to plan: a model plus optional pins. None means "let the planner choose"."""

    model: ModelProfile
    instance_type: str | None = None
    tensor_parallel: int | None = None
    max_model_len: int | None = None  # None: the profile's default_max_model_len
    min_concurrency: int = DEFAULT_MIN_CONCURRENCY
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    capacity: CapacityType = CapacityType.ON_DEMAND
    nodes: int | None = None  # None: one node when one fits, else the fewest that fit


@dataclass(frozen=True, kw_only=True)
class Placement:
    """One candidate: a model on `tensor_parallel` GPUs of each of `nodes` instances
    (pipeline parallel across the nodes)."""

    model: ModelProfile
    instance: GpuInstance
    tensor_parallel: int
    max_model_len: int
    gpu_memory_utilization: float
    nodes: int = 1

    @property
    def pipeline_parallel(self) -> int:
        return self.nodes

    @property
    def total_gpus(self) -> int:
        return self.tensor_parallel * self.nodes

    @property
    def usable_bytes(self) -> int:
        """GPU memory vLLM may use for weights + KV cache across the TP x PP GPUs."""
        per_gpu = self.instance.gpu.memory_bytes * self.gpu_memory_utilization
        return int(self.total_gpus * (per_gpu - ACTIVATION_RESERVE_BYTES_PER_GPU))

    @property
    def weight_bytes_per_gpu(self) -> int:
        return self.model.weight_bytes // self.total_gpus

    @property
    def kv_cache_bytes(self) -> int:
        """Memory left for the KV cache once the weights are loaded (may be negative)."""
        return self.usable_bytes - self.model.weight_bytes

    @property
    def bytes_per_full_sequence(self) -> int:
        return self.model.kv_cache_bytes_per_sequence(self.max_model_len, self.tensor_parallel)

    @property
    def max_concurrent_sequences(self) -> int:
        """How many sequences of max_model_len tokens the KV cache holds at once."""
        return max(0, self.kv_cache_bytes // self.bytes_per_full_sequence)

    @property
    def usd_per_hour(self) -> float | None:
        """One replica: every node of it."""
        price = self.instance.on_demand_usd_per_hour
        return None if price is None else price * self.nodes

    @property
    def cost_text(self) -> str:
        price = self.instance.on_demand_usd_per_hour
        if price is None:
            return "no public on-demand price (Capacity Blocks / Savings Plans)"
        if self.nodes == 1:
            return f"${price:.2f}/hour per node"
        return f"${price:.2f}/hour per node, ${self.usd_per_hour:.2f}/hour for {self.nodes} nodes"

    def fits(self, min_concurrency: int) -> bool:
        return self.max_concurrent_sequences >= min_concurrency

    def sort_key(self) -> tuple:
        price = self.usd_per_hour if self.usd_per_hour is not None else float("inf")
        return (price, self.nodes, self.tensor_parallel, -self.kv_cache_bytes)


@dataclass(frozen=True, kw_only=True)
class DeploymentPlan:
    """The chosen placement plus every other placement that also fits (cheapest first),
    which later layers use as fallbacks when the chosen type is short of capacity."""

    chosen: Placement
    alternatives: tuple[Placement, ...]
    capacity: CapacityType
    min_concurrency: int
    request: PlanRequest | None = None  # what was asked for (the pins); None: not recorded

    @property
    def model(self) -> ModelProfile:
        return self.chosen.model

    @property
    def instance_type(self) -> str:
        return self.chosen.instance.instance_type

    @property
    def gpus(self) -> int:
        """GPUs one vLLM pod requests (its tensor-parallel size; a multi-node replica is
        `nodes` such pods)."""
        return self.chosen.tensor_parallel

    @property
    def nodes(self) -> int:
        """Nodes one replica spans (its pipeline-parallel size)."""
        return self.chosen.nodes

    @property
    def pipeline_parallel(self) -> int:
        return self.chosen.nodes

    @property
    def multi_node(self) -> bool:
        return self.chosen.nodes > 1

    @property
    def tensor_parallel(self) -> int:
        return self.chosen.tensor_parallel

    @property
    def max_model_len(self) -> int:
        return self.chosen.max_model_len

    @property
    def gpu_memory_utilization(self) -> float:
        return self.chosen.gpu_memory_utilization

    def summary(self) -> str:
        """The short plan synth prints."""
        c = self.chosen
        gpu = c.instance.gpu
        if c.nodes == 1:
            where = (f"{c.instance.instance_type} ({self.capacity.value}), "
                     f"{c.tensor_parallel} of {c.instance.gpu_count} x {gpu.name} "
                     f"{gpu.marketing_gb} GB, TP {c.tensor_parallel}")
        else:
            where = (f"{c.nodes} x {c.instance.instance_type} ({self.capacity.value}), "
                     f"{c.instance.gpu_count} x {gpu.name} {gpu.marketing_gb} GB each, "
                     f"TP {c.tensor_parallel} x PP {c.nodes} = {c.total_gpus} GPUs, "
                     f"{c.weight_bytes_per_gpu / GB:.1f} GB of weights per GPU")
        return (
            f"vllm-eks plan: model {c.model.key} ({c.model.hf_id})\n"
            f"  instance   {where}\n"
            f"  memory     weights {c.model.weight_bytes / GB:.1f} GB, "
            f"KV cache {c.kv_cache_bytes / GB:.1f} GB "
            f"at gpu_memory_utilization {c.gpu_memory_utilization:.2f}\n"
            f"  context    max_model_len {c.max_model_len}: "
            f"{c.max_concurrent_sequences} concurrent sequences at full context "
            f"(minimum {self.min_concurrency})\n"
            f"  cost       {c.cost_text} "
            f"({PRICE_REGION} on-demand list price of {PRICES_CHECKED})"
        )

    def instance_types(self, gpu_limit: int | None = None) -> tuple[str, ...]:
        """The planned type, then the fallbacks, that a replica may run on: the GPU
        NodePool offers exactly these and the pod's node affinity names exactly these.
        `gpu_limit` drops types with more GPUs per node than the pool may hold."""
        placements = (self.chosen, *self.alternatives)
        return tuple(p.instance.instance_type for p in placements
                     if gpu_limit is None or p.instance.gpu_count * p.nodes <= gpu_limit)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready record of the plan (published into the cluster and stack outputs)."""
        c = self.chosen
        return {
            "model": c.model.key,
            "huggingFaceId": c.model.hf_id,
            "instanceType": c.instance.instance_type,
            "capacityType": self.capacity.value,
            "gpuModel": c.instance.gpu.name,
            "gpus": c.total_gpus,
            "nodes": c.nodes,
            "tensorParallel": c.tensor_parallel,
            "pipelineParallel": c.nodes,
            "maxModelLen": c.max_model_len,
            "gpuMemoryUtilization": c.gpu_memory_utilization,
            "weightsGB": round(c.model.weight_bytes / GB, 1),
            "kvCacheGB": round(c.kv_cache_bytes / GB, 1),
            "maxConcurrentSequences": c.max_concurrent_sequences,
            "usdPerHour": c.usd_per_hour,
            "fallbackInstanceTypes": [p.instance.instance_type for p in self.alternatives],
        }


def _tensor_parallel_options(model: ModelProfile, instance: GpuInstance) -> list[int]:
    return [
        tp for tp in range(1, instance.gpu_count + 1) if model.valid_tensor_parallel(tp)
    ]


def _validate_request(request: PlanRequest) -> int:
    model = request.model
    max_model_len = (model.default_max_model_len if request.max_model_len is None
                     else request.max_model_len)
    if max_model_len < MIN_MODEL_LEN:
        raise PlanError(
            f"max_model_len={max_model_len} is too short to serve; pass at least "
            f"{MIN_MODEL_LEN} tokens"
        )
    if max_model_len > model.max_position_embeddings:
        raise PlanError(
            f"max_model_len={max_model_len} exceeds what {model.key} supports "
            f"({model.max_position_embeddings} tokens); pass -c max_model_len=<= "
            f"{model.max_position_embeddings}"
        )
    if not 0.1 <= request.gpu_memory_utilization <= 0.98:
        raise PlanError(
            f"gpu_memory_utilization={request.gpu_memory_utilization} is outside 0.10-0.98; "
            "vLLM needs headroom for the CUDA context (default 0.90)"
        )
    if request.min_concurrency < 1:
        raise PlanError(f"min_concurrency={request.min_concurrency} must be at least 1")
    if request.instance_type is not None and request.instance_type not in GPU_INSTANCES:
        raise PlanError(
            f"unknown instance_type {request.instance_type!r}; pass -c instance_type=<one of: "
            f"{', '.join(GPU_INSTANCES)}>"
        )
    if (
        request.instance_type is not None
        and request.capacity is CapacityType.SPOT
        and not GPU_INSTANCES[request.instance_type].spot
    ):
        raise PlanError(
            f"instance_type {request.instance_type!r} has no spot offering; pass "
            "-c capacity=on-demand, or drop -c instance_type to let the planner choose"
        )
    tp = request.tensor_parallel
    most_gpus = max(instance.gpu_count for instance in GPU_INSTANCES.values())
    if tp is not None and tp > most_gpus:
        raise PlanError(
            f"tensor_parallel={tp} exceeds the {most_gpus} GPUs of the largest instance in "
            "the catalog; tensor parallelism stays within a node (use -c nodes for more)"
        )
    nodes = request.nodes
    if nodes is not None:
        if nodes < 1:
            raise PlanError(f"nodes={nodes} must be at least 1")
        most = min(MAX_NODES, model.num_layers)
        if nodes > most:
            raise PlanError(
                f"nodes={nodes} is more than vllm-eks splits one replica over: at most "
                f"{MAX_NODES} nodes, and at most one per layer ({model.key} has "
                f"{model.num_layers}); pass -c nodes=<1-{most}>, or a larger instance type"
            )
        if nodes > 1 and request.instance_type is not None:
            instance = GPU_INSTANCES[request.instance_type]
            if tp is not None and tp != instance.gpu_count:
                raise PlanError(
                    f"nodes={nodes} with tensor_parallel={tp} on {request.instance_type}: a "
                    "multi-node replica takes every GPU of each node (tensor parallel within "
                    f"the node, pipeline parallel across nodes); pass -c tensor_parallel="
                    f"{instance.gpu_count} or drop it"
                )
            if not model.valid_tensor_parallel(instance.gpu_count):
                raise PlanError(
                    f"nodes={nodes} on {request.instance_type}: {model.key} cannot be split "
                    f"over its {instance.gpu_count} GPUs (tensor parallel must divide the "
                    f"{model.num_attention_heads} attention heads); pass another "
                    "-c instance_type or -c nodes=1"
                )
    if tp is not None and not model.valid_tensor_parallel(tp):
        valid = [t for t in (1, 2, 4, 8) if model.valid_tensor_parallel(t)]
        raise PlanError(
            f"tensor_parallel={tp} is invalid for {model.key}: it must divide the "
            f"{model.num_attention_heads} attention heads"
            + (
                f" and split or replicate the {model.num_kv_heads} KV heads evenly"
                if model.num_kv_heads != model.num_attention_heads
                else ""
            )
            + f"; pass -c tensor_parallel=<one of: {', '.join(map(str, valid))}>"
        )
    return max_model_len


def candidate_placements(request: PlanRequest, *, multi_node: bool = False) -> list[Placement]:
    """Every (instance, TP) the pins allow on one node — or, with `multi_node`, every
    (instance, nodes) with TP = the node's GPUs on 2..MAX_NODES nodes — fitting or not,
    cheapest first. Types Karpenter cannot launch (no price) appear only when pinned, so
    that `plan` refuses them with the reason."""
    max_model_len = _validate_request(request)
    instances = (
        [GPU_INSTANCES[request.instance_type]]
        if request.instance_type
        else [i for i in GPU_INSTANCES.values() if i.launchable]
    )
    if request.capacity is CapacityType.SPOT:
        instances = [i for i in instances if i.spot]
    if multi_node:
        counts = ([request.nodes] if request.nodes else
                  range(2, min(MAX_NODES, request.model.num_layers) + 1))
        placements = [
            Placement(model=request.model, instance=instance, tensor_parallel=instance.gpu_count,
                      max_model_len=max_model_len,
                      gpu_memory_utilization=request.gpu_memory_utilization, nodes=nodes)
            for instance in instances for nodes in counts
            if request.model.valid_tensor_parallel(instance.gpu_count)
            and request.tensor_parallel in (None, instance.gpu_count)
        ]
        return sorted(placements, key=Placement.sort_key)
    placements = [
        Placement(
            model=request.model,
            instance=instance,
            tensor_parallel=tp,
            max_model_len=max_model_len,
            gpu_memory_utilization=request.gpu_memory_utilization,
        )
        for instance in instances
        for tp in _tensor_parallel_options(request.model, instance)
        if request.tensor_parallel in (None, tp)
    ]
    return sorted(placements, key=Placement.sort_key)


def plan(request: PlanRequest) -> DeploymentPlan:
    """Choose the cheapest single-node placement that fits, else (or with `nodes` pinned
    above 1) the cheapest multi-node one; raise PlanError naming what was tried."""
    single = [] if (request.nodes or 1) > 1 else candidate_placements(request)
    fitting = [p for p in single if p.fits(request.min_concurrency)]
    multi: list[Placement] = []
    if not fitting and request.nodes != 1:
        multi = candidate_placements(request, multi_node=True)
        fitting = [p for p in multi if p.fits(request.min_concurrency)]
    if not fitting:
        raise PlanError(_no_fit_message(request, single + multi))
    chosen = fitting[0]
    if not chosen.instance.launchable:
        raise PlanError(
            f"{chosen.instance.instance_type} has no public on-demand price (it is sold as "
            "EC2 Capacity Blocks and Savings Plans), and Karpenter launches only offerings "
            "with a price, so a replica pinned to it would stay Pending forever; pin "
            "another type with the same GPUs (e.g. -c instance_type=p5en.48xlarge for "
            "H200) or drop -c instance_type"
        )
    return DeploymentPlan(
        chosen=chosen,
        # A multi-node group must be one type throughout (same GPUs, memory and EFA count
        # on every rank): no fallback types.
        alternatives=_fallbacks(chosen, fitting[1:]) if chosen.nodes == 1 else (),
        capacity=request.capacity,
        min_concurrency=request.min_concurrency,
        request=request,
    )


def _fallbacks(chosen: Placement, fitting: list[Placement]) -> tuple[Placement, ...]:
    """Other instance types on which the chosen replica fits as it is (same TP and nodes:
    the pods' GPU requests and vLLM's parallel sizes do not change with the node),
    cheapest first, no dearer than FALLBACK_MAX_PRICE_FACTOR x the chosen one. Only types
    Karpenter can launch (with a price): a fallback that never launches is noise in the
    pool."""
    ceiling = chosen.usd_per_hour * FALLBACK_MAX_PRICE_FACTOR
    seen = {chosen.instance.instance_type}
    alternatives: list[Placement] = []
    for placement in fitting:
        price = placement.usd_per_hour
        affordable = price is not None and price <= ceiling
        if (placement.instance.instance_type not in seen and affordable
                and placement.tensor_parallel == chosen.tensor_parallel
                and placement.nodes == chosen.nodes):
            seen.add(placement.instance.instance_type)
            alternatives.append(placement)
    return tuple(alternatives[:FALLBACK_MAX_COUNT])


def _no_fit_message(request: PlanRequest, candidates: list[Placement]) -> str:
    model = request.model
    max_model_len = candidates[0].max_model_len if candidates else request.max_model_len
    kv_one = model.kv_cache_bytes_per_sequence(max_model_len or 1, 1)
    need = model.weight_bytes + request.min_concurrency * kv_one
    nodes = ("single-node" if request.nodes == 1 else f"{request.nodes}-node" if request.nodes
             else f"single- or multi-node (up to {MAX_NODES} nodes)")
    lines = [
        f"no {nodes} placement fits {model.key}: it needs about {need / GB:.0f} GB of GPU "
        f"memory ({model.weight_bytes / GB:.1f} GB weights + KV cache for "
        f"{request.min_concurrency} sequences x {max_model_len} tokens) under "
        f"gpu_memory_utilization {request.gpu_memory_utilization}.",
    ]
    if candidates:
        lines.append("Tried (instance, TP [x PP nodes]: memory available for weights + KV "
                     "cache):")
        by_capacity = sorted(candidates, key=lambda p: -p.usable_bytes)[:8]
        lines += [
            f"  {p.instance.instance_type}, TP {p.tensor_parallel}"
            + (f" x PP {p.nodes}" if p.nodes > 1 else "")
            + f": {p.usable_bytes / GB:.0f} GB -> {p.max_concurrent_sequences} sequences"
            for p in by_capacity
        ]
    else:
        lines.append("No instance type in the catalog matched the pins.")
    lines.append(
        "Fix: drop -c instance_type / -c tensor_parallel / -c nodes to let the planner "
        "choose, lower -c max_model_len, or lower -c min_concurrency."
    )
    return "\n".join(lines)
