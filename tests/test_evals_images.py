"""Per-frame PSNR and SSIM (evals/images.py) on known answers."""

import math

import pytest
import torch

from evals.images import PSNR_CAP_DB, psnr, ssim


def _video(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, 3, 90, 160, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


def test_identical_videos_give_the_psnr_cap_and_ssim_one():
    """A video against itself scores the PSNR cap (100 dB) and SSIM 1 on every frame."""
    video = _video()
    assert PSNR_CAP_DB == pytest.approx(100.0)
    torch.testing.assert_close(psnr(video, video), torch.full((2, 3), PSNR_CAP_DB))
    torch.testing.assert_close(ssim(video, video), torch.ones(2, 3))


def test_psnr_of_a_known_error():
    """A uniform error of 0.1 is an MSE of 0.01: exactly 20 dB."""
    reference = torch.full((4, 3, 8, 8), 0.5)
    assert psnr(reference + 0.1, reference).tolist() == pytest.approx([20.0] * 4, abs=1e-4)
    assert psnr(reference.clamp(0, 0) - 1, reference).tolist() == pytest.approx([-10 * math.log10(0.25)] * 4, abs=1e-4)


def test_more_noise_scores_lower():
    """Both scores fall as the noise on a frame grows, per frame."""
    video = _video()
    noise = torch.randn(video.shape, generator=torch.Generator().manual_seed(1))
    slight, heavy = (video + 0.02 * noise).clamp(0, 1), (video + 0.2 * noise).clamp(0, 1)
    assert (psnr(slight, video) > psnr(heavy, video) + 10).all()
    assert (ssim(slight, video) > ssim(heavy, video)).all()


def test_shapes_must_match():
    """Frames and references of different shapes are refused with a clear error."""
    with pytest.raises(ValueError, match="one shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="one shape"):
        ssim(torch.rand(3, 8), torch.rand(3, 8))
