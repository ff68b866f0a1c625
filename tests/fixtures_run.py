"""Test-only: an ingest run's output folder written without Ray, through the same writers the
ingest job uses (pipeline/shards.py's VideoShardWriter, pipeline/lineage.py's parts and
manifest), from clips the test makes.

    run = write_run(tmp_path / "run", {"site:a": [frames_0, frames_1], "site:b": [...]})
    run.clip_ids["site:a"]  # the clip ids, in the order given
"""

import dataclasses
import pathlib

import numpy as np

from pipeline import lineage
from pipeline.shards import ShardConfig, VideoShardWriter
from schemas import ids, shard

PIPELINE_VERSION = "test"


@dataclasses.dataclass(frozen=True)
class Run:
    root: pathlib.Path
    clip_ids: dict[str, list[str]]


def clip_meta(video_id: str, start: int, n_frames: int, quality_score: float | None = None) -> dict:
    """A kept clip's manifest fields (and sample metadata), `n_frames` at 10 FPS from `start`."""
    return {"clip_id": ids.clip_id(video_id, start, start + n_frames), "video_id": video_id, "scene_index": 0,
            "start_frame": start, "end_frame": start + n_frames, "start_s": start / 10, "end_s": (start + n_frames) / 10,
            "n_frames": n_frames, "quality_score": quality_score, "pipeline_version": PIPELINE_VERSION}  # fmt: skip


def write_run(root: pathlib.Path, videos: dict[str, list[np.ndarray]], extra: dict[str, list[dict]] | None = None,
              target_bytes: int = 1 << 20) -> Run:
    """Each video's clips (frames (T, 90, 160, 3) uint8, cut back to back) kept in its shards;
    `extra` adds keys to each clip's dict handed to lineage.write_parts (e.g. an embedding)."""
    clip_ids = {}
    for video_id, clips in videos.items():
        writer = VideoShardWriter(root / "shards", video_id, ShardConfig(target_bytes=target_bytes))
        rows, start = [], 0
        for index, frames in enumerate(clips):
            meta = clip_meta(video_id, start, len(frames), quality_score=0.5)
            writer.write(shard.encode_sample(frames, {**meta, "fps": 10, "width": 160, "height": 90}),
                         meta["start_frame"], meta["end_frame"])
            rows.append({**meta, "quality_scorer": "test", "status": "ok", **((extra or {}).get(video_id, [{}] * len(clips))[index])})
            start += len(frames)
        placements = writer.commit()
        for row in rows:
            placement = placements[row["clip_id"]]
            row.update(shard=placement.shard, shard_index=placement.index, shard_offset=placement.offset)
        stamp = lineage.now()
        video = {"video_id": video_id, "url": f"http://127.0.0.1/{video_id}", "queries": ["test"], "status": "ok",
                 "n_clips": len(rows), "pipeline_version": PIPELINE_VERSION, "created_at": stamp, "updated_at": stamp}
        lineage.write_parts(root, video, [{**row, "created_at": stamp} for row in rows])
        clip_ids[video_id] = [row["clip_id"] for row in rows]
    lineage.consolidate(root)
    return Run(root, clip_ids)
