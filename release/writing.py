"""The files around a release's shards: manifest tables, provenance, index and checksums.

`ReleaseWriter` takes each written shard's index entry and manifest rows as they come (in
shard order) and streams the rows into manifest/clips.parquet; `finish` writes the rest.
Memory: the index entries (one per shard) and a count per source video.
"""

import contextlib
import datetime as dt
import hashlib
import json
import os
import pathlib
import shutil
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.release import (
    CHECKSUMS_FILE,
    CLIPS_FILE,
    INDEX_FILE,
    MANIFEST_FILES,
    PROVENANCE_FILE,
    RELEASE_CLIP_SCHEMA,
    RELEASE_FORMAT_VERSION,
    RELEASE_VIDEO_SCHEMA,
    VIDEOS_FILE,
    validate_clip_table,
    validate_index,
    validate_video_table,
)

HOUR = 3600.0


@contextlib.contextmanager
def staged_release(out: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A fresh folder beside `out` to build a release in: renamed to `out` when the block ends,
    removed if it raises. A release is never overwritten."""
    out = pathlib.Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists: a release is never overwritten (give a new --out)")
    working = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True)
    try:
        yield working
        os.replace(working, out)
    except BaseException:
        shutil.rmtree(working, ignore_errors=True)
        raise


def takedown_record(entry: dict, removed: list[dict], version: str, applied_by: str) -> dict:
    """What one takedown entry (its JSON form) removed, from which videos (release video rows
    or excluded-video records, with n_clips and clip_hours), and when it was applied."""
    return {**entry, "applied_in": version, "applied_on": dt.date.today().isoformat(), "applied_by": applied_by,
            "videos_removed": sorted(video["video_id"] for video in removed),
            "clips_removed": sum(video["n_clips"] for video in removed),
            "hours_removed": sum(video["clip_hours"] for video in removed)}  # fmt: skip


class ReleaseWriter:
    """Writes a release's manifest, provenance, index and checksums into `root`."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = pathlib.Path(root)
        (self.root / CLIPS_FILE).parent.mkdir(parents=True, exist_ok=True)
        self._clips = pq.ParquetWriter(self.root / CLIPS_FILE, RELEASE_CLIP_SCHEMA)
        self.shards: list[dict] = []
        self.per_video: dict[str, list] = {}  # video id -> [clips, hours]

    def add_shard(self, entry: dict | None, rows: list[dict]) -> None:
        """One written shard (entry None: every clip of it was left out)."""
        if entry is None:
            return
        table = pa.Table.from_pylist(rows, schema=RELEASE_CLIP_SCHEMA)
        validate_clip_table(table)
        self._clips.write_table(table)
        self.shards.append(entry)
        for row in rows:
            counts = self.per_video.setdefault(row["video_id"], [0, 0.0])
            counts[0] += 1
            counts[1] += (row["end_s"] - row["start_s"]) / HOUR

    def finish(self, name: str, version: str, seed: int, fractions: dict, videos: list[dict], provenance: dict,
               based_on: str | None = None) -> dict:
        """Write the video table (videos with clips in the release), provenance, index and
        checksums; the index."""
        self._clips.close()
        rows = []
        for video in sorted(videos, key=lambda video: video["video_id"]):
            counts = self.per_video.get(video["video_id"])
            if counts:
                rows.append({**{key: video.get(key) for key in RELEASE_VIDEO_SCHEMA.names}, "n_clips": counts[0], "clip_hours": counts[1]})
        table = pa.Table.from_pylist(rows, schema=RELEASE_VIDEO_SCHEMA)
        validate_video_table(table)
        pq.write_table(table, self.root / VIDEOS_FILE)
        _write_json(self.root / PROVENANCE_FILE, provenance)
        files = [{"name": relative, "bytes": (self.root / relative).stat().st_size, "sha256": _sha256(self.root / relative)}
                 for relative in (*MANIFEST_FILES, PROVENANCE_FILE)]  # fmt: skip
        index = {
            "format_version": RELEASE_FORMAT_VERSION, "name": name, "version": version,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "seed": seed,
            "split_fractions": fractions, "shards": self.shards, "files": files, "based_on": based_on,
        }  # fmt: skip
        validate_index(index)
        _write_json(self.root / INDEX_FILE, index)
        sums = "".join(f"{entry['sha256']}  {entry['name']}\n" for entry in [*files, *self.shards])
        (self.root / CHECKSUMS_FILE).write_text(sums)
        return index


def _write_json(path: pathlib.Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(4 * 1024**2):
            digest.update(chunk)
    return digest.hexdigest()
