"""Dynamics model (Genie Sec. 2.1): a MaskGIT transformer over video tokens and latent actions.

Frame t's tokens are embedded, a random subset is replaced by a mask token, and the action
a_{t-1} that led to frame t is added to every token embedding of frame t (the paper's
choice; `action_conditioning = "token"` prepends it as one extra token instead). The first
frame has no incoming action and gets a learned "no action" embedding. The ST-transformer
is causal in time, so the logits of frame t depend only on frames <= t and actions < t;
training predicts the masked tokens of every frame at once (cross-entropy on masked tokens,
each frame after the first masked at a rate ~ U(0.5, 1)). The sampler (models/sampler.py)
generates one frame at a time with a KV cache of the frames before it.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.config import DynamicsConfig
from models.st_transformer import KVCache, STTransformer


class DynamicsOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, h, w, num_codes)
    loss: torch.Tensor  # () cross-entropy over masked tokens
    metrics: dict[str, torch.Tensor]  # accuracy (on masked tokens), mask_rate


class DynamicsModel(nn.Module):
    def __init__(self, config: DynamicsConfig):
        super().__init__()
        self.config = config
        model_dim = config.transformer.model_dim
        self.tokens_per_frame = config.token_height * config.token_width
        self.token_embedding = nn.Embedding(config.num_codes + 1, model_dim)  # + the mask token
        self.action_embedding = nn.Embedding(config.num_actions + 1, model_dim)  # + "no action"
        positions = self.tokens_per_frame + (config.action_conditioning == "token")
        self.transformer = STTransformer(config.transformer, positions, config.max_frames)
        self.head = nn.Linear(model_dim, config.num_codes, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Every parameter from scratch (also for a model materialised from the meta device)."""
        self.transformer.init_weights()
        # embeddings and the output head: N(0, 0.02)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.action_embedding.weight, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)

    @property
    def mask_id(self) -> int:
        return self.config.num_codes

    @property
    def no_action_id(self) -> int:
        return self.config.num_actions

    @property
    def blocks(self) -> nn.ModuleList:
        return self.transformer.blocks

    def incoming_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """actions: (B, T-1), a_t taking frame t to t+1 -> (B, T) the action into each frame."""
        first = torch.full((actions.shape[0], 1), self.no_action_id, dtype=actions.dtype, device=actions.device)
        return torch.cat([first, actions], dim=1)

    def logits(self, tokens: torch.Tensor, frame_actions: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """tokens: (B, T, h, w) with mask ids, frame_actions: (B, T) action into each frame
        (no_action_id for a first frame) -> logits (B, T, h, w, num_codes).

        With a cache, the frames are frames cache.position.. of the video (see KVCache).
        """
        B, T, h, w = tokens.shape
        x = self.token_embedding(tokens.flatten(2))  # (B, T, S, D)
        action = self.action_embedding(frame_actions)[:, :, None]  # (B, T, 1, D)
        if self.config.action_conditioning == "add":
            x = x + action
        else:
            x = torch.cat([action, x], dim=2)  # (B, T, 1+S, D)
        x = self.transformer(x, cache)
        if self.config.action_conditioning == "token":
            x = x[:, :, 1:]  # (B, T, S, D)
        return self.head(x).view(B, T, h, w, self.config.num_codes)

    def draw_mask(self, shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """A training mask (B, T, h, w) bool: frame 0 kept, each later frame masked at a rate ~ U(min, max)."""
        B, T = shape[:2]
        low, high = self.config.mask_rate_min, self.config.mask_rate_max
        rate = low + (high - low) * torch.rand(B, T, 1, 1, device=device, generator=generator)  # (B, T, 1, 1)
        mask = torch.rand(shape, device=device, generator=generator) < rate
        mask[:, 0] = False
        return mask

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None) -> DynamicsOutput:
        """tokens: (B, T, h, w) int64, actions: (B, T-1) int64, mask: (B, T, h, w) bool or None
        to draw one -> logits, masked-token cross-entropy and metrics."""
        self._check_inputs(tokens, actions)
        if mask is None:
            mask = self.draw_mask(tokens.shape, tokens.device)
        logits = self.logits(tokens.masked_fill(mask, self.mask_id), self.incoming_actions(actions))
        # unmasked targets are ignored rather than gathered away, so no step waits on the device
        targets = tokens.masked_fill(~mask, -100).flatten()  # (B*T*h*w,)
        loss = F.cross_entropy(logits.flatten(0, 3).float(), targets, ignore_index=-100)
        with torch.no_grad():
            correct = (logits.argmax(-1) == tokens) & mask
            accuracy = correct.sum() / mask.sum().clamp_min(1)
            mask_rate = mask[:, 1:].float().mean()
        return DynamicsOutput(logits, loss, {"accuracy": accuracy, "mask_rate": mask_rate})

    def new_kv_cache(self, batch_size: int, device: torch.device | str, dtype: torch.dtype) -> KVCache:
        """An empty KV cache for generating `batch_size` videos."""
        positions = self.tokens_per_frame + (self.config.action_conditioning == "token")
        return self.transformer.new_kv_cache(batch_size * positions, device, dtype)

    def _check_inputs(self, tokens: torch.Tensor, actions: torch.Tensor) -> None:
        config = self.config
        grid = (config.token_height, config.token_width)
        if tokens.ndim != 4 or tuple(tokens.shape[2:]) != grid:
            raise ValueError(f"expected tokens (B, T, {grid[0]}, {grid[1]}), got {tuple(tokens.shape)}")
        if not 2 <= tokens.shape[1] <= config.max_frames:
            raise ValueError(f"tokens have {tokens.shape[1]} frames; dynamics needs 2 to {config.max_frames}")
        if tuple(actions.shape) != (tokens.shape[0], tokens.shape[1] - 1):
            raise ValueError(f"expected actions (B, T-1) = {(tokens.shape[0], tokens.shape[1] - 1)}, "
                             f"got {tuple(actions.shape)}")
