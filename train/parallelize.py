"""Applying parallelism to a plain model, in one place and one fixed order (as torchtitan does).

The models know nothing of distribution; they expose their transformer blocks as `blocks`
(an nn.ModuleList or a list of blocks). Here, in this order:
  1. activation checkpointing, per block: memory first, since it changes what compile sees;
  2. torch.compile, per block: blocks are identical, so one compiled graph serves them all;
  3. FSDP2 `fully_shard` per block, then on the root (parameters gathered block by block);
     or DDP over the whole model when it fits one device (the default).

Vector quantisers rewrite their codebook inside forward (dead-code reset, from each
replica's own batch), which neither DDP nor FSDP knows about. Under DDP the loop copies
rank 0's codebooks to every replica after each step (`sync_quantizers`); under FSDP such a
write would land in a temporary unsharded copy and be lost, so FSDP is refused for models
with a quantiser. Those are the tokenizer (~200M at paper size) and the LAM (~300M), which
fit one GPU; FSDP is for the dynamics model (10.1B).
"""

import contextlib
import dataclasses
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel

from models.quantizer import VectorQuantizer


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
    """How one model is spread over the workers and made fast on each."""

    strategy: Literal["ddp", "fsdp"] = "ddp"  # fsdp: shard parameters, gradients and optimiser state
    activation_checkpointing: bool = False  # recompute each block in backward: less memory, ~30% more compute
    compile: bool = False  # torch.compile each block (needs a GPU compiler toolchain to pay off)
    mixed_precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast for forward and backward


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's transformer blocks: `model.blocks`, a ModuleList or a list of blocks."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, list, tuple)) and blocks and all(isinstance(b, nn.Module) for b in blocks):
        return list(blocks)
    raise TypeError(f"{type(model).__name__} has no `blocks` to parallelize over")


def parallelize(model: nn.Module, config: ParallelConfig, device: torch.device) -> nn.Module:
    """The model ready to train on this worker: checkpointed, compiled and sharded or replicated."""
    model.to(device)
    blocks = transformer_blocks(model)

    # 1. Activation checkpointing: each block is swapped, in its parent, for a wrapper that
    #    keeps state-dict keys unchanged.
    if config.activation_checkpointing:
        block_ids = {id(block) for block in blocks}
        apply_activation_checkpointing(model, checkpoint_wrapper_fn=checkpoint_wrapper,
                                       check_fn=lambda module: id(module) in block_ids)
        blocks = transformer_blocks(model)

    # 2. Compile each block in place (Module.compile keeps parameter names).
    if config.compile:
        for block in blocks:
            block.compile()

    # 3. Shard per block then the root, or replicate the whole model.
    distributed = dist.is_available() and dist.is_initialized()
    if config.strategy == "fsdp":
        if quantizers(model):
            raise ValueError(f"strategy 'fsdp' cannot shard {type(model).__name__}: its vector quantiser rewrites "
                             "its codebook during forward; use 'ddp' (the model fits one GPU)")
        if not distributed:
            return model  # one plain process: nothing to shard over
        for block in blocks:
            fully_shard(block)
        fully_shard(model)
        return model
    if distributed and dist.get_world_size() > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)
    return model


def quantizers(model: nn.Module) -> list[VectorQuantizer]:
    return [module for module in model.modules() if isinstance(module, VectorQuantizer)]


@torch.no_grad()
def sync_quantizers(model: nn.Module) -> None:
    """Give every DDP replica rank 0's codebooks and usage counters (see module doc)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for quantizer in quantizers(unwrap(model)):
        dist.broadcast(quantizer.codebook.weight.data, src=0)
        dist.broadcast(quantizer.steps_unused, src=0)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (FSDP2 modules are the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


@contextlib.contextmanager
def gradient_sync(model: nn.Module, enabled: bool):
    """Skip the gradient all-reduce on micro-batches that are not the last of a step."""
    if isinstance(model, DistributedDataParallel) and not enabled:
        with model.no_sync():
            yield
    elif isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)
        yield
    else:
        yield


def autocast(device: torch.device, config: ParallelConfig):
    """bf16 autocast on the device, or nothing for fp32."""
    if config.mixed_precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
