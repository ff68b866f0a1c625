"""What the trained models make of real video windows: reconstructions, next-frame
predictions and action-conditioned rollouts, as pixel frames to score (plain functions).

Every generated grid is decoded in its context (the decoder is causal in time and trained
on windows that start at a real frame), and every rollout starts from the tokenizer's code
of a real first frame, as `genie play` does. Inputs are (B, T, C, H, W) float videos in
[0, 1] whose T fits the models' max_frames.
"""

import torch

from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.sampler import FramePredictor, generate, sample_frame
from models.tokenizer import VideoTokenizer


@torch.no_grad()
def reconstruct(tokenizer: VideoTokenizer, video: torch.Tensor) -> torch.Tensor:
    """The tokenizer's reconstruction (B, T, C, H, W) of a video: encode, then decode."""
    return tokenizer.decode(tokenizer.encode(video))


@torch.no_grad()
def infer_actions(lam: LatentActionModel, video: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, T-1) the LAM's latent action for each transition."""
    return lam.infer_actions(video)


def random_actions(shape: tuple[int, int], num_actions: int, generator: torch.Generator) -> torch.Tensor:
    """(B, n) actions drawn uniformly from the codebook: the paper's 'random actions' baseline."""
    return torch.randint(0, num_actions, shape, generator=generator)


@torch.no_grad()
def rollout(tokenizer: VideoTokenizer, dynamics: DynamicsModel, first_frame: torch.Tensor, actions: torch.Tensor,
            steps: int, temperature: float, seed: int) -> torch.Tensor:
    """Play `actions` (B, n) from real first frames (B, C, H, W) -> generated frames (B, n, C, H, W).

    The MaskGIT draws come from `seed` alone, so two rollouts with the same seed differ only
    through their actions (common random numbers: a model that ignores actions generates
    the same frames for any actions).
    """
    tokens = tokenizer.encode(first_frame[:, None])  # (B, 1, h, w)
    generator = torch.Generator(device=first_frame.device).manual_seed(seed)
    generated = generate(dynamics, tokens, actions.to(first_frame.device), steps, temperature, generator)  # (B, n, h, w)
    return tokenizer.decode(torch.cat([tokens, generated], dim=1))[:, 1:]


@torch.no_grad()
def next_frames(tokenizer: VideoTokenizer, dynamics: DynamicsModel, video: torch.Tensor, actions: torch.Tensor,
                steps: int, temperature: float, seed: int) -> torch.Tensor:
    """Teacher-forced next-frame predictions: frame k sampled from the real frames < k and
    actions (B, T-1) -> (B, T-1, C, H, W) predictions of frames 1..T-1, each decoded after the
    real grids before it."""
    tokens = tokenizer.encode(video)  # (B, T, h, w)
    B, T = tokens.shape[:2]
    generator = torch.Generator(device=video.device).manual_seed(seed)
    predictor = FramePredictor(dynamics, tokens[:, :1], actions[:, :0], use_cache=True)
    frames = []
    for k in range(1, T):
        predicted = sample_frame(predictor, actions[:, k - 1], steps, temperature, generator)  # (B, h, w)
        context = torch.cat([tokens[:, max(0, k + 1 - tokenizer.config.max_frames):k], predicted[:, None]], dim=1)
        frames.append(tokenizer.decode(context)[:, -1])
        predictor.commit(tokens[:, k], actions[:, k - 1])  # the real frame continues the context
    return torch.stack(frames, dim=1)
