"""A playable world: one image in, one new frame out per chosen latent action.

The tokenizer turns the image into a token grid, the dynamics model samples the next grid
for an action (MaskGIT, models/sampler.py) with the frames so far as context, and the
tokenizer's decoder turns it back into pixels. Actions are indices into the latent action
model's codebook (0..num_actions-1); the LAM itself is not needed to play.

A new frame is decoded in its context: the decoder is causal in time and was only ever
trained on frames with the frames before them (up to its max_frames), so the new grid is
decoded as the last frame of the latest max_frames grids, not alone at temporal position 0.
"""

import torch

from models.dynamics import DynamicsModel
from models.sampler import FramePredictor, sample_frame
from models.tokenizer import VideoTokenizer


class PlayableWorld:
    def __init__(self, tokenizer: VideoTokenizer, dynamics: DynamicsModel, steps: int = 25, temperature: float = 2.0):
        if tokenizer.config.grid != (dynamics.config.token_height, dynamics.config.token_width):
            raise ValueError(f"tokenizer grid {tokenizer.config.grid} does not match the dynamics model's "
                             f"{(dynamics.config.token_height, dynamics.config.token_width)}")
        if tokenizer.config.quantizer.num_codes != dynamics.config.num_codes:
            raise ValueError("tokenizer and dynamics model disagree on the number of codes")
        self.tokenizer, self.dynamics = tokenizer.eval(), dynamics.eval()
        self.steps, self.temperature = steps, temperature
        self.predictor: FramePredictor | None = None
        self.tokens: torch.Tensor | None = None  # (B, t, h, w) the latest decoder-window grids, start image first

    @property
    def num_actions(self) -> int:
        return self.dynamics.config.num_actions

    @torch.no_grad()
    def reset(self, frames: torch.Tensor) -> None:
        """frames: (B, C, H, W) in [0, 1], the starting image of each of B worlds."""
        config = self.tokenizer.config
        expected = (config.channels, config.frame_height, config.frame_width)
        if frames.dim() != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(f"frames must be (B, {', '.join(map(str, expected))}), got {tuple(frames.shape)}")
        tokens = self.tokenizer.encode(frames[:, None])  # (B, 1, h, w)
        no_actions = torch.empty(tokens.shape[0], 0, dtype=torch.long, device=tokens.device)
        self.predictor = FramePredictor(self.dynamics, tokens, no_actions, use_cache=True)
        self.tokens = tokens

    @torch.no_grad()
    def step(self, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """actions: (B,) int64 in [0, num_actions) -> the next frames (B, C, H, W) in [0, 1]."""
        if self.predictor is None:
            raise RuntimeError("call reset(frames) before step(actions)")
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise ValueError(f"actions must lie in [0, {self.num_actions}), got {actions.tolist()}")
        tokens = sample_frame(self.predictor, actions, self.steps, self.temperature, generator)  # (B, h, w)
        self.predictor.commit(tokens, actions)
        self.tokens = torch.cat([self.tokens, tokens[:, None]], dim=1)[:, -self.tokenizer.config.max_frames:]
        return self.tokenizer.decode(self.tokens)[:, -1]  # in context (see the module doc)
