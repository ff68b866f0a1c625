"""Scene cuts (pipeline/scenes.py): PySceneDetect's adaptive detector, vectorised, plus fades;
measured against the offline world's ground-truth cuts."""

import dataclasses
import json
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from scenedetect.common import FrameTimecode
from scenedetect.detectors import AdaptiveDetector

from pipeline.process_video import ProcessVideo, SplitConfig
from pipeline.quality import QualityConfig
from pipeline.scenes import AdaptiveCuts, PySceneDetectCuts, SceneConfig, SceneCuts
from pipeline.shards import ShardConfig
from schemas.config import ConfigError, from_dict
from schemas.manifest import VIDEO_SCHEMA
from world.corpus import CorpusConfig, generate_corpus

RNG = np.random.default_rng(2)


def small_frames(path, width=64, height=36) -> np.ndarray:
    command = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={width}:{height}:flags=area,format=rgb24",
               "-f", "rawvideo", "-"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def push_all(detector, frames: np.ndarray, chunk: int) -> list[int]:
    for start in range(0, len(frames), chunk):
        detector.push(frames[start : start + chunk])
    if isinstance(detector, SceneCuts):
        detector.finish()
    return detector.cuts


@pytest.mark.parametrize("level", ["smb_1_2", "smb_2_2", "smb_3_1"])
def test_adaptive_cuts_equal_pyscenedetects_own_on_the_same_frames(smb_dir, level):
    """On real footage, the vectorised detector without its grey-out (dark_floor and
    grey_saturation 0) cuts exactly where PySceneDetect's AdaptiveDetector.process_frame does
    when fed the same frames."""
    frames = small_frames(smb_dir / f"{level}.mp4")
    reference = AdaptiveDetector()
    expected = []
    for index, frame in enumerate(frames):
        expected += [cut.frame_num for cut in reference.process_frame(FrameTimecode(index, fps=60.0), frame[..., ::-1].copy())]
    assert push_all(AdaptiveCuts(SceneConfig(dark_floor=0, grey_saturation=0)), frames, chunk=97) == expected


def test_a_dark_level_is_one_scene_for_both_detectors(smb_dir):
    """SMB 3-2 (a night level: black sky, MPEG-4) is continuous gameplay. Without the grey-out
    the codec's noise in the black cuts it at keyframes; with it neither detector cuts it."""
    frames = small_frames(smb_dir / "smb_3_2.mp4")
    ungreyed = SceneConfig(dark_floor=0, grey_saturation=0)
    assert len(push_all(AdaptiveCuts(ungreyed), frames, chunk=64)) >= 5
    assert push_all(AdaptiveCuts(SceneConfig()), frames, chunk=64) == []
    assert push_all(PySceneDetectCuts(SceneConfig(), Fraction(60)), frames, chunk=64) == []


@pytest.mark.parametrize("key, value", [("dark_floor", 256), ("grey_saturation", -1)])
def test_grey_out_thresholds_out_of_range_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'scenes.{key}'"):
        from_dict(SplitConfig, {"scenes": {key: value}})


def shot(count: int, seed: int, brightness: float = 1.0) -> np.ndarray:
    """A textured shot that scrolls, scaled to `brightness`."""
    texture = np.random.default_rng(seed).integers(40, 220, (36, 64 + 2 * count, 3)).astype(np.float32)
    return np.stack([texture[:, 2 * t : 2 * t + 64] * brightness for t in range(count)]).astype(np.uint8)


def fade(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """a then b, dipping linearly to black over `width` frames either side of b's first frame."""
    frames = np.concatenate([a, b]).astype(np.float32)
    cut = len(a)
    for index in range(cut - width + 1, cut + width):
        frames[index] *= abs(index - cut) / width
    return frames.astype(np.uint8)


def test_a_fade_through_black_is_one_cut_at_its_darkest_frame():
    """A dip to black between two shots is found at its middle, once."""
    frames = fade(shot(90, 1), shot(90, 2, 0.6), width=10)
    assert push_all(SceneCuts(SceneConfig(), Fraction(30)), frames, chunk=40) == [90]


def test_a_black_shot_between_hard_cuts_is_two_cuts_not_a_fade():
    """Shot, 20 black frames, shot: cuts where black starts and ends, none in its middle."""
    frames = np.concatenate([shot(60, 3), np.zeros((20, 36, 64, 3), np.uint8), shot(60, 4)])
    assert push_all(SceneCuts(SceneConfig(), Fraction(30)), frames, chunk=33) == [60, 80]


@pytest.mark.parametrize("chunk", [1, 33])
def test_a_dim_shot_cut_to_black_and_back_is_cut_at_both_edges(chunk):
    """Grey, dim shots (mean ~13) either side of 20 black frames: the adaptive detector's
    scores are small there, the black edges are cuts; chunking does not move them."""
    grey = shot(60, 5, 0.1).mean(axis=-1, keepdims=True).repeat(3, axis=-1).astype(np.uint8)
    frames = np.concatenate([grey, np.zeros((20, 36, 64, 3), np.uint8), grey[::-1]])
    assert AdaptiveCuts(SceneConfig()).push(frames) == []
    assert push_all(SceneCuts(SceneConfig(), Fraction(30)), frames, chunk=chunk) == [60, 80]


def test_cuts_do_not_depend_on_chunking(smb_dir):
    """Pushing the same frames in chunks of 1, 7 or all at once gives the same cuts (1-2's last
    frames are its pipe out into daylight: a cut)."""
    frames = small_frames(smb_dir / "smb_1_2.mp4")[850:]
    results = {size: push_all(SceneCuts(SceneConfig(), Fraction(60)), frames, chunk=size) for size in (1, 7, len(frames))}
    assert len(set(map(tuple, results.values()))) == 1 and results[1]


@pytest.fixture(scope="module")
def world_corpus(tmp_path_factory):
    """Six offline-world uploads (hard cuts, fades, black gaps, slides, off-topic) with truth."""
    root = tmp_path_factory.mktemp("world")
    generate_corpus(CorpusConfig(seed=11, videos=6, offtopic=1, min_duration_s=15, max_duration_s=25), root)
    return root


def video_row(world_corpus, video_id: str) -> dict:
    row = {name: None for name in VIDEO_SCHEMA.names}
    row.update(video_id=video_id, url="http://site/x", queries=["q"], status="ok", stage="download",
               path=str(world_corpus / "videos" / f"{video_id}.mp4"))  # fmt: skip
    return row


def test_pyscenedetects_own_detector_cuts_a_world_video_as_the_default_does(world_corpus, tmp_path):
    """split.scenes.detector = "pyscenedetect" (its AdaptiveDetector on the decoded detection
    frames) gives the same scenes as the vectorised default on a world video with several cuts."""
    truth = max(sorted((world_corpus / "truth").glob("*.json")), key=lambda path: len(json.loads(path.read_text())["cuts"]))
    spans = {}
    for detector in ("adaptive", "pyscenedetect"):
        split = SplitConfig(scenes=dataclasses.replace(SceneConfig(), detector=detector))
        video = ProcessVideo(split, QualityConfig(), ShardConfig(), tmp_path / detector, "test").process(video_row(world_corpus, truth.stem))
        assert video["status"] == "ok", video["reason"]
        spans[detector] = video["scene_spans"]
    assert spans["pyscenedetect"] == spans["adaptive"] and len(spans["adaptive"]) >= 4


def test_cuts_on_the_offline_world_match_the_truth_within_one_frame(world_corpus, tmp_path):
    """The pipeline's scene starts match the sidecars' cuts within one source frame, F1 >= 0.95."""
    stage = ProcessVideo(SplitConfig(), QualityConfig(), ShardConfig(), tmp_path, "test")
    true_positive = found_total = truth_total = 0
    for truth_path in sorted((world_corpus / "truth").glob("*.json")):
        truth = [cut["frame"] for cut in json.loads(truth_path.read_text())["cuts"]]
        video = stage.process(video_row(world_corpus, truth_path.stem))
        assert video["status"] == "ok", video["reason"]
        found = [span["start_frame"] for span in video["scene_spans"][1:]]
        unmatched = list(truth)
        for cut in found:
            match = next((frame for frame in unmatched if abs(frame - cut) <= 1), None)
            if match is not None:
                unmatched.remove(match)
                true_positive += 1
        found_total += len(found)
        truth_total += len(truth)
    f1 = 2 * true_positive / (found_total + truth_total)
    assert truth_total >= 15 and f1 >= 0.95, (true_positive, found_total, truth_total)
