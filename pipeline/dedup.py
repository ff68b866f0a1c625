"""Near-duplicate removal: a kept clip whose embedding lies within `max_cosine_distance` of a clip
kept before it is dropped, with reason `duplicate: <that clip's id>`.

"Before" is a fixed order, never arrival: the higher quality score first, then the smaller clip
id. So the same clips give the same decisions on every run, whatever order workers finished in.

Partitioned, so no step needs every embedding at once: random-hyperplane LSH (`hash_tables`
tables of `hash_bits` hyperplanes, seeded) puts each clip in one bucket per table, and near pairs
are searched only within a bucket. On a run, `BucketPartitions` shuffles the rows into
`partitions` files by bucket (a bucket lies whole in one file) and `partition_pairs` searches
one file at a time (the unit a cluster would hand each worker); `find_duplicates` does the same
in memory for one table. Two clips at angle t share a bucket
of one table with probability (1 - t/pi)^bits, so a pair at the threshold is found with
probability 1 - (1 - (1 - t/pi)^bits)^tables (`pair_recall`), and clearer duplicates almost
surely; raise `hash_bits` by one each time the corpus doubles to keep buckets small. Only
the near pairs (few) and their clips' scores meet in one place, to be resolved (`resolve`).

On a run's folder (`dedup_run`): reads the embeddings parts of its finished videos, decides, and
for each video that loses clips rewrites its shards without them (through the ingest's own shard
writer, so names and layout are the ingest's) and its clips part (the clip `dropped` at stage
`dedup`). Steps are ordered so that a crash at any point leaves a state a rerun completes.
"""

import dataclasses
import math
import os
import pathlib
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import lineage
from pipeline.rows import dropped
from pipeline.shards import ShardConfig, VideoShardWriter
from schemas.config import in_range
from schemas.embeddings import EMBEDDING_SCHEMA, embedding_matrix, validate_embeddings_table
from schemas.ids import video_key
from schemas.manifest import RUN_SHARDS_DIR, STATUS_OK
from schemas.shard import META_FIELD, decode_meta
from schemas.shard_io import iter_samples, read_samples

STAGE = "dedup"
REASON = "duplicate"


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate removal over the learned scorer's clip embeddings."""

    # Off by default: it needs embeddings, which only the learned scorer makes.
    enabled: bool = False
    # Two clips are duplicates when 1 - cosine similarity of their embeddings is at most this.
    # Measured with the shipped offline CNN on SMB (benchmarks/RESULTS.md): re-encodes 0.000,
    # one-frame shifts <= 0.006, distinct clips of one level >= 0.009. Encoder-specific: measure yours.
    max_cosine_distance: float = 0.007
    # LSH: hyperplanes per table (2^bits buckets each) and independent tables (recall).
    hash_bits: int = 10
    hash_tables: int = 10
    seed: int = 0
    # Buckets are spread over this many partition files, searched one at a time: memory holds
    # about (clips x hash_tables / partitions) embeddings.
    partitions: int = 16

    def __post_init__(self) -> None:
        for name, low, high in (("max_cosine_distance", 0.0, 0.999), ("hash_bits", 0, 30), ("hash_tables", 1, 64),
                                ("partitions", 1, 65536)):
            in_range(self, name, low, high)


def pair_recall(config: DedupConfig) -> float:
    """The probability that two clips exactly at the threshold share at least one bucket."""
    angle = math.acos(1.0 - config.max_cosine_distance)
    return 1.0 - (1.0 - (1.0 - angle / math.pi) ** config.hash_bits) ** config.hash_tables


def hyperplanes(dim: int, config: DedupConfig) -> np.ndarray:
    """(tables, bits, dim) random normals, the same for the same seed and size."""
    return np.random.default_rng([config.seed, dim]).standard_normal((config.hash_tables, config.hash_bits, dim)).astype(np.float32)


def bucket_keys(embeddings: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """(N, tables) int64 bucket keys, unique across tables: table * 2^bits + the sign bits."""
    tables, bits, _ = planes.shape
    signs = np.einsum("nd,tbd->ntb", embeddings, planes) > 0  # (N, tables, bits)
    codes = (signs.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=2)  # (N, tables)
    return codes + (np.arange(tables, dtype=np.int64) << bits)


def bucket_rows(embeddings: np.ndarray, config: DedupConfig) -> Iterator[np.ndarray]:
    """The row indices of each bucket holding two clips or more, bucket by bucket in key order."""
    if len(embeddings) < 2:
        return
    keys = bucket_keys(embeddings, hyperplanes(embeddings.shape[1], config)).ravel()  # (N * tables,)
    yield from _groups(keys, np.repeat(np.arange(len(embeddings)), config.hash_tables))


def _groups(keys: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
    """The `rows` of each key held by two rows or more, in key order."""
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(keys)]):
        if end - start > 1:
            yield rows[start:end]


def near_pairs(clip_ids: list[str], embeddings: np.ndarray, max_distance: float, block: int = 2048) -> set[tuple[str, str]]:
    """Pairs (smaller id, larger id) of one bucket's clips within `max_distance` (unit-norm rows)."""
    found = set()
    for start in range(0, len(embeddings), block):
        near = embeddings[start : start + block] @ embeddings[start:].T >= 1.0 - max_distance  # (block, N - start)
        for i, j in zip(*np.nonzero(np.triu(near, k=1))):  # each pair once, never a clip with itself
            a, b = clip_ids[start + i], clip_ids[start + j]
            found.add((a, b) if a < b else (b, a))
    return found


def resolve(scores: Mapping[str, float | None], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{dropped clip id: the kept clip it duplicates}: clips in order (higher score, then smaller
    id, first), each dropped if a neighbour before it was kept (the first such neighbour)."""

    def rank(clip: str) -> tuple[float, str]:
        score = scores.get(clip)
        return (-score if score is not None and not math.isnan(score) else math.inf, clip)

    neighbours: dict[str, list[str]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    decisions: dict[str, str] = {}
    kept: set[str] = set()
    for clip in sorted(neighbours, key=rank):
        before = sorted((other for other in neighbours[clip] if other in kept), key=rank)
        if before:
            decisions[clip] = before[0]
        else:
            kept.add(clip)
    return decisions


def find_duplicates(table: pa.Table, config: DedupConfig) -> dict[str, str]:
    """Decisions for one embeddings table (EMBEDDING_SCHEMA), bucket by bucket."""
    validate_embeddings_table(table)
    clip_ids = table.column("clip_id").to_pylist()
    embeddings = embedding_matrix(table)
    pairs: set[tuple[str, str]] = set()
    for rows in bucket_rows(embeddings, config):
        pairs |= near_pairs([clip_ids[row] for row in rows], embeddings[rows], config.max_cosine_distance)
    return resolve(dict(zip(clip_ids, table.column("quality_score").to_pylist())), pairs)


# --- partitioned: memory holds one partition ------------------------------------------------

_PARTITION_SCHEMA = pa.schema([pa.field("bucket", pa.int64(), nullable=False), *EMBEDDING_SCHEMA])


class BucketPartitions:
    """The shuffle: embeddings tables in, each row written once per hash table into one of
    `partitions` Parquet files (by bucket), so that a bucket lies whole in one file and a file
    is searched alone (`partition_pairs`): memory holds one video's rows, then one partition's."""

    def __init__(self, folder: pathlib.Path, config: DedupConfig, partitions: int) -> None:
        self.folder, self.config, self.partitions = folder, config, partitions
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.planes: np.ndarray | None = None

    def add(self, table: pa.Table) -> None:
        validate_embeddings_table(table)
        embeddings = embedding_matrix(table)
        if not len(embeddings):
            return
        if self.planes is None:
            self.planes = hyperplanes(embeddings.shape[1], self.config)
        if self.planes.shape[2] != embeddings.shape[1]:
            raise ValueError(f"embeddings of size {embeddings.shape[1]} among ones of size {self.planes.shape[2]}")
        keys = bucket_keys(embeddings, self.planes).ravel()  # (N * tables,)
        rows = np.repeat(np.arange(len(embeddings)), self.config.hash_tables)
        partition = keys % self.partitions
        for number in np.unique(partition):
            chosen = partition == number
            part = table.take(pa.array(rows[chosen])).select(EMBEDDING_SCHEMA.names)
            part = part.add_column(0, "bucket", pa.array(keys[chosen], pa.int64())).cast(_PARTITION_SCHEMA)
            if number not in self.writers:
                self.writers[number] = pq.ParquetWriter(self.folder / f"partition-{number:05d}.parquet", _PARTITION_SCHEMA)
            self.writers[number].write_table(part)

    def close(self) -> list[pathlib.Path]:
        for writer in self.writers.values():
            writer.close()
        return sorted(self.folder / f"partition-{number:05d}.parquet" for number in self.writers)


def partition_pairs(path: pathlib.Path, config: DedupConfig) -> tuple[set[tuple[str, str]], dict[str, float | None]]:
    """One partition's near pairs, and the scores of the clips in them."""
    table = pq.read_table(path, schema=_PARTITION_SCHEMA)
    clip_ids = table.column("clip_id").to_pylist()
    embeddings = embedding_matrix(table)
    pairs: set[tuple[str, str]] = set()
    for rows in _groups(table.column("bucket").to_numpy(), np.arange(len(table))):
        pairs |= near_pairs([clip_ids[row] for row in rows], embeddings[rows], config.max_cosine_distance)
    paired = {clip for pair in pairs for clip in pair}
    scores = {clip: score for clip, score in zip(clip_ids, table.column("quality_score").to_pylist()) if clip in paired}
    return pairs, scores


# --- on a run's folder ------------------------------------------------------------------------

SCRATCH = "dedup"


def dedup_run(output_dir: str | os.PathLike, config: DedupConfig, shards: ShardConfig) -> dict[str, str]:
    """Drop the near-duplicates among the kept clips of a run's finished videos; the decisions.
    Clips dropped before stay dropped; a rerun over the same clips changes nothing."""
    root = pathlib.Path(output_dir)
    shutil.rmtree(root / SCRATCH, ignore_errors=True)
    partitions = BucketPartitions(root / SCRATCH, config, config.partitions)
    shard_files: dict[str, list[pathlib.Path]] = {}  # video key -> its shards
    for path in sorted((root / RUN_SHARDS_DIR).glob("*.tar")):
        shard_files.setdefault(path.name.split("_", 1)[0], []).append(path)
    for video_part in lineage.finished_video_parts(root):
        parts = lineage.read_parts(video_part)
        if parts is None:
            continue
        video_id = parts[0].column("video_id")[0].as_py()
        ok_clips = parts[1].filter(pc.equal(parts[1].column("status"), STATUS_OK))
        if pc.any(pc.equal(parts[1].column("stage"), STAGE)).as_py():  # rewritten by drop_clips: it names every shard
            _remove_unreferenced(shard_files.get(video_key(video_id), []), set(ok_clips.column("shard").to_pylist()))
        path = lineage.embeddings_part(root, video_id)
        if path.is_file():
            try:
                table = pq.read_table(path, schema=EMBEDDING_SCHEMA)
                partitions.add(table.filter(pc.is_in(table.column("clip_id"), ok_clips.column("clip_id"))))
            except (OSError, ValueError, pa.ArrowException) as error:  # one bad part never stops the pass
                print(f"dedup: {path.name} is unreadable ({error}); its clips are not deduplicated", file=sys.stderr)
    pairs: set[tuple[str, str]] = set()
    scores: dict[str, float | None] = {}
    for path in partitions.close():  # each alone: on a cluster, one task each
        found, found_scores = partition_pairs(path, config)
        pairs |= found
        scores.update(found_scores)
    shutil.rmtree(root / SCRATCH)
    decisions = resolve(scores, pairs)
    by_video: dict[str, dict[str, str]] = {}
    for clip, kept in decisions.items():
        by_video.setdefault(clip[:16], {})[clip] = kept  # a clip id starts with its video's key
    for key, duplicates in sorted(by_video.items()):
        drop_clips(root, key, duplicates, shards)
    return decisions


def drop_clips(output_dir: pathlib.Path, key: str, duplicates: Mapping[str, str], shards: ShardConfig) -> None:
    """Rewrite one video's shards without `duplicates` ({clip id: kept clip id}), then its clips
    part, then delete its shards that no kept clip is in (also those an earlier attempt that died
    midway left behind)."""
    video, clips = lineage.read_parts(output_dir / lineage.PARTS / f"{key}.video.parquet")
    video_id, clips = video.column("video_id")[0].as_py(), clips.to_pylist()
    shard_dir = output_dir / RUN_SHARDS_DIR
    if any(clip["status"] == STATUS_OK and clip["clip_id"] in duplicates for clip in clips):
        samples = _SampleSource(shard_dir, video_id)
        writer = VideoShardWriter(shard_dir, video_id, shards)
        rows = []
        for clip in sorted(clips, key=lambda row: row["start_frame"]):
            if clip["status"] == STATUS_OK and clip["clip_id"] in duplicates:
                clip = dropped(clip, STAGE, f"{REASON}: {duplicates[clip['clip_id']]}", shard=None, shard_index=None,
                               shard_offset=None)  # fmt: skip
            elif clip["status"] == STATUS_OK:
                writer.write(samples.get(clip), clip["start_frame"], clip["end_frame"])
            rows.append(clip)
        placements = writer.commit()  # every read is done before a shard is renamed over
        for clip in rows:
            if clip["clip_id"] in placements:
                placement = placements[clip["clip_id"]]
                clip.update(shard=placement.shard, shard_index=placement.index, shard_offset=placement.offset)
        lineage.write_table(lineage.clips_part(output_dir, video_id), lineage.clip_table(rows))
        clips = rows
    _remove_unreferenced(sorted(shard_dir.glob(f"{key}_*.tar")), {clip["shard"] for clip in clips if clip["status"] == STATUS_OK})


def _remove_unreferenced(shards: Iterable[pathlib.Path], referenced: set[str]) -> None:
    for path in shards:
        if path.name not in referenced:
            path.unlink()


class _SampleSource:
    """A kept clip's sample, read at its manifest placement; should that not hold it (an earlier
    attempt died between renaming shards and writing the clips part), taken from a read of every
    shard of the video (held in memory: only this recovery needs it)."""

    def __init__(self, shard_dir: pathlib.Path, video_id: str) -> None:
        self.shard_dir = shard_dir
        self.video_id = video_id
        self.scanned: dict[str, dict] | None = None

    def get(self, clip: Mapping) -> dict:
        sample = self._read(self.shard_dir / clip["shard"], clip["shard_offset"])
        if sample is None or sample["__key__"] != clip["clip_id"]:
            if self.scanned is None:
                shards = sorted(self.shard_dir.glob(f"{video_key(self.video_id)}_*.tar"))
                self.scanned = {sample["__key__"]: sample for path in shards for sample in iter_samples(str(path))}
            sample = self.scanned[clip["clip_id"]]
        decode_meta(sample[META_FIELD])  # a sample that breaks the spec is not copied on
        return {name: value for name, value in sample.items() if name != "__url__"}

    @staticmethod
    def _read(path: pathlib.Path, offset: int) -> dict | None:
        if not path.is_file():
            return None
        with open(path, "rb") as file:
            file.seek(offset)
            return next(read_samples(file, str(path)), None)
