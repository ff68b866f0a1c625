"""Playing a world: one image in, one frame per latent action out (models/playable.py, jobs/play.py).

The models here are untrained tiny ones: these tests check the plumbing (shapes, context,
seeds, checks on input), not what a trained world draws; `genie run` trains one.
"""

import dataclasses
import pathlib

import cv2
import numpy as np
import pytest
import torch

from jobs import play
from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.playable import PlayableWorld
from models.sampler import FramePredictor, sample_frame
from models.tokenizer import VideoTokenizer
from schemas.config import to_dict
from train.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def tiny():
    """Tiny models with the paper's causal ST tokenizer (tiny.toml's own is spatial only, where
    the decoding context changes nothing), so that the context handling is what is tested."""
    torch.manual_seed(0)
    configs = load_model_configs("tiny")
    tokenizer = configs.tokenizer
    causal = dataclasses.replace(tokenizer, encoder=dataclasses.replace(tokenizer.encoder, temporal=True),
                                 decoder=dataclasses.replace(tokenizer.decoder, temporal=True))
    configs = dataclasses.replace(configs, tokenizer=causal)
    return configs, VideoTokenizer(causal).eval(), DynamicsModel(configs.dynamics).eval()


def _start_frames(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, 90, 160, generator=torch.Generator().manual_seed(1))


def test_step_gives_one_frame_per_world_and_extends_the_context(tiny):
    _, tokenizer, dynamics = tiny
    world = PlayableWorld(tokenizer, dynamics, steps=4)
    world.reset(_start_frames(3))
    for frames_so_far in (2, 3):
        frames = world.step(torch.tensor([0, 1, world.num_actions - 1]), torch.Generator().manual_seed(0))
        assert frames.shape == (3, 3, 90, 160)
        assert 0 <= frames.min() and frames.max() <= 1
        assert world.predictor.tokens.shape[1] == frames_so_far


def _reference_step(tokenizer, dynamics, start, actions, steps, temperature, seed, in_context):
    """The sampled grid for `actions` from `start`, decoded after the start grid or alone."""
    with torch.no_grad():
        tokens = tokenizer.encode(start[:, None])  # (B, 1, h, w)
        predictor = FramePredictor(dynamics, tokens, torch.empty(len(start), 0, dtype=torch.long), use_cache=False)
        sampled = sample_frame(predictor, actions, steps, temperature, torch.Generator().manual_seed(seed))
        if in_context:
            return tokenizer.decode(torch.cat([tokens, sampled[:, None]], dim=1))[:, -1]
        return tokenizer.decode(sampled[:, None])[:, 0]


def test_step_is_the_sampled_grid_decoded_in_context(tiny):
    """What a world step returns is the MaskGIT sample for that action, decoded after the frames before it."""
    _, tokenizer, dynamics = tiny
    start, actions = _start_frames(2), torch.tensor([3, 5])
    world = PlayableWorld(tokenizer, dynamics, steps=5, temperature=1.5)
    world.reset(start)
    frames = world.step(actions, torch.Generator().manual_seed(7))
    expected = _reference_step(tokenizer, dynamics, start, actions, 5, 1.5, 7, in_context=True)
    torch.testing.assert_close(frames, expected)


def test_in_context_decoding_differs_from_decoding_alone(tiny):
    """The decoder is causal in time, so decoding a grid after the start grid gives another picture than alone."""
    _, tokenizer, dynamics = tiny
    start, actions = _start_frames(2), torch.tensor([3, 5])
    in_context = _reference_step(tokenizer, dynamics, start, actions, 5, 1.5, 7, in_context=True)
    alone = _reference_step(tokenizer, dynamics, start, actions, 5, 1.5, 7, in_context=False)
    assert (in_context - alone).abs().mean() > 1e-3


def test_decoding_context_is_the_decoders_window(tiny):
    """Past the decoder's max_frames the world keeps only the latest max_frames grids as context."""
    configs, _, dynamics = tiny
    tokenizer = VideoTokenizer(dataclasses.replace(configs.tokenizer, max_frames=3)).eval()  # a short window
    world = PlayableWorld(tokenizer, dynamics, steps=1)
    world.reset(_start_frames(1))
    generator = torch.Generator().manual_seed(0)
    for _ in range(tokenizer.config.max_frames + 1):
        frame = world.step(torch.tensor([1]), generator)
    assert world.tokens.shape[1] == tokenizer.config.max_frames
    torch.testing.assert_close(frame, tokenizer.decode(world.tokens)[:, -1])


def test_same_seed_same_frames(tiny):
    _, tokenizer, dynamics = tiny
    runs = []
    for _ in range(2):
        world = PlayableWorld(tokenizer, dynamics, steps=3)
        world.reset(_start_frames(1))
        generator = torch.Generator().manual_seed(3)
        runs.append(torch.cat([world.step(torch.tensor([a]), generator) for a in (1, 4)]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_bad_use_is_refused_with_a_clear_error(tiny):
    configs, tokenizer, dynamics = tiny
    world = PlayableWorld(tokenizer, dynamics, steps=2)
    with pytest.raises(RuntimeError, match="reset"):
        world.step(torch.tensor([0]))
    with pytest.raises(ValueError, match=r"frames must be \(B, 3, 90, 160\)"):
        world.reset(torch.rand(1, 3, 120, 160))
    world.reset(_start_frames(1))
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 8\)"):
        world.step(torch.tensor([8]))
    with pytest.raises(ValueError, match="actions must lie"):
        world.step(torch.tensor([-1]))
    other_grid = dataclasses.replace(configs.dynamics, token_height=configs.dynamics.token_height + 1)
    with pytest.raises(ValueError, match="grid"):
        PlayableWorld(tokenizer, DynamicsModel(other_grid))


@pytest.mark.parametrize("height,width,filled", [(240, 256, (90, 96)), (720, 1280, (90, 160)), (100, 400, (40, 160))])
def test_fit_image_keeps_the_aspect_and_pads_with_black(height, width, filled):
    image = np.full((height, width, 3), 200, np.uint8)
    fitted = play.fit_image(image)
    assert fitted.shape == (90, 160, 3) and fitted.dtype == np.uint8
    rows, columns = np.nonzero(fitted[..., 0])
    assert (rows.max() - rows.min() + 1, columns.max() - columns.min() + 1) == filled
    assert int(np.count_nonzero(fitted[..., 0])) == filled[0] * filled[1]


def _write_checkpoint(folder: pathlib.Path, component: str, model: torch.nn.Module, config) -> pathlib.Path:
    """A training checkpoint of `model` as one worker writes it (sharded format, one shard)."""
    from train.optimizer import OptimConfig, build_optimizer, build_schedule

    optimizer = build_optimizer(model, OptimConfig())
    meta = {"component": component, "step": 1, "model_config": to_dict(config)}
    save_checkpoint(folder / "checkpoint_000000001", model, optimizer, build_schedule(optimizer, OptimConfig()), meta, 0, {})
    return folder


def test_genie_play_writes_the_start_image_and_a_frame_per_action(tiny, tmp_path):
    configs, tokenizer, dynamics = tiny
    tokenizer_run = _write_checkpoint(tmp_path / "tok", "tokenizer", tokenizer, configs.tokenizer)
    dynamics_run = _write_checkpoint(tmp_path / "dyn", "dynamics", dynamics, configs.dynamics)
    image = (np.random.default_rng(0).random((240, 256, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "start.png"), image)
    common = ["--tokenizer", str(tokenizer_run), "--dynamics", str(dynamics_run), "--image", str(tmp_path / "start.png"),
              "--steps", "2"]

    assert play.main([*common, "--out", str(tmp_path / "branches.png")]) == 0
    branches = cv2.imread(str(tmp_path / "branches.png"))
    assert branches.shape == (8 * 90, 2 * 160, 3)  # a row per latent action: start, next frame
    start = play.fit_image(image[..., ::-1])[..., ::-1]  # what the world starts from, BGR as read back
    for row in range(8):
        np.testing.assert_array_equal(branches[row * 90:(row + 1) * 90, :160], start)

    start_tensor = torch.from_numpy(play.fit_image(image[..., ::-1]).copy()).permute(2, 0, 1).float().div(255)
    expected = _reference_step(tokenizer, dynamics, start_tensor.expand(8, -1, -1, -1), torch.arange(8), 2, 2.0, 0,
                               in_context=True)  # what genie play draws: each action's frame decoded in context
    drawn = torch.from_numpy(branches[..., ::-1].copy()).view(8, 90, 2, 160, 3)[:, :, 1].permute(0, 3, 1, 2)
    assert (drawn.float() - expected.mul(255).round()).abs().max() <= 1

    assert play.main([*common, "--actions", "2,2,5", "--out", str(tmp_path / "sequence.png")]) == 0
    assert cv2.imread(str(tmp_path / "sequence.png")).shape == (90, 4 * 160, 3)


def test_genie_play_refuses_bad_input(tiny, tmp_path):
    configs, tokenizer, dynamics = tiny
    tokenizer_run = _write_checkpoint(tmp_path / "tok", "tokenizer", tokenizer, configs.tokenizer)
    dynamics_run = _write_checkpoint(tmp_path / "dyn", "dynamics", dynamics, configs.dynamics)
    (tmp_path / "not_an_image.png").write_bytes(b"hello")
    common = ["--tokenizer", str(tokenizer_run), "--dynamics", str(dynamics_run), "--out", str(tmp_path / "out.png")]
    with pytest.raises(ValueError, match="cannot read an image"):
        play.main([*common, "--image", str(tmp_path / "not_an_image.png")])
    cv2.imwrite(str(tmp_path / "start.png"), np.zeros((90, 160, 3), np.uint8))
    with pytest.raises(SystemExit):
        play.main([*common, "--image", str(tmp_path / "start.png"), "--actions", "1,x"])
    with pytest.raises(ValueError, match="actions must lie"):
        play.main([*common, "--image", str(tmp_path / "start.png"), "--actions", "1,99", "--steps", "1"])
    with pytest.raises(Exception, match="holds a tokenizer checkpoint, not a dynamics"):
        play.main(["--tokenizer", str(tokenizer_run), "--dynamics", str(tokenizer_run), "--out", str(tmp_path / "o.png"),
                   "--image", str(tmp_path / "start.png")])
    assert not (tmp_path / "out.png").exists()


def test_play_from_clips_starts_past_a_fade_from_black(tmp_path):
    """A held-out clip opening on black frames starts the world at its first visible frame;
    a clip that is black throughout starts at frame 0."""
    import webdataset

    from schemas import ids, shard

    frames = np.zeros((6, 90, 160, 3), np.uint8)
    frames[2] = 6  # the fade, still nearly black and flat
    frames[3:, 40:] = (60, 140, 220)  # sky over a dark ground from frame 3 on
    frames[4:, :, 80:] = 255
    for name, video in (("fade", frames), ("black", np.zeros_like(frames))):
        meta = {"clip_id": ids.clip_id(name, 0, 6), "video_id": name, "scene_index": 0, "start_frame": 0,
                "end_frame": 6, "start_s": 0.0, "end_s": 0.6, "n_frames": 6, "fps": 10, "width": 160, "height": 90,
                "quality_score": None, "pipeline_version": "test"}
        with webdataset.TarWriter(str(tmp_path / f"{name}.tar")) as writer:
            writer.write(shard.encode_sample(video, meta))
    start = play.first_clip_frame([str(tmp_path / "fade.tar")])
    assert abs(start.astype(int) - frames[3]).max() <= 8  # the clip's frame 3, up to the shard's lossy coding
    assert play.first_clip_frame([str(tmp_path / "black.tar")]).max() <= 8
