"""Quality stage: scorers judge each clip's frames, in order; the first that rejects a clip
drops it with its reason.

A scorer has a `name` and a call on a batch of clips returning one ClipScore each (a score in
[0, 1], higher is better, a reason when the clip should be dropped, and optionally the clip's
embedding). Two scorers, picked by `QualityConfig.scorer` ("heuristic", "learned", or
"heuristic+learned": the cheap one first, so the model only sees what it leaves):

LearnedScorer is the paper's classifier (models/quality.py, trained by `genie quality train`
on 1-5 labels): it keeps a clip when its predicted probability of "good" reaches the model's
threshold, and gives every clip its embedding (for near-duplicate removal).

HeuristicScorer drops what no model is needed for:

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

Scorers judge the source's picture: a clip row's `content_box` (x, y, width, height: where the
source lies inside the 160x90 frame, set when the decoder padded a source that is not 16:9)
is cut out first, so a 4:3 game is not mistaken for letterboxed footage. Bars burned into a
16:9 upload are part of its picture, and are judged.
"""

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import cv2
import numpy as np

from pipeline.rows import Batch, dropped, is_ok, to_batch, to_rows
from schemas.config import ConfigError, at_least, in_range

STAGE = "quality"
SCORERS = ("heuristic", "learned", "heuristic+learned")


@dataclasses.dataclass(frozen=True)
class ClipScore:
    score: float  # in [0, 1], higher is better
    reason: str | None  # why the clip should be dropped; None keeps it
    embedding: np.ndarray | None = None  # (D,) float32, unit norm; learned scorers only


class ClipScorer(Protocol):
    """Scores clips from their frames, each (T, H, W, 3) uint8 RGB."""

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
class LearnedConfig:
    """The learned scorer: a model folder written by `genie quality train`."""

    # The model folder (config.json + model.safetensors); relative paths are from the working
    # directory, "package:NAME" names a model shipped in jobs/configs/.
    model_dir: str = ""
    # Keep a clip when P(good) >= threshold; < 0: the threshold chosen when the model was trained.
    threshold: float = -1.0
    # Clips per forward pass. 1: a clip's score never depends on which clips share its batch
    # (batched convolutions differ in the last bits), so reruns write identical manifests and
    # shards; ~340 clips per CPU-second that way, ~600 at 32. Raise it on a GPU.
    batch_size: int = 1
    # "auto": a GPU when one is visible, else the CPU; or "cpu" / "cuda".
    device: str = "auto"

    def __post_init__(self):
        if self.threshold > 1.0:
            raise ConfigError(f"threshold must be <= 1 (< 0: the model's own), got {self.threshold}", "threshold")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}", "batch_size")


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Which scorers judge clips, in order."""

    scorer: Literal["heuristic", "learned", "heuristic+learned"] = "heuristic"
    heuristic: HeuristicConfig = HeuristicConfig()
    learned: LearnedConfig = LearnedConfig()

    def __post_init__(self):
        if self.scorer not in SCORERS:
            raise ConfigError(f"scorer must be one of {', '.join(SCORERS)}, got {self.scorer!r}", "scorer")
        if "learned" in self.scorer and not self.learned.model_dir:
            raise ConfigError("scorer uses the learned model but learned.model_dir is empty", "learned.model_dir")

    @property
    def uses_learned(self) -> bool:
        return "learned" in self.scorer


class HeuristicScorer:
    """Drops black, near-uniform and static clips (see the module docstring)."""

    name = "heuristic-v2"

    def __init__(self, config: HeuristicConfig) -> None:
        self.config = config

    def __call__(self, clips: Sequence[np.ndarray]) -> list[ClipScore]:
        return [self.score(frames) for frames in clips]

    def score(self, frames: np.ndarray) -> ClipScore:
        count, height, width, _ = frames.shape
        frames = np.ascontiguousarray(frames)
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


def model_folder(model_dir: str) -> pathlib.Path:
    """The folder a `learned.model_dir` names ("package:NAME" = jobs/configs/NAME)."""
    if model_dir.startswith("package:"):
        return pathlib.Path(__file__).resolve().parents[1] / "jobs" / "configs" / model_dir.removeprefix("package:")
    return pathlib.Path(model_dir)


class LearnedScorer:
    """The trained quality model: keeps a clip when P(good) >= its threshold; every clip gets
    its embedding. Runs on a GPU when `device` allows and one is visible."""

    def __init__(self, config: LearnedConfig) -> None:
        import torch

        from models.quality import load_quality_model

        folder = model_folder(config.model_dir)
        self.model, self.info = load_quality_model(folder)
        self.threshold = config.threshold if config.threshold >= 0 else float(self.info["threshold"])
        wanted = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(wanted)
        self.model.to(self.device).eval()
        self.batch_size = config.batch_size
        self.name = f"learned-{self.model.config.encoder}:{self.info['model_id']}"

    def __call__(self, clips: Sequence[np.ndarray]) -> list[ClipScore]:
        from models.quality import model_frames

        return self.score_prepared([model_frames(frames, self.model.config) for frames in clips])

    def score_prepared(self, prepared: Sequence[np.ndarray]) -> list[ClipScore]:
        """Scores from clips already at the model's input (models/quality.py `model_frames`), in batches."""
        import torch

        from models.quality import to_tensor

        scores = []
        with torch.inference_mode():
            for start in range(0, len(prepared), self.batch_size):
                clips = to_tensor(np.stack(prepared[start:start + self.batch_size])).to(self.device)
                logits, embeddings = self.model(clips)
                probabilities = torch.sigmoid(logits).float().cpu().numpy()
                for probability, embedding in zip(probabilities, embeddings.float().cpu().numpy()):
                    probability = float(probability)
                    reason = None if probability >= self.threshold else f"learned: P(good) {probability:.3f} < {self.threshold:.3f}"
                    scores.append(ClipScore(probability, reason, embedding.astype(np.float32)))
        return scores


def read_model_input(config: LearnedConfig):
    """The input shape (frames, height, width) of a learned scorer's model, without torch."""
    from models.quality_frames import read_model_input as read

    return read(model_folder(config.model_dir))


def make_scorers(config: QualityConfig) -> list[ClipScorer]:
    """The scorers a config names, in order."""
    scorers: list[ClipScorer] = []
    for name in config.scorer.split("+"):
        scorers.append(HeuristicScorer(config.heuristic) if name == "heuristic" else LearnedScorer(config.learned))
    return scorers


def content(frames: np.ndarray, box: Sequence[int] | None) -> np.ndarray:
    """The source's picture inside frames (T, 90, 160, 3): the `content_box` (x, y, w, h), or
    all of it when there is none."""
    if box is None:
        return frames
    x, y, width, height = box
    return frames[:, y:y + height, x:x + width]


class QualityFilter:
    """Stage: clip rows with a `frames` column (and optionally `content_box`) -> the same rows
    with `quality_score` and `quality_scorer` (the last scorer that judged the clip),
    `quality_scores` (every judging scorer's {scorer, score}) and `embedding` (a learned
    scorer's, else None); dropped with the first rejecting scorer's reason. Rows that are not
    ok pass through unscored."""

    def __init__(self, scorers: ClipScorer | Sequence[ClipScorer]) -> None:
        self.scorers = [scorers] if not isinstance(scorers, Sequence) else list(scorers)

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        rows = to_rows(batch)
        judged = [{**row, **{name: row.get(name) for name in JUDGED_COLUMNS}} for row in rows]
        for scorer in self.scorers:
            inputs = [content(row["frames"], row.get("content_box")) for row in judged if is_ok(row)]
            judged = judge(judged, scorer.name, scorer(inputs) if inputs else [])
        return to_batch(judged, columns=[*batch, *JUDGED_COLUMNS])


JUDGED_COLUMNS = ("quality_score", "quality_scorer", "quality_scores", "embedding")


def judge(rows: Sequence[dict], scorer_name: str, scores: Sequence[ClipScore]) -> list[dict]:
    """`rows` after a scorer's verdicts `scores` (one per ok row, in order): scored, and
    dropped where the verdict rejects."""
    verdicts = iter(scores)
    judged = []
    for row in rows:
        if not is_ok(row):
            judged.append(row)
            continue
        verdict = next(verdicts)
        scored = {
            **row,
            "quality_score": verdict.score,
            "quality_scorer": scorer_name,
            "quality_scores": [*(row.get("quality_scores") or []), {"scorer": scorer_name, "score": verdict.score}],
            "embedding": verdict.embedding if verdict.embedding is not None else row.get("embedding"),
        }
        judged.append(scored if verdict.reason is None else dropped(scored, STAGE, verdict.reason))
    return judged

