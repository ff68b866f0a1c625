"""Training-time augmentation of the quality model's clips (train/quality.py): colour and scale
on every clip, and synthetic defects and nuisances that the labelled footage shows too rarely.

- `augment`: colour (brightness, contrast, per-channel gain, channel order, hue rotation,
  gamma, black point) and scale (zoom, horizontal stretch) for clips whose label allows it;
- `letterbox_some`: good clips shrunk between black bars, labelled bad (the rule is general,
  the labelled letterboxed uploads few);
- `hud_some`: a game HUD (a line or two of score, lives and time) drawn over the top of clips
  of every label. Real platformers draw one and the offline world does not, so without it a
  model meets white text on a black band first in SMB's castle and underground levels, and
  calls them title cards (benchmarks/RESULTS.md, "Learned quality filter"). Drawn on clips of
  every label, the HUD tells nothing about the label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from train.quality import QualityTrainConfig


def augment(clips: torch.Tensor, geometric: torch.Tensor, size: tuple[int, int], config: QualityTrainConfig,
            generator: torch.Generator) -> torch.Tensor:
    """clips (B, K, 3, H, W) in [0, 1] -> augmented (B, K, 3, h, w); `geometric` (B,) bool says
    which clips may be zoomed and stretched. One draw per clip, shared by its frames."""
    B, K = clips.shape[:2]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(B, generator=generator)

    zoom = torch.where(geometric, uniform(1.0, config.max_zoom), torch.ones(B))
    stretch = torch.where(geometric & (torch.rand(B, generator=generator) < 0.5), uniform(1.0, config.max_stretch), torch.ones(B))
    scale_x, scale_y = 1 / (zoom * stretch), 1 / zoom  # the part of the frame that stays in view
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale_x, scale_y
    theta[:, 0, 2] = (1 - scale_x) * (2 * torch.rand(B, generator=generator) - 1)  # anywhere the view fits
    theta[:, 1, 2] = (1 - scale_y) * (2 * torch.rand(B, generator=generator) - 1)
    frames = clips.flatten(0, 1)  # (B*K, 3, H, W)
    grid = F.affine_grid(theta.repeat_interleave(K, 0), [B * K, 3, *size], align_corners=False)
    frames = F.grid_sample(frames, grid, mode="bilinear", align_corners=False).view(B, K, 3, *size)
    # colour: brightness, contrast about the clip's mean, per-channel gain, and now and then a channel order
    brightness = uniform(0.6, 1.4).view(B, 1, 1, 1, 1)
    contrast = uniform(0.7, 1.3).view(B, 1, 1, 1, 1)
    gain = (0.8 + 0.4 * torch.rand(B, 1, 3, 1, 1, generator=generator))
    mean = frames.mean(dim=(1, 2, 3, 4), keepdim=True)
    frames = ((frames - mean) * contrast + mean) * brightness * gain
    order = torch.stack([torch.randperm(3, generator=generator) for _ in range(B)])
    shuffle = torch.rand(B, generator=generator) < 0.3
    order[~shuffle] = torch.arange(3)
    frames = torch.gather(frames, 2, order.view(B, 1, 3, 1, 1).expand_as(frames))
    if config.hue_rotation > 0:
        angle = torch.where(torch.rand(B, generator=generator) < config.hue_rotation, uniform(0.0, 2 * np.pi), torch.zeros(B))
        frames = torch.einsum("bij,bkjhw->bkihw", hue_matrices(angle), frames)
    frames = frames.clamp(0, 1)
    # levels: a gamma, and for half the clips a raised black point, which turns dim skies black
    # (as in night, underground and castle levels) while tiles and sprites stay lit
    gamma = uniform(0.7, 1.6).view(B, 1, 1, 1, 1)
    black = torch.where(torch.rand(B, generator=generator) < 0.5, uniform(0.0, 0.15), torch.zeros(B)).view(B, 1, 1, 1, 1)
    return ((frames ** gamma - black) / (1 - black)).clamp(0, 1)


def hue_matrices(angle: torch.Tensor) -> torch.Tensor:
    """(B,) radians -> (B, 3, 3): rotations of RGB about the grey axis (Rodrigues' formula),
    which keep grey grey and the mean level unchanged."""
    axis = torch.full((3,), 3 ** -0.5)
    cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]]) * 3 ** -0.5
    cos, sin = angle.cos().view(-1, 1, 1), angle.sin().view(-1, 1, 1)
    return cos * torch.eye(3) + (1 - cos) * torch.outer(axis, axis) + sin * cross


def letterbox_some(clips: torch.Tensor, targets: torch.Tensor, geometric: torch.Tensor, fraction: float,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn about `fraction` of the good clips (B, K, 3, H, W) into letterboxed ones, labelled
    bad: the picture shrunk between black bars, top and bottom or at the sides, as uploads show
    it. The labelled footage holds few letterboxed uploads of each shape; the rule is general."""
    chosen = (targets == 1) & (torch.rand(len(targets), generator=generator) < fraction)
    if not chosen.any():
        return clips, targets, geometric
    clips, targets, geometric = clips.clone(), targets.clone(), geometric.clone()
    H, W = clips.shape[-2:]
    for index in chosen.nonzero().flatten().tolist():
        share = 0.6 + 0.3 * float(torch.rand(1, generator=generator))
        sides = bool(torch.rand(1, generator=generator) < 0.5)
        height, width = (H, round(W * share)) if sides else (round(H * share), W)
        inner = F.interpolate(clips[index], size=(height, width), mode="area")  # (K, 3, h, w)
        clips[index] = 0.0
        top, left = (H - height) // 2, (W - width) // 2
        clips[index, :, :, top:top + height, left:left + width] = inner
        targets[index], geometric[index] = 0.0, False
    return clips, targets, geometric




# HUD layouts of real platformers: (labels line or None, values line); {n} is a random number
# of the width given, {w} a world number. Two-line layouts put names over their values.
HUD_LAYOUTS = (
    ("MARIO        WORLD  TIME", "{6}  x{2}   {w}   {3}"),
    (None, "SCORE {6}   TIME {3}"),
    (None, "1UP {5}  HI {5}"),
    (None, "LIVES {1}  COINS {2}  STAGE {w}"),
    ("SCORE   RINGS   TIME", "{5}    {3}    {1}:{2}"),
    (None, "x{2}  {6}  T{3}"),
)


def hud_some(clips: torch.Tensor, scores: np.ndarray, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Draw a HUD over the top of about `fraction` of the clips (B, K, 3, H, W) in [0, 1], of
    any label; every frame of a clip gets the same one, as a HUD stays put. In a letterboxed
    clip (score 3) it sits inside the picture, below the bar, where the game drew it."""
    chosen = (torch.rand(len(clips), generator=generator) < fraction).nonzero().flatten().tolist()
    if not chosen:
        return clips
    clips = clips.clone()
    H, W = clips.shape[-2:]
    for index in chosen:
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        top, left = _picture_corner(clips[index]) if scores[index] == 3 else (0, 0)
        mask = _hud_mask(rng, H, W)
        mask = np.roll(np.roll(mask, top, axis=0), left, axis=1)
        mask[:top], mask[:, :left] = 0, 0
        colour = torch.tensor(rng.choice([(1.0, 1.0, 1.0), (1.0, 0.9, 0.5), (0.6, 1.0, 1.0), (1.0, 0.5, 0.4)]))
        alpha = torch.from_numpy(mask).float()  # (H, W)
        clips[index] = clips[index] * (1 - alpha) + colour.view(3, 1, 1) * alpha
    return clips


def _hud_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width) float32 in [0, 1]: one HUD's text, anti-aliased, near the top edge."""
    labels, values = HUD_LAYOUTS[rng.integers(len(HUD_LAYOUTS))]

    def fill(match: str) -> str:
        if match == "w":
            return f"{rng.integers(1, 9)}-{rng.integers(1, 5)}"
        return f"{rng.integers(10 ** int(match)):0{match}d}"

    lines = [line for line in (labels, values) if line]
    lines = [_substitute(line, fill) for line in lines]
    scale = float(rng.uniform(0.5, 0.8))
    line_height = int(round(14 * scale)) + 1
    canvas = np.zeros((height, width), np.uint8)
    y, x = int(rng.integers(2, 6)) + line_height - 2, int(rng.integers(2, max(3, width // 8)))
    for line in lines:
        cv2.putText(canvas, line, (x, y), cv2.FONT_HERSHEY_PLAIN, scale, 255, 1, cv2.LINE_AA)
        y += line_height
    return canvas.astype(np.float32) / 255.0


def _substitute(template: str, fill) -> str:
    out, rest = [], template
    while "{" in rest:
        before, _, after = rest.partition("{")
        key, _, rest = after.partition("}")
        out += [before, fill(key)]
    return "".join(out) + rest


def _picture_corner(clip: torch.Tensor, level: float = 0.08) -> tuple[int, int]:
    """clip (K, 3, H, W): the first row and column, from the top and the left, that hold more
    than black (where a letterbox's bar ends); 0 where the picture starts at the edge."""
    lit = clip.amax(dim=(0, 1)) > level  # (H, W)
    rows, columns = lit.any(dim=1).nonzero(), lit.any(dim=0).nonzero()
    return (int(rows[0]) if len(rows) else 0), (int(columns[0]) if len(columns) else 0)
