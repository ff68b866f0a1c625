"""Video <-> non-overlapping square patches, padding frames up to a multiple of the patch.

Frames of 90x160 do not divide by the patch sizes (4, 16): the bottom is padded with zeros
(90 -> 92 for patch 4, 96 for patch 16) and outputs are cropped back to the frame size.
"""

import math

import torch
import torch.nn.functional as F


def to_patches(video: torch.Tensor, patch_size: int) -> torch.Tensor:
    """video: (B, T, C, H, W) -> (B, T, h*w, patch_size*patch_size*C), padded at bottom/right."""
    H, W = video.shape[-2:]
    pad_height = math.ceil(H / patch_size) * patch_size - H
    pad_width = math.ceil(W / patch_size) * patch_size - W
    video = F.pad(video, (0, pad_width, 0, pad_height))
    B, T, C, H, W = video.shape
    h, w, p = H // patch_size, W // patch_size, patch_size
    video = video.reshape(B, T, C, h, p, w, p).permute(0, 1, 3, 5, 4, 6, 2)  # b t h w p q c
    return video.reshape(B, T, h * w, p * p * C)


def from_patches(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """patches: (B, T, h*w, patch_size*patch_size*C) -> (B, T, C, height, width), cropped."""
    B, T, num_patches, dim = patches.shape
    p = patch_size
    w = math.ceil(width / p)
    h = num_patches // w
    C = dim // (p * p)
    video = patches.reshape(B, T, h, w, p, p, C).permute(0, 1, 6, 2, 4, 3, 5)  # b t c h p w q
    return video.reshape(B, T, C, h * p, w * p)[..., :height, :width]
