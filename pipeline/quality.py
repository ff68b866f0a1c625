"""Quality stage: a scorer judges each clip's frames; clips it rejects are dropped with its reason.

The scorer interface is what the learned classifier (its own issue: the paper's 1-5 human
labels, trained on 5 = good vs 1 = bad) will implement: `name`, and a call on a batch of
clips returning one ClipScore each (a score in [0, 1], higher is better, and a reason when
the clip should be dropped). Until then, HeuristicScorer drops what no model is needed for:

- "black":   the median frame has under `black_lit` of its pixels lit (luma >= `lit_luma`):
             fades, blank screens. Not the mean luma: dark gameplay (underground, castle and
             night levels) is a black background with bright tiles and sprites, mean luma 15-20,
             yet a tenth of it or more is lit, where a black screen has none;
- "uniform": the median frame's luma standard deviation is under `uniform_std` (one flat
             colour: a blank slide, a loading screen);
- "static":  the mean absolute luma change between consecutive samples is under
             `static_motion`, or its median over the clip's sample pairs is under
             `static_median` (a still slide, a paused game, a title card; the median also
             catches a still picture whose only change is a fade or a blinking prompt, which
             lift the mean).

Its score is min(1, measure / threshold) over the tests: 1 passes all, below 1 names
how far the weakest test fell short. Face-cams, letterboxes and off-topic footage with motion
pass it; catching those is the learned classifier's job.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import cv2
import numpy as np

from pipeline.rows import Batch, dropped, is_ok, to_batch, to_rows
from schemas.config import at_least, in_range

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

    lit_luma: float = 48.0
    black_lit: float = 0.02
    uniform_std: float = 6.0
    static_motion: float = 0.5
    static_median: float = 0.1

    def __post_init__(self) -> None:
        in_range(self, "lit_luma", 1, 255)
        in_range(self, "black_lit", 0, 1)
        at_least(self, uniform_std=0, static_motion=0, static_median=0)


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Which scorer judges clips."""

    scorer: Literal["heuristic"] = "heuristic"
    heuristic: HeuristicConfig = HeuristicConfig()


class HeuristicScorer:
    """Drops black, near-uniform and static clips (see the module docstring)."""

    name = "heuristic-v2"

    def __init__(self, config: HeuristicConfig) -> None:
        self.config = config

    def __call__(self, clips: Sequence[np.ndarray]) -> list[ClipScore]:
        return [self.score(frames) for frames in clips]

    def score(self, frames: np.ndarray) -> ClipScore:
        count, height, width, _ = frames.shape
        luma = cv2.cvtColor(frames.reshape(count * height, width, 3), cv2.COLOR_RGB2GRAY).reshape(count, height, width)
        luma = np.ascontiguousarray(luma[:, ::2, ::2]).reshape(count, -1)  # every 4th pixel: same means, 4x cheaper
        lit = float(np.median(np.count_nonzero(luma >= self.config.lit_luma, axis=1))) / luma.shape[1]
        detail = float(np.median(luma.std(axis=1)))
        changes = cv2.absdiff(luma[1:], luma[:-1]).mean(axis=1) if count > 1 else np.zeros(1)
        tests = (
            ("black", lit, self.config.black_lit, f"lit fraction (luma >= {self.config.lit_luma:g})"),
            ("uniform", detail, self.config.uniform_std, "luma std"),
            ("static", float(changes.mean()), self.config.static_motion, "mean luma change"),
            ("static", float(np.median(changes)), self.config.static_median, "median luma change"),
        )
        score = min([1.0, *(measure / threshold for _, measure, threshold, _ in tests if threshold > 0)])
        for code, measure, threshold, what in tests:
            if measure < threshold:
                return ClipScore(score, f"{code}: {what} {measure:.3g} < {threshold:g}")
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
