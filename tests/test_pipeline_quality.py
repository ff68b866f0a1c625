"""The quality stage and its heuristic scorer (pipeline/quality.py)."""

import copy

import numpy as np
import pytest

from pipeline.quality import HeuristicConfig, HeuristicScorer, QualityConfig, QualityFilter, make_scorers
from pipeline.rows import to_batch, to_rows

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


def clip_rows() -> list[dict]:
    rows = []
    for index, frames in enumerate([moving(), still()]):
        rows.append({"clip_id": f"c{index}", "status": "ok", "stage": "split", "reason": None, "frames": frames})
    rows.append({"clip_id": "c2", "status": "dropped", "stage": "split", "reason": "too_short: 3 < 16", "frames": None})
    return rows


def test_filter_scores_ok_rows_drops_rejected_and_passes_others_through():
    """Scored rows get score and scorer name; a rejected one is dropped by 'quality'; a row
    already dropped keeps its reason and gets no score."""
    out = to_rows(QualityFilter(make_scorers(QualityConfig()))(to_batch(clip_rows())))
    assert [(row["status"], row["stage"]) for row in out] == [("ok", "split"), ("dropped", "quality"), ("dropped", "split")]
    assert out[0]["quality_score"] == 1.0 and out[0]["quality_scorer"] == "heuristic-v1"
    assert out[1]["reason"].startswith("static")
    assert (out[2]["quality_score"], out[2]["reason"]) == (None, "too_short: 3 < 16")


def test_filter_does_not_change_its_input():
    """The batch given to the filter is left as it was."""
    batch = to_batch(clip_rows())
    before = copy.deepcopy(batch)
    QualityFilter(make_scorers(QualityConfig()))(batch)
    assert batch.keys() == before.keys()
    for name in batch:
        for value, original in zip(batch[name], before[name]):
            assert np.array_equal(value, original) if isinstance(value, np.ndarray) else value == original
