"""What a video file holds: size, frame rate, duration (from its MP4 header, else ffprobe).

The frame rate is kept as an exact fraction, because every span the pipeline records is in
source frames and `frame / fps` must be exact (30000/1001 is not 29.97).
"""

import dataclasses
import json
import subprocess
from fractions import Fraction

from pipeline.mp4 import read_mp4_info


class ProbeError(ValueError):
    """ffprobe cannot read a usable video stream from the file."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file."""

    width: int
    height: int
    fps: Fraction
    duration_s: float
    sample_aspect: Fraction  # pixel width / pixel height (1 for square pixels)

    @property
    def display_aspect(self) -> float:
        return self.width * float(self.sample_aspect) / self.height


def probe(path: str, timeout_s: float = 60.0) -> VideoInfo:
    """The first video stream's geometry, frame rate and duration; ProbeError if there is none.

    An MP4 header is read directly (no process); anything else goes to ffprobe."""
    track = read_mp4_info(path)
    if track is not None:
        return VideoInfo(*track)
    return ffprobe(path, timeout_s)


def ffprobe(path: str, timeout_s: float = 60.0) -> VideoInfo:
    """What ffprobe reads from the first video stream; ProbeError if it reads none."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json",
        "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,sample_aspect_ratio,duration:format=duration",
        str(path),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffprobe took over {timeout_s:.0f} s") from None
    if result.returncode != 0:
        raise ProbeError(_last_line(result.stderr) or f"ffprobe exited with {result.returncode}")
    try:
        data = json.loads(result.stdout)
        stream = data["streams"][0]
        width, height = int(stream["width"]), int(stream["height"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProbeError("no video stream") from None
    fps = _fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate"))
    if fps is None or width <= 0 or height <= 0:
        raise ProbeError(f"no usable frame rate or size ({width}x{height} @ {stream.get('avg_frame_rate')})")
    duration = _number(stream.get("duration")) or _number(data.get("format", {}).get("duration"))
    if duration is None or duration <= 0:
        raise ProbeError("no duration")
    sample_aspect = _fraction(stream.get("sample_aspect_ratio"), separator=":") or Fraction(1)
    return VideoInfo(width, height, fps, duration, sample_aspect)


def _fraction(text: str | None, separator: str = "/") -> Fraction | None:
    try:
        numerator, denominator = (int(part) for part in str(text).split(separator))
    except ValueError:
        return None
    if numerator <= 0 or denominator <= 0:
        return None
    return Fraction(numerator, denominator)


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
