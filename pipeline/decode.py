"""Decode once: one ffmpeg process turns a video into the two frame streams the pipeline needs.

    [0:v] split ─┬─ scale to detect size ─ rgb24 ─ marker row ─ tile 8x8 ───────> pipe:1  every frame
                 └─ select 10 FPS samples ─ scale/pad/crop to 160x90 ─ bgr24 ─> pipe:N  samples

Scene detection reads every source frame, but small (64x36 by default: the content score is
a mean over pixels, which downscaling barely moves) and 64 to a packet (ffmpeg's cost per
output packet is as much as a small frame's scaling); each frame gets a white marker row so
the blank cells of the last, partial tile can be told apart. The clip stream is selected
*before* it is scaled, so only a tenth-of-a-second's worth of frames pays for the 160x90
scale. Samples leave ffmpeg as bgr24 and are swapped to RGB here: swscale's x86 path for
bgr24 output is SIMD, its rgb24 path after an area scale is generic C, and the swap costs
4 us a sample against 30 us saved (benchmarks/RESULTS.md, ingest section).

Sampling: sample k (k = 0, 1, ...) is source frame ceil(k * fps / 10), the first frame at or
after time k / 10 s, computed exactly from the rational frame rate; ffmpeg's select filter
uses the same integer rule, so both sides agree on which source frame each sample is.
Memory is bounded: detection frames come in chunks, and samples wait in a queue only until
the cuts before them are decided (a mosaic and at most a fade's length of frames).
"""

import dataclasses
import math
import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np

from pipeline.probe import VideoInfo, input_options
from schemas.shard import FRAME_HEIGHT, FRAME_RATE, FRAME_WIDTH

SAMPLE_BYTES = FRAME_HEIGHT * FRAME_WIDTH * 3
TILE = 8  # detection frames travel as TILE x TILE mosaics


class DecodeError(RuntimeError):
    """ffmpeg failed, stalled or produced a short frame; the message starts with a reason code."""


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How a video is decoded into detection frames and clip samples."""

    # How a source that is not 16:9 becomes 160x90: "pad" (letterbox/pillarbox in black),
    # "crop" (centre crop) or "stretch".
    aspect: Literal["pad", "crop", "stretch"] = "pad"
    # Size of the frames scene detection sees (every source frame).
    detect_width: int = 64
    detect_height: int = 36
    # Decoder threads per video (parallelism comes from many videos at once).
    threads: int = 1
    # Wall-clock limit per video: timeout_base_s + timeout_per_source_s * duration.
    timeout_base_s: float = 60.0
    timeout_per_source_s: float = 2.0

    def __post_init__(self) -> None:
        if not (8 <= self.detect_width <= 640 and 8 <= self.detect_height <= 360):
            raise ValueError("decode.detect_width/height must be within 8..640 x 8..360")
        if self.threads < 0:
            raise ValueError("decode.threads must be >= 0")


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the source lands inside the 160x90 sample: the scaled size and its offset."""

    scaled_width: int
    scaled_height: int
    x: int  # > 0: padding on the left; < 0: cropped on the left
    y: int

    def ffmpeg_filter(self) -> str:
        scale = f"scale={self.scaled_width}:{self.scaled_height}:flags=area"
        if self.x > 0 or self.y > 0:
            return f"{scale},pad={FRAME_WIDTH}:{FRAME_HEIGHT}:{self.x}:{self.y}:color=black"
        if self.x < 0 or self.y < 0:
            return f"{scale},crop={FRAME_WIDTH}:{FRAME_HEIGHT}:{-self.x}:{-self.y}"
        return scale


def geometry(info: VideoInfo, aspect: str) -> Geometry:
    """The scale and pad/crop that fit the displayed source into 160x90 under `aspect`."""
    if aspect == "stretch":
        return Geometry(FRAME_WIDTH, FRAME_HEIGHT, 0, 0)
    display_width = info.width * float(info.sample_aspect)
    fit = min if aspect == "pad" else max
    scale = fit(FRAME_WIDTH / display_width, FRAME_HEIGHT / info.height)
    width, height = max(1, round(display_width * scale)), max(1, round(info.height * scale))
    width, height = fit(width, FRAME_WIDTH), fit(height, FRAME_HEIGHT)
    return Geometry(width, height, (FRAME_WIDTH - width) // 2, (FRAME_HEIGHT - height) // 2)


def sample_frame(k: int, fps: Fraction) -> int:
    """The source frame of sample k: the first frame at or after k / 10 s."""
    return math.ceil(k * fps / FRAME_RATE)


def select_expression(fps: Fraction) -> str:
    """ffmpeg select expression keeping exactly the frames `sample_frame` names.

    Frame n is kept iff a tick k satisfies (n-1)*10/fps < k <= n*10/fps, i.e.
    floor(n*10q/p) > floor((n-1)*10q/p) for fps = p/q; products before the one division keep
    it exact in ffmpeg's double arithmetic.
    """
    numerator, denominator = fps.numerator, fps.denominator * FRAME_RATE
    return f"gt(floor(n*{denominator}/{numerator})\\,floor((n-1)*{denominator}/{numerator}))"


class FrameStreams:
    """One running ffmpeg decode of `path`: `detection_chunks()` gives every source frame small,
    `samples_before(n)` the 160x90 samples of source frames < n that have arrived, and
    `remaining_samples()` the rest at the end. Use as a context manager."""

    def __init__(self, path: str, info: VideoInfo, config: DecodeConfig) -> None:
        if info.fps < FRAME_RATE:
            raise ValueError(f"source frame rate {float(info.fps):.2f} is below {FRAME_RATE} fps")
        self.info = info
        self.config = config
        self.detect_shape = (config.detect_height, config.detect_width, 3)
        self._next_sample = 0  # samples read from ffmpeg
        self._pending: tuple[int, np.ndarray | None] | None = None  # the queue's next sample, looked at
        # Unbounded, so ffmpeg never waits on us; it holds no more than the samples between the
        # last decided cut and the detection stream's position (a mosaic and a fade's length).
        self._samples: queue.Queue = queue.Queue()
        self._stderr = tempfile.TemporaryFile()
        read_end, write_end = os.pipe()
        command = self._command(path, info, config, write_end)
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
                pass_fds=(write_end,), bufsize=0,
            )  # fmt: skip
        finally:
            os.close(write_end)
        self._sample_pipe = os.fdopen(read_end, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_samples, name="sample-reader", daemon=True)
        self._reader.start()
        timeout_s = config.timeout_base_s + config.timeout_per_source_s * info.duration_s
        self.timed_out = False
        self._watchdog = threading.Timer(timeout_s, self._time_out)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.cpu_s = 0.0  # ffmpeg's user + sys CPU, known once it has exited

    @staticmethod
    def _command(path: str, info: VideoInfo, config: DecodeConfig, sample_fd: int) -> list[str]:
        width, height = config.detect_width, config.detect_height
        detect = (f"scale={width}:{height}:flags=fast_bilinear,format=rgb24,"
                  f"pad={width}:{height + 1}:0:0:color=white,tile={TILE}x{TILE}")  # fmt: skip
        sample = f"select={select_expression(info.fps)},{geometry(info, config.aspect).ffmpeg_filter()},setsar=1,format=bgr24"
        graph = f"[0:v:0]split=2[d][s];[d]{detect}[detect];[s]{sample}[sample]"
        return [
            "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", str(config.threads),
            *input_options(), "-i", str(path), "-filter_complex_threads", "1", "-filter_complex", graph,
            "-map", "[detect]", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1",
            "-map", "[sample]", "-fps_mode", "passthrough", "-f", "rawvideo", f"pipe:{sample_fd}",
        ]  # fmt: skip

    def detection_chunks(self) -> Iterator[np.ndarray]:
        """Every source frame at detect size, in chunks of (k, h, w, 3) uint8 RGB (k <= 64), in order."""
        height, width, _ = self.detect_shape
        tile = np.empty((TILE, height + 1, TILE, width, 3), np.uint8)  # one mosaic: rows of cells
        while True:
            filled = _read_into(self.process.stdout, memoryview(tile).cast("B"))
            if filled == 0:
                return
            if filled < tile.nbytes:
                raise DecodeError(f"decode_failed: detection stream ended inside a mosaic ({filled} bytes)")
            real = int(np.count_nonzero(tile[:, height, :, 0, 0] == 255))  # marker rows; blank cells are black
            # One copy into cell order (a reshape of the transposed view would copy twice, 20x slower).
            frames = np.empty((TILE * TILE, height, width, 3), np.uint8)
            frames.reshape(TILE, TILE, height, width, 3)[:] = tile[:, :height].transpose(0, 2, 1, 3, 4)
            yield frames[:real]
            if real < TILE * TILE:
                return

    def samples_before(self, end_frame: int) -> list[tuple[int, np.ndarray]]:
        """The (source frame, 160x90x3 frame) samples of source frames < end_frame that have
        arrived and were not taken yet. Never waits: ffmpeg may hold samples back while it
        writes detection frames, so waiting here for one could stall both sides."""
        taken = []
        while True:
            if self._pending is None:
                try:
                    self._pending = self._samples.get_nowait()
                except queue.Empty:
                    return taken
            if self._pending[1] is None or self._pending[0] >= end_frame:
                return taken
            taken.append(self._pending)
            self._pending = None

    def remaining_samples(self) -> list[tuple[int, np.ndarray]]:
        """Every sample not taken yet, waiting for the last; call once detection_chunks is done."""
        taken = []
        while True:
            if self._pending is None:
                self._pending = self._samples.get()
            if self._pending[1] is None:
                return taken
            taken.append(self._pending)
            self._pending = None

    def finish(self) -> None:
        """Wait for ffmpeg; DecodeError if it failed or was stopped."""
        self._reader.join()
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_s = usage.ru_utime + usage.ru_stime
        self._watchdog.cancel()
        if self.timed_out:
            raise DecodeError("decode_timeout: ffmpeg ran past its time limit")
        if self._reader_error is not None:
            raise DecodeError(f"decode_failed: {self._reader_error}")
        if self.process.returncode != 0:
            raise DecodeError(f"decode_failed: ffmpeg exited with {self.process.returncode}: {self.stderr_tail()}")

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __enter__(self) -> "FrameStreams":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._watchdog.cancel()
        if self.process.returncode is None:
            self.process.kill()
            self.process.stdout.close()
            self._reader.join()
            os.waitpid(self.process.pid, 0)
            self.process.returncode = -9
        else:
            self.process.stdout.close()
        self._sample_pipe.close()
        self._stderr.close()

    _reader_error: str | None = None

    def _read_samples(self) -> None:
        try:
            while True:
                frame = np.empty((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
                filled = _read_into(self._sample_pipe, memoryview(frame).cast("B"))
                if filled == 0:
                    break
                if filled < SAMPLE_BYTES:
                    self._reader_error = "sample stream ended inside a frame"
                    break
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)
                self._samples.put((sample_frame(self._next_sample, self.info.fps), frame))
                self._next_sample += 1
        except (OSError, ValueError) as error:
            self._reader_error = f"sample stream: {error}"
        finally:
            self._samples.put((-1, None))

    def _time_out(self) -> None:
        self.timed_out = True
        self.process.kill()


def _read_into(stream, view: memoryview) -> int:
    """Fill `view` from a raw stream; fewer bytes only at the end of the stream."""
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled
