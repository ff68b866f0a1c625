"""Per-frame image quality: PSNR and SSIM of frames against reference frames.

Frames are float tensors in [0, 1] of shape (..., C, H, W); every leading dimension is kept,
so a (B, T, C, H, W) video gives a (B, T) table of per-frame scores that callers average
as they need (over frames, clips, or at one time step). PSNR is capped at PSNR_CAP_DB: the
mean squared error is clamped at 1e-10, as the training metrics do, so identical frames give
the cap rather than infinity. SSIM is torchmetrics' Gaussian-window SSIM (Wang et al. 2004:
11x11 window, sigma 1.5, K1 0.01, K2 0.03, data range 1), averaged over the frame.
"""

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

MIN_MSE = 1e-10
PSNR_CAP_DB = -10 * float(torch.log10(torch.tensor(MIN_MSE)))  # 100 dB


def _check_pair(frames: torch.Tensor, reference: torch.Tensor) -> None:
    if frames.shape != reference.shape or frames.ndim < 3:
        raise ValueError(f"frames and reference must be (..., C, H, W) of one shape, got "
                         f"{tuple(frames.shape)} and {tuple(reference.shape)}")


def psnr(frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) in [0, 1] twice -> (...) PSNR in dB of each frame, at most PSNR_CAP_DB."""
    _check_pair(frames, reference)
    mse = (frames.float().clamp(0, 1) - reference.float()).pow(2).mean(dim=(-3, -2, -1))
    return -10 * torch.log10(mse.clamp_min(MIN_MSE))


def ssim(frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) in [0, 1] twice -> (...) SSIM of each frame (1 for identical frames)."""
    _check_pair(frames, reference)
    leading, image = frames.shape[:-3], frames.shape[-3:]
    scores = structural_similarity_index_measure(
        frames.float().clamp(0, 1).reshape(-1, *image), reference.float().reshape(-1, *image),
        data_range=1.0, reduction="none")  # (N,)
    return scores.view(leading)
