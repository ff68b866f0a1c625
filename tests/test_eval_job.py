"""`genie eval` (jobs/eval.py): held-out split by video, and the job end to end on small untrained models.

The models are untrained tiny ones saved as checkpoints, the clips a shard the test writes,
the truth a sidecar in the offline world's format: these tests check what the job writes
and how it treats bad input, not what a trained world scores (benchmarks/RESULTS.md has that).
"""

import dataclasses
import json
import pathlib

import cv2
import numpy as np
import pytest
import torch
import webdataset

from jobs import eval as eval_job
from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.lam import LatentActionModel
from models.tokenizer import VideoTokenizer
from schemas import ids
from schemas import shard as clip_spec
from fixtures_checkpoint import write_model_checkpoint


def test_held_out_shards_keeps_each_video_on_one_side():
    """Every video's shards land on one side, both sides are non-empty, and adding videos moves none of the old ones."""
    key = lambda shard: pathlib.PurePosixPath(shard).name.split("_")[0]  # noqa: E731
    shards = [f"/s/{video:016x}_{part:09d}_000000100.tar" for video in range(20) for part in range(2)]
    train, held = eval_job.held_out_shards(shards, 0.3)
    assert sorted(train + held) == sorted(shards) and train and held
    assert not {key(s) for s in held} & {key(s) for s in train}
    assert 2 <= len({key(s) for s in held}) <= 12  # about 30% of 20 videos
    more = shards + [f"/s/{video:016x}_000000000_000000100.tar" for video in range(20, 60)]
    train_more, held_more = eval_job.held_out_shards(more, 0.3)
    assert set(held) <= set(held_more) and set(train) <= set(train_more)
    assert eval_job.held_out_shards(shards[:4], 0.01)[1]  # a tiny fraction still holds out one video
    with pytest.raises(ValueError, match="one video"):
        eval_job.held_out_shards(shards[:2], 0.3)


def _clip(video_id: str, start_frame: int, n: int, seed: int) -> dict:
    """A clip of a bright square moving right over a dark field, as a shard sample."""
    frames = np.full((n, 90, 160, 3), 20, np.uint8)
    x = np.random.default_rng(seed).integers(0, 40)
    for t in range(n):
        frames[t, 30:50, x + 8 * t:x + 8 * t + 20] = (230, 180, 40)
    meta = {"clip_id": ids.clip_id(video_id, start_frame, start_frame + 3 * n), "video_id": video_id, "scene_index": 0,
            "start_frame": start_frame, "end_frame": start_frame + 3 * n, "start_s": start_frame / 30,
            "end_s": (start_frame + 3 * n) / 30, "n_frames": n, "fps": 10, "width": 160, "height": 90,
            "quality_score": None, "pipeline_version": "test"}
    return clip_spec.encode_sample(frames, meta)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Checkpoints of untrained tiny models, a held-out shard of 3 clips from 2 videos, a corpus with one sidecar."""
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    configs = load_model_configs("tiny")
    runs = {name: str(write_model_checkpoint(root / name, name, model, window_frames=2)) for name, model in (
        ("tokenizer", VideoTokenizer(configs.tokenizer)), ("lam", LatentActionModel(configs.lam)),
        ("dynamics", DynamicsModel(configs.dynamics)))}
    (root / "shards").mkdir()
    with webdataset.TarWriter(str(root / "shards" / "aaaa_000000000_000000100.tar")) as writer:
        writer.write(_clip("videoA", 0, 7, 0))
        writer.write(_clip("videoA", 30, 6, 1))
    with webdataset.TarWriter(str(root / "shards" / "bbbb_000000000_000000100.tar")) as writer:
        writer.write(_clip("videoB", 0, 6, 2))
        writer.write({"__key__": "broken", clip_spec.FRAMES_FIELD: b"not a png",
                      clip_spec.META_FIELD: _clip("videoB", 60, 3, 3)[clip_spec.META_FIELD]})
    (root / "corpus" / "truth").mkdir(parents=True)
    actions = [2] * 30 + [1] * 30 + [3] * 60  # right, then left, then jump, one per source frame at 30 fps
    sidecar = {"id": "videoA", "on_topic": True, "fps": 30, "n_frames": 120, "cuts": [], "actions": actions,
               "segments": [{"start_frame": 0, "end_frame": 120, "kind": "gameplay", "junk": None, "quality": 5,
                             "theme": None, "level_seed": 0}]}
    (root / "corpus" / "truth" / "videoA.json").write_text(json.dumps(sidecar))
    return root, runs


def _config(root: pathlib.Path, runs: dict, out: str, **changes) -> eval_job.EvalConfig:
    settings = dict(corpus_dir=str(root / "corpus"), window_frames=3, steps=1, t=2, resamples=200, strips=2,
                    batch_size=4) | changes
    return eval_job.EvalConfig(runs["tokenizer"], runs["lam"], runs["dynamics"], (str(root / "shards"),),
                               str(root / out), **settings)


def test_windows_spread_over_clips_within_a_video(world):
    """Videos in turn, and a video's clips in turn: 3 windows come from 3 clips, not 2 of videoA's first."""
    root, runs = world
    windows = eval_job.read_windows(_config(root, runs, "unused", max_windows=3))
    assert len(set(windows.clip_ids)) == 3 and sorted(windows.video_ids) == ["videoA", "videoA", "videoB"]


@pytest.mark.slow
def test_eval_writes_the_measures_the_report_and_its_pictures(world):
    """eval.json holds every measure, the skipped clip with its reason, and a report whose pictures exist."""
    root, runs = world
    summary = eval_job.evaluate(_config(root, runs, "out"))
    out = root / "out"
    saved = json.loads((out / "eval.json").read_text())
    assert saved["data"]["windows"] == 6  # videoA: 2 + 2 windows of 3 frames, videoB: 2 (its broken clip skipped)
    assert saved["data"]["videos"] == ["videoA", "videoB"]
    assert [s["clip"] for s in saved["data"]["skipped"]] == ["broken"]
    assert saved["tokenizer"]["psnr"] > 0 and 0 < saved["tokenizer"]["ssim"] <= 1
    delta = saved["controllability"]["delta_psnr"]
    assert delta["t"] == 2 and delta["low"] <= delta["value"] <= delta["high"]
    assert len(saved["controllability"]["psnr_by_t"]["random"]["mean"]) == 2
    # 4 videoA windows of 2 transitions with known truth; videoB has no sidecar
    assert saved["actions"]["count"] == 8 and np.array(saved["actions"]["confusion"]).shape == (8, 8)
    assert saved["notes"] and "never trained on" in saved["notes"][0]
    report = (out / "report.md").read_text()
    for picture in ("psnr_by_t.png", "confusion.png", "strips.png"):
        assert f"]({picture})" in report and cv2.imread(str(out / picture)) is not None
    strips = cv2.imread(str(out / "strips.png"))
    assert strips.shape[0] == 2 * (4 * 2 * 90 + 3 * 2) + 10  # 2 windows of 4 rows at scale 2, 2-pixel gaps
    assert summary["tokenizer"] == saved["tokenizer"]


def test_fvd_is_measured_with_the_given_i3d_weights(world, tmp_path):
    """With I3D weights, eval.json records FVD with the weights, clip length and video count it was measured on."""
    from safetensors.torch import save_file

    from evals.i3d import InceptionI3d

    root, runs = world
    save_file({k: v.contiguous() for k, v in InceptionI3d(num_classes=16).state_dict().items()},
              str(tmp_path / "i3d.safetensors"))
    config = _config(root, runs, "out_fvd", i3d_weights=str(tmp_path / "i3d.safetensors"), fvd_resolution=32,
                     max_windows=2, corpus_dir="")
    summary = eval_job.evaluate(config)
    assert summary["fvd"]["videos"] == 2 and summary["fvd"]["frames"] == 3 and summary["fvd"]["value"] >= 0
    assert summary["actions"] is None and any("not comparable" in note for note in summary["notes"])


def test_genie_eval_refuses_bad_input_with_one_line(world, capsys):
    """Missing flags, a window longer than the models take and a missing checkpoint are clear errors."""
    root, runs = world
    with pytest.raises(SystemExit):
        eval_job.main(["--tokenizer", runs["tokenizer"], "--out", str(root / "x")])
    assert "--lam" in capsys.readouterr().err
    common = ["--tokenizer", runs["tokenizer"], "--lam", runs["lam"], "--dynamics", runs["dynamics"],
              "--clips", str(root / "shards"), "--out", str(root / "bad")]
    with pytest.raises(SystemExit):
        eval_job.main([*common, "--window-frames", "3", "--t", "4"])
    assert "t = 4" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_frames"):
        eval_job.evaluate(dataclasses.replace(_config(root, runs, "bad"), window_frames=17, horizon=0))
    with pytest.raises(Exception, match="neither a checkpoint nor a run folder"):
        eval_job.evaluate(dataclasses.replace(_config(root, runs, "bad"), lam_checkpoint=str(root / "nothing")))
