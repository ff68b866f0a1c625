"""The true actions of ingested offline-world clips, from the world's ground-truth sidecars.

An upload's sidecar (`<corpus>/truth/<video id>.json`, written by world/corpus.py from
world/timeline.py's VideoPlan.truth) holds the action pressed on every source frame (-1
outside gameplay), the source frame rate and the shots. A clip's metadata (its shard
sample's json or its manifest row) holds its video id and its first sample's source frame;
ingest's 10 FPS rule (schemas/shard.py `sample_frame`) then gives every sample's source
frame: at 30 fps, samples are every third frame.

Frame f + 1 is the game after frame f's action, so the transition from sample t (source
frame a) to sample t+1 (frame b) shows actions a..b-1. Its true action is the one pressed
on most of those frames (the latest of the tied ones on a tie); it is unknown (-1) when any
of them lies outside gameplay or the two samples lie in different shots.
"""

import json
import pathlib
import re
from collections import Counter
from fractions import Fraction

import numpy as np

from schemas.shard import clip_source_frames
from world.actions import N_ACTIONS

UNKNOWN = -1
MAX_SIDECAR_BYTES = 64 << 20
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class WorldTruth:
    """Looks up true actions of clips cut from a corpus's uploads; sidecars are read once each."""

    def __init__(self, corpus_dir: str | pathlib.Path):
        self.truth_dir = pathlib.Path(corpus_dir) / "truth"
        if not self.truth_dir.is_dir():
            raise FileNotFoundError(f"{corpus_dir} has no truth/ folder: not an offline-world corpus")
        self._sidecars: dict[str, dict | None] = {}

    def sidecar(self, video_id: str) -> dict | None:
        """The video's sidecar, or None when the corpus has none for it (e.g. real footage)."""
        if not _VIDEO_ID.fullmatch(video_id):
            raise ValueError(f"not a video id: {video_id!r}")
        if video_id not in self._sidecars:
            path = self.truth_dir / f"{video_id}.json"
            if not path.is_file():
                self._sidecars[video_id] = None
            elif path.stat().st_size > MAX_SIDECAR_BYTES:
                raise ValueError(f"{path} is over {MAX_SIDECAR_BYTES} bytes")
            else:
                self._sidecars[video_id] = json.loads(path.read_text())
        return self._sidecars[video_id]

    def clip_actions(self, meta: dict) -> np.ndarray | None:
        """(n_frames - 1,) int64: the true action of each transition of the clip, UNKNOWN where
        there is none; None when the clip's video has no sidecar. `meta` needs video_id,
        start_frame, start_s and n_frames (a shard sample's json or a manifest clip row)."""
        truth = self.sidecar(meta["video_id"])
        if truth is None:
            return None
        fps = Fraction(truth["fps"])
        if abs(meta["start_s"] * fps - meta["start_frame"]) > 1e-3:
            raise ValueError(f"clip {meta.get('clip_id')}: start {meta['start_s']} s is not source frame "
                             f"{meta['start_frame']} at the sidecar's {fps} fps: not this video's sidecar")
        frames = clip_source_frames(meta["start_frame"], meta["n_frames"], fps)
        if frames[-1] >= truth["n_frames"]:
            raise ValueError(f"clip {meta.get('clip_id')} reaches source frame {frames[-1]}; "
                             f"the video has {truth['n_frames']}")
        return transition_actions(truth, frames)


def transition_actions(truth: dict, source_frames: list[int]) -> np.ndarray:
    """(len(source_frames) - 1,) int64: the true action between each pair of consecutive
    source frames of one video (see the module docstring)."""
    actions = truth["actions"]
    shot_of = _shot_index(truth)
    labels = np.full(max(0, len(source_frames) - 1), UNKNOWN, np.int64)
    for t, (a, b) in enumerate(zip(source_frames, source_frames[1:])):
        pressed = actions[a:b]
        if shot_of(a) != shot_of(b) or not pressed or min(pressed) < 0:
            continue
        counts = Counter(pressed)
        most = max(counts.values())
        labels[t] = next(action for action in reversed(pressed) if counts[action] == most)
    if labels.max(initial=0) >= N_ACTIONS:
        raise ValueError(f"sidecar {truth.get('id')} has actions outside [0, {N_ACTIONS})")
    return labels


def _shot_index(truth: dict):
    starts = np.array([segment["start_frame"] for segment in truth["segments"]])
    return lambda frame: int(np.searchsorted(starts, frame, side="right"))
