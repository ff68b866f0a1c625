"""The quality model: a clip encoder (a few frames -> one unit-norm embedding) and a small head
(embedding -> logit of "good clip"), as in the Genie paper's curation filter.

Two encoders, chosen by `QualityModelConfig.encoder`:
- "cnn": a small ResNet-18-like network (a stride-2 stem, one basic block per stage instead
  of two, narrow channels, 48x80 input) trained end to end with the head. It needs no pretrained weights,
  so the filter works fully offline; the embedded default uses it.
- "open_clip": open-clip's image tower (`open_clip_model`, with `open_clip_weights` a local
  file or a hub tag; "" builds it untrained) kept frozen; only the head is trained.

A clip's embedding is the mean of its frames' features, projected and L2-normalised, so the
cosine similarity of two clips is the dot product of their embeddings.
"""

import dataclasses
import hashlib
import json
import pathlib
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.quality_frames import model_frames, pick_frames  # noqa: F401 (the model's input, torch-free)
from schemas.config import ConfigError, from_dict, to_dict


@dataclasses.dataclass(frozen=True)
class QualityModelConfig:
    """The quality model's architecture (stored beside its weights, so a load rebuilds it)."""

    # "cnn" (small ResNet, trained end to end, offline) or "open_clip" (frozen image tower).
    encoder: Literal["cnn", "open_clip"] = "cnn"
    # Frames of a clip the encoder sees, evenly spaced.
    frames: int = 4
    # CNN input size (frames are resized to it) and channels per stage.
    height: int = 48
    width: int = 80
    channels: tuple[int, ...] = (16, 32, 64, 128)
    # Embedding size (the CNN's projection; open-clip's own width is projected to it too).
    embed_dim: int = 128
    # open-clip: the architecture name and its weights (local path or hub tag; "" = untrained).
    open_clip_model: str = "ViT-B-32"
    open_clip_weights: str = ""
    # Head: 0 = logistic regression on the embedding, > 0 = an MLP with this hidden width.
    head_hidden: int = 0

    def __post_init__(self):
        if self.encoder not in ("cnn", "open_clip"):
            raise ConfigError(f"encoder must be 'cnn' or 'open_clip', got {self.encoder!r}", "encoder")
        if self.frames < 1 or self.height < 16 or self.width < 16 or self.embed_dim < 1 or self.head_hidden < 0:
            raise ConfigError("frames >= 1, height and width >= 16, embed_dim >= 1, head_hidden >= 0 are required")
        if not self.channels:
            raise ConfigError("channels must name at least one stage", "channels")


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convs with batch norm, and a projected shortcut on a stride."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """Frames (N, 3, H, W) in [0, 1] -> features (N, C + C*h*w): pooled, and the final map."""

    def __init__(self, config: QualityModelConfig):
        super().__init__()
        first = config.channels[0]
        # a stride-2 stem: the 160x90 sources are pixel art, and the fine grid costs most of the compute
        self.stem = nn.Sequential(nn.Conv2d(3, first, 3, 2, 1, bias=False), nn.BatchNorm2d(first), nn.ReLU())
        stages, width = [], first
        for channels in config.channels:
            stages.append(BasicBlock(width, channels, stride=2))
            width = channels
        self.stages = nn.Sequential(*stages)
        height, width_px = config.height, config.width
        for _ in range(len(config.channels) + 1):  # each stride-2 conv: ceil(size / 2)
            height, width_px = (height + 1) // 2, (width_px + 1) // 2
        self.width = width + width * height * width_px

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem((frames - 0.5) / 0.25))  # (N, C, h, w), h = H/2^(s+1)
        # the pooled features, and the coarse map itself: the defects to catch sit at known
        # places (a face-cam in a corner, bars along the edges), which pooling alone forgets
        return torch.cat([x.mean(dim=(2, 3)) + x.amax(dim=(2, 3)), x.flatten(1)], dim=1)  # (N, C + C*h*w)


class OpenClipTower(nn.Module):
    """open-clip's image tower, frozen: frames (N, 3, H, W) in [0, 1] -> features (N, width)."""

    def __init__(self, config: QualityModelConfig):
        super().__init__()
        import open_clip

        model = open_clip.create_model(config.open_clip_model, pretrained=config.open_clip_weights or None)
        self.visual = model.visual.eval().requires_grad_(False)
        size = self.visual.image_size
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.register_buffer("mean", torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        self.width = int(self.visual.output_dim)

    def train(self, mode: bool = True) -> "OpenClipTower":
        super().train(mode)
        self.visual.eval()  # frozen: its norms never switch to training statistics
        return self

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(frames, size=self.size, mode="bilinear", align_corners=False)
        return self.visual((x - self.mean) / self.std).float()


class ClipEncoder(nn.Module):
    """Clips (B, K, 3, H, W) in [0, 1] -> unit-norm embeddings (B, embed_dim)."""

    def __init__(self, config: QualityModelConfig):
        super().__init__()
        self.config = config
        self.backbone = SmallResNet(config) if config.encoder == "cnn" else OpenClipTower(config)
        self.project = nn.Linear(self.backbone.width, config.embed_dim)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        B, K = clips.shape[:2]
        if self.config.encoder == "cnn":
            clips = F.interpolate(clips.flatten(0, 1), size=(self.config.height, self.config.width), mode="area")
        else:
            clips = clips.flatten(0, 1)  # the tower resizes to its own input
        features = self.backbone(clips).view(B, K, -1).mean(dim=1)  # (B, C)
        return F.normalize(self.project(features), dim=-1)  # (B, D)


class QualityHead(nn.Module):
    """Embeddings (B, D) -> logits (B,) of "good clip"."""

    def __init__(self, config: QualityModelConfig):
        super().__init__()
        if config.head_hidden:
            self.net = nn.Sequential(nn.Linear(config.embed_dim, config.head_hidden), nn.ReLU(), nn.Linear(config.head_hidden, 1))
        else:
            self.net = nn.Linear(config.embed_dim, 1)
        # Embeddings are unit-norm: a logit scale lets the head reach confident probabilities.
        self.scale = nn.Parameter(torch.tensor(8.0))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(embeddings * self.scale).squeeze(-1)


class QualityModel(nn.Module):
    """Encoder and head: clips (B, K, 3, H, W) in [0, 1] -> (logits (B,), embeddings (B, D))."""

    def __init__(self, config: QualityModelConfig):
        super().__init__()
        self.config = config
        self.encoder = ClipEncoder(config)
        self.head = QualityHead(config)

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.encoder(clips)
        return self.head(embeddings), embeddings

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores: everything but a frozen open-clip tower (that comes from
        its own weights file)."""
        return {name: value for name, value in self.state_dict().items() if not name.startswith("encoder.backbone.visual.")}


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, K, H, W, 3) RGB -> float (B, K, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 1, 4, 2, 3).float().div_(255.0)


MODEL_FILE = "model.safetensors"
INFO_FILE = "config.json"


def save_quality_model(folder: str | pathlib.Path, model: QualityModel, info: dict) -> dict:
    """Write a model folder: its weights (safetensors) and config.json holding the model config,
    `info` (threshold, rule, metrics...) and a model id (a digest of the weights). The info."""
    from safetensors.torch import save_file

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: value.detach().cpu().contiguous() for name, value in model.trainable_state().items()}
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    info = {**info, "model": to_dict(model.config), "model_id": digest.hexdigest()[:12]}
    save_file(state, str(folder / MODEL_FILE))
    (folder / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
    return info


def read_model_config(folder: str | pathlib.Path) -> QualityModelConfig:
    """The model config stored in a model folder."""
    return from_dict(QualityModelConfig, json.loads((pathlib.Path(folder) / INFO_FILE).read_text())["model"])


def load_quality_model(folder: str | pathlib.Path) -> tuple[QualityModel, dict]:
    """The model of a folder `save_quality_model` wrote, and its info. No pickle is read."""
    from safetensors.torch import load_file

    folder = pathlib.Path(folder)
    info = json.loads((folder / INFO_FILE).read_text())
    model = QualityModel(read_model_config(folder))
    missing, unexpected = model.load_state_dict(load_file(str(folder / MODEL_FILE)), strict=False)
    frozen = [name for name in missing if name.startswith("encoder.backbone.visual.")]
    if unexpected or len(frozen) != len(missing):
        raise ValueError(f"{folder / MODEL_FILE} does not fit its config: missing {sorted(set(missing) - set(frozen))[:5]}, "
                         f"unexpected {unexpected[:5]}")  # fmt: skip
    return model, info


QUALITY_MODELS = {
    "tiny": QualityModelConfig(frames=2, height=24, width=40, channels=(8, 16), embed_dim=16),
    "small": QualityModelConfig(),
}
