"""The three trainable Genie components, as the training loop sees them.

Each says which shards it reads (clips or tokens), how to build its model from its config,
how a batch becomes the model's inputs, how many token positions a batch holds (for
tokens/s and MFU) and which images to save as samples. Models are imported on first use,
so the data and checkpoint code imports without them.
"""

import pathlib

import torch
from torch import nn

from schemas.config import from_dict
from train.checkpoint import CheckpointError, load_meta, load_model_weights
from train.windows import ClipWindows, SampleFormat, TokenWindows


def video_from_frames(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, T, H, W, C) -> float (B, T, C, H, W) in [0, 1] on the device (converted there)."""
    return frames.to(device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255)


class TokenizerComponent:
    name = "tokenizer"

    def sample_format(self) -> SampleFormat:
        return ClipWindows()

    def config_class(self) -> type:
        from models.config import TokenizerConfig

        return TokenizerConfig

    def build(self, config) -> nn.Module:
        from models.tokenizer import VideoTokenizer

        return VideoTokenizer(config)

    def inputs(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, ...]:
        return (video_from_frames(batch["frames"], device),)

    def tokens(self, config, inputs: tuple[torch.Tensor, ...]) -> int:
        B, T = inputs[0].shape[:2]
        return B * T * config.grid[0] * config.grid[1]

    def batch_shape(self, config, batch_size: int, frames: int) -> tuple[int, ...]:
        """The shape of a micro-batch's first input: video (B, T, C, H, W)."""
        return batch_size, frames, config.channels, config.frame_height, config.frame_width

    def sample_rows(self, inputs: tuple[torch.Tensor, ...], output) -> list[torch.Tensor]:
        return [inputs[0][0], output.recon[0]]


class LAMComponent(TokenizerComponent):
    name = "lam"

    def config_class(self) -> type:
        from models.config import LAMConfig

        return LAMConfig

    def build(self, config) -> nn.Module:
        from models.lam import LatentActionModel

        return LatentActionModel(config)

    def sample_rows(self, inputs: tuple[torch.Tensor, ...], output) -> list[torch.Tensor]:
        return [inputs[0][0, 1:], output.recon[0]]  # frames 1..T-1 over their predictions


class DynamicsComponent:
    name = "dynamics"

    def sample_format(self) -> SampleFormat:
        return TokenWindows()

    def config_class(self) -> type:
        from models.config import DynamicsConfig

        return DynamicsConfig

    def build(self, config) -> nn.Module:
        from models.dynamics import DynamicsModel

        return DynamicsModel(config)

    def inputs(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, ...]:
        return batch["tokens"].to(device, non_blocking=True), batch["actions"].to(device, non_blocking=True)

    def tokens(self, config, inputs: tuple[torch.Tensor, ...]) -> int:
        return inputs[0].numel()

    def batch_shape(self, config, batch_size: int, frames: int) -> tuple[int, ...]:
        """The shape of a micro-batch's first input: tokens (B, T, h, w)."""
        return batch_size, frames, config.token_height, config.token_width

    def sample_rows(self, inputs: tuple[torch.Tensor, ...], output) -> None:
        return None  # token grids are images only through the tokenizer's decoder


COMPONENTS = {c.name: c for c in (TokenizerComponent(), LAMComponent(), DynamicsComponent())}


def component(name: str):
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r} (one of {', '.join(COMPONENTS)})")
    return COMPONENTS[name]


def load_trained(checkpoint_dir: str | pathlib.Path, name: str) -> nn.Module:
    """The trained model of a checkpoint (a folder or URI), rebuilt from the config stored in it,
    its shards consolidated in this process, in eval mode on CPU."""
    meta = load_meta(checkpoint_dir)
    if meta["component"] != name:
        raise CheckpointError(f"{checkpoint_dir} holds a {meta['component']} checkpoint, not a {name}")
    part = component(name)
    model = part.build(from_dict(part.config_class(), meta["model_config"]))
    load_model_weights(checkpoint_dir, model)
    return model.eval()
