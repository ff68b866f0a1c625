"""Fréchet Video Distance (Unterthiner et al. 2018): the Fréchet distance between Gaussians
fitted to I3D logits (evals/i3d.py) of real and of generated videos.

Videos are resized to 224x224 (bilinear; 160x90 frames are stretched, as FVD implementations
do for any aspect), scaled to [-1, 1] and fed to an I3D whose weights the user gives; the
reference figures in the literature use DeepMind's Kinetics-400 I3D on 16-frame clips.
FVD from different weights, resolutions, clip lengths or sample counts are not comparable,
so eval.json records them beside the number. With few videos the covariance estimates are
poor (the bias shrinks as 1/N); the paper-style figure needs hundreds of clips.
"""

import numpy as np
import torch
import torch.nn.functional as F

from evals.i3d import InceptionI3d

FVD_RESOLUTION = 224


@torch.no_grad()
def i3d_logits(i3d: InceptionI3d, videos: torch.Tensor, resolution: int = FVD_RESOLUTION,
               batch_size: int = 8) -> np.ndarray:
    """videos (N, T, C, H, W) in [0, 1] -> (N, classes) float64 I3D logits."""
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"expected RGB videos (N, T, 3, H, W), got {tuple(videos.shape)}")
    device = next(i3d.parameters()).device
    outputs = []
    for batch in videos.split(batch_size):
        N, T = batch.shape[:2]
        frames = F.interpolate(batch.flatten(0, 1).to(device).float(), size=(resolution, resolution),
                               mode="bilinear", align_corners=False)  # (N*T, 3, r, r)
        clips = frames.view(N, T, 3, resolution, resolution).permute(0, 2, 1, 3, 4)  # (N, 3, T, r, r)
        outputs.append(i3d(clips.clamp(0, 1) * 2 - 1).double().cpu())
    return torch.cat(outputs).numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of (N, D) feature sets, N >= 2 each.

    Tr((S_a S_b)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2), which has the same spectrum: no complex
    parts to discard, unlike a general matrix square root of S_a S_b.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N >= 2, D) feature sets of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
    return float(max(distance, 0.0))


def fvd(i3d: InceptionI3d, real: torch.Tensor, generated: torch.Tensor, resolution: int = FVD_RESOLUTION) -> float:
    """FVD between real and generated videos, each (N, T, 3, H, W) in [0, 1] with N >= 2."""
    return frechet_distance(i3d_logits(i3d, real, resolution), i3d_logits(i3d, generated, resolution))
