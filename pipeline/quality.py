"""Quality stage: a scorer judges each clip's frames; clips it rejects are dropped with its reason.

The scorer interface is what the learned classifier (its own issue: the paper's 1-5 human
labels, trained on 5 = good vs 1 = bad) will implement: `name`, and a call on a batch of
clips returning one ClipScore each (a score in [0, 1], higher is better, and a reason when
the clip should be dropped). Until then, HeuristicScorer drops what no model is needed for:

- "black":   the median frame's mean luma is under `black_luma` (fades, blank screens);
- "uniform": the median frame's luma standard deviation is under `uniform_std` (one flat
             colour: a blank slide, a loading screen);
- "static":  the mean absolute luma change between consecutive samples is under
             `static_motion` (a still slide, a paused game, a title card).

Its score is min(1, measure / threshold) over the three tests: 1 passes all, below 1 names
how far the weakest test fell short. Face-cams, letterboxes and off-topic footage with motion
pass it; catching those is the learned classifier's job.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import cv2
import numpy as np

from pipeline.rows import Batch, dropped, is_ok, to_batch, to_rows

STAGE = "quality"


@dataclasses.dataclass(frozen=True)
class ClipScore:
    score: float  # in [0, 1], higher is better
    reason: str | None  # why the clip should be dropped; None keeps it


class ClipScorer(Protocol):
    """Scores clips from their frames, each (T, 90, 160, 3) uint8 RGB."""

    name: str

    def __call__(self, clips: Sequence[np.ndarray]) -> list[ClipScore]: ...


@dataclasses.dataclass(frozen=True)
class HeuristicConfig:
    """Thresholds of the heuristic scorer (luma in 0..255)."""

    black_luma: float = 20.0
    uniform_std: float = 6.0
    static_motion: float = 0.5


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Which scorer judges clips."""

    scorer: Literal["heuristic"] = "heuristic"
    heuristic: HeuristicConfig = HeuristicConfig()


class HeuristicScorer:
    """Drops black, near-uniform and static clips (see the module docstring)."""

    name = "heuristic-v1"

    def __init__(self, config: HeuristicConfig) -> None:
        self.config = config

    def __call__(self, clips: Sequence[np.ndarray]) -> list[ClipScore]:
        return [self.score(frames) for frames in clips]

    def score(self, frames: np.ndarray) -> ClipScore:
        count, height, width, _ = frames.shape
        luma = cv2.cvtColor(frames.reshape(count * height, width, 3), cv2.COLOR_RGB2GRAY).reshape(count, height, width)
        luma = np.ascontiguousarray(luma[:, ::2, ::2]).reshape(count, -1)  # every 4th pixel: same means, 4x cheaper
        brightness = float(np.median(luma.mean(axis=1)))
        detail = float(np.median(luma.std(axis=1)))
        motion = float(cv2.absdiff(luma[1:], luma[:-1]).mean()) if count > 1 else 0.0
        tests = (
            ("black", brightness, self.config.black_luma, "mean luma"),
            ("uniform", detail, self.config.uniform_std, "luma std"),
            ("static", motion, self.config.static_motion, "mean luma change"),
        )
        score = min(1.0, *(measure / threshold for _, measure, threshold, _ in tests))
        for code, measure, threshold, what in tests:
            if measure < threshold:
                return ClipScore(score, f"{code}: {what} {measure:.2f} < {threshold}")
        return ClipScore(score, None)


def make_scorer(config: QualityConfig) -> ClipScorer:
    """The scorer a config names."""
    if config.scorer == "heuristic":
        return HeuristicScorer(config.heuristic)
    raise ValueError(f"quality.scorer {config.scorer!r} is not known")


class QualityFilter:
    """Stage: clip rows with a `frames` column -> the same rows with `quality_score` and
    `quality_scorer`, dropped with the scorer's reason when it rejects them. Rows that are
    not ok pass through unscored."""

    def __init__(self, scorer: ClipScorer) -> None:
        self.scorer = scorer

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        rows = to_rows(batch)
        scores = iter(self.scorer([row["frames"] for row in rows if is_ok(row)]))
        judged = []
        for row in rows:
            if not is_ok(row):
                judged.append({**row, "quality_score": row.get("quality_score"), "quality_scorer": row.get("quality_scorer")})
                continue
            verdict = next(scores)
            scored = {**row, "quality_score": verdict.score, "quality_scorer": self.scorer.name}
            judged.append(scored if verdict.reason is None else dropped(scored, STAGE, verdict.reason))
        return to_batch(judged, columns=[*batch, "quality_score", "quality_scorer"])
