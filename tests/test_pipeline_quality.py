"""The quality stage and its heuristic scorer (pipeline/quality.py)."""

import copy

import numpy as np
import pytest

from pipeline.quality import HeuristicConfig, HeuristicScorer, QualityConfig, QualityFilter, make_scorer
from pipeline.rows import to_batch, to_rows
from schemas.config import ConfigError, from_dict

RNG = np.random.default_rng(0)


def moving(count: int = 20) -> np.ndarray:
    """A textured picture that scrolls 3 pixels a frame."""
    base = RNG.integers(0, 255, (90, 400, 3), np.uint8)
    return np.stack([base[:, 3 * t : 3 * t + 160] for t in range(count)])


def still(count: int = 20) -> np.ndarray:
    image = RNG.integers(0, 255, (90, 160, 3), np.uint8)
    return np.repeat(image[None], count, axis=0)


def flat(value: int, count: int = 20) -> np.ndarray:
    return np.full((count, 90, 160, 3), value, np.uint8)


@pytest.mark.parametrize("frames, code", [(flat(3), "black"), (flat(128), "uniform"), (still(), "static")])
def test_heuristic_drops_black_uniform_and_static_clips_naming_why(frames, code):
    """Black, single-colour and motionless clips score below 1 with the failing test as reason."""
    (score,) = HeuristicScorer(HeuristicConfig())([frames])
    assert score.reason.split(":")[0] == code
    assert 0.0 <= score.score < 1.0


def test_heuristic_keeps_a_moving_textured_clip():
    """A clip with detail and motion passes every test with score 1."""
    (score,) = HeuristicScorer(HeuristicConfig())([moving()])
    assert (score.score, score.reason) == (1.0, None)


def dark_gameplay(count: int = 20) -> np.ndarray:
    """Bright ground and a moving sprite on black, like an underground level: mean luma ~15."""
    frames = np.zeros((count, 90, 160, 3), np.uint8)
    ground = RNG.integers(60, 200, (12, 400, 3), np.uint8)
    for t in range(count):
        frames[t, 78:] = ground[:, 2 * t : 2 * t + 160]
        frames[t, 60:70, 40 + t : 47 + t] = (228, 92, 16)
    return frames


def test_heuristic_keeps_dark_gameplay_and_drops_its_fade_out():
    """A black background with bright sprites is gameplay, not black; the same picture faded
    to black is black."""
    frames = dark_gameplay()
    assert frames.mean() < 20
    faded = (frames * np.linspace(0.2, 0.0, len(frames))[:, None, None, None]).astype(np.uint8)
    kept, black = HeuristicScorer(HeuristicConfig())([frames, faded])
    assert (kept.score, kept.reason) == (1.0, None)
    assert black.reason.startswith("black: lit fraction")


def test_heuristic_drops_a_still_picture_whose_only_change_is_a_fade():
    """A slide fading in over a few samples has a mean change above static_motion; its median
    change is 0, so it is still static."""
    frames = still(30).astype(np.float32)
    frames[:5] *= np.linspace(0.0, 0.8, 5)[:, None, None, None]
    (score,) = HeuristicScorer(HeuristicConfig())([frames.astype(np.uint8)])
    assert score.reason.startswith("static: median luma change")


@pytest.mark.parametrize("key, value", [("black_lit", 1.5), ("lit_luma", 0), ("static_median", -1)])
def test_heuristic_thresholds_out_of_range_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"'heuristic.{key}'"):
        from_dict(QualityConfig, {"heuristic": {key: value}})


def clip_rows() -> list[dict]:
    rows = []
    for index, frames in enumerate([moving(), still()]):
        rows.append({"clip_id": f"c{index}", "status": "ok", "stage": "split", "reason": None, "frames": frames})
    rows.append({"clip_id": "c2", "status": "dropped", "stage": "split", "reason": "too_short: 3 < 16", "frames": None})
    return rows


def test_filter_scores_ok_rows_drops_rejected_and_passes_others_through():
    """Scored rows get score and scorer name; a rejected one is dropped by 'quality'; a row
    already dropped keeps its reason and gets no score."""
    out = to_rows(QualityFilter(make_scorer(QualityConfig()))(to_batch(clip_rows())))
    assert [(row["status"], row["stage"]) for row in out] == [("ok", "split"), ("dropped", "quality"), ("dropped", "split")]
    assert out[0]["quality_score"] == 1.0 and out[0]["quality_scorer"] == "heuristic-v2"
    assert out[1]["reason"].startswith("static")
    assert (out[2]["quality_score"], out[2]["reason"]) == (None, "too_short: 3 < 16")


def test_filter_does_not_change_its_input():
    """The batch given to the filter is left as it was."""
    batch = to_batch(clip_rows())
    before = copy.deepcopy(batch)
    QualityFilter(make_scorer(QualityConfig()))(batch)
    assert batch.keys() == before.keys()
    for name in batch:
        for value, original in zip(batch[name], before[name]):
            assert np.array_equal(value, original) if isinstance(value, np.ndarray) else value == original
