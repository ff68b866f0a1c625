import dataclasses

import torch

from models import motion
from models.config import load_model_configs
from models.lam import LatentActionModel
from models.patches import to_patches


def textured(generator: torch.Generator, height: int = 48, width: int = 64) -> torch.Tensor:
    """(1, 3, height, width) random pixels in [-1, 1]."""
    return torch.rand(1, 3, height, width, generator=generator) * 2 - 1


def one_hot(index: int, shifts: int, grid: tuple[int, int]) -> torch.Tensor:
    """(1, h, w, shifts) kernels that all pick the shift at index."""
    return torch.nn.functional.one_hot(torch.tensor(index), shifts).float().expand(1, *grid, shifts)


def test_the_right_kernel_reproduces_a_frame_moved_6_pixels_right():
    """All weight on shift +6 (stride 2: index (12 + 6) / 2) and on vertical 0 moves the frame
    exactly 6 px right; the columns it uncovers repeat the edge."""
    frame = textured(torch.Generator().manual_seed(0))
    horizontal, vertical = one_hot(9, 13, (3, 4)), one_hot(6, 13, (3, 4))
    moved = motion.apply_shift_kernels(frame, horizontal, vertical, patch_size=16, stride=2)
    torch.testing.assert_close(moved[..., 6:], frame[..., :-6], rtol=0, atol=0)
    torch.testing.assert_close(moved[..., :6], frame[..., :1].expand(-1, -1, -1, 6), rtol=0, atol=0)


def test_kernels_move_each_patch_by_its_own_shift():
    """Vertical kernels act per patch: the left patch column moves 4 px down, the right one stays."""
    frame = textured(torch.Generator().manual_seed(1), height=32, width=32)
    horizontal = one_hot(4, 9, (2, 2))  # max_shift 4, stride 1: index 4 is no shift
    vertical = torch.stack([one_hot(8, 9, (2, 1)), one_hot(4, 9, (2, 1))], dim=2).squeeze(3)  # (1, 2, 2, 9)
    moved = motion.apply_shift_kernels(frame, horizontal, vertical, patch_size=16)
    torch.testing.assert_close(moved[..., 4:, :16], frame[..., :-4, :16], rtol=0, atol=0)
    torch.testing.assert_close(moved[..., 16:], frame[..., 16:], rtol=0, atol=0)


def test_cost_volume_peaks_at_the_true_shift_and_is_flat_on_a_flat_frame():
    """Textured frames moved 6 px right give every patch its horizontal peak at +6; a frame of
    one colour matches every shift equally."""
    frame = textured(torch.Generator().manual_seed(2))
    moved = torch.cat([frame[..., :1].expand(-1, -1, -1, 6), frame[..., :-6]], dim=-1)
    costs = motion.cost_volume(frame, moved, max_shift=12, patch_size=16, temperature=0.01)  # (1, 12, 50)
    assert costs.shape == (1, 12, 50)
    assert (costs[..., :25].argmax(-1) == 12 + 6).all()
    flat = torch.full((1, 3, 48, 64), 0.3)
    torch.testing.assert_close(motion.cost_volume(flat, flat, 12, 16, 0.01), torch.full((1, 12, 50), 1 / 25))


def test_lam_with_motion_input_and_shift_decoder_starts_near_copying():
    """The motion options keep the LAM's shapes; the untrained shift decoder puts 90% on "no
    shift", so it predicts frame t+1 about as well as copying frame t."""
    config = load_model_configs("tiny").lam
    config = dataclasses.replace(config, motion_input=True, decoder_output="shift")
    torch.manual_seed(0)
    model = LatentActionModel(config).eval()
    video = torch.rand(2, 3, 1, 1, 1).expand(2, 3, 3, 90, 160).contiguous()  # flat frames
    with torch.no_grad():
        out = model(video)
    assert out.recon.shape == (2, 2, 3, 90, 160) and out.actions.shape == (2, 2)
    torch.testing.assert_close(out.recon, video[:, :-1])  # a flat frame moved is the same frame


def test_band_cost_volume_gives_each_row_band_its_own_scroll():
    """The top band (16 rows) moved 4 px right peaks at +4, the bottom band moved 6 px left at -6."""
    frame = textured(torch.Generator().manual_seed(3), height=32)
    top = torch.cat([frame[..., :16, :1].expand(-1, -1, -1, 4), frame[..., :16, :-4]], dim=-1)
    bottom = torch.cat([frame[..., 16:, 6:], frame[..., 16:, -1:].expand(-1, -1, -1, 6)], dim=-1)
    costs = motion.band_cost_volume(frame, torch.cat([top, bottom], dim=-2), max_shift=12, patch_size=16,
                                    temperature=0.01)
    assert costs.shape == (1, 2, 25)
    assert costs.argmax(-1).tolist() == [[12 + 4, 12 - 6]]


def test_action_shift_moves_the_frame_by_the_action_alone():
    """With action_shift, an action that puts all the kernel's weight on +6 (and a decoder that
    predicts no change) predicts frame t moved 6 px right, whatever frame t shows; the band
    motion input keeps the shapes."""
    config = dataclasses.replace(load_model_configs("tiny").lam, action_shift="band", band_motion_input=True)
    torch.manual_seed(0)
    model = LatentActionModel(config).eval()
    video = torch.rand(1, 2, 3, 90, 160)
    action = torch.zeros(1, 1, config.quantizer.code_dim)
    with torch.no_grad():
        model.action_shift.bias.view(-1, config.kernel_shifts).fill_(-1e4)[:, (12 + 6) // 2] = 0  # stride 2
        predicted = model._predict(video, to_patches(video * 2 - 1, config.patch_size), action)
        out = model(video)
    torch.testing.assert_close(predicted[..., 6:], video[:, :1, ..., :-6])
    assert out.recon.shape == (1, 1, 3, 90, 160) and out.actions.shape == (1, 1)


def test_patch_action_shift_moves_each_patch_by_its_own_kernel():
    """With action_shift "patch", kernels that leave every patch in place but move the top-left
    one 4 px down change only that patch."""
    config = dataclasses.replace(load_model_configs("tiny").lam, action_shift="patch")
    torch.manual_seed(0)
    model = LatentActionModel(config).eval()
    video = torch.rand(1, 2, 3, 90, 160)
    action = torch.zeros(1, 1, config.quantizer.code_dim)
    with torch.no_grad():
        kernels = model.action_shift.bias.view(*config.grid, 2, config.kernel_shifts).fill_(-1e4)
        kernels[..., 12 // 2] = 0  # no shift (stride 2)
        kernels[0, 0, 1, 12 // 2] = -1e4
        kernels[0, 0, 1, (12 + 4) // 2] = 0  # the top-left patch: 4 px down
        predicted = model._predict(video, to_patches(video * 2 - 1, config.patch_size), action)
    torch.testing.assert_close(predicted[..., 4:16, :16], video[:, :1, ..., :12, :16])
    torch.testing.assert_close(predicted[..., 16:], video[:, :1, ..., 16:])
    torch.testing.assert_close(predicted[..., 16:, :], video[:, :1, ..., 16:, :])
