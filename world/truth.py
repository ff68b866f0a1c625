"""Reading a corpus's ground truth (truth/<id>.json) against what the pipeline found: cuts
matched within a tolerance, and how many seconds of each kind of shot a set of frame spans
covers (gameplay by theme, titles, slides, black gaps ...)."""

import collections
import json
import pathlib
from collections.abc import Iterable, Sequence


def load_truth(corpus_dir: str | pathlib.Path, video_id: str) -> dict:
    """The sidecar of one upload."""
    return json.loads((pathlib.Path(corpus_dir) / "truth" / f"{video_id}.json").read_text())


def truth_cuts(truth: dict) -> list[int]:
    """The first frame of every shot after the first."""
    return [cut["frame"] for cut in truth["cuts"]]


def matched_cuts(found: Sequence[int], truth: Sequence[int], tolerance: int = 1) -> int:
    """How many found cuts lie within `tolerance` frames of a true cut, each true cut matched once."""
    unmatched = list(truth)
    matched = 0
    for cut in found:
        match = next((frame for frame in unmatched if abs(frame - cut) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            matched += 1
    return matched


def f1(matched: int, found: int, truth: int) -> float:
    """F1 of `matched` true positives among `found` detections of `truth` real ones (1 when both are 0)."""
    return 1.0 if found + truth == 0 else 2 * matched / (found + truth)


def segment_label(segment: dict) -> str:
    """'gameplay:<theme>' for gameplay, else the shot's kind ('title', 'black', ...)."""
    return f"gameplay:{segment['theme']}" if segment["kind"] == "gameplay" else segment["kind"]


def seconds_by_label(truth: dict, spans: Iterable[tuple[int, int]]) -> dict[str, float]:
    """Seconds of each segment label inside frame spans [start, end) (source frames)."""
    seconds: dict[str, float] = collections.defaultdict(float)
    for start, end in spans:
        for segment in truth["segments"]:
            overlap = min(end, segment["end_frame"]) - max(start, segment["start_frame"])
            if overlap > 0:
                seconds[segment_label(segment)] += overlap / truth["fps"]
    return dict(seconds)
