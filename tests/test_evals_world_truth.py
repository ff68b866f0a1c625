"""True actions of ingested offline-world clips from the world's sidecars (evals/world_truth.py)."""

import json

import cv2
import numpy as np
import pytest

from evals.world_truth import UNKNOWN, WorldTruth, transition_actions
from world.actions import Action

R, L, J, I = int(Action.RIGHT), int(Action.LEFT), int(Action.JUMP), int(Action.IDLE)


def sidecar(actions: list[int], fps: int = 30, shot_starts: tuple[int, ...] = (0,), video_id: str = "vid") -> dict:
    """A sidecar in world/timeline.py's format: one segment per shot start."""
    ends = [*shot_starts[1:], len(actions)]
    segments = [{"start_frame": start, "end_frame": end, "kind": "gameplay"} for start, end in zip(shot_starts, ends)]
    return {"id": video_id, "fps": fps, "n_frames": len(actions), "segments": segments, "actions": actions}


def corpus_with(tmp_path, *truths: dict):
    (tmp_path / "truth").mkdir(exist_ok=True)
    for truth in truths:
        (tmp_path / "truth" / f"{truth['id']}.json").write_text(json.dumps(truth))
    return WorldTruth(tmp_path)


def clip_meta(start_frame: int, n_frames: int, fps: int = 30, video_id: str = "vid") -> dict:
    return {"clip_id": "c", "video_id": video_id, "start_frame": start_frame, "start_s": start_frame / fps,
            "n_frames": n_frames}


def test_a_transition_takes_the_action_pressed_most_and_the_latest_on_a_tie():
    """Frames (0,3): R,R,L -> R; (3,6): L,L,R -> L; (1,3) with R,L tied -> L, the later."""
    truth = sidecar([R, R, L, L, L, R, J])
    assert transition_actions(truth, [0, 3, 6]).tolist() == [R, L]
    assert transition_actions(truth, [1, 3]).tolist() == [L]


def test_transitions_outside_gameplay_or_across_shots_are_unknown():
    """A -1 (title screen) inside the span, or samples in two shots: UNKNOWN."""
    truth = sidecar([-1, -1, R, R, R, R, L, L, L, L], shot_starts=(0, 2, 6))
    assert transition_actions(truth, [0, 3]).tolist() == [UNKNOWN]  # frames 0..2 include the title
    assert transition_actions(truth, [3, 6]).tolist() == [UNKNOWN]  # frame 6 starts another shot
    assert transition_actions(truth, [6, 9]).tolist() == [L]


def test_clip_samples_are_every_third_source_frame_at_30_fps(tmp_path):
    """A clip starting at source frame 6: samples at 6, 9, 12, ... so transitions read 3 frames each."""
    actions = [I] * 6 + [R] * 3 + [L] * 3 + [J] * 3 + [I] * 3
    truth = corpus_with(tmp_path, sidecar(actions))
    assert truth.clip_actions(clip_meta(6, 4)).tolist() == [R, L, J]


def test_clip_samples_follow_the_source_rate_at_60_fps(tmp_path):
    """At 60 fps samples are 6 frames apart: a clip from frame 6 reads frames 6..11 for its first transition."""
    actions = [I] * 6 + [R] * 6 + [L] * 6 + [I]
    truth = corpus_with(tmp_path, sidecar(actions, fps=60))
    assert truth.clip_actions(clip_meta(6, 3, fps=60)).tolist() == [R, L]


def test_a_video_without_a_sidecar_has_no_true_actions(tmp_path):
    """Real footage beside the world (no truth/<id>.json): None, not an error."""
    assert corpus_with(tmp_path).clip_actions(clip_meta(0, 4, video_id="smb-1-1")) is None


@pytest.mark.parametrize(("meta", "message"), [
    ({**clip_meta(3, 4), "start_s": 0.5}, "not this video's sidecar"),
    (clip_meta(3, 10), "reaches source frame"),
    (clip_meta(4, 3), "no sample"),
    (clip_meta(0, 3, video_id="../etc/passwd"), "not a video id"),
])
def test_clips_that_do_not_fit_their_sidecar_are_refused(tmp_path, meta, message):
    """A start time off the sidecar's rate, a clip past the video's end, a start that is no
    10 FPS sample, an id that is no id: ValueError naming it."""
    truth = corpus_with(tmp_path, sidecar([R] * 20))
    with pytest.raises(ValueError, match=message):
        truth.clip_actions(meta)


def test_a_folder_without_truth_is_not_a_world_corpus(tmp_path):
    """WorldTruth on a folder with no truth/: FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="not an offline-world corpus"):
        WorldTruth(tmp_path)


def test_ingested_world_clips_get_the_actions_of_their_own_source_frames(tmp_path):
    """A rendered upload (title, hard cut, gameplay) through ingest's video processing: each
    clip's samples match the source frames the truth names (better than frames one or two
    off), the title clip's transitions are unknown and the gameplay clip's are the agent's."""
    from pipeline.process_video import SHARDS, ProcessVideo, SplitConfig
    from pipeline.quality import HeuristicConfig, QualityConfig
    from pipeline.rows import to_batch, to_rows
    from pipeline.shards import ShardConfig
    from schemas.shard import clip_source_frames, decode_sample
    from schemas.shard_io import iter_samples, list_shards
    from world.timeline import VideoPlan, Shot, play
    from world.video import plan_frames, render_video

    gameplay = play(level_seed=5, agent="scripted", agent_seed=1, max_frames=150, fps=30)
    assert len(gameplay) == 150
    plan = VideoPlan("world-vid", True, 30, (
        Shot("title", 60, 1, theme="meadow", text=("Pixel Quest",), style_seed=1),
        Shot("gameplay", 150, 5, theme="meadow", level_seed=5, actions=gameplay),
    ), ("hard",))
    (tmp_path / "corpus" / "truth").mkdir(parents=True)
    video = tmp_path / "corpus" / "world-vid.mp4"
    truth_json = render_video(plan, video, preset="ultrafast")
    (tmp_path / "corpus" / "truth" / "world-vid.json").write_text(json.dumps(truth_json))
    row = {"video_id": "world-vid", "url": "http://site/watch/world-vid", "queries": ["q"], "status": "ok",
           "stage": "download", "reason": None, "path": str(video)}
    keep_all = QualityConfig(heuristic=HeuristicConfig(black_lit=0, uniform_std=1e-9, static_motion=1e-9, static_median=0))  # the title too
    (processed,) = to_rows(ProcessVideo(SplitConfig(), keep_all, ShardConfig(), tmp_path / "out", "test")(to_batch([row])))
    assert processed["status"] == "ok", processed["reason"]

    source = np.stack([cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA) for frame in plan_frames(plan)])
    truth = WorldTruth(tmp_path / "corpus")
    labels_by_start = {}
    for shard in list_shards([str(tmp_path / "out" / SHARDS)]):
        for sample in iter_samples(shard):
            frames, meta = decode_sample(sample)
            labels_by_start[meta["start_frame"]] = truth.clip_actions(meta)
            if meta["start_frame"] == 60:  # gameplay moves, so a frame off shows (the title is still)
                named = np.array(clip_source_frames(meta["start_frame"], meta["n_frames"], 30))
                errors = [np.abs(frames[2:-2].astype(int) - source[named[2:-2] + shift]).mean() for shift in (-2, -1, 0, 1, 2)]
                assert errors[2] < min(errors[:2] + errors[3:]), errors
    assert sorted(labels_by_start) == [0, 60]
    assert (labels_by_start[0] == UNKNOWN).all()
    gameplay_labels = labels_by_start[60]
    assert len(gameplay_labels) == 49 and (gameplay_labels >= 0).all()
    assert set(gameplay_labels.tolist()) <= set(gameplay)
