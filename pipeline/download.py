"""Download stage: yt-dlp's Python API, with retries, caps, a shared rate limit and
content-addressed storage.

For each ok row (a `url` from search) it extracts the video with yt-dlp, picks the smallest
stream still at least `min_width` x `min_height`, and downloads it. Failures become data:
HTTP 429 / 403 / 5xx, timeouts, refused or dropped connections and truncated bodies are
retried with exponential backoff (Retry-After honoured) until `max_attempts` or the
per-video deadline; anything else (404, an unsupported page, a cap exceeded) fails at once.

Limits hold against a hostile server: the per-video deadline is a hard wall-clock limit
(pipeline/deadline.py), so a server dripping a byte a second is cut off on time; the size cap
is checked on the size a server announces and again on the bytes received (a body without
Content-Length is cut off once it passes the cap); only direct http(s) streams are chosen
(no HLS, DASH or other manifests, which name further URLs); a failed video's partial file is
removed at once. Any exception in one video becomes that video's error row.

Storage, under `store_dir`:
    sha256/<aa>/<sha256>.<ext>   the file, named by its content (identical uploads stored once)
    videos/<video_key>.json      which file a video id resolved to, with the metadata yt-dlp
                                 gave; a rerun that finds it skips the download
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError

from pipeline.deadline import DeadlineExceeded, deadline
from pipeline.rows import Batch, failed, is_ok, ok, to_batch, to_rows
from schemas.ids import video_key
from schemas.shard_io import fsync_folder, write_atomic

STAGE = "download"
_EXT = re.compile(r"[a-z0-9]{1,8}")
RETRYABLE_STATUS = frozenset({403, 408, 429, 500, 502, 503, 504})
_CONTROL = re.compile(r"[\x00-\x1f]+")


@dataclasses.dataclass(frozen=True)
class DownloadConfig:
    """How videos are fetched."""

    # The smallest stream at least this big is chosen (the clips are 160x90).
    min_width: int = 160
    min_height: int = 90
    # Seconds of silence on a connection before it counts as a timeout.
    socket_timeout_s: float = 20.0
    # Seconds one video may take in all, retries and waits included.
    video_timeout_s: float = 1800.0
    # Tries per video (1 = no retry).
    max_attempts: int = 5
    # Backoff before retry n is backoff_initial_s * 2**(n-1), at most backoff_max_s, jittered.
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    # Caps: bigger or longer videos are dropped, not downloaded.
    max_file_bytes: int = 8_000_000_000
    max_duration_s: float = 4 * 3600.0
    # yt-dlp extractors to use (its --use-extractors): "default" is all of them; fewer is
    # cheaper per video (the generic extractor tries every embed pattern of those loaded).
    extractors: tuple[str, ...] = ("default",)
    # Cluster-wide rate limit on download attempts (a token bucket shared by all workers).
    rate_per_s: float = 4.0
    rate_burst: int = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"download.max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("socket_timeout_s", "video_timeout_s", "rate_per_s", "max_duration_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"download.{name} must be > 0")

    def format_selector(self) -> str:
        """yt-dlp format spec: direct http(s) streams only, video-only first, at least the target
        size when known."""
        direct = "[protocol^=http][protocol!=http_dash_segments]"
        size = f"[width>=?{self.min_width}][height>=?{self.min_height}]"
        return f"bv{size}{direct}/b{size}{direct}/bv{direct}/b{direct}"


# Ascending resolution, then size and bitrate: the smallest stream that passes the filter.
FORMAT_SORT = ["+res", "+size", "+br", "+fps"]


class _Rejected(Exception):
    """A cap or rule refused the video before its bytes were fetched."""


class _DeadlinePassed(Exception):
    """The per-video deadline passed during a download."""


class _Silent:
    """A yt-dlp logger that prints nothing."""

    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


class Download:
    """Stage: ok rows with a `url` -> rows with `path`, `content_sha256`, `file_bytes`,
    `download_attempts` and the metadata of full extraction; failures as error rows. Each
    row's `timings` gains `download_s` (CPU) and `download_wall_s`."""

    def __init__(
        self,
        config: DownloadConfig,
        store_dir: str | os.PathLike,
        acquire: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = pathlib.Path(store_dir)
        self.acquire = acquire or (lambda: None)
        for folder in ("sha256", "videos", "incoming"):
            (self.store / folder).mkdir(parents=True, exist_ok=True)
        self._deadline = 0.0
        self._rejection: str | None = None
        self._ydl = self._make_downloader()

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        rows = []
        for row in to_rows(batch):
            clock, start = time.thread_time(), time.monotonic()
            try:
                fetched = self.fetch(row) if is_ok(row) else {**row, "path": row.get("path")}
            except Exception as error:  # noqa: BLE001 - one video's surprise is that video's error row
                fetched = failed(row, STAGE, f"internal: {type(error).__name__}: {error}"[:500], path=None)
            timings = {"download_s": time.thread_time() - clock, "download_wall_s": time.monotonic() - start}
            rows.append({**fetched, "timings": {**(row.get("timings") or {}), **timings}})
        return to_batch(rows, columns=[*batch, "path", "timings"])

    def fetch(self, row: Mapping) -> dict:
        """One video row, downloaded (or found already stored) or failed with its reason."""
        url = row["url"]
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return failed(row, STAGE, f"bad_scheme: {url!r} is not http(s)", path=None)
        stored = self._stored(row["video_id"])
        if stored is not None:
            return ok(row, **stored, download_attempts=0)
        self._deadline = time.monotonic() + self.config.video_timeout_s
        attempt = 0
        while True:
            attempt += 1
            self.acquire()
            try:
                with deadline(max(0.0, self._deadline - time.monotonic())):
                    info = self._download_once(url, row["video_id"])
            except DeadlineExceeded:
                self._remove_incoming(row["video_id"])
                reason = f"timeout: video_timeout_s {self.config.video_timeout_s:g} s passed (attempt {attempt})"
                return failed(row, STAGE, reason, path=None, download_attempts=attempt)
            except _Rejected as rejection:
                self._remove_incoming(row["video_id"])
                return failed(row, STAGE, str(rejection), path=None, download_attempts=attempt)
            except Exception as error:  # noqa: BLE001 - every failure becomes data
                self._remove_incoming(row["video_id"])
                reason, retry_after = classify(error)
                if retry_after is None or attempt == self.config.max_attempts:
                    return failed(row, STAGE, f"{reason} (attempt {attempt})", path=None, download_attempts=attempt)
                wait = self._backoff(attempt, retry_after)
                if time.monotonic() + wait > self._deadline:
                    return failed(row, STAGE, f"{reason} (deadline, attempt {attempt})", path=None, download_attempts=attempt)
                time.sleep(wait)
                continue
            return ok(row, **self._store(row["video_id"], info), download_attempts=attempt)

    def _download_once(self, url: str, video_id: str) -> dict:
        self._remove_incoming(video_id)
        self._rejection = None
        self._ydl.params["outtmpl"]["default"] = str(self.store / "incoming" / f"{video_key(video_id)}.%(ext)s")
        info = self._ydl.extract_info(url, download=True)
        if self._rejection is not None:
            raise _Rejected(self._rejection)
        downloads = (info or {}).get("requested_downloads") or []
        filepath = downloads[0].get("filepath") if downloads else None
        path = pathlib.Path(filepath) if filepath else None
        if path is None or not path.is_file():  # yt-dlp skips a file whose announced size is over max_filesize
            raise _Rejected(f"too_large: over {self.config.max_file_bytes} bytes")
        return {**info, "_path": path}

    def _remove_incoming(self, video_id: str) -> None:
        """Delete the partial files of a video (yt-dlp's `.part`, a rejected file)."""
        for leftover in (self.store / "incoming").glob(f"{video_key(video_id)}.*"):
            leftover.unlink(missing_ok=True)

    def _make_downloader(self) -> yt_dlp.YoutubeDL:
        """One YoutubeDL for every video of this stage (building one costs ~45 ms of CPU)."""
        options = {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "cachedir": False,
            "socket_timeout": self.config.socket_timeout_s,
            "retries": 0,  # retries are ours: with backoff, Retry-After and a deadline
            "fragment_retries": 0,
            "extractor_retries": 0,
            "file_access_retries": 0,
            "fixup": "never",
            "format": self.config.format_selector(),
            "format_sort": FORMAT_SORT,
            "max_filesize": self.config.max_file_bytes,
            "outtmpl": str(self.store / "incoming" / "%(id)s.%(ext)s"),
            "match_filter": self._check_before_download,
            "progress_hooks": [self._check_progress],
            "noplaylist": True,
            "allowed_extractors": list(self.config.extractors),
            "logger": _Silent(),  # failures are recorded as data, not printed
        }
        return yt_dlp.YoutubeDL(options)

    def _check_before_download(self, info: dict, *, incomplete: bool = False) -> str | None:
        if incomplete:
            return None
        formats = info.get("requested_formats") or [info]
        for fmt in formats:
            if urllib.parse.urlsplit(str(fmt.get("url", ""))).scheme not in ("http", "https"):
                self._rejection = "bad_scheme: media URL is not http(s)"
        duration = info.get("duration")
        if isinstance(duration, (int, float)) and duration > self.config.max_duration_s:
            self._rejection = f"too_long: {duration:.0f} s > {self.config.max_duration_s:.0f} s"
        size = sum(fmt.get("filesize") or fmt.get("filesize_approx") or 0 for fmt in formats)
        if size > self.config.max_file_bytes:
            self._rejection = f"too_large: {size} bytes > {self.config.max_file_bytes}"
        return self._rejection

    def _check_progress(self, progress: dict) -> None:
        """After each block received: the size cap on bytes actually received (a server may
        announce no size, or a false one), and the deadline (also enforced by `deadline`)."""
        received = progress.get("downloaded_bytes") or 0
        if received > self.config.max_file_bytes:
            raise _Rejected(f"too_large: over {self.config.max_file_bytes} bytes received")
        if time.monotonic() > self._deadline:
            raise _DeadlinePassed(f"video_timeout_s {self.config.video_timeout_s:g} s passed")

    def _backoff(self, attempt: int, retry_after: float) -> float:
        delay = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** (attempt - 1))
        delay *= 0.5 + random.random() / 2  # jitter, so workers do not retry in step
        return min(self.config.backoff_max_s, max(delay, retry_after))

    def _store(self, video_id: str, info: dict) -> dict:
        """Move the downloaded file to its content address and record the id -> file pointer."""
        path: pathlib.Path = info["_path"]
        digest = sha256_file(path)
        ext = str(info.get("ext") or "").lower()
        ext = ext if _EXT.fullmatch(ext) else "bin"
        target = self.store / "sha256" / digest[:2] / f"{digest}.{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            path.unlink()
        else:  # durable before the pointer below names it
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(path, target)
            fsync_folder(target.parent)
        stored = {
            "path": str(target),
            "content_sha256": digest,
            "file_bytes": target.stat().st_size,
            "title": info.get("title"),
            "description": info.get("description"),
            "uploader": info.get("uploader") or info.get("channel"),
            "license": info.get("license"),
            "duration_s": float(info["duration"]) if isinstance(info.get("duration"), (int, float)) else None,
        }
        pointer = self.store / "videos" / f"{video_key(video_id)}.json"
        write_atomic(pointer, json.dumps({**stored, "path": str(target.relative_to(self.store))}).encode())
        return stored

    def _stored(self, video_id: str) -> dict | None:
        pointer = self.store / "videos" / f"{video_key(video_id)}.json"
        try:
            stored = json.loads(pointer.read_text())
            target = (self.store / stored["path"]).resolve()
            size = stored["file_bytes"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: download again
        if not target.is_relative_to(self.store.resolve() / "sha256") or not target.is_file() or target.stat().st_size != size:
            return None
        return {**stored, "path": str(target)}


def classify(error: BaseException) -> tuple[str, float | None]:
    """A failure's reason ("code: message") and, when it is worth retrying, the server's
    Retry-After in seconds (0 without one); None when it is not worth retrying.

    Retried: HTTP 403 / 408 / 429 / 5xx, timeouts, connection errors, truncated bodies.
    yt-dlp often reports these as text only (no exception chained), so text decides too.
    """
    cause = error
    while isinstance(cause, yt_dlp.utils.DownloadError) and cause.exc_info and cause.exc_info[1] is not None:
        cause = cause.exc_info[1]
    text = _CONTROL.sub(" ", str(error)).replace("ERROR:", "").strip()
    lowered = text.lower()
    if isinstance(cause, _DeadlinePassed):
        return f"timeout: {cause}", None
    if isinstance(cause, _Rejected):
        return str(cause), None
    status = cause.status if isinstance(cause, HTTPError) else None
    match = re.search(r"HTTP Error (\d{3})", text)
    if status is None and match:
        status = int(match.group(1))
    if status is not None:
        retry_after = _retry_after(cause) if isinstance(cause, HTTPError) else 0.0
        return f"http_{status}: {text}", (retry_after if status in RETRYABLE_STATUS else None)
    if "timed out" in lowered or "timeout" in lowered:
        return f"timeout: {text}", 0.0
    if isinstance(cause, yt_dlp.utils.ContentTooShortError) or any(
        marker in lowered for marker in ("bytes read", "more expected", "bytes, expected", "incomplete")
    ):
        return f"truncated: {text}", 0.0
    if isinstance(cause, (TransportError, ConnectionError)) or "connection" in lowered:
        return f"connection: {text}", 0.0
    return f"unavailable: {text}", None


def _retry_after(error: HTTPError) -> float:
    try:
        return max(0.0, float(error.response.headers.get("Retry-After") or 0))
    except (TypeError, ValueError):
        return 0.0


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

