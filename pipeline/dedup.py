"""Near-duplicate removal: a kept clip whose embedding lies within `max_cosine_distance` of a clip
kept before it is dropped, with reason `duplicate: <that clip's id>`.

"Before" is a fixed order, never arrival: the higher quality score first, then the smaller clip
id. So the same clips give the same decisions on every run, whatever order workers finished in.

Partitioned, so no step needs every embedding at once: random-hyperplane LSH (`hash_tables`
tables of `hash_bits` hyperplanes, seeded) puts each clip in one bucket per table, and near pairs
are searched only within a bucket (`bucket_rows`, then `near_pairs` per bucket: the unit a
cluster spreads over its workers, e.g. a Ray Data groupby). Two clips at angle t share a bucket
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
    max_cosine_distance: float = 0.05
    # LSH: hyperplanes per table (2^bits buckets each) and independent tables (recall).
    hash_bits: int = 10
    hash_tables: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low, high in (("max_cosine_distance", 0.0, 0.999), ("hash_bits", 0, 30), ("hash_tables", 1, 64)):
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
    rows = np.repeat(np.arange(len(embeddings)), config.hash_tables)
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
        distance = 1.0 - embeddings[start : start + block] @ embeddings.T  # (block, N)
        for i, j in zip(*np.nonzero(distance <= max_distance)):
            a, b = clip_ids[start + i], clip_ids[j]
            if a < b:
                found.add((a, b))
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


# --- on a run's folder ------------------------------------------------------------------------


def dedup_run(output_dir: str | os.PathLike, config: DedupConfig, shards: ShardConfig) -> dict[str, str]:
    """Drop the near-duplicates among the kept clips of a run's finished videos; the decisions.
    Clips dropped before stay dropped; a rerun over the same clips changes nothing."""
    root = pathlib.Path(output_dir)
    kept: dict[str, pa.Table] = {}  # video id -> its kept clips' embeddings
    for video_part in lineage.finished_video_parts(root):
        parts = lineage.read_parts(video_part)
        video_id = None if parts is None else parts[0].column("video_id")[0].as_py()
        if video_id is None or not lineage.embeddings_part(root, video_id).is_file():
            continue
        table = pq.read_table(lineage.embeddings_part(root, video_id), schema=EMBEDDING_SCHEMA)
        ok_clips = parts[1].filter(pc.equal(parts[1].column("status"), STATUS_OK)).column("clip_id")
        kept[video_id] = table.filter(pc.is_in(table.column("clip_id"), ok_clips))
    decisions = find_duplicates(pa.concat_tables(kept.values()), config) if kept else {}
    for video_id, table in kept.items():
        drop_clips(root, video_id, {clip: decisions[clip] for clip in table.column("clip_id").to_pylist() if clip in decisions},
                   shards)  # fmt: skip
    return decisions


def drop_clips(output_dir: pathlib.Path, video_id: str, duplicates: Mapping[str, str], shards: ShardConfig) -> None:
    """Rewrite one video's shards without `duplicates` ({clip id: kept clip id}), then its clips
    part, then delete its shards that no kept clip is in (also those an earlier attempt that died
    midway left behind)."""
    clips = lineage.read_parts(lineage.video_part(output_dir, video_id))[1].to_pylist()
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
    referenced = {clip["shard"] for clip in clips if clip["status"] == STATUS_OK}
    for path in sorted(shard_dir.glob(f"{video_key(video_id)}_*.tar")):
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
