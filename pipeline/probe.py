"""What a video file holds: size, frame rate, duration (from its MP4 header, else ffprobe).

The frame rate is kept as an exact fraction, because every span the pipeline records is in
source frames and `frame / fps` must be exact (30000/1001 is not 29.97).

A downloaded file is untrusted: ffmpeg would happily read an HLS playlist or a concat list
served as "video/mp4" and follow it to any file on this machine. So a file that starts like a
playlist is refused by name (NotAVideo), and ffprobe and ffmpeg open inputs only with the
demuxers of INPUT_FORMATS over the `file` protocol (`input_options()`).
"""

import dataclasses
import json
import subprocess
from fractions import Fraction

from pipeline.mp4 import Mp4Error, read_mp4_info

# Demuxers a video site's uploads need (MP4/MOV and Matroska/WebM); nothing that reads
# playlists, lists of other files or remote resources.
INPUT_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm")
# Leading bytes of text formats that name other files or URLs, and what they are.
_PLAYLISTS = {b"#EXTM3U": "an HLS playlist", b"ffconcat": "an ffmpeg concat list", b"[playlist]": "a PLS playlist",
              b"<?xml": "an XML document (a DASH manifest?)", b"<MPD": "a DASH manifest", b"#EXTINF": "an M3U playlist"}
MAX_SIDE = 16384
MAX_FPS = 1000


class ProbeError(ValueError):
    """ffprobe cannot read a usable video stream from the file."""


class NotAVideo(ProbeError):
    """The file is a playlist or manifest, not a video: refused without opening what it names."""


def input_options() -> list[str]:
    """ffmpeg/ffprobe options to put before `-i`: allowed demuxers and protocols only."""
    return ["-format_whitelist", ",".join(INPUT_FORMATS), "-protocol_whitelist", "file"]


def refuse_playlists(path: str) -> None:
    """NotAVideo if the file starts like a playlist, a concat list or a manifest."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as error:
        raise ProbeError(f"cannot open: {error}") from None
    for magic, kind in _PLAYLISTS.items():
        if head.startswith(magic):
            raise NotAVideo(f"{kind} ({magic.decode()}), not a video file")


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
    """The first video stream's geometry, frame rate and duration; NotAVideo for a playlist,
    ProbeError if there is no plausible video stream.

    An MP4 header is read directly (no process); anything else goes to ffprobe."""
    refuse_playlists(path)
    try:
        track = read_mp4_info(path)
    except Mp4Error:
        track = None  # ffmpeg may still read what this reader finds malformed; ffprobe decides
    info = VideoInfo(*track) if track is not None else ffprobe(path, timeout_s)
    if not (1 <= info.width <= MAX_SIDE and 1 <= info.height <= MAX_SIDE and 0 < info.fps <= MAX_FPS):
        raise ProbeError(f"implausible stream: {info.width}x{info.height} at {float(info.fps):.4g} fps")
    return info


def ffprobe(path: str, timeout_s: float = 60.0) -> VideoInfo:
    """What ffprobe reads from the first video stream; ProbeError if it reads none."""
    command = [
        "ffprobe", "-v", "error", *input_options(), "-select_streams", "v:0", "-of", "json",
        "-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate,sample_aspect_ratio,duration:format=duration",
        "-i", str(path),
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
