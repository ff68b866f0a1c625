import dataclasses

import pytest
import torch

from models.config import load_model_configs
from models.lam import LatentActionModel
from models.patches import to_patches

CONFIG = load_model_configs("tiny").lam


def lam(config=CONFIG) -> LatentActionModel:
    torch.manual_seed(0)
    return LatentActionModel(config)


def sliding_walls(clips: int, frames: int, generator: torch.Generator, height: int = 16, width: int = 160,
                  step: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of a white wall left of an edge that slides left (0) or right (1), at random each frame.

    Returns video (clips, frames, 3, height, width) and directions (clips, frames - 1).
    """
    directions = torch.randint(0, 2, (clips, frames - 1), generator=generator)
    start = torch.randint(width // 5, 4 * width // 5, (clips, 1), generator=generator)
    moves = ((directions * 2 - 1) * step).cumsum(1)  # (clips, frames - 1)
    edges = start + torch.cat([torch.zeros(clips, 1, dtype=torch.long), moves], dim=1)  # (clips, frames)
    video = (torch.arange(width) < edges[..., None]).float()  # (clips, frames, width)
    return video[:, :, None, None, :].expand(clips, frames, 3, height, width).contiguous(), directions


def test_forward_shapes_and_metrics():
    """T frames give T-1 predicted frames at full size, T-1 actions in the codebook, a loss and metrics."""
    out = lam()(torch.rand(2, 4, 3, 90, 160))
    assert out.recon.shape == (2, 3, 3, 90, 160)
    assert out.actions.shape == (2, 3) and out.actions.dtype == torch.int64
    assert 0 <= out.actions.min() and out.actions.max() < CONFIG.quantizer.num_codes
    assert out.loss.shape == () and {"recon_mse", "psnr", "codebook_perplexity", "dead_codes"} <= set(out.metrics)


def test_action_depends_only_on_frames_up_to_the_next():
    """Changing frame t+2 leaves the latent actions a_0..a_t unchanged and changes a_{t+1}."""
    model = lam().eval()
    video = torch.rand(1, 4, 3, 90, 160)
    changed = video.clone()
    changed[:, 2] = torch.rand_like(changed[:, 2])
    with torch.no_grad():
        before = model.encode_actions(video)
        after = model.encode_actions(changed)
    torch.testing.assert_close(after[:, 0], before[:, 0])
    assert not torch.allclose(after[:, 1], before[:, 1])


def test_eval_forward_is_deterministic():
    """Outside training every action is quantised, so two evaluation passes agree exactly."""
    model = lam().eval()
    video = torch.rand(2, 3, 3, 90, 160)
    with torch.no_grad():
        torch.testing.assert_close(model(video).recon, model(video).recon)


def test_single_frame_is_a_clear_error():
    """A one-frame video has no transition and is refused."""
    with pytest.raises(ValueError, match="frames"):
        lam().infer_actions(torch.rand(1, 1, 3, 90, 160))


def test_tiny_lam_learns_codes_that_tell_two_motions_apart():
    """Trained on walls sliding left or right, the tiny LAM gives the two motions disjoint codes."""
    # a 16-row strip: the wall is the same in every row, and 90 rows would cost 6x per step
    model = lam(dataclasses.replace(CONFIG, frame_height=16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):  # codes separate by step ~150 (seeds 0 and 1); ~7 s on 2 idle cores
        video, _ = sliding_walls(32, 2, generator)
        loss = model(video).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    video, directions = sliding_walls(64, 2, torch.Generator().manual_seed(123))
    actions = model.eval().infer_actions(video)
    left_codes, right_codes = set(actions[directions == 0].tolist()), set(actions[directions == 1].tolist())
    assert left_codes and right_codes and not left_codes & right_codes


def test_logged_psnr_is_the_one_through_the_codes():
    """Training with continuous actions mixed in still logs the PSNR that the codes alone give."""
    quantizer = dataclasses.replace(CONFIG.quantizer, reset_dead_codes=False)  # the same codebook in both passes
    model = lam(dataclasses.replace(CONFIG, action="change", unquantized_fraction=0.5, quantizer=quantizer))
    with torch.no_grad():
        model.decoder_out.weight.normal_(std=0.02)  # a decoder that uses its action input
    video = torch.rand(2, 4, 3, 90, 160)
    with torch.no_grad():
        trained = model.train()(video)
        through_codes = model.eval()(video)
    torch.testing.assert_close(trained.metrics["psnr"], through_codes.metrics["psnr"])
    assert not torch.allclose(trained.recon, through_codes.recon)  # some transitions did go unquantised


def test_frame_action_is_the_next_frames_summary_and_change_action_its_difference():
    """The "frame" action of t -> t+1 is frame t+1's summary; the "change" action subtracts frame t's."""
    frame, change = lam(dataclasses.replace(CONFIG, action="frame")), lam(dataclasses.replace(CONFIG, action="change"))
    video = torch.rand(1, 3, 3, 90, 160)
    patches = to_patches(video * 2 - 1, CONFIG.patch_size)
    with torch.no_grad():
        summaries = frame.encode_actions(video)  # frames 1, 2
        first = frame.encoder_out(frame.encoder(torch.cat([frame.action_query.expand(1, 3, 1, -1),
                                                           frame.encoder_in(patches)], dim=2))[:, 0, 0])
        differences = change.encode_actions(video)
    torch.testing.assert_close(differences[:, 0], summaries[:, 0] - first)
    torch.testing.assert_close(differences[:, 1], summaries[:, 1] - summaries[:, 0])


def test_change_weight_leaves_the_loss_of_a_still_video_alone_and_weights_moving_pixels():
    """change_weight weights each pixel's error by how much it changes: on a still video the
    loss is plain MSE; on a moving one the weighted loss differs from it."""
    quantizer = dataclasses.replace(CONFIG.quantizer, reset_dead_codes=False)
    plain = lam(dataclasses.replace(CONFIG, quantizer=quantizer)).eval()
    weighted = lam(dataclasses.replace(CONFIG, quantizer=quantizer, change_weight=20.0)).eval()
    still = torch.rand(1, 1, 3, 90, 160).expand(1, 3, 3, 90, 160).contiguous()
    moving = torch.rand(1, 3, 3, 90, 160)
    with torch.no_grad():
        torch.testing.assert_close(weighted(still).loss, plain(still).loss)
        assert not torch.allclose(weighted(moving).loss, plain(moving).loss)
