"""The spatiotemporal (ST) transformer of Genie (Bruce et al. 2024, Sec. 2.1).

Activations are (B, T, S, D): batch, frames, tokens per frame, width. Each block applies
spatial attention among the S tokens of one frame, causal temporal attention among the T
frames at one token position, then an MLP; all pre-norm, with residual connections. Spatial
attention costs O(T S^2) rather than O(T^2 S^2) for full attention over the video, and the
causal temporal attention makes every output at frame t a function of frames <= t only.

For generation, a KVCache keeps the temporal keys and values of past frames, so the frame
being generated attends to them without recomputing the context.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.config import TransformerConfig


class LayerKV(NamedTuple):
    """One block's view of a KVCache: slots are frame indices."""

    keys: torch.Tensor  # (N, nh, capacity, hd), N = batch * token positions
    values: torch.Tensor  # (N, nh, capacity, hd)
    position: torch.Tensor  # () int64: slot of the first frame being written


class KVCache:
    """Temporal keys and values of past frames for every block (generation only).

    A forward pass with the cache writes its frames into slots position, position+1, ...
    and attends to every slot up to its own frame. A pass over a frame that is still being
    sampled overwrites the same slot each step; `advance` commits frames by moving the
    position. The position is a tensor, so one compiled or CUDA-graphed step serves every frame.
    """

    def __init__(self, num_layers: int, positions: int, num_heads: int, head_dim: int, capacity: int,
                 device: torch.device | str, dtype: torch.dtype):
        shape = (num_layers, positions, num_heads, capacity, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.position = torch.zeros((), device=device, dtype=torch.long)

    def layer(self, index: int) -> LayerKV:
        return LayerKV(self.keys[index], self.values[index], self.position)

    def advance(self, frames: int = 1) -> None:
        self.position.add_(frames)

    def reset(self) -> None:
        self.position.zero_()


class RMSNorm(nn.RMSNorm):
    """RMSNorm that runs in its input's dtype (bf16 QK-norm under autocast stays fused)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.eps)


class Attention(nn.Module):
    """Multi-head self-attention: fused QKV projection, optional QK-norm, SDPA."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.qkv = nn.Linear(config.model_dim, 3 * config.attention_dim, bias=False)
        self.proj = nn.Linear(config.attention_dim, config.model_dim, bias=False)
        self.q_norm = RMSNorm(config.head_dim) if config.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(config.head_dim) if config.qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, is_causal: bool, cache: LayerKV | None = None) -> torch.Tensor:
        """x: (N, L, D) independent sequences -> (N, L, D)."""
        N, L, _ = x.shape
        q, k, v = self.qkv(x).view(N, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)  # q, k, v: (N, nh, L, hd)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        else:
            y = attend_with_cache(q, k, v, cache)
        y = y.transpose(1, 2).reshape(N, L, self.num_heads * self.head_dim)  # (N, L, nh*hd)
        return self.proj(y)


def attend_with_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: LayerKV) -> torch.Tensor:
    """Causal attention of L new frames over the cached frames before them and themselves."""
    L, capacity = q.shape[2], cache.keys.shape[2]
    slots = cache.position + torch.arange(L, device=q.device)  # (L,) frame index of each query
    cache.keys.index_copy_(2, slots, k.to(cache.keys.dtype))
    cache.values.index_copy_(2, slots, v.to(cache.values.dtype))
    visible = torch.arange(capacity, device=q.device) <= slots[:, None]  # (L, capacity)
    return F.scaled_dot_product_attention(q, cache.keys.to(q.dtype), cache.values.to(q.dtype), attn_mask=visible)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(config.model_dim, config.mlp_dim, bias=False)
        self.proj = nn.Linear(config.mlp_dim, config.model_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class STBlock(nn.Module):
    """Spatial attention, causal temporal attention, MLP; each pre-norm with a residual."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.spatial_norm = RMSNorm(config.model_dim)
        self.spatial = Attention(config)
        self.temporal_norm = RMSNorm(config.model_dim) if config.temporal else None
        self.temporal = Attention(config) if config.temporal else None
        self.mlp_norm = RMSNorm(config.model_dim)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: LayerKV | None = None) -> torch.Tensor:
        """x: (B, T, S, D) -> (B, T, S, D)."""
        B, T, S, D = x.shape
        h = self.spatial_norm(x).reshape(B * T, S, D)  # (B*T, S, D): one sequence per frame
        x = x + self.spatial(h, is_causal=False).view(B, T, S, D)
        if self.temporal is None:  # a spatial-only stack: frames never see each other
            return x + self.mlp(self.mlp_norm(x))
        h = self.temporal_norm(x).transpose(1, 2).reshape(B * S, T, D)  # (B*S, T, D): one per position
        h = self.temporal(h, is_causal=True, cache=cache)
        x = x + h.view(B, S, T, D).transpose(1, 2)  # (B, T, S, D)
        return x + self.mlp(self.mlp_norm(x))


class STTransformer(nn.Module):
    """Learned spatial and temporal position embeddings, a stack of ST blocks, a final norm."""

    def __init__(self, config: TransformerConfig, tokens_per_frame: int, max_frames: int):
        super().__init__()
        self.config = config
        self.spatial_position = nn.Parameter(torch.empty(tokens_per_frame, config.model_dim))
        # a spatial-only stack treats every frame alike: no frame positions
        self.temporal_position = nn.Parameter(torch.empty(max_frames, config.model_dim)) if config.temporal else None
        self.blocks = nn.ModuleList(STBlock(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.model_dim)
        self.init_weights()

    def init_weights(self) -> None:
        """Every parameter from scratch (also for a model materialised from the meta device)."""
        # norms: 1; positions and every linear: N(0, 0.02), as in GPT-2
        for module in self.modules():
            if isinstance(module, nn.RMSNorm):
                module.reset_parameters()
        nn.init.normal_(self.spatial_position, std=0.02)
        if self.temporal_position is not None:
            nn.init.normal_(self.temporal_position, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
        # projections into the residual stream (3 per block, 2 without temporal attention) scaled down with depth
        for block in self.blocks:
            projections = [block.spatial.proj, block.mlp.proj] + ([block.temporal.proj] if block.temporal else [])
            for projection in projections:
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(len(projections) * self.config.num_layers))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, S, D) embedded tokens -> (B, T, S, D).

        With a cache, the T frames are frames cache.position, ..., cache.position + T - 1 of
        the video; their temporal keys and values are written into the cache.
        """
        x = x + self.spatial_position
        if self.temporal_position is not None:
            frames = torch.arange(x.shape[1], device=x.device)
            if cache is not None:
                frames = frames + cache.position
            x = x + self.temporal_position[frames][:, None]  # (T, 1, D) over S
        checkpointing = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        for index, block in enumerate(self.blocks):
            if cache is not None:
                x = block(x, cache.layer(index))
            elif checkpointing:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)

    def new_kv_cache(self, positions: int, device: torch.device | str, dtype: torch.dtype) -> KVCache:
        """An empty cache for `positions` = batch size * tokens per frame sequences."""
        config = self.config
        return KVCache(config.num_layers, positions, config.num_heads, config.head_dim,
                       self.temporal_position.shape[0], device, dtype)
