"""WebDataset tar shards of one video's kept clips, written atomically.

Shards are per video, so which shard holds a clip depends only on that video's clips: a rerun
or a resumed run writes the same shards with the same bytes, whatever else ran beside it.
A video's clips fill shards of about `target_bytes` in clip order; each shard is named by its
content range, `<video_key>_<first start frame>_<last end frame>.tar` (frames of the source,
9 digits), so names are deterministic and unique. Shards are written under temporary names
and renamed into place only when the whole video is done (`commit`), so a crash leaves no
shard of a half-done video and never a truncated tar; `discard` removes the temporaries.
The tar itself is written by the project's one shard writer (schemas/shard_io.py: plain,
byte-deterministic USTAR, WebDataset's layout) into AtomicFiles (fsynced, renamed on commit);
it does not import webdataset, which would import torch into every worker (1.5 CPU-s each).
"""

import dataclasses
import os
import pathlib

from schemas.ids import video_key
from schemas.shard_io import TEMPORARY_PREFIX, AtomicFile, ShardWriter


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """Shard sizing."""

    # A video's shard is closed once it holds at least this many bytes.
    target_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.target_bytes < 1:
            raise ValueError("shards.target_bytes must be >= 1")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a kept clip's sample is: shard file name, index in the shard, byte offset of its
    first tar header."""

    shard: str
    index: int
    offset: int


class VideoShardWriter:
    """Writes one video's samples (webdataset dicts, in clip order) into shards."""

    def __init__(self, shard_dir: str | os.PathLike, video_id: str, config: ShardConfig) -> None:
        self.dir = pathlib.Path(shard_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = video_key(video_id)
        self.config = config
        self._file: AtomicFile | None = None  # the open shard
        self._writer: ShardWriter | None = None
        self._pending: list[tuple[AtomicFile, str]] = []  # closed shards and their final names
        self._placements: dict[str, tuple[int, int, int]] = {}  # clip id -> (shard number, index, offset)
        self._shard_clips: list[tuple[int, int]] = []  # spans of the open shard's clips

    def write(self, sample: dict, start_frame: int, end_frame: int) -> None:
        """Append one sample (its `__key__` is the clip id) spanning [start_frame, end_frame)."""
        if self._writer is None:
            self._file = AtomicFile(self.dir / f"{self.key}-{len(self._pending)}.tar")
            self._writer = ShardWriter(self._file.file)
            self._shard_clips = []
        offset = self._writer.write(sample)
        self._placements[sample["__key__"]] = (len(self._pending), len(self._shard_clips), offset)
        self._shard_clips.append((start_frame, end_frame))
        if self._writer.offset >= self.config.target_bytes:
            self._close_shard()

    def commit(self) -> dict[str, Placement]:
        """Put every shard in place (durably); each written clip's placement by clip id."""
        self._close_shard()
        for shard, name in self._pending:
            shard.commit(self.dir / name)
        placements = {
            clip: Placement(self._pending[number][1], index, offset)
            for clip, (number, index, offset) in self._placements.items()
        }
        self._pending = []
        return placements

    def discard(self) -> None:
        """Remove the temporaries of a video that did not finish."""
        if self._file is not None:
            self._file.discard()
            self._file = self._writer = None
        for shard, _ in self._pending:
            shard.discard()
        self._pending = []

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        name = f"{self.key}_{self._shard_clips[0][0]:09d}_{self._shard_clips[-1][1]:09d}.tar"
        self._pending.append((self._file, name))
        self._file = self._writer = None


def remove_temporaries(shard_dir: str | os.PathLike) -> int:
    """Delete temporaries a killed run left behind (only one job may write a folder at a time)."""
    removed = 0
    for path in pathlib.Path(shard_dir).glob(f"{TEMPORARY_PREFIX}*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
