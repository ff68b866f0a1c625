"""Motion by candidate shifts, for the latent action model's optional motion input and prior.

In a side-scroller most of what an action changes is a translation: walking scrolls the
level a few pixels sideways, jumping moves the player sprite up or down. A small transformer
on 16x16 patches sees a 6-px shift poorly, so (models/lam.py, LAMConfig):
- `cost_volume` shows the encoder, per patch, how well a frame matches its predecessor
  moved by each candidate horizontal and each candidate vertical offset (FlowNet's
  correlation, separable and on squared error);
- `apply_shift_kernels` lets the decoder predict a frame as its predecessor moved per patch
  by a softmax mixture of candidate shifts, horizontal then vertical (CDNA, Finn et al.
  2016), so a code that says "the level scrolls 6 px" buys the whole scroll at once.
Shifts replicate the edge pixels; "moved by s" means out[x] = in[x - s].
"""

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def cost_volume(previous: torch.Tensor, frames: torch.Tensor, max_shift: int, patch_size: int,
                temperature: float) -> torch.Tensor:
    """previous, frames: (N, C, H, W) -> (N, h*w, 2K) per patch: softmax over the K = 2*max_shift+1
    horizontal shifts, then over the K vertical ones, of -(mean squared error) / temperature
    between the frame and its predecessor so moved. A flat patch matches every shift and gets
    a uniform row; a textured one that moved by s peaks at s. Data only: no gradient."""
    H, W = frames.shape[-2:]
    costs = []
    for dim in (-1, -2):
        size = frames.shape[dim]
        pad = (max_shift, max_shift, 0, 0) if dim == -1 else (0, 0, max_shift, max_shift)
        padded = F.pad(previous, pad, mode="replicate")
        error = torch.stack([(padded.narrow(dim, max_shift - s, size) - frames).pow_(2).mean(1)
                             for s in range(-max_shift, max_shift + 1)], dim=1)  # (N, K, H, W)
        error = F.pad(error, (0, _pad(W, patch_size), 0, _pad(H, patch_size)), mode="replicate")
        pooled = F.avg_pool2d(error, patch_size)  # (N, K, h, w)
        costs.append(torch.softmax(-pooled / temperature, dim=1).flatten(2).transpose(1, 2))  # (N, h*w, K)
    return torch.cat(costs, dim=-1)


@torch.no_grad()
def band_cost_volume(previous: torch.Tensor, frames: torch.Tensor, max_shift: int, patch_size: int,
                     temperature: float) -> torch.Tensor:
    """previous, frames: (N, C, H, W) -> (N, h, K) per band of patch_size rows: softmax over the
    K = 2*max_shift+1 horizontal shifts of -(mean squared error) / temperature between the band
    and its predecessor so moved. The whole width votes, so a scroll of the level shows where a
    single patch (sky, a flat wall) would match every shift. Data only: no gradient."""
    H, W = frames.shape[-2:]
    padded = F.pad(previous, (max_shift, max_shift, 0, 0), mode="replicate")
    error = torch.stack([(padded.narrow(-1, max_shift - s, W) - frames).pow_(2).mean((1, 3))
                         for s in range(-max_shift, max_shift + 1)], dim=1)  # (N, K, H)
    error = F.pad(error, (0, _pad(H, patch_size)), mode="replicate")
    pooled = F.avg_pool1d(error, patch_size)  # (N, K, h)
    return torch.softmax(-pooled / temperature, dim=1).transpose(1, 2)


def apply_shift_kernels(frames: torch.Tensor, horizontal: torch.Tensor, vertical: torch.Tensor | None,
                        patch_size: int, stride: int = 1) -> torch.Tensor:
    """frames: (N, C, H, W); horizontal, vertical: (N, h, w, K) weights per patch over the shifts
    -max_shift..max_shift in steps of stride (K = 2*max_shift/stride + 1) -> (N, C, H, W): each
    pixel moved by its patch's horizontal mixture, then by its vertical one (None: not moved
    vertically)."""
    max_shift = (horizontal.shape[-1] - 1) // 2 * stride
    for weights, dim in ((horizontal, -1), (vertical, -2)):
        if weights is None:
            continue
        H, W = frames.shape[-2:]
        size = frames.shape[dim]
        per_pixel = weights.permute(0, 3, 1, 2).repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
        per_pixel = per_pixel[..., :H, :W]  # (N, K, H, W)
        pad = (max_shift, max_shift, 0, 0) if dim == -1 else (0, 0, max_shift, max_shift)
        padded = F.pad(frames, pad, mode="replicate")
        moved = 0  # a sum over the shifts, not a stack of K moved frames: 3x less CPU
        for k, s in enumerate(range(-max_shift, max_shift + 1, stride)):
            moved = moved + padded.narrow(dim, max_shift - s, size) * per_pixel[:, k:k + 1]
        frames = moved
    return frames


def _pad(size: int, patch_size: int) -> int:
    return math.ceil(size / patch_size) * patch_size - size
