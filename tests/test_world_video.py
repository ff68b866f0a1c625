import json
import subprocess

import numpy as np
import pytest

from world.env import PlatformerEnv
from world.timeline import Shot, VideoPlan, plan_gameplay_video, plan_offtopic_video
from world.video import render_video, shot_frames

FPS = 30
# A hard cut moves the mean pixel by > 35/255 in these videos; motion inside a shot by < 12.
CUT_THRESHOLD = 20.0


def _decode(path) -> np.ndarray:
    """Every frame of the MP4 scaled back down to the game's 160x90 (area average)."""
    command = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "scale=160:90:flags=area",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 90, 160, 3)


def _plan_with_both_cut_kinds() -> VideoPlan:
    for seed in range(100):
        plan = plan_gameplay_video("testvideo01", seed, FPS, 15.0)
        clean = any(shot.kind == "gameplay" and shot.junk is None for shot in plan.shots)
        if {"hard", "fade"} <= set(plan.transitions) and clean:
            return plan
    raise AssertionError("no seed under 100 plans both a hard cut and a fade")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    plan = _plan_with_both_cut_kinds()
    path = tmp_path_factory.mktemp("video") / "testvideo01.mp4"
    truth = render_video(plan, path)
    return plan, truth, path, _decode(path)


def test_upload_is_h264_640x360_30fps_with_every_planned_frame(rendered):
    """ffprobe sees H.264 yuv420p at 640x360, 30 fps, and the sidecar's frame count."""
    plan, truth, path, frames = rendered
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_frames", "-of", "json", str(path)]
    stream = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "pix_fmt": "yuv420p", "width": 640, "height": 360,
                      "r_frame_rate": "30/1", "nb_frames": str(truth["n_frames"])}
    assert len(frames) == truth["n_frames"] == plan.n_frames


def test_hard_cuts_in_the_file_are_the_sidecar_hard_cuts(rendered):
    """Frame-difference spikes of the decoded MP4 fall exactly on the sidecar's hard cuts."""
    plan, truth, _, frames = rendered
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))  # change[i]: frame i -> i+1
    fading = set()
    for cut in truth["cuts"]:
        if cut["kind"] == "fade":
            fading.update(range(cut["frame"] - plan.fade_frames, cut["frame"] + plan.fade_frames + 1))
    spikes = {i + 1 for i in np.flatnonzero(change > CUT_THRESHOLD) if i + 1 not in fading}
    assert spikes == {cut["frame"] for cut in truth["cuts"] if cut["kind"] == "hard"}
    assert all(abs(cut["time_s"] - cut["frame"] / FPS) < 1e-6 for cut in truth["cuts"])


def test_fades_dip_to_black_on_the_sidecar_cut_frame(rendered):
    """Around each fade the darkest decoded frame is the sidecar's cut frame, and it is black."""
    plan, truth, _, frames = rendered
    fades = [cut["frame"] for cut in truth["cuts"] if cut["kind"] == "fade"]
    assert fades
    for cut in fades:
        window = frames[cut - plan.fade_frames:cut + plan.fade_frames + 1].mean(axis=(1, 2, 3))
        assert int(np.argmin(window)) == plan.fade_frames and window.min() < 3


def test_sidecar_actions_replay_to_the_video_frames(rendered):
    """Replaying a clean gameplay segment's actions in the env reproduces its decoded frames,
    and matches them better than the same replay one frame out of step."""
    plan, truth, _, frames = rendered
    segment = next(s for s in truth["segments"] if s["kind"] == "gameplay" and s["junk"] is None)
    env = PlatformerEnv(seed=segment["level_seed"], theme=segment["theme"], fps=FPS)
    observations = [env.reset()[0]]
    for index in range(segment["start_frame"], segment["end_frame"] - 1):
        observations.append(env.step(truth["actions"][index])[0])
    margin = plan.fade_frames + 1  # frames near a fade are dimmed on purpose
    start, end = segment["start_frame"] + margin, segment["end_frame"] - margin

    def error(offset: int) -> np.ndarray:
        video = frames[start + offset:end + offset].astype(np.int16)
        replay = np.stack(observations[margin:len(observations) - margin])
        return np.abs(video - replay).mean(axis=(1, 2, 3))

    assert error(0).max() < 4
    assert error(0).mean() < 0.9 * error(1).mean()


def test_sidecar_follows_the_corpus_contract(rendered):
    """Segments tile the video, cuts sit on segment starts, actions are -1 exactly off gameplay."""
    _, truth, _, _ = rendered
    assert set(truth) == {"id", "on_topic", "fps", "n_frames", "cuts", "segments", "actions"}
    segments = truth["segments"]
    assert segments[0]["start_frame"] == 0 and segments[-1]["end_frame"] == truth["n_frames"]
    assert all(a["end_frame"] == b["start_frame"] for a, b in zip(segments, segments[1:]))
    assert [cut["frame"] for cut in truth["cuts"]] == [s["start_frame"] for s in segments[1:]]
    for segment in segments:
        actions = truth["actions"][segment["start_frame"]:segment["end_frame"]]
        assert 1 <= segment["quality"] <= 5
        if segment["kind"] == "gameplay":
            assert all(0 <= action < 8 for action in actions) and isinstance(segment["level_seed"], int)
        else:
            assert set(actions) == {-1} and segment["level_seed"] is None


def test_letterbox_and_facecam_are_drawn_over_gameplay():
    """Letterboxed gameplay has black bars; a face-cam changes one corner of the picture."""
    actions = (0,) * 5

    def first_frame(junk, style_seed):
        shot = Shot("gameplay", 5, 3, junk=junk, theme="meadow", level_seed=7, actions=actions, style_seed=style_seed)
        return next(iter(shot_frames(shot, FPS))).copy()

    clean, pillars, bars = first_frame(None, 0), first_frame("letterbox", 0), first_frame("letterbox", 1)
    assert clean[:, :40].any() and pillars[:, :40].max() == 0 and pillars[:, -40:].max() == 0
    assert bars[:22].max() == 0 and bars[-22:].max() == 0
    changed = np.abs(first_frame("facecam", 9).astype(int) - clean).sum(axis=-1) > 0
    assert 0.05 < changed.mean() < 0.2


def test_offtopic_plan_is_labelled_offtopic():
    """An off-topic plan's sidecar says off-topic, with offtopic segments of quality 1."""
    truth = plan_offtopic_video("offtopic001", 3, FPS, 12.0, "cooking").truth()
    assert truth["on_topic"] is False
    assert {s["kind"] for s in truth["segments"]} == {"offtopic"} and {s["quality"] for s in truth["segments"]} == {1}
    assert set(truth["actions"]) == {-1}
