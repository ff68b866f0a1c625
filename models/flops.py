"""Model FLOPs of a training step, for tokens/s and MFU.

Counted the usual way (Kaplan et al. 2020; PaLM App. B): a multiply-add is 2 FLOPs and the
backward pass costs twice the forward, so a step is 3x the forward. The forward is
2 * (weights of every matmul) * (tokens through it), plus attention's two matmuls QK^T and
AV: 4 * L^2 * attention_dim per sequence of length L for spatial attention, half that for
causal temporal attention (the masked half is skipped by flash kernels). Recomputation
under activation checkpointing is not counted (model FLOPs, not hardware FLOPs);
embedding lookups, norms and elementwise work are negligible and not counted either.
"""

from typing import NamedTuple, Sequence

import torch.nn as nn

from models.config import TransformerConfig
from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer


class StackShape(NamedTuple):
    config: TransformerConfig
    batch: int
    frames: int
    tokens_per_frame: int


def training_flops_per_step(model: nn.Module, batch_shape: Sequence[int]) -> float:
    """FLOPs of one forward + backward step of `model` on a batch of this shape.

    batch_shape: (B, T, h, w) tokens for a DynamicsModel; (B, T, C, H, W) video for a
    VideoTokenizer or a LatentActionModel.
    """
    return 3 * forward_flops(model, batch_shape)


def forward_flops(model: nn.Module, batch_shape: Sequence[int]) -> float:
    stacks, other_matmuls = _model_shapes(model, batch_shape)
    return sum(_stack_matmul_flops(stack) + _stack_attention_flops(stack) for stack in stacks) + other_matmuls


def attention_forward_flops(model: nn.Module, batch_shape: Sequence[int]) -> float:
    """The part of forward_flops spent in QK^T and AV."""
    stacks, _ = _model_shapes(model, batch_shape)
    return sum(_stack_attention_flops(stack) for stack in stacks)


def _stack_matmul_flops(stack: StackShape) -> float:
    config = stack.config
    D, A = config.model_dim, config.attention_dim
    attentions = 2 if config.temporal else 1
    block_weights = attentions * 4 * D * A + 2 * D * config.mlp_dim  # spatial (and temporal) QKV + out, MLP
    return config.num_layers * 2 * block_weights * stack.batch * stack.frames * stack.tokens_per_frame


def _stack_attention_flops(stack: StackShape) -> float:
    B, T, S, A = stack.batch, stack.frames, stack.tokens_per_frame, stack.config.attention_dim
    spatial = 4 * B * T * S ** 2 * A
    temporal = 4 * B * S * T * (T + 1) / 2 * A if stack.config.temporal else 0
    return stack.config.num_layers * (spatial + temporal)


def _model_shapes(model: nn.Module, batch_shape: Sequence[int]) -> tuple[list[StackShape], float]:
    """The transformer stacks a forward runs, and the FLOPs of the matmuls outside them."""
    if isinstance(model, DynamicsModel):
        B, T, h, w = batch_shape
        config = model.config
        S = h * w
        positions = S + (config.action_conditioning == "token")
        head = 2 * config.transformer.model_dim * config.num_codes * B * T * S
        return [StackShape(config.transformer, B, T, positions)], head
    if isinstance(model, VideoTokenizer):
        B, T = batch_shape[:2]
        config = model.config
        S = config.grid[0] * config.grid[1]
        patch_dim, code_dim = config.patch_size ** 2 * config.channels, config.quantizer.code_dim
        encoder, decoder = config.encoder.model_dim, config.decoder.model_dim
        projections = 2 * B * T * S * (patch_dim + code_dim) * (encoder + decoder)  # in and out of each stack
        distances = 2 * B * T * S * code_dim * config.quantizer.num_codes  # nearest-code search
        stacks = [StackShape(config.encoder, B, T, S), StackShape(config.decoder, B, T, S)]
        return stacks, projections + distances
    if isinstance(model, LatentActionModel):
        B, T = batch_shape[:2]
        config = model.config
        S = config.grid[0] * config.grid[1]
        patch_dim, code_dim = config.patch_size ** 2 * config.channels, config.quantizer.code_dim
        encoder, decoder = config.encoder.model_dim, config.decoder.model_dim
        projections = (2 * B * T * (S * patch_dim + code_dim) * encoder  # patches in, each frame's summary out
                       + 2 * B * (T - 1) * (code_dim + S * 2 * patch_dim) * decoder)  # action, patches in and out
        distances = 2 * B * (T - 1) * code_dim * config.quantizer.num_codes
        stacks = [StackShape(config.encoder, B, T, S + 1), StackShape(config.decoder, B, T - 1, S)]
        return stacks, projections + distances
    raise TypeError(f"no FLOP count for {type(model).__name__}")
