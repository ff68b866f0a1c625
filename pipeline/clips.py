"""Scenes into clips: runs of at most 160 samples (16 s at 10 FPS) inside one scene.

A clip's span is exact, in source frames (end exclusive) and in seconds (frame / fps): it
starts at its first sample's source frame and ends where the next clip starts or its scene
ends, so a full clip spans exactly 16 s and consecutive clips of a scene tile it. Clips of
fewer than `min_frames` samples are kept as rows, dropped with reason "too_short".
"""

import dataclasses
from fractions import Fraction

import numpy as np

from schemas.ids import clip_id
from schemas.manifest import STATUS_DROPPED, STATUS_OK
from schemas.shard import FRAME_HEIGHT, FRAME_WIDTH, MAX_CLIP_FRAMES

STAGE = "split"


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """How scenes are cut into clips."""

    # Samples per clip at most (160 = 16 s at 10 FPS, the paper's clip).
    max_frames: int = MAX_CLIP_FRAMES
    # Clips with fewer samples are dropped ("too_short"); 16 = the shortest training window.
    min_frames: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames <= MAX_CLIP_FRAMES:
            raise ValueError(f"clips: need 1 <= min_frames <= max_frames <= {MAX_CLIP_FRAMES}")


@dataclasses.dataclass(frozen=True)
class Scene:
    start_frame: int
    end_frame: int  # exclusive

    def span(self, fps: Fraction) -> dict:
        return {
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": float(self.start_frame / fps),
            "end_s": float(self.end_frame / fps),
        }


def clip_row(video_id: str, scene_index: int, start: int, end: int, n_frames: int, fps: Fraction, min_frames: int) -> dict:
    """A clip row (manifest fields known at split time), kept or dropped as too short."""
    too_short = n_frames < min_frames
    return {
        "clip_id": clip_id(video_id, start, end),
        "video_id": video_id,
        "scene_index": scene_index,
        "start_frame": start,
        "end_frame": end,
        "start_s": float(start / fps),
        "end_s": float(end / fps),
        "n_frames": n_frames,
        "status": STATUS_DROPPED if too_short else STATUS_OK,
        "stage": STAGE,
        "reason": f"too_short: {n_frames} < {min_frames} frames" if too_short else None,
    }


class ClipAssembler:
    """Streaming: feed cuts and samples in frame order, get finished clips (row, frames).

    Samples must only be added once every cut before them is known (see
    AdaptiveCuts.decided_before). Holds at most one clip's frames.
    """

    def __init__(self, video_id: str, fps: Fraction, config: ClipConfig) -> None:
        self.video_id = video_id
        self.fps = fps
        self.config = config
        self.scenes: list[Scene] = []
        self._scene_start = 0
        self._cuts: list[int] = []
        self._buffer = np.empty((config.max_frames, FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
        self._count = 0
        self._clip_start = 0

    def add_cuts(self, cuts: list[int]) -> None:
        self._cuts.extend(cuts)

    def add_samples(self, samples: list[tuple[int, np.ndarray]]) -> list[tuple[dict, np.ndarray | None]]:
        """Take samples (source frame, frame) in order; the clips they complete, each as
        (row, frames), frames None for a clip dropped as too short."""
        finished = []
        for index, frame in samples:
            while self._cuts and self._cuts[0] <= index:
                cut = self._cuts.pop(0)
                finished.extend(self._close(cut))
                self.scenes.append(Scene(self._scene_start, cut))
                self._scene_start = cut
            if self._count == self.config.max_frames:
                finished.extend(self._close(index))
            if self._count == 0:
                self._clip_start = index
            self._buffer[self._count] = frame
            self._count += 1
        return finished

    def finish(self, n_frames: int) -> list[tuple[dict, np.ndarray | None]]:
        """The last clips, once the video's `n_frames` are all decoded."""
        finished = []
        for cut in [cut for cut in self._cuts if cut < n_frames]:
            finished.extend(self._close(cut))
            self.scenes.append(Scene(self._scene_start, cut))
            self._scene_start = cut
        self._cuts = []
        finished.extend(self._close(n_frames))
        if n_frames > self._scene_start:
            self.scenes.append(Scene(self._scene_start, n_frames))
        return finished

    def _close(self, end: int) -> list[tuple[dict, np.ndarray | None]]:
        if self._count == 0:
            return []
        scene_index = len(self.scenes)
        row = clip_row(self.video_id, scene_index, self._clip_start, end, self._count, self.fps, self.config.min_frames)
        frames = self._buffer[: self._count].copy() if row["status"] == STATUS_OK else None
        self._count = 0
        return [(row, frames)]
