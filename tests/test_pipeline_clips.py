"""Scenes into 16 s clips (pipeline/clips.py)."""

from fractions import Fraction

import numpy as np
import pytest

from pipeline.clips import ClipAssembler, ClipConfig
from pipeline.decode import sample_frame
from schemas import ids
from schemas.manifest import CLIP_SCHEMA

FPS = Fraction(60)


def samples(n_frames: int, fps: Fraction = FPS) -> list[tuple[int, np.ndarray]]:
    """The 10 FPS samples of a video of n_frames, each frame filled with its sample number."""
    out, k = [], 0
    while sample_frame(k, fps) < n_frames:
        out.append((sample_frame(k, fps), np.full((90, 160, 3), k % 256, np.uint8)))
        k += 1
    return out


def cut(n_frames: int, cuts: list[int], config: ClipConfig = ClipConfig(), fps: Fraction = FPS):
    assembler = ClipAssembler("site:abc", fps, config)
    assembler.add_cuts(cuts)
    clips = assembler.add_samples(samples(n_frames, fps)) + assembler.finish(n_frames)
    return assembler, clips


def test_a_long_scene_becomes_full_16_second_clips_that_tile_it():
    """40 s of one scene: two clips of exactly 16 s (960 source frames) and the rest, end to end."""
    _, clips = cut(2400, [])
    spans = [(row["start_frame"], row["end_frame"], row["n_frames"]) for row, _ in clips]
    assert spans == [(0, 960, 160), (960, 1920, 160), (1920, 2400, 80)]
    assert [row["end_s"] - row["start_s"] for row, _ in clips][:2] == [16.0, 16.0]


def test_clips_never_cross_a_cut_and_carry_their_scene_index():
    """A cut at frame 700 ends the first clip there; the next clip starts at its first sample."""
    assembler, clips = cut(1500, [700])
    assert [(row["scene_index"], row["start_frame"], row["end_frame"]) for row, _ in clips] == [(0, 0, 700), (1, 702, 1500)]
    assert [(scene.start_frame, scene.end_frame) for scene in assembler.scenes] == [(0, 700), (700, 1500)]


def test_short_clips_are_dropped_with_reason_and_no_frames():
    """A scene with fewer samples than min_frames gives a dropped row and no frames."""
    _, clips = cut(1000, [60], ClipConfig(min_frames=16))
    (short, short_frames), (long, long_frames) = clips
    assert (short["status"], short["reason"].split(":")[0], short_frames) == ("dropped", "too_short", None)
    assert long["status"] == "ok" and long_frames.shape == (long["n_frames"], 90, 160, 3)


def test_frames_are_the_samples_in_order_and_ids_are_deterministic():
    """A clip's frames are its samples in order; its id comes from the video id and span."""
    _, clips = cut(1200, [])
    row, frames = clips[1]
    assert frames[0, 0, 0, 0] == 160 and frames[-1, 0, 0, 0] == (199 % 256)
    assert row["clip_id"] == ids.clip_id("site:abc", row["start_frame"], row["end_frame"])


def test_ntsc_rate_spans_are_exact_fractions_of_the_rate():
    """At 30000/1001 fps a clip's seconds are frames * 1001 / 30000 exactly (as floats)."""
    fps = Fraction(30000, 1001)
    _, clips = cut(1000, [], fps=fps)
    row, _ = clips[0]
    assert row["end_frame"] == sample_frame(160, fps)
    assert row["end_s"] == pytest.approx(row["end_frame"] * 1001 / 30000, abs=1e-12)


def test_rows_have_only_clip_schema_fields():
    """Every field of a clip row is a column of the manifest's clip table."""
    _, clips = cut(600, [])
    assert set(clips[0][0]) <= set(CLIP_SCHEMA.names)


def test_bad_clip_lengths_are_a_configuration_error():
    """min_frames above max_frames, or max_frames above 160, is rejected."""
    for bad in ({"min_frames": 20, "max_frames": 10}, {"max_frames": 161}):
        with pytest.raises(ValueError):
            ClipConfig(**bad)
