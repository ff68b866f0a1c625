"""Scene cuts from small decoded frames: PySceneDetect's AdaptiveDetector, vectorised, plus
dips to black (fades).

PySceneDetect's `detect-adaptive` scores each frame by the mean absolute HSV difference to the
previous frame (ContentDetector's `content_val` with its default weights: hue, saturation and
value equally, no edges), then calls frame t a cut when its score is `adaptive_threshold`
times the mean score of the `window_width` frames on either side and at least
`min_content_val`, at least `min_scene_frames` after the previous cut. Its per-frame Python
calls are the hot spot of a one-pass ingest (~0.26 ms a frame); here the scores of a whole
chunk come from three OpenCV calls (HSV, difference, row sums), and only frames that pass both
thresholds reach Python. tests/test_pipeline_scenes.py checks the cuts equal PySceneDetect's
own on the same frames. With `detector = "pyscenedetect"`, PySceneDetect's AdaptiveDetector
itself is called on every detection frame instead (PySceneDetectCuts), for whoever wants the
library's own code in the loop; tests/test_pipeline_scenes.py checks both cut a world video
the same.

Dark and grey pixels count as grey. Hue and saturation mean nothing near black or near grey,
and a lossy codec's noise there flips them at will: on black-background footage (SMB's
underground, castle and night levels, MPEG-4) every keyframe re-draws that noise and the
unmodified detector cuts a continuous level every 0.4-2 s (scores of 60-90 against 5 either
side). So a pixel darker than `dark_floor` (value, 0..255) or greyer than `grey_saturation`
has its hue and saturation zeroed before the scores, as if it were exactly grey (R = G = B =
its value); real cuts still change value, and colour wherever colour is lit. With both at 0
the scores are PySceneDetect's own; the "pyscenedetect" detector is given the same greyed
frames, so both detectors still cut alike.

A fade to black and back changes the picture a little every frame, so no frame's score
stands out and the adaptive detector (rightly) stays quiet. `SceneCuts` adds what
PySceneDetect's ThresholdDetector looks for: a run of frames darker than `fade_threshold`
(mean RGB) whose darkest frame is black and whose brightness climbs steadily on both sides
of that frame (a black shot between two hard cuts stays black around its middle). The cut
is put at the darkest frame, the middle of a fade. A fade within `min_scene_frames` of a
hard cut is the same cut and is not counted twice.

A hard cut into or out of a black screen is usually a big score, but not when the other side
is itself mostly black: a castle level (grey stone on black, greyed out above) cut to black
scores ~10, under `min_content_val`. So a frame at least `black_edge_min` bright (mean RGB)
next to more than `fade_ramp_frames` black frames (the fade's black: mean under a quarter of
`fade_threshold`) is a cut between them, the first black frame or the first frame after the
black. A fade has no such step: it darkens a little each frame, and its black is one frame.

A cut is the index of the first frame of a new scene (the frame whose score jumped, or the
darkest frame of a fade).
"""

import dataclasses
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np

from schemas.config import in_range


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """PySceneDetect AdaptiveDetector settings (its defaults), and which implementation runs."""

    # Hard cuts by "adaptive" (AdaptiveCuts: PySceneDetect's AdaptiveDetector, vectorised, ~8 us
    # a frame) or "pyscenedetect" (PySceneDetect's own AdaptiveDetector called on every
    # detection frame, ~100 us a frame); both find the same cuts on the same frames.
    detector: Literal["adaptive", "pyscenedetect"] = "adaptive"
    adaptive_threshold: float = 3.0
    min_content_val: float = 15.0
    window_width: int = 2
    min_scene_frames: int = 15
    # Pixels darker than dark_floor (HSV value) or greyer than grey_saturation (HSV saturation),
    # both 0..255, count as exactly grey: their hue and saturation, codec noise there, are zeroed.
    dark_floor: int = 24
    grey_saturation: int = 24
    # Fades: a run of frames darker than this (mean RGB, 0..255) is a fade when its darkest
    # frame is black (under a quarter of it) and, over `fade_ramp_frames` frames on either
    # side of that frame, the picture brightens without a step back, by `fade_min_rise` at least.
    fade_threshold: float = 12.0
    fade_ramp_frames: int = 3
    fade_min_rise: float = 0.5
    # A dark run is judged in pieces of at most this many frames (it bounds how long a run can
    # hold back the cuts and frames after it): a fade out of a long dark shot (a menu on black)
    # is still found, in the piece that holds its darkest frame.
    fade_max_frames: int = 60
    # A frame at least this bright (mean RGB) next to more than fade_ramp_frames black frames
    # is a cut into or out of a black screen.
    black_edge_min: float = 8.0

    def __post_init__(self) -> None:
        if self.window_width < 1 or self.min_scene_frames < 0:
            raise ValueError("scenes.window_width must be >= 1 and scenes.min_scene_frames >= 0")
        if self.detector not in ("adaptive", "pyscenedetect"):
            raise ValueError(f"scenes.detector must be 'adaptive' or 'pyscenedetect', got {self.detector!r}")
        in_range(self, "dark_floor", 0, 255)
        in_range(self, "grey_saturation", 0, 255)
        in_range(self, "black_edge_min", 0, 255)


def lit_colour_mask(hsv: np.ndarray, dark_floor: int, grey_saturation: int) -> np.ndarray:
    """255 where a pixel of an HSV image (rows, width, 3) uint8 has a colour that means
    something (value >= `dark_floor` and saturation >= `grey_saturation`), 0 where it counts
    as grey; (rows, width) uint8."""
    return cv2.inRange(hsv, (0, grey_saturation, dark_floor), (255, 255, 255))


def content_scores(frames: np.ndarray, previous: np.ndarray | None, dark_floor: int = 0,
                   grey_saturation: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame content_val of RGB `frames` (k, h, w, 3), each against the frame before it
    (`previous`, the HSV of the frame before the chunk, or None at the start: score 0), with
    grey pixels' hue and saturation zeroed (`lit_colour_mask`; 0 and 0: PySceneDetect's scores).

    Returns (scores (k,) float64, HSV of the last frame for the next chunk).
    """
    count, height, width, _ = frames.shape
    hsv = cv2.cvtColor(frames.reshape(count * height, width, 3), cv2.COLOR_RGB2HSV)
    if dark_floor or grey_saturation:  # OpenCV calls, 2-7 us a frame (numpy masking: 20)
        keep = lit_colour_mask(hsv, dark_floor, grey_saturation)
        hsv = cv2.bitwise_and(hsv, cv2.merge([keep, keep, np.full_like(keep, 255)]))
    hsv = hsv.reshape(count, -1)
    before = np.concatenate([hsv[:1] if previous is None else previous[None], hsv[:-1]])
    sums = cv2.reduce(cv2.absdiff(hsv, before), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0]  # exact; 20x numpy's sum
    return sums / hsv.shape[1], hsv[-1].copy()


class AdaptiveCuts:
    """Streaming cut detector: `push` frames chunk by chunk, read `cuts` and `decided_before`."""

    def __init__(self, config: SceneConfig) -> None:
        self.config = config
        self.cuts: list[int] = []
        self._scores = np.zeros(0)  # scores of frames [self._offset, self._offset + len)
        self._offset = 0
        self._frames_seen = 0
        self._last_hsv: np.ndarray | None = None
        self._last_cut = 0
        self._next_target = config.window_width

    @property
    def decided_before(self) -> int:
        """Every cut at a frame below this index is known (later frames may still become cuts)."""
        return max(0, self._frames_seen - self.config.window_width)

    def push(self, frames: np.ndarray) -> list[int]:
        """Score the next frames; the cuts this decides, in order."""
        scores, self._last_hsv = content_scores(frames, self._last_hsv, self.config.dark_floor, self.config.grey_saturation)
        self._scores = np.concatenate([self._scores, scores])
        self._frames_seen += len(frames)
        found = self._decide()
        keep_from = max(0, self._next_target - self.config.window_width) - self._offset
        self._scores = self._scores[keep_from:]
        self._offset += keep_from
        return found

    def _decide(self) -> list[int]:
        """Judge every target frame that now has window_width frames after it."""
        width = self.config.window_width
        last_target = self._frames_seen - 1 - width
        if last_target < self._next_target:
            return []
        # Windows around targets [next_target, last_target], in local indices of self._scores.
        first = self._next_target - self._offset
        count = last_target - self._next_target + 1
        windows = np.lib.stride_tricks.sliding_window_view(self._scores[first - width : first + count + width], 2 * width + 1)
        target_scores = windows[:, width]
        neighbour_mean = (windows.sum(axis=1) - target_scores) / (2.0 * width)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(neighbour_mean < 1e-5, np.where(target_scores >= self.config.min_content_val, 255.0, 0.0),
                             np.minimum(target_scores / neighbour_mean, 255.0))  # fmt: skip
        candidates = np.flatnonzero((ratio >= self.config.adaptive_threshold) & (target_scores >= self.config.min_content_val))
        found = []
        for local in candidates:
            frame = self._next_target + int(local)
            if frame - self._last_cut >= self.config.min_scene_frames:
                self._last_cut = frame
                found.append(frame)
        self._next_target = last_target + 1
        self.cuts.extend(found)
        return found


class PySceneDetectCuts:
    """Streaming cut detector with AdaptiveCuts' interface that calls PySceneDetect's own
    AdaptiveDetector on every frame (as `scenedetect detect-adaptive` does, on our frames)."""

    def __init__(self, config: SceneConfig, fps: Fraction) -> None:
        from scenedetect.detectors import AdaptiveDetector

        self.config = config
        self.fps = fps
        self.cuts: list[int] = []
        self._frames_seen = 0
        self._detector = AdaptiveDetector(
            adaptive_threshold=config.adaptive_threshold,
            min_scene_len=config.min_scene_frames,
            window_width=config.window_width,
            min_content_val=config.min_content_val,
        )

    @property
    def decided_before(self) -> int:
        """Every cut at a frame below this index is known (the detector lags window_width frames)."""
        return max(0, self._frames_seen - self.config.window_width)

    def push(self, frames: np.ndarray) -> list[int]:
        """Run the next frames (k, h, w, 3) RGB through the detector; the cuts it reports."""
        from scenedetect.common import FrameTimecode

        count, height, width, _ = frames.shape
        bgr = cv2.cvtColor(frames.reshape(count * height, width, 3), cv2.COLOR_RGB2BGR).reshape(frames.shape)
        hsv = cv2.cvtColor(bgr.reshape(count * height, width, 3), cv2.COLOR_BGR2HSV)
        grey = lit_colour_mask(hsv, self.config.dark_floor, self.config.grey_saturation).reshape(frames.shape[:3]) == 0
        bgr[grey] = hsv.reshape(frames.shape)[grey][:, 2:]  # R = G = B = value: hue and saturation 0, as AdaptiveCuts sees them
        found = []
        for frame in bgr:
            timecode = FrameTimecode(self._frames_seen, fps=self.fps)
            found += [cut.frame_num for cut in self._detector.process_frame(timecode, frame)]
            self._frames_seen += 1
        self.cuts.extend(found)
        return found


class SceneCuts:
    """Hard cuts (AdaptiveCuts, or PySceneDetectCuts as configured) and fades, merged in frame
    order, streaming like AdaptiveCuts. `fps` (the source's) only labels PySceneDetect's
    timecodes: both detectors count in frames."""

    def __init__(self, config: SceneConfig, fps: Fraction) -> None:
        self.config = config
        self.hard = AdaptiveCuts(config) if config.detector == "adaptive" else PySceneDetectCuts(config, fps)
        self.cuts: list[int] = []  # emitted, in order
        self._held: list[int] = []  # decided, not yet emitted (a fade before them may be pending)
        self._runs: list[tuple[int, int, int]] = []  # closed dark runs (start, end, darkest) awaiting ramp frames
        self._open: list[int] | None = None  # the open dark run: [start, darkest, ties at darkest]
        self._darkest = 0.0
        self._brightness = np.zeros(0)  # mean RGB of frames [self._offset, self._frames_seen)
        self._offset = 0
        self._frames_seen = 0
        self._edge_next = config.fade_ramp_frames + 1  # the next frame that may be a black edge

    @property
    def decided_before(self) -> int:
        """Every cut at a frame below this index is known."""
        return min([self.hard.decided_before, self._edge_next, *self._pending_starts()])

    def push(self, frames: np.ndarray) -> list[int]:
        """Take the next frames (k, h, w, 3) RGB; the cuts this decides, in order."""
        self._held.extend(self.hard.push(frames))
        flat = frames.reshape(len(frames), -1)
        brightness = cv2.reduce(flat, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0] / flat.shape[1]  # = mean, exactly
        self._brightness = np.concatenate([self._brightness, brightness])
        if self._open is None and not np.any(brightness < self.config.fade_threshold):
            self._frames_seen += len(frames)  # no dark frame, no open run: nothing to track
        else:
            for value in brightness:
                self._track_run(float(value))
                self._frames_seen += 1
        self._find_black_edges(self._frames_seen - self.config.fade_ramp_frames)
        self._judge_runs(final=False)
        return self._emit(self.decided_before)

    def finish(self) -> list[int]:
        """The cuts held back until the end (a dark run at the very end is no fade)."""
        self._open = None
        self._find_black_edges(self._frames_seen)
        self._judge_runs(final=True)
        return self._emit(self._frames_seen)

    def _track_run(self, value: float) -> None:
        frame = self._frames_seen
        if self._open is not None and frame - self._open[0] >= self.config.fade_max_frames:
            start, darkest, ties = self._open  # too long: judge it so far, go on with a new run
            self._runs.append((start, frame, darkest + (ties - 1) // 2))
            self._open = None
        if value >= self.config.fade_threshold:
            if self._open is not None:
                start, darkest, ties = self._open
                self._runs.append((start, frame, darkest + (ties - 1) // 2))
                self._open = None
        elif self._open is None or value < self._darkest:
            self._open = [frame if self._open is None else self._open[0], frame, 1]
            self._darkest = value
        elif value == self._darkest and self._open[1] + self._open[2] == frame:
            self._open[2] += 1  # equally dark frames in a row: the cut is their middle

    def _judge_runs(self, final: bool) -> None:
        ramp = self.config.fade_ramp_frames
        waiting = []
        for start, end, darkest in self._runs:
            if darkest + ramp >= self._frames_seen and not final:
                waiting.append((start, end, darkest))
            elif darkest + ramp < self._frames_seen and self._is_fade(darkest):
                self._add_fade(darkest)
        self._runs = waiting
        oldest = min([*self._pending_starts(), self._edge_next, self._frames_seen])
        drop = max(0, oldest - ramp - 1 - self._offset)
        self._brightness = self._brightness[drop:]
        self._offset += drop

    def _find_black_edges(self, stop: int) -> None:
        """Cuts at black edges among frames [self._edge_next, stop): frames after which more
        than fade_ramp_frames frames are black, or before which as many were."""
        run = self.config.fade_ramp_frames + 1
        first = self._edge_next
        if stop <= first:
            return
        self._edge_next = stop
        black = self._brightness < self.config.fade_threshold / 4
        if not black.any():
            return
        counts = np.concatenate([[0], np.cumsum(black)])  # counts[i] = black frames before local index i
        local = np.arange(first, stop) - self._offset
        bright = self._brightness >= self.config.black_edge_min
        ahead = np.minimum(local + run, len(black))
        into = (ahead - local == run) & (counts[ahead] - counts[local] == run) & bright[local - 1]
        out_of = (counts[local] - counts[local - run] == run) & bright[local]
        for index in np.flatnonzero(into | out_of):
            self._add_black_edge(first + int(index))

    def _add_black_edge(self, cut: int) -> None:
        """A black edge's cut, unless a cut is already within min_scene_frames of it."""
        near = self.config.min_scene_frames
        if all(abs(other - cut) >= near for other in [*self._held, *self.cuts[-1:]]):
            self._held.append(cut)

    def _pending_starts(self) -> list[int]:
        """First frames of the dark runs that may still be fades."""
        starts = [start for start, _, _ in self._runs]
        if self._open is not None:
            starts.append(self._open[0])
        return starts

    def _is_fade(self, darkest: int) -> bool:
        """Black at the darkest frame, brightening steadily on both sides of it: a fade. A black
        shot between hard cuts stays black around its middle, so it is not one."""
        ramp = self.config.fade_ramp_frames
        at = darkest - self._offset
        if at - ramp < 0 or self._brightness[at] > self.config.fade_threshold / 4:
            return False
        before = self._brightness[at - ramp : at + 1][::-1]
        after = self._brightness[at : at + ramp + 1]
        return all(np.all(np.diff(side) >= 0) and side[-1] - side[0] >= self.config.fade_min_rise for side in (before, after))

    def _add_fade(self, cut: int) -> None:
        """A fade cut; the adaptive detector often also fires somewhere inside the fade (hue and
        saturation are noisy near black): the fade's darkest frame replaces such a hard cut."""
        near = self.config.min_scene_frames
        if self.cuts and cut - self.cuts[-1] < near:
            return
        self._held = [held for held in self._held if abs(held - cut) >= near]
        self._held.append(cut)

    def _emit(self, bound: int) -> list[int]:
        ready = sorted(cut for cut in self._held if cut < bound)
        self._held = [cut for cut in self._held if cut >= bound]
        emitted = []
        for cut in ready:
            if not self.cuts or cut > self.cuts[-1]:
                self.cuts.append(cut)
                emitted.append(cut)
        return emitted
