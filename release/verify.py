"""Verifying a release: is it complete, untampered, consistent and split by source video?

`verify_release` checks, and returns every problem found as a line naming what is wrong:
- index.json is well formed; every file it lists (manifest, provenance) has its size and
  sha256; no shard-like file sits in a split folder without being in the index;
- every shard of the index exists with its size and sha256;
- every shard holds exactly the clips the manifest puts in it, each at its index and byte
  offset, with nothing else; every sample has the spec's fields, valid metadata that agrees
  with its manifest row, and frames that decode (or, with check_frames=False, a PNG header of
  the right size);
- the manifest tables are valid, list each clip once, each shard's clips together, the video
  table agrees with the clip table, and no source video is in two splits.

Shard checks go through `map_ordered` (one task per shard, see release/build.py), so a large
release is checked by Ray tasks; the manifest is read in batches, one shard's rows at a time.
"""

import collections
import hashlib
import json
import pathlib
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from release.build import MapOrdered, local_map
from release.samples import check_sample
from release.shard_io import ShardError, iter_samples
from schemas.release import (
    CLIPS_FILE,
    INDEX_FILE,
    SPLITS,
    VIDEOS_FILE,
    validate_clip_table,
    validate_index,
    validate_video_table,
)
from schemas.validation import SchemaError

MAX_PROBLEMS_PER_SHARD = 20


class _HashingReader:
    """A read-only file that hashes and counts everything read through it."""

    def __init__(self, file) -> None:
        self.file, self.sha256, self.bytes = file, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


def verify_shard(root: str, entry: dict, rows: list[dict], check_frames: bool) -> dict:
    """Problems of one shard against its index entry and its manifest rows (in index order)."""
    problems = []
    path = pathlib.Path(root) / entry["name"]
    name = entry["name"]
    try:
        with open(path, "rb") as file:
            reader = _HashingReader(file)
            count = 0
            for index, (sample, offset, size) in enumerate(iter_samples(reader, name)):
                count = index + 1
                if index >= len(rows):
                    problems.append(f"{name}: stray sample {sample['__key__']!r} at index {index}, not in the manifest")
                    continue
                row = rows[index]
                problem = check_sample(sample, row, check_frames)
                if problem is None and (offset, size) != (row["shard_offset"], row["sample_bytes"]):
                    problem = (f"at offset {offset} ({size} bytes), the manifest says {row['shard_offset']} "
                               f"({row['sample_bytes']} bytes)")  # fmt: skip
                if problem is not None:
                    problems.append(f"{name}: sample {index} ({row['clip_id']}): {problem}")
            for row in rows[count:]:
                problems.append(f"{name}: clip {row['clip_id']!r} of the manifest is missing from the shard")
            while reader.read(4 * 1024**2):  # the end-of-archive blocks count in the checksum
                pass
    except FileNotFoundError:
        return {"name": name, "bytes": 0, "problems": [f"{name}: shard is missing"]}
    except (OSError, ShardError) as error:
        problems.append(f"{name}: unreadable: {error}")
        return {"name": name, "bytes": entry["bytes"], "problems": problems[:MAX_PROBLEMS_PER_SHARD]}
    if reader.bytes != entry["bytes"] or reader.sha256.hexdigest() != entry["sha256"]:
        problems.insert(0, f"{name}: checksum mismatch: {reader.bytes} bytes, sha256 {reader.sha256.hexdigest()}; "
                           f"the index says {entry['bytes']} bytes, sha256 {entry['sha256']}")  # fmt: skip
    if len(problems) > MAX_PROBLEMS_PER_SHARD:
        problems = [*problems[:MAX_PROBLEMS_PER_SHARD], f"{name}: ... {len(problems) - MAX_PROBLEMS_PER_SHARD} more problems"]
    return {"name": name, "bytes": reader.bytes, "problems": problems}


def verify_release(root: str | pathlib.Path, check_frames: bool = True, map_ordered: MapOrdered = local_map,
                   progress: Callable[[dict], None] | None = None) -> list[str]:
    """Every problem of the release in folder `root` (empty: it verifies clean)."""
    root = pathlib.Path(root)
    try:
        index = json.loads((root / INDEX_FILE).read_text())
        validate_index(index)
    except (OSError, json.JSONDecodeError, SchemaError) as error:
        return [f"{INDEX_FILE}: {error}"]
    problems = _check_files(root, index)
    if any(problem.startswith(CLIPS_FILE) for problem in problems):
        return problems  # a manifest that is not what was released cannot judge the shards
    entries = {entry["name"]: entry for entry in index["shards"]}
    problems += _check_strays(root, entries)
    video_splits: dict[str, set[str]] = collections.defaultdict(set)
    manifest_problems: list[str] = []
    tasks = _shard_tasks(root, entries, video_splits, manifest_problems)
    check = _VerifyShard(str(root), check_frames)
    for result in map_ordered(check, tasks):
        problems += result["problems"]
        if progress is not None:
            progress(result)
    problems += manifest_problems
    problems += _check_splits(root, video_splits)
    return problems


class _VerifyShard:
    """Picklable shard check for map_ordered."""

    def __init__(self, root: str, check_frames: bool) -> None:
        self.root, self.check_frames = root, check_frames

    def __call__(self, task: tuple[dict, list[dict]]) -> dict:
        return verify_shard(self.root, task[0], task[1], self.check_frames)


def _check_files(root: pathlib.Path, index: dict) -> list[str]:
    problems = []
    for entry in index["files"]:
        try:
            with open(root / entry["name"], "rb") as file:
                data = _HashingReader(file)
                while data.read(4 * 1024**2):
                    pass
        except OSError:
            problems.append(f"{entry['name']}: missing")
            continue
        if (data.bytes, data.sha256.hexdigest()) != (entry["bytes"], entry["sha256"]):
            problems.append(f"{entry['name']}: checksum mismatch (not the file the index lists)")
    return problems


def _check_strays(root: pathlib.Path, entries: dict[str, dict]) -> list[str]:
    problems = []
    for split in SPLITS:
        folder = root / split
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                name = f"{split}/{path.name}"
                if name not in entries:
                    problems.append(f"{name}: stray file, not in {INDEX_FILE}")
    return problems


def _shard_tasks(root: pathlib.Path, entries: dict[str, dict], video_splits: dict, problems: list[str]) -> Iterator:
    """(index entry, manifest rows) per shard, streaming the manifest; manifest problems are
    appended to `problems` and each video's splits gathered in `video_splits`."""
    seen_shards: set[str] = set()
    clip_hashes: list[np.ndarray] = []  # 8 bytes a clip, to find a clip listed twice
    current: str | None = None
    rows: list[dict] = []
    try:
        parquet = pq.ParquetFile(root / CLIPS_FILE)
        batches = parquet.iter_batches(batch_size=65_536)
        for batch in batches:
            table = pa.Table.from_batches([batch])
            try:
                validate_clip_table(table)
            except SchemaError as error:
                problems.append(f"{CLIPS_FILE}: {error}")
                return
            clip_hashes.append(_clip_hashes(table["clip_id"].to_pylist()))
            for row in table.to_pylist():
                video_splits[row["video_id"]].add(row["split"])
                if row["shard"] != current:
                    if current is not None:
                        yield from _task(entries, current, rows, problems)
                    if row["shard"] in seen_shards:
                        problems.append(f"{CLIPS_FILE}: the clips of {row['shard']} are not together")
                    current, rows = row["shard"], []
                    seen_shards.add(current)
                rows.append(row)
    except (OSError, pa.ArrowInvalid) as error:
        problems.append(f"{CLIPS_FILE}: unreadable: {error}")
        return
    if current is not None:
        yield from _task(entries, current, rows, problems)
    for name, entry in entries.items():
        if name not in seen_shards:
            yield entry, []
    problems += _listed_twice(root, clip_hashes)


def _clip_hashes(clip_ids: list[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(clip.encode(), digest_size=8).digest(), "big") for clip in clip_ids],
                    np.uint64)  # fmt: skip


def _listed_twice(root: pathlib.Path, clip_hashes: list[np.ndarray]) -> list[str]:
    """Clips the manifest lists more than once (found by sorting 8-byte hashes, then named)."""
    hashes = np.sort(np.concatenate(clip_hashes)) if clip_hashes else np.zeros(0, np.uint64)
    repeated = set(hashes[1:][hashes[1:] == hashes[:-1]].tolist())
    if not repeated:
        return []
    counts: collections.Counter = collections.Counter()
    for batch in pq.ParquetFile(root / CLIPS_FILE).iter_batches(batch_size=65_536, columns=["clip_id"]):
        ids = batch["clip_id"].to_pylist()
        counts.update(clip for clip, value in zip(ids, _clip_hashes(ids).tolist()) if value in repeated)
    return [f"{CLIPS_FILE}: clip {clip!r} is listed {count} times" for clip, count in sorted(counts.items()) if count > 1]


def _task(entries: dict[str, dict], shard: str, rows: list[dict], problems: list[str]) -> Iterator:
    entry = entries.get(shard)
    if entry is None:
        problems.append(f"{CLIPS_FILE}: {len(rows)} clips are in shard {shard}, which the index does not list")
        return
    rows = sorted(rows, key=lambda row: row["shard_index"])
    if [row["shard_index"] for row in rows] != list(range(len(rows))):
        problems.append(f"{CLIPS_FILE}: the clips of {shard} do not have indices 0..{len(rows) - 1}")
    if entry["clips"] != len(rows):
        problems.append(f"{shard}: the index says {entry['clips']} clips, the manifest {len(rows)}")
    yield entry, rows


def _check_splits(root: pathlib.Path, video_splits: dict[str, set[str]]) -> list[str]:
    problems = [f"split rule: video {video_id!r} is in {' and '.join(sorted(splits))}"
                for video_id, splits in sorted(video_splits.items()) if len(splits) > 1]  # fmt: skip
    try:
        videos = pq.read_table(root / VIDEOS_FILE)
        validate_video_table(videos)
    except (OSError, pa.ArrowInvalid, SchemaError) as error:
        return [*problems, f"{VIDEOS_FILE}: {error}"]
    listed = {row["video_id"]: row["split"] for row in videos.select(["video_id", "split"]).to_pylist()}
    for video_id, splits in sorted(video_splits.items()):
        if video_id not in listed:
            problems.append(f"{VIDEOS_FILE}: video {video_id!r} has clips but no row")
        elif listed[video_id] not in splits or len(splits) > 1:
            problems.append(f"{VIDEOS_FILE}: video {video_id!r} is in split {listed[video_id]}, its clips in {sorted(splits)}")
    problems += [f"{VIDEOS_FILE}: video {video_id!r} has no clips" for video_id in sorted(set(listed) - set(video_splits))]
    return problems
