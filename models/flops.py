"""Model FLOPs of a training step, for tokens/s and MFU.

Counted the usual way (Kaplan et al. 2020; PaLM App. B): a multiply-add is 2 FLOPs, the
backward pass costs twice the forward, so a step is 3x the forward. The forward is
2 * (weights of every matmul) * (tokens through it) plus attention's two matmuls, QK^T and
AV: 4 * L^2 * attention_dim per sequence of length L for spatial attention, half that for
causal temporal attention. Recomputation under activation checkpointing is not counted
(model FLOPs, not hardware FLOPs); embeddings, norms and the quantiser are negligible.
"""

from typing import Sequence

import torch.nn as nn

from models.config import TransformerConfig
from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer


def transformer_forward_flops(config: TransformerConfig, batch: int, frames: int, tokens_per_frame: int) -> float:
    """Forward FLOPs of an ST-transformer over (batch, frames, tokens_per_frame) tokens."""
    D, A = config.model_dim, config.attention_dim
    block_weights = 2 * 4 * D * A + 2 * D * config.mlp_dim  # spatial + temporal (QKV, out), MLP
    tokens = batch * frames * tokens_per_frame
    spatial = 4 * batch * frames * tokens_per_frame ** 2 * A
    temporal = 4 * batch * tokens_per_frame * frames * (frames + 1) / 2 * A
    return config.num_layers * (2 * block_weights * tokens + spatial + temporal)


def training_flops_per_step(model: nn.Module, batch_shape: Sequence[int]) -> float:
    """FLOPs of one forward + backward step of `model` on a batch of this shape.

    batch_shape: (B, T, h, w) tokens for DynamicsModel; (B, T, C, H, W) video for the
    VideoTokenizer and the LatentActionModel.
    """
    return 3 * forward_flops(model, batch_shape)


def forward_flops(model: nn.Module, batch_shape: Sequence[int]) -> float:
    if isinstance(model, DynamicsModel):
        B, T, h, w = batch_shape
        config = model.config
        D, S = config.transformer.model_dim, h * w
        positions = S + (config.action_conditioning == "token")
        return transformer_forward_flops(config.transformer, B, T, positions) + 2 * D * config.num_codes * B * T * S
    if isinstance(model, VideoTokenizer):
        B, T = batch_shape[:2]
        config = model.config
        S = config.grid[0] * config.grid[1]
        patch_dim, code_dim = config.patch_size ** 2 * config.channels, config.quantizer.code_dim
        projections = 2 * B * T * S * (patch_dim + code_dim) * (config.encoder.model_dim + config.decoder.model_dim)
        return (transformer_forward_flops(config.encoder, B, T, S)
                + transformer_forward_flops(config.decoder, B, T, S) + projections)
    if isinstance(model, LatentActionModel):
        B, T = batch_shape[:2]
        config = model.config
        S = config.grid[0] * config.grid[1]
        patch_dim, code_dim = config.patch_size ** 2 * config.channels, config.quantizer.code_dim
        encoder_projections = 2 * B * T * S * patch_dim * config.encoder.model_dim
        decoder_projections = 2 * B * (T - 1) * S * 2 * patch_dim * config.decoder.model_dim
        return (transformer_forward_flops(config.encoder, B, T, S + 1)
                + transformer_forward_flops(config.decoder, B, T - 1, S) + encoder_projections + decoder_projections)
    raise TypeError(f"no FLOP count for {type(model).__name__}")
