"""Dark gameplay through the real split and quality heuristic (the ingest's default config):
an offline-world upload in the dark themes keeps its gameplay, and its fade through black and
its black gap are still cut, the black gap dropped."""

import pytest

from jobs.ingest import default_config
from pipeline import lineage
from pipeline.process_video import ProcessVideo
from schemas.manifest import VIDEO_SCHEMA
from world.timeline import Shot, VideoPlan, play
from world.truth import seconds_by_label, truth_cuts
from world.video import render_video

FPS = 30


def gameplay(theme: str, level_seed: int) -> Shot:
    actions = play(level_seed, "scripted", level_seed, 3 * FPS, FPS)
    return Shot("gameplay", len(actions), 5, theme=theme, level_seed=level_seed, actions=actions)


@pytest.fixture(scope="module")
def dark_upload(tmp_path_factory):
    """underground -fade-> castle -hard-> 2 s of black -hard-> midnight, rendered by ffmpeg,
    then processed; (truth, video row, clip rows)."""
    root = tmp_path_factory.mktemp("dark")
    shots = (gameplay("underground", 3), gameplay("castle", 4), Shot("black", 2 * FPS, 1), gameplay("midnight", 6))
    plan = VideoPlan("darkupload1", True, FPS, shots, ("fade", "hard", "hard"))
    truth = render_video(plan, root / "dark.mp4", preset="ultrafast")
    config = default_config()
    stage = ProcessVideo(config.split, config.quality, config.shards, root / "out", "test")
    row = {name: None for name in VIDEO_SCHEMA.names}
    row.update(video_id="darkupload1", url="http://site/x", queries=["q"], status="ok", stage="download", path=str(root / "dark.mp4"))
    video = stage.process(row)
    return truth, video, lineage.consolidate(root / "out")[1].to_pylist()


def test_a_dark_upload_is_cut_at_its_fade_and_around_its_black_gap(dark_upload):
    truth, video, _ = dark_upload
    assert video["status"] == "ok", video["reason"]
    found = [span["start_frame"] for span in video["scene_spans"][1:]]
    expected = truth_cuts(truth)
    assert len(found) == len(expected) == 3 and all(abs(a - b) <= 1 for a, b in zip(found, expected)), (found, expected)


def test_a_dark_upload_keeps_its_gameplay_and_drops_its_black_gap(dark_upload):
    truth, _, clips = dark_upload
    kept = seconds_by_label(truth, [(clip["start_frame"], clip["end_frame"]) for clip in clips if clip["status"] == "ok"])
    total = seconds_by_label(truth, [(0, truth["n_frames"])])
    for theme in ("underground", "castle", "midnight"):
        assert kept.get(f"gameplay:{theme}", 0) >= 0.95 * total[f"gameplay:{theme}"], (theme, kept, total)
    assert "black" not in kept
    (black,) = [clip for clip in clips if clip["start_frame"] >= truth["cuts"][1]["frame"] - 1 and clip["end_frame"] <= truth["cuts"][2]["frame"] + 1]
    assert black["reason"].startswith("black: lit fraction"), black["reason"]
