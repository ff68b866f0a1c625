"""Applying parallelism to a plain model, in one place and one fixed order (as torchtitan does).

The models know nothing of distribution; they expose their transformer blocks as `blocks`
(an nn.ModuleList or a list of blocks). `build_model` makes a worker's model:
  FSDP: built on the meta device (no memory), then, in this order,
  1. activation checkpointing, per block (all, or every n-th): memory first, since it
     changes what compile sees;
  2. torch.compile, per block: blocks are identical, so one compiled graph serves them all;
  3. FSDP2 `fully_shard` per block, then on the root, with a MixedPrecisionPolicy (bf16
     parameters for compute, gradients reduced in fp32 or bf16): parameters are gathered
     block by block; on a 2-D mesh (replicate x shard) this is hybrid sharding, sharded
     within a group of ranks (a node) and replicated across groups;
  4. materialised on the device shard by shard (`to_empty`) and initialised there with the
     model's own `init_weights`, so no rank ever holds the whole fp32 model (torchtitan's
     order). Each random fill of a sharded parameter draws the whole parameter once and
     keeps this rank's shard (`ShardedInit`): one parameter at a time in memory, and the
     same weights as a whole-model init from the same seed, on any device and worker count
     (DTensor's own random ops do that only on CUDA; on CPU every rank drew the same rows).
  DDP (the default, for models that fit one device): built directly on the device (no CPU
  copy first), then 1 and 2, then wrapped; the compute runs under bf16 autocast.

Vector quantisers rewrite their codebook inside forward (dead-code reset, from each
replica's own batch), which neither DDP nor FSDP knows about. Under DDP the loop copies
rank 0's codebooks to every replica after each step (`sync_quantizers`); under FSDP such a
write would land in a temporary unsharded copy and be lost, so FSDP is refused for models
with a quantiser. Those are the tokenizer (~200M at paper size) and the LAM (~300M), which
fit one GPU; FSDP is for the dynamics model (10.1B).
"""

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
from torch.nn.parallel import DistributedDataParallel
from torch.overrides import TorchFunctionMode

from models.quantizer import VectorQuantizer
from schemas.config import at_least


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
    """How one model is spread over the workers and made fast on each."""

    strategy: Literal["ddp", "fsdp"] = "ddp"  # fsdp: shard parameters, gradients and optimiser state
    activation_checkpointing: bool = False  # recompute blocks in backward: less memory, ~30% more compute
    activation_checkpointing_every: int = 1  # with activation_checkpointing: every n-th block (1 = all, 2 = every other)
    compile: bool = False  # torch.compile each block (needs a GPU compiler toolchain to pay off)
    # compute precision: under FSDP, parameters all-gathered in bf16 (fp32 master weights);
    # under DDP, bf16 autocast
    mixed_precision: Literal["bf16", "fp32"] = "bf16"
    reduce_dtype: Literal["fp32", "bf16"] = "fp32"  # FSDP: dtype gradients are reduce-scattered in
    # FSDP: ranks one copy of the model is sharded over. 0 = all of them; the GPUs of one node
    # for hybrid sharding (shard within a node, replicate across nodes: less inter-node traffic)
    shard_group_size: int = 0

    def __post_init__(self):
        at_least(self, activation_checkpointing_every=1, shard_group_size=0)


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's transformer blocks: `model.blocks`, a ModuleList or a list of blocks."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, list, tuple)) and blocks and all(isinstance(b, nn.Module) for b in blocks):
        return list(blocks)
    raise TypeError(f"{type(model).__name__} has no `blocks` to parallelize over")


def build_model(build: Callable[[], nn.Module], config: ParallelConfig, device: torch.device, seed: int) -> nn.Module:
    """This worker's model, initialised from `seed` (the same weights on every rank), parallelized.

    build: makes the plain model (called under a device context: meta for FSDP). A model with
    an `init_weights` method is initialised by it after a seed, sharded or whole, so a sharded
    model starts from exactly the weights the whole one would.
    """
    if config.strategy == "fsdp" and _distributed():
        with torch.device("meta"):
            model = build()
        if not callable(getattr(model, "init_weights", None)):
            raise TypeError(f"{type(model).__name__} needs an init_weights() method to be built sharded")
        model = parallelize(model, config, device)
        model.to_empty(device=device)
    else:
        torch.manual_seed(seed)
        with torch.device(device):
            model = build()
        model = parallelize(model, config, device)
    if callable(getattr(unwrap(model), "init_weights", None)):
        torch.manual_seed(seed)
        with torch.no_grad(), ShardedInit():
            unwrap(model).init_weights()
    return model


class ShardedInit(TorchFunctionMode):
    """Random in-place fills of a DTensor draw the whole tensor, then keep the local shard.

    The draws then follow the generator exactly as they would for the unsharded model, so a
    sharded init equals the whole one; deterministic fills (ones_, zeros_) and later in-place
    arithmetic (trunc_normal_'s erfinv_, mul_) act on the shard as usual.
    """

    RANDOM_FILLS = {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.bernoulli_, torch.Tensor.random_,
                    torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_, torch.Tensor.geometric_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")  # nn.init's fills pass it by keyword
        fills = func in self.RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init"
        if not fills or not isinstance(target, DTensor):
            return func(*args, **kwargs)
        local = target.to_local()
        whole = torch.empty(target.shape, dtype=target.dtype, device=local.device)
        if args:
            func(whole, *args[1:], **kwargs)
        else:
            func(**{**kwargs, "tensor": whole})
        shape, offset = compute_local_shape_and_global_offset(target.shape, target.device_mesh, target.placements)
        local.copy_(whole[tuple(slice(start, start + size) for start, size in zip(offset, shape))])
        return target


def parallelize(model: nn.Module, config: ParallelConfig, device: torch.device) -> nn.Module:
    """The model ready to train on this worker: checkpointed, compiled and sharded or replicated.

    Under FSDP the model may be on the meta device; it stays there (see build_model).
    """
    if not _on_meta(model):
        model.to(device)
    blocks = transformer_blocks(model)

    # 1. Activation checkpointing: each chosen block is swapped, in its parent, for a wrapper
    #    that keeps state-dict keys unchanged.
    if config.activation_checkpointing:
        block_ids = {id(block) for block in blocks[config.activation_checkpointing_every - 1 :: config.activation_checkpointing_every]}
        apply_activation_checkpointing(model, checkpoint_wrapper_fn=checkpoint_wrapper,
                                       check_fn=lambda module: id(module) in block_ids)
        blocks = transformer_blocks(model)

    # 2. Compile each block in place (Module.compile keeps parameter names).
    if config.compile:
        for block in blocks:
            block.compile()

    # 3. Shard per block then the root, or replicate the whole model.
    distributed = _distributed()
    if config.strategy == "fsdp":
        if quantizers(model):
            raise ValueError(f"strategy 'fsdp' cannot shard {type(model).__name__}: its vector quantiser rewrites "
                             "its codebook during forward; use 'ddp' (the model fits one GPU)")
        if not distributed:
            return model  # one plain process: nothing to shard over
        options = {"mesh": device_mesh(config, device), "mp_policy": precision_policy(config)}
        for block in blocks:
            fully_shard(block, **options)
        fully_shard(model, **options)
        return model
    if distributed and dist.get_world_size() > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)
    return model


def precision_policy(config: ParallelConfig) -> MixedPrecisionPolicy:
    """FSDP's casts: parameters to bf16 for forward and backward, gradients reduced in reduce_dtype.

    The sharded parameters (the optimiser's master weights) stay fp32.
    """
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    param_dtype = dtypes[config.mixed_precision] if config.mixed_precision == "bf16" else None
    return MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=dtypes[config.reduce_dtype])


def device_mesh(config: ParallelConfig, device: torch.device) -> DeviceMesh:
    """1-D over every rank (FSDP), or replicate x shard (hybrid) when shard_group_size is set."""
    world = dist.get_world_size()
    group = config.shard_group_size or world
    if world % group:
        raise ValueError(f"parallel.shard_group_size {group} does not divide the {world} workers")
    if group == world:
        return init_device_mesh(device.type, (world,), mesh_dim_names=("shard",))
    return init_device_mesh(device.type, (world // group, group), mesh_dim_names=("replicate", "shard"))


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
        if quantizer.config.ema_decay:  # the running averages the codes are made of
            dist.broadcast(quantizer.ema_count, src=0)
            dist.broadcast(quantizer.ema_sum, src=0)


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


def autocast(device: torch.device, config: ParallelConfig, model: nn.Module | None = None):
    """bf16 autocast on the device; nothing for fp32, or for an FSDP model, whose policy casts its parameters."""
    if config.mixed_precision == "bf16" and not isinstance(model, FSDPModule):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _on_meta(model: nn.Module) -> bool:
    return any(parameter.is_meta for parameter in model.parameters())
