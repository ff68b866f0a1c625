"""Writes canvas frames to an H.264 MP4 through an ffmpeg subprocess fed raw RGB on stdin.

ffmpeg scales the canvas up to the upload size with nearest-neighbour (so pixels stay
square blocks) and converts to yuv420p, which every player and decoder reads.
"""

import pathlib
import subprocess
import tempfile

import numpy as np

from world.canvas import CANVAS


class EncoderError(RuntimeError):
    """ffmpeg failed or is missing; the message carries its stderr."""


class VideoWriter:
    """A context manager: `with VideoWriter(path, 640, 360, 30) as writer: writer.write(frame)`.

    The file appears at `path` only when the whole video was written (it is encoded to a
    temporary name beside it and renamed), so a crash never leaves a truncated upload.
    """

    def __init__(self, path: str | pathlib.Path, width: int, height: int, fps: int,
                 crf: int = 23, preset: str = "superfast", threads: int = 1):
        self.path = pathlib.Path(path)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.frames = 0
        command = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{CANVAS[0]}x{CANVAS[1]}", "-r", str(fps), "-i", "-",
            "-vf", f"scale={width}:{height}:flags=neighbor,format=yuv420p",
            "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-g", str(2 * fps), "-threads", str(threads),
            "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact",
            "-f", "mp4", str(self.partial),
        ]
        self.stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self.stderr)
        except FileNotFoundError:
            self.stderr.close()
            raise EncoderError("ffmpeg is not on PATH (scripts/setup.sh installs it)") from None

    def write(self, frame: np.ndarray) -> None:
        """Appends one (180, 320, 3) uint8 canvas frame."""
        if frame.shape != (CANVAS[1], CANVAS[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a {CANVAS[1]}x{CANVAS[0]}x3 uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except BrokenPipeError:
            self._fail("ffmpeg stopped reading frames")
        self.frames += 1

    def close(self) -> None:
        """Finishes the file and moves it into place."""
        self.process.stdin.close()
        if self.process.wait() != 0:
            self._fail(f"ffmpeg exited with status {self.process.returncode}")
        self.stderr.close()
        self.partial.replace(self.path)

    def abort(self) -> None:
        """Stops ffmpeg and removes the partial file."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        self.stderr.close()
        self.partial.unlink(missing_ok=True)

    def _fail(self, what: str) -> None:
        self.stderr.seek(0)
        message = self.stderr.read().decode(errors="replace").strip()
        self.abort()
        raise EncoderError(f"{what} writing {self.path}: {message}")

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
