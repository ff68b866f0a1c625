import dataclasses
import subprocess

import numpy as np
import pytest
import torch

from models.config import load_model_configs
from models.tokenizer import VideoTokenizer

CONFIG = load_model_configs("tiny").tokenizer


def tokenizer(config=CONFIG) -> VideoTokenizer:
    torch.manual_seed(0)
    return VideoTokenizer(config)


def smb_clip(path, start_s: float, frames: int) -> torch.Tensor:
    """Frames of a real SMB video at the shard format, 160x90 at 10 fps: (T, 3, 90, 160) in [0, 1]."""
    command = ["ffmpeg", "-v", "error", "-ss", str(start_s), "-i", str(path), "-vf", "fps=10,scale=160:90",
               "-frames:v", str(frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    array = np.frombuffer(raw, np.uint8).reshape(frames, 90, 160, 3)
    return torch.from_numpy(array.copy()).permute(0, 3, 1, 2).float() / 255


def test_forward_shapes_and_metrics():
    """A forward pass gives a full-size reconstruction, a 23x40 token grid, a scalar loss and metrics."""
    out = tokenizer()(torch.rand(2, 3, 3, 90, 160))
    assert out.recon.shape == (2, 3, 3, 90, 160)
    assert out.tokens.shape == (2, 3, 23, 40) and out.tokens.dtype == torch.int64
    assert out.loss.shape == ()
    assert {"recon_mse", "psnr", "commitment", "codebook_perplexity", "dead_codes"} <= set(out.metrics)


def test_encode_decode_shapes():
    """encode gives (B, T, 23, 40) tokens in the vocabulary; decode gives frames in [0, 1]."""
    model = tokenizer().eval()
    tokens = model.encode(torch.rand(1, 2, 3, 90, 160))
    assert tokens.shape == (1, 2, 23, 40)
    assert 0 <= tokens.min() and tokens.max() < CONFIG.quantizer.num_codes
    video = model.decode(tokens)
    assert video.shape == (1, 2, 3, 90, 160) and 0 <= video.min() and video.max() <= 1


def test_long_video_is_coded_in_windows():
    """A video longer than max_frames is encoded window by window, each like a video of its own."""
    model = tokenizer(dataclasses.replace(CONFIG, max_frames=2)).eval()
    video = torch.rand(1, 3, 3, 90, 160)
    tokens = model.encode(video)
    assert tokens.shape == (1, 3, 23, 40)
    torch.testing.assert_close(tokens[:, 2:], model.encode(video[:, 2:]))


def test_encoder_is_causal_in_time():
    """Changing frame t+1 leaves the encoder's latents and tokens at frames <= t unchanged."""
    model = tokenizer().eval()
    video = torch.rand(1, 4, 3, 90, 160)
    changed = video.clone()
    changed[:, 2] = torch.rand_like(changed[:, 2])
    with torch.no_grad():
        before, after = model.encode_latents(video), model.encode_latents(changed)
    torch.testing.assert_close(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2], before[:, 2])
    torch.testing.assert_close(model.encode(changed)[:, :2], model.encode(video)[:, :2])


def test_wrong_frame_size_is_a_clear_error():
    """A video that is not 3x90x160 is refused with a message giving the expected shape."""
    with pytest.raises(ValueError, match="expected video"):
        tokenizer()(torch.rand(1, 2, 3, 64, 64))


@pytest.mark.slow
def test_tiny_tokenizer_overfits_real_clips(smb_dir):
    """The tiny tokenizer reaches >= 25 dB PSNR on two real SMB clips within 300 CPU steps."""
    paths = sorted(smb_dir.glob("*.mp4"))
    video = torch.stack([smb_clip(paths[0], 10.0, 2), smb_clip(paths[5], 10.0, 2)])  # (2, 2, 3, 90, 160)
    model = tokenizer()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    for _ in range(300):  # reaches ~25 dB near step 200 and ~29 dB at 300 (seeds 0-2)
        loss = model(video).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    recon = model.decode(model.encode(video))
    psnr = -10 * torch.log10(torch.mean((recon - video) ** 2))
    assert psnr >= 25.0
