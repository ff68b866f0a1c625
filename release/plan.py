"""Which clips go into a release, into which split and which shard, in what order.

1. Videos (`choose_videos`): every kept video of every run, unless a takedown covers it, an
   earlier run already gave the same video id, or an earlier video had the same file
   (content sha256): those are recorded as excluded, with the reason.
2. Splits (`assign_splits`): by source video, so no video is in two splits. Videos are put
   in a seeded hash order and laid along [0, 1) by their clip hours; a video goes to the split
   whose fraction interval holds its midpoint, which matches the fractions as closely as
   whole videos allow.
3. Shards (`plan_shards`): within a split, clips are ordered by a seeded hash of the clip id
   (a shuffle that needs no memory of other clips) and cut into consecutive shards of about
   `target_shard_bytes`. To sort without holding every clip, clip rows are first spread into
   bucket files by hash range (`bucket_clips` rows each on average), then each bucket is
   sorted on its own; buckets in order are the whole sorted split.

Everything is a pure function of the inputs and the seed, so the same inputs and seed give
the same plan, and the same shards, byte for byte.
"""

import dataclasses
import hashlib
import math
import os
import pathlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from release import inputs
from schemas.manifest import STATUS_OK
from schemas.release import RELEASE_CLIP_SCHEMA, SPLITS, shard_name
from schemas.takedowns import TakedownList, takedown_dict

HOUR = 3600.0
PLACEMENT = ("split", "shard", "shard_index", "shard_offset", "sample_bytes")
PLAN_SCHEMA = pa.schema(
    [field for field in RELEASE_CLIP_SCHEMA if field.name not in PLACEMENT]
    + [pa.field("order", pa.uint64(), nullable=False), pa.field("source_offset", pa.int64(), nullable=False),
       pa.field("estimated_bytes", pa.int64(), nullable=False)]
)  # fmt: skip
_CLIP_COLUMNS = ["clip_id", "video_id", "scene_index", "start_frame", "end_frame", "start_s", "end_s", "n_frames",
                 "quality_score", "quality_scorer", "pipeline_version", "shard", "shard_offset"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SplitFractions:
    """Fractions of clip hours per split (whole source videos each); they sum to 1."""

    train: float = 0.9
    val: float = 0.05
    test: float = 0.05

    def __post_init__(self) -> None:
        values = dataclasses.astuple(self)
        if min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-9):
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {dataclasses.asdict(self)}")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """How a release is cut from its inputs."""

    # Seeds the split of videos and the order of clips; the same seed gives the same release.
    seed: int = 0
    splits: SplitFractions = SplitFractions()
    # A shard is closed once its clips add up to about this many bytes.
    target_shard_bytes: int = 256 * 1024**2
    # Decode every sample's frames while building (a corrupt one is left out, with its reason);
    # false checks the metadata and the PNG header only.
    check_frames: bool = True
    # Planning sorts this many clip rows at a time (on average): the driver's memory bound.
    bucket_clips: int = 200_000

    def __post_init__(self) -> None:
        if self.target_shard_bytes < 1 or self.bucket_clips < 1:
            raise ValueError("target_shard_bytes and bucket_clips must be >= 1")


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    """The chosen videos (by id: their release video row without split) and the excluded ones."""

    chosen: dict[str, dict]
    excluded: list[dict]
    shard_bytes_per_clip: dict[tuple[str, str], int]  # (run, shard) -> estimated bytes of one clip


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """One release shard to write: its name, split and planned clips (PLAN_SCHEMA, in order)."""

    name: str
    split: str
    clips: pa.Table


def keyed_hash(seed: int, purpose: str, text: str) -> int:
    """A 64-bit hash of `text`, different for every seed and purpose."""
    key = f"{seed}:{purpose}".encode()[:64]
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, key=key).digest(), "big")


def choose_videos(runs: list[str], takedowns: TakedownList) -> VideoPlan:
    """Pass 1 over the runs: which videos are in, which are out and why."""
    chosen: dict[str, dict] = {}
    contents: dict[str, str] = {}
    excluded: list[dict] = []
    bytes_per_clip: dict[tuple[str, str], int] = {}
    for run in runs:
        videos = inputs.read_videos(run)
        sizes = inputs.shard_sizes(run)
        per_video: dict[str, dict] = {}
        clips_per_shard: dict[str, int] = {}
        for batch in inputs.kept_clip_batches(run, ["video_id", "shard", "start_s", "end_s"]):
            hours = pa.compute.divide(pa.compute.subtract(batch["end_s"], batch["start_s"]), HOUR)
            grouped = batch.append_column("hours", hours).group_by(["video_id", "shard"]).aggregate(
                [("hours", "sum"), ([], "count_all")]).to_pylist()  # fmt: skip
            for row in grouped:
                video = per_video.setdefault(row["video_id"], {"n_clips": 0, "clip_hours": 0.0, "shards": {}})
                video["n_clips"] += row["count_all"]
                video["clip_hours"] += row["hours_sum"]
                video["shards"][row["shard"]] = video["shards"].get(row["shard"], 0) + row["count_all"]
                clips_per_shard[row["shard"]] = clips_per_shard.get(row["shard"], 0) + row["count_all"]
        for shard, count in clips_per_shard.items():
            if shard in sizes:
                bytes_per_clip[(run, shard)] = max(1, sizes[shard] // count)
        for video in videos.to_pylist():
            counts = per_video.get(video["video_id"])
            if video["status"] != STATUS_OK or counts is None:
                continue
            out = {"video_id": video["video_id"], "source_run": run, "n_clips": counts["n_clips"],
                   "clip_hours": counts["clip_hours"]}  # fmt: skip
            missing = sorted(shard for shard in counts["shards"] if shard not in sizes)
            takedown = takedowns.match(video["video_id"], video["uploader"])
            if takedown is not None:
                excluded.append({**out, "reason": "takedown", "takedown": takedown_dict(takedown)})
            elif missing:
                excluded.append({**out, "reason": f"missing_shard: {missing[0]}"})
            elif video["video_id"] in chosen:
                excluded.append({**out, "reason": f"duplicate_video: also in {chosen[video['video_id']]['source_run']}"})
            elif video["content_sha256"] and video["content_sha256"] in contents:
                excluded.append({**out, "reason": f"duplicate_content: same file as video {contents[video['content_sha256']]}"})
            else:
                if video["content_sha256"]:
                    contents[video["content_sha256"]] = video["video_id"]
                chosen[video["video_id"]] = {
                    **out, "url": video["url"], "title": video["title"], "uploader": video["uploader"],
                    "license": video["license"], "content_sha256": video["content_sha256"],
                }  # fmt: skip
    return VideoPlan(chosen, excluded, bytes_per_clip)


def assign_splits(videos: dict[str, dict], fractions: SplitFractions, seed: int) -> dict[str, str]:
    """Video id -> split, by clip hours along a seeded hash order of the videos."""
    order = sorted(videos, key=lambda video_id: (keyed_hash(seed, "split", video_id), video_id))
    total = sum(videos[video_id]["clip_hours"] for video_id in order) or 1.0
    bounds = []
    running = 0.0
    for split in SPLITS:
        running += getattr(fractions, split)
        bounds.append((running, split))
    splits = {}
    laid = 0.0
    for video_id in order:
        hours = videos[video_id]["clip_hours"]
        middle = (laid + hours / 2) / total
        laid += hours
        splits[video_id] = next((split for bound, split in bounds if middle < bound), bounds[-1][1])
    return splits


def plan_shards(runs: list[str], plan: VideoPlan, splits: dict[str, str], config: BuildConfig,
                scratch: pathlib.Path) -> Iterator[ShardTask]:
    """Pass 2 and 3: the shards to write, in release order (split, then number)."""
    clips_per_split = {split: 0 for split in SPLITS}
    for video_id, video in plan.chosen.items():
        clips_per_split[splits[video_id]] += video["n_clips"]
    buckets = {split: max(1, math.ceil(count / config.bucket_clips)) for split, count in clips_per_split.items()}
    _write_buckets(runs, plan, splits, config.seed, buckets, scratch)
    for split in SPLITS:
        number, pending, pending_bytes = 0, [], 0
        for bucket in range(buckets[split]):
            path = _bucket_path(scratch, split, bucket)
            if not path.exists():
                continue
            table = pq.read_table(path, schema=PLAN_SCHEMA).sort_by([("order", "ascending"), ("clip_id", "ascending")])
            path.unlink()
            start = 0
            estimated = table["estimated_bytes"].to_pylist()
            for index, size in enumerate(estimated):
                pending_bytes += size
                if pending_bytes >= config.target_shard_bytes:
                    pending.append(table.slice(start, index + 1 - start))
                    yield ShardTask(shard_name(split, number), split, pa.concat_tables(pending))
                    number, pending, pending_bytes, start = number + 1, [], 0, index + 1
            if start < len(table):
                pending.append(table.slice(start))
        if pending:
            yield ShardTask(shard_name(split, number), split, pa.concat_tables(pending))


def _write_buckets(runs, plan: VideoPlan, splits, seed: int, buckets: dict[str, int], scratch: pathlib.Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    writers: dict[tuple[str, int], pq.ParquetWriter] = {}
    try:
        for run in runs:
            for batch in inputs.kept_clip_batches(run, _CLIP_COLUMNS):
                rows: dict[tuple[str, int], list[dict]] = {}
                for clip in batch.to_pylist():
                    video = plan.chosen.get(clip["video_id"])
                    if video is None or video["source_run"] != run:
                        continue
                    split = splits[clip["video_id"]]
                    order = keyed_hash(seed, "order", clip["clip_id"])
                    source_shard = clip.pop("shard")
                    row = {**clip, "url": video["url"], "uploader": video["uploader"], "license": video["license"],
                           "source_run": run, "source_shard": inputs.shard_location(run, source_shard),
                           "source_offset": clip.pop("shard_offset"), "order": order,
                           "estimated_bytes": plan.shard_bytes_per_clip[(run, source_shard)]}  # fmt: skip
                    rows.setdefault((split, (order * buckets[split]) >> 64), []).append(row)
                for key, bucket_rows in rows.items():
                    if key not in writers:
                        writers[key] = pq.ParquetWriter(_bucket_path(scratch, *key), PLAN_SCHEMA)
                    writers[key].write_table(pa.Table.from_pylist(bucket_rows, schema=PLAN_SCHEMA))
    finally:
        for writer in writers.values():
            writer.close()


def _bucket_path(scratch: pathlib.Path, split: str, bucket: int) -> pathlib.Path:
    return scratch / f"{split}-{bucket:06d}.parquet"


def remove_scratch(scratch: pathlib.Path) -> None:
    for path in scratch.glob("*.parquet"):
        path.unlink()
    if scratch.exists():
        os.rmdir(scratch)
