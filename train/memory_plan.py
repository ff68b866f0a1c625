"""A memory plan per GPU for one training job on a stated cluster, checked before any worker starts.

Per GPU, in bytes (N parameters, G = ranks a model copy is sharded over: the shard group
under FSDP, 1 under DDP):

    parameters   4 N / G       fp32 master weights (the shard this rank owns)
    gradients    4 N / G       fp32, reduce-scattered into the shard (FSDP) or all-reduced (DDP)
    optimizer    8 N / G       AdamW's two fp32 moments
    gathered     FSDP only: the unsharded compute copies of the largest blocks in flight
                 (this block and the prefetched next, in the compute dtype) plus their
                 unsharded fp32 gradients before the reduce-scatter, and the root's own
                 parameters (embeddings, head); DDP: its gradient buckets (~ 4 N / 20)
    activations  per micro-batch, the tensors forward keeps for backward:
                   without checkpointing  layers x tokens x per_token_bytes(D, A, M)
                   with checkpointing     layers x tokens x 2 D (each block's bf16 input)
                                          + one block's full set (recomputed in backward)
                 plus the logits and their fp32 loss copies (dynamics: tokens x codes x 10 B)
    reserve      CUDA context, NCCL buffers, allocator fragmentation (configurable)

per_token_bytes = 2 (15.3 D + 30 A + 2 M) per ST block (D width, A attention width, M MLP
width), fitted to what an STBlock saves for backward in bf16, measured with
saved-tensor hooks (tests/test_memory_plan.py measures it again on two shapes). Attention
saves no L x L matrix: scaled_dot_product_attention's fused kernels keep only its output
and the log-sum-exp.
"""

import dataclasses
import math

import torch
from torch import nn

from schemas.config import ConfigError, at_least
from train.hardware import find_gpu

GB = 1e9
STATE_BYTES_PER_PARAMETER = {"parameters": 4, "gradients": 4, "optimizer": 8}


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """The hardware a job is planned for: one training worker per GPU."""

    nodes: int = 1
    gpus_per_node: int = 8
    gpu: str = "H100"  # a name in train/hardware.py (its memory is used unless gpu_memory_gb is set)
    gpu_memory_gb: float = 0.0  # 0 = the table's figure for `gpu`
    reserve_gb: float = 6.0  # per GPU: CUDA context, NCCL buffers, allocator fragmentation

    def __post_init__(self):
        at_least(self, nodes=1, gpus_per_node=1, gpu_memory_gb=0.0, reserve_gb=0.0)
        if not self.gpu_memory_gb and find_gpu(self.gpu) is None:
            raise ConfigError(f"unknown GPU {self.gpu!r}: name one in train/hardware.py or set gpu_memory_gb", key="gpu")

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def memory_gb(self) -> float:
        return self.gpu_memory_gb or find_gpu(self.gpu).memory_gb


def activation_bytes_per_token(model_dim: int, attention_dim: int, mlp_dim: int) -> float:
    """What one ST block keeps for backward per token, in bf16 (see the module doc)."""
    return 2 * (15.3 * model_dim + 30 * attention_dim + 2 * mlp_dim)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Bytes per GPU by kind, for one job on one cluster."""

    parameters_total: int
    shard_group: int  # ranks one model copy is sharded over
    micro_batch: int
    global_batch: int
    activation_checkpointing: bool
    cluster: ClusterSpec
    parameters: float
    gradients: float
    optimizer: float
    gathered: float
    activations: float  # as configured
    activations_without_checkpointing: float
    activations_with_checkpointing: float

    @property
    def total(self) -> float:
        return (self.parameters + self.gradients + self.optimizer + self.gathered + self.activations
                + self.cluster.reserve_gb * GB)

    @property
    def fits(self) -> bool:
        return self.total <= self.cluster.memory_gb * GB

    def table(self) -> str:
        """The plan as an operator reads it: one line per kind, in GB per GPU."""
        cluster = self.cluster
        row = lambda label, gb, note="": f"  {label:<28}{gb:8.2f} GB{note}"  # noqa: E731
        verdict = "fits" if self.fits else "DOES NOT FIT"
        rows = [
            f"cluster: {cluster.nodes} x {cluster.gpus_per_node} {cluster.gpu} ({cluster.memory_gb:g} GB each), "
            f"{self.parameters_total / 1e9:.3g}B parameters sharded over {self.shard_group} rank(s), "
            f"micro-batch {self.micro_batch} per GPU, global batch {self.global_batch}",
            row("parameters (fp32)", self.parameters / GB),
            row("gradients (fp32)", self.gradients / GB),
            row("optimizer (AdamW, fp32)", self.optimizer / GB),
            row("gathered blocks / buckets", self.gathered / GB),
            row(f"activations ({'checkpointed' if self.activation_checkpointing else 'all kept'})", self.activations / GB,
                f"   (with checkpointing {self.activations_with_checkpointing / GB:.2f}, "
                f"without {self.activations_without_checkpointing / GB:.2f})"),
            row("reserve", cluster.reserve_gb),
            row("total", self.total / GB, f" of {cluster.memory_gb:g} GB: {verdict}"),
        ]
        return "\n".join(rows)


def plan_memory(model: nn.Module, batch_shape: tuple[int, ...], cluster: ClusterSpec, strategy: str,
                shard_group_size: int, checkpoint_every: int, grad_accumulation: int,
                compute_bytes: int = 2) -> MemoryPlan:
    """The plan for `model` (built on the meta device) trained on micro-batches of `batch_shape`.

    batch_shape: (B, T, h, w) tokens for the dynamics model, (B, T, C, H, W) video otherwise.
    strategy: "fsdp" or "ddp"; shard_group_size: 0 = all GPUs (FSDP); checkpoint_every: 0 =
    no activation checkpointing, n = every n-th block; compute_bytes: 2 for bf16, 4 for fp32.
    """
    from models.flops import _model_shapes
    from train.parallelize import transformer_blocks

    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    total = count(model)
    blocks = transformer_blocks(model)
    block_parameters = max(count(block) for block in blocks)
    group = 1 if strategy == "ddp" else (shard_group_size or cluster.gpus)
    if cluster.gpus % group:
        raise ConfigError(f"{group} does not divide the cluster's {cluster.gpus} GPUs", key="shard_group_size")
    states = {kind: size * total / group for kind, size in STATE_BYTES_PER_PARAMETER.items()}
    if strategy == "fsdp":
        root = total - sum(count(block) for block in blocks)
        gathered = 2 * block_parameters * (compute_bytes + 4) + root * (compute_bytes + 4)
    else:
        gathered = 4 * total / 20  # DDP's gradient buckets (25 MB each) in flight, roughly

    stacks, _ = _model_shapes(model, batch_shape)
    kept, checkpointed = 0.0, 0.0
    for stack in stacks:
        config = stack.config
        tokens = stack.batch * stack.frames * stack.tokens_per_frame
        block = tokens * activation_bytes_per_token(config.model_dim, config.attention_dim, config.mlp_dim)
        block *= compute_bytes / 2
        kept += config.num_layers * block
        checkpointed += config.num_layers * tokens * compute_bytes * config.model_dim + block
    logits = _logit_bytes(model, batch_shape)
    kept, checkpointed = kept + logits, checkpointed + logits
    share = 1 / checkpoint_every if checkpoint_every else 0.0  # of the blocks checkpointed
    activations = share * checkpointed + (1 - share) * kept
    return MemoryPlan(
        parameters_total=total, shard_group=group, micro_batch=batch_shape[0],
        global_batch=batch_shape[0] * grad_accumulation * cluster.gpus,
        activation_checkpointing=checkpoint_every > 0, cluster=cluster,
        parameters=states["parameters"], gradients=states["gradients"], optimizer=states["optimizer"],
        gathered=gathered, activations=activations,
        activations_without_checkpointing=kept, activations_with_checkpointing=checkpointed,
    )


def _logit_bytes(model: nn.Module, batch_shape: tuple[int, ...]) -> float:
    """Dynamics: bf16 logits, their fp32 copy for the loss and its gradient (10 B per logit)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_codes"):
        return 0.0
    return 10.0 * math.prod(batch_shape) * config.num_codes


def meta_model(build) -> nn.Module:
    """The model built on the meta device: shapes and counts, no memory."""
    with torch.device("meta"):
        return build()
