"""The learned quality filter's jobs on a real (small) offline-world run: labels from the world's
sidecars, `genie quality train`, and the trained scorer inside the ingest stages."""

import json
import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from jobs.quality_world_labels import labels_from_world
from models.quality import QUALITY_MODELS
from pipeline import lineage
from pipeline.process_video import ProcessVideo, SplitConfig
from pipeline.quality import LearnedConfig, QualityConfig
from pipeline.shards import ShardConfig
from schemas.manifest import RUN_CLIPS_FILE, VIDEO_SCHEMA
from schemas.shard import decode_sample
from schemas.shard_io import iter_samples
from train.quality import LabelledClips, QualityTrainConfig, folds_by_video, split_by_video, train_quality_model
from train.quality_threshold import choose_threshold, roc_auc
from world.corpus import CorpusConfig, generate_corpus

TINY_TRAIN = """
[model]
frames = 2
height = 24
width = 40
channels = [8, 16]
embed_dim = 16

[train]
positive_scores = [4, 5]
negative_scores = [1, 2, 3]
test_fraction = 0.3
validation_fraction = 0.0
epochs = 2
batch_size = 4
candidate_frames = 2
threads = 1
"""


def process(videos: list[pathlib.Path], output: pathlib.Path, quality: QualityConfig) -> None:
    stage = ProcessVideo(SplitConfig(), quality, ShardConfig(), output, "test")
    for path in videos:
        row = {name: None for name in VIDEO_SCHEMA.names}
        row.update(video_id=path.stem, url=f"http://test/{path.name}", queries=["q"], status="ok", stage="download", path=str(path))
        assert stage.process(row)["status"] == "ok"
    lineage.consolidate(output)


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """Eight short uploads (two off-topic) cut into clips by the ingest stages (heuristic scorer)."""
    root = tmp_path_factory.mktemp("quality_world")
    generate_corpus(CorpusConfig(seed=3, videos=8, offtopic=2, min_duration_s=8, max_duration_s=12), root / "world")
    process(sorted((root / "world" / "videos").glob("*.mp4")), root / "run", QualityConfig())
    return root


@pytest.fixture(scope="module")
def trained(world_run):
    """`genie quality train` on the run's world labels, with a tiny config."""
    from jobs.quality import main

    (world_run / "tiny.toml").write_text(TINY_TRAIN)
    labels = world_run / "labels.parquet"
    assert main(["labels-from-world", "--run", str(world_run / "run"), "--world", str(world_run / "world"), "--out", str(labels)]) == 0
    assert main(["train", "--config", str(world_run / "tiny.toml"), "--labels", str(labels), "--run", str(world_run / "run"),
                 "--out", str(world_run / "model")]) == 0  # fmt: skip
    return world_run / "model"


def test_world_labels_are_the_quality_of_the_segment_under_each_kept_clip(world_run):
    """One label per kept clip, the quality of the truth segment it overlaps most."""
    rows = labels_from_world(world_run / "run", world_run / "world")
    clips = {row["clip_id"]: row for row in pq.read_table(world_run / "run" / RUN_CLIPS_FILE).to_pylist()}
    assert len(rows) == sum(clip["status"] == "ok" for clip in clips.values()) > 0
    for row in rows:
        clip = clips[row["clip_id"]]
        truth = json.loads((world_run / "world" / "truth" / f"{clip['video_id']}.json").read_text())
        overlap = {s["quality"]: 0 for s in truth["segments"]}
        for segment in truth["segments"]:
            share = min(clip["end_frame"], segment["end_frame"]) - max(clip["start_frame"], segment["start_frame"])
            overlap[segment["quality"]] = max(overlap[segment["quality"]], share)
        assert overlap[row["score"]] == max(overlap.values())
        assert row["labeller"] == "world" and row["video_id"] == clip["video_id"]


def test_train_writes_a_safe_model_folder_with_held_out_figures(trained):
    """The folder has safetensors + JSON only, the threshold, the rule and test P/R/AUC."""
    assert sorted(path.name for path in trained.iterdir()) == ["config.json", "model.safetensors"]
    info = json.loads((trained / "config.json").read_text())
    assert info["rule"] == {"positive_scores": [4, 5], "negative_scores": [1, 2, 3]}
    assert 0.0 <= info["threshold"] <= 1.0
    assert {"precision", "recall", "roc_auc", "clips"} <= set(info["test"])
    assert info["test_videos"] and info["train"]["steps"] > 0


def test_learned_scorer_in_the_ingest_stages_records_every_score_and_its_verdict(world_run, trained, tmp_path):
    """heuristic+learned: each judged clip lists both scores in order; a clip is kept exactly
    when P(good) reaches the threshold, and its shard metadata carries that score."""
    quality = QualityConfig(scorer="heuristic+learned", learned=LearnedConfig(model_dir=str(trained), threshold=0.5))
    videos = sorted((world_run / "world" / "videos").glob("*.mp4"))[:2]
    process(videos, tmp_path, quality)
    clips = pq.read_table(tmp_path / RUN_CLIPS_FILE).to_pylist()
    judged = [clip for clip in clips if clip["quality_scores"] and len(clip["quality_scores"]) == 2]
    assert judged
    for clip in judged:
        heuristic, learned = clip["quality_scores"]
        assert heuristic["scorer"] == "heuristic-v2" and learned["scorer"].startswith("learned-cnn:")
        assert clip["quality_scorer"] == learned["scorer"] and clip["quality_score"] == learned["score"]
        assert (clip["status"] == "ok") == (learned["score"] >= 0.5)
        assert clip["status"] == "ok" or clip["reason"].startswith("learned: ")
    kept = {clip["clip_id"]: clip for clip in judged if clip["status"] == "ok"}
    for shard in (tmp_path / "shards").glob("*.tar"):
        for sample in iter_samples(str(shard)):
            _, meta = decode_sample(sample)
            assert meta["quality_score"] == pytest.approx(kept.pop(meta["clip_id"])["quality_score"], rel=1e-6)
    assert not kept


def test_split_by_video_keeps_a_video_together_and_repeats():
    """Every clip of a source video lands in the same split, the same way each time."""
    videos = [f"v{index % 20}" for index in range(200)]
    split = split_by_video(videos, 0.2, 0.3, seed=1)
    assert all(len({s for v, s in zip(videos, split) if v == video}) == 1 for video in set(videos))
    assert split.tolist() == split_by_video(videos, 0.2, 0.3, seed=1).tolist() and set(split.tolist()) == {0, 1, 2}


def test_folds_by_video_keep_a_video_together_and_the_test_videos_of_the_split():
    """Cross-validation folds hold whole videos, and the test clips are exactly split_by_video's."""
    videos = [f"v{index % 40}" for index in range(400)]
    fold = folds_by_video(videos, 4, 0.25, seed=2)
    assert all(len({f for v, f in zip(videos, fold) if v == video}) == 1 for video in set(videos))
    assert set(fold.tolist()) == {-1, 0, 1, 2, 3}
    assert ((fold < 0) == (split_by_video(videos, 0.15, 0.25, seed=2) == 2)).all()


def test_roc_auc_and_threshold_choice():
    """AUC counts ranked pairs; the threshold is the lowest reaching the wanted precision."""
    labels, scores = np.array([0, 0, 1, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    assert roc_auc(labels, scores) == pytest.approx(8 / 9)
    assert choose_threshold(labels, scores, min_precision=1.0, fallback=0.5) == pytest.approx(0.6)  # between 0.4 and 0.8
    assert choose_threshold(labels, scores, min_precision=0.7, fallback=0.5) == pytest.approx(0.25)
    # a recall floor lowers a threshold that would drop more good clips than it allows
    assert choose_threshold(labels, scores, min_precision=1.0, fallback=0.5, min_recall=1.0) == pytest.approx(0.25)
    assert choose_threshold(labels, scores, min_precision=1.0, fallback=0.5, min_recall=0.6) == pytest.approx(0.6)
    assert choose_threshold(labels, scores, min_precision=1.0, fallback=0.5, max_threshold=0.5) == pytest.approx(0.5)


def test_training_separates_clean_clips_from_letterboxed_ones():
    """On synthetic clips (moving texture, half of them between black bars), the tiny model
    learns the difference: held-out ROC AUC near 1."""
    rng = np.random.default_rng(0)
    frames = rng.integers(60, 255, (96, 2, 90, 160, 3), dtype=np.uint8)
    scores = np.where(np.arange(96) % 2 == 0, 5, 1)
    frames[scores == 1, :, :20] = 0
    frames[scores == 1, :, -20:] = 0
    clips = LabelledClips([f"c{i}" for i in range(96)], [f"v{i // 2}" for i in range(96)], scores, frames)
    config = QualityTrainConfig(epochs=6, batch_size=16, candidate_frames=2, test_fraction=0.3, validation_fraction=0.0,
                                geometric_scores=(5,), threads=1)  # fmt: skip
    torch.manual_seed(0)
    _, info = train_quality_model(clips, QUALITY_MODELS["tiny"], config, log=lambda text: None)
    assert info["test"]["roc_auc"] >= 0.95


def test_cross_validation_scores_every_non_test_clip_out_of_fold_and_trains_on_all_of_them():
    """With folds, the threshold is chosen on every non-test clip (each scored by a model that
    never saw it), and the model kept is trained on all of them."""
    rng = np.random.default_rng(1)
    frames = rng.integers(60, 255, (64, 2, 90, 160, 3), dtype=np.uint8)
    scores = np.where(np.arange(64) % 2 == 0, 5, 1)
    frames[scores == 1, :, :20] = 0
    frames[scores == 1, :, -20:] = 0
    videos = [f"v{i // 2}" for i in range(64)]
    clips = LabelledClips([f"c{i}" for i in range(64)], videos, scores, frames)
    config = QualityTrainConfig(epochs=4, batch_size=8, candidate_frames=2, test_fraction=0.25, folds=3,
                                geometric_scores=(5,), threads=1)  # fmt: skip
    _, info = train_quality_model(clips, QUALITY_MODELS["tiny"], config, log=lambda text: None)
    non_test = int((folds_by_video(videos, 3, 0.25, seed=0) >= 0).sum())
    assert info["validation"]["clips"] == info["train"]["clips"] == non_test == 64 - info["test"]["clips"]
    assert info["train"]["folds"] == 3 and 0 < info["threshold"] < 1


def test_synthetic_letterbox_turns_good_clips_into_bad_ones_between_black_bars():
    """Chosen good clips are shrunk between black bars and relabelled bad; bad and unchosen clips are unchanged."""
    from train.quality_augment import letterbox_some

    clips = torch.rand(8, 2, 3, 90, 160) * 0.5 + 0.5  # no black pixel
    targets = torch.tensor([1.0, 1, 1, 1, 1, 1, 0, 0])
    before = clips.clone()
    out, new_targets, geometric = letterbox_some(clips, targets, torch.ones(8, dtype=torch.bool), 1.0, torch.Generator().manual_seed(0))
    assert new_targets.tolist() == [0.0] * 8 and not geometric[:6].any()
    for clip in out[:6]:
        black = (clip == 0).all(dim=(0, 1))  # (H, W): bars span every frame and channel
        assert black.any(dim=1)[[0, -1]].all() or black.any(dim=0)[[0, -1]].all()
    assert torch.equal(out[6:], before[6:]) and torch.equal(clips, before)  # the input is not changed


def test_synthetic_hud_draws_the_same_text_on_every_frame_near_the_top_and_below_a_letterbox_bar():
    """Chosen clips of any label get one HUD on all their frames, in the top rows; a letterboxed
    clip's (score 3) starts under its bar; fraction 0 changes nothing."""
    from train.quality_augment import hud_some

    clips = torch.full((6, 3, 3, 90, 160), 0.5)
    clips[4, :, :, :20] = 0.0  # a letterbox bar over the top 20 rows
    scores = np.array([5, 4, 1, 2, 3, 5])
    assert torch.equal(hud_some(clips, scores, 0.0, torch.Generator().manual_seed(0)), clips)
    out = hud_some(clips, scores, 1.0, torch.Generator().manual_seed(0))
    changed = (out != clips).any(dim=2)  # (B, K, H, W)
    for index in range(6):
        assert changed[index, 0].any() and torch.equal(out[index, 0], out[index, 1]) and torch.equal(out[index, 0], out[index, 2])
        rows = changed[index, 0].any(dim=1).nonzero().flatten()
        assert rows.max() < 45 + (20 if index == 4 else 0)  # near the top: a HUD, not a caption
    assert (out[4, :, :, :20] == 0).all() and changed[4, 0, 20:].any()  # inside the picture, under the bar
    assert not torch.equal(out[0], out[5])  # a HUD of its own per clip


def test_hue_rotation_keeps_grey_and_a_third_turn_is_a_channel_cycle():
    """The hue augmentation rotates about the grey axis: greys stay, 120 degrees permutes R, G, B."""
    from train.quality_augment import hue_matrices

    rotations = hue_matrices(torch.tensor([0.0, 2 * np.pi / 3, 1.0]))
    assert torch.allclose(rotations[0], torch.eye(3), atol=1e-6)
    assert torch.allclose(rotations[1] @ torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.1, 0.9, 0.5]), atol=1e-6)
    assert torch.allclose(rotations[2] @ torch.full((3,), 0.4), torch.full((3,), 0.4), atol=1e-6)
