"""Video <-> non-overlapping square patches, padding frames up to a multiple of the patch.

Frames of 90x160 do not divide by the patch sizes (4, 16): the bottom is padded with zeros
(90 -> 92 for patch 4, 96 for patch 16) and outputs are cropped back to the frame size.
"""

import math

import torch
import torch.nn.functional as F
from einops import rearrange


def to_patches(video: torch.Tensor, patch_size: int) -> torch.Tensor:
    """video: (B, T, C, H, W) -> (B, T, h*w, patch_size*patch_size*C), padded at bottom/right."""
    H, W = video.shape[-2:]
    pad_height = math.ceil(H / patch_size) * patch_size - H
    pad_width = math.ceil(W / patch_size) * patch_size - W
    video = F.pad(video, (0, pad_width, 0, pad_height))
    return rearrange(video, "b t c (h p) (w q) -> b t (h w) (p q c)", p=patch_size, q=patch_size)


def from_patches(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """patches: (B, T, h*w, patch_size*patch_size*C) -> (B, T, C, height, width), cropped."""
    grid_width = math.ceil(width / patch_size)
    video = rearrange(patches, "b t (h w) (p q c) -> b t c (h p) (w q)", w=grid_width, p=patch_size, q=patch_size)
    return video[..., :height, :width]
