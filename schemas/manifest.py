"""The lineage manifest: one Parquet table of source videos, one of clips, joined by video_id.

Every video the search saw has a row (kept, dropped by a rule, or failed with its error), and
every clip cut from a video has a row (kept with its shard and offset, or dropped with its
reason). Stats are derived from these tables, never kept on the side.
"""

import pyarrow as pa

from schemas.ids import clip_id_problem
from schemas.validation import validate_row, validate_table

# 2: clips gained `quality_scores` (every scorer's score, in the order they judged), and
#    `quality_scorer` names the learned model ("learned-cnn:<model id>") when it judged.
MANIFEST_VERSION = "2"

STATUS_OK = "ok"
STATUS_DROPPED = "dropped"
STATUS_ERROR = "error"
STATUSES = frozenset({STATUS_OK, STATUS_DROPPED, STATUS_ERROR})

_TIMESTAMP = pa.timestamp("us", tz="UTC")

SCENE_SPAN = pa.struct(
    [
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
    ]
)

QUALITY_SCORE = pa.struct([pa.field("scorer", pa.string(), nullable=False), pa.field("score", pa.float32(), nullable=False)])

VIDEO_SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("description", pa.string()),
        pa.field("uploader", pa.string()),
        pa.field("license", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("queries", pa.list_(pa.string()), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("download_attempts", pa.int32()),
        pa.field("content_sha256", pa.string()),
        pa.field("file_bytes", pa.int64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("n_frames", pa.int64()),
        pa.field("scene_spans", pa.list_(SCENE_SPAN)),
        pa.field("n_clips", pa.int32()),
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("created_at", _TIMESTAMP, nullable=False),
        pa.field("updated_at", _TIMESTAMP, nullable=False),
    ],
    metadata={"genie.manifest_version": MANIFEST_VERSION, "genie.table": "videos"},
)

CLIP_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("scene_index", pa.int32(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),
        pa.field("quality_score", pa.float32()),  # the last scorer's (the one that dropped it, if one did)
        pa.field("quality_scorer", pa.string()),
        pa.field("quality_scores", pa.list_(QUALITY_SCORE)),
        pa.field("status", pa.string(), nullable=False),
        pa.field("stage", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("shard", pa.string()),
        pa.field("shard_index", pa.int32()),
        pa.field("shard_offset", pa.int64()),
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("created_at", _TIMESTAMP, nullable=False),
    ],
    metadata={"genie.manifest_version": MANIFEST_VERSION, "genie.table": "clips"},
)

_ENUMS = {"status": STATUSES}


def _reason_unless_ok(row) -> str | None:
    if row["status"] != STATUS_OK and not row.get("reason"):
        return f"field 'reason' is required when status is {row['status']!r}"
    return None


def _clip_id_is_valid(row) -> str | None:
    problem = clip_id_problem(row["clip_id"])
    return f"field 'clip_id': {problem}" if problem else None


def _span_is_ordered(row) -> str | None:
    if row["start_frame"] >= row["end_frame"]:
        return f"field 'end_frame': {row['end_frame']} must be after start_frame {row['start_frame']}"
    if row["start_s"] >= row["end_s"]:
        return f"field 'end_s': {row['end_s']} must be after start_s {row['start_s']}"
    if not 1 <= row["n_frames"] <= 160:
        return f"field 'n_frames': {row['n_frames']} is outside 1..160"
    return None


def _kept_clip_has_a_place(row) -> str | None:
    placed = [row.get(name) is not None for name in ("shard", "shard_index", "shard_offset")]
    if row["status"] == STATUS_OK and not all(placed):
        missing = ("shard", "shard_index", "shard_offset")[placed.index(False)]
        return f"field {missing!r} is required for a kept clip"
    if row["status"] != STATUS_OK and any(placed):
        return "field 'shard' must be empty for a clip that was not kept"
    return None


VIDEO_RULES = (_reason_unless_ok,)
CLIP_RULES = (_reason_unless_ok, _clip_id_is_valid, _span_is_ordered, _kept_clip_has_a_place)


def validate_video_row(row) -> None:
    validate_row(row, VIDEO_SCHEMA, _ENUMS, VIDEO_RULES)


def validate_clip_row(row) -> None:
    validate_row(row, CLIP_SCHEMA, _ENUMS, CLIP_RULES)


def validate_video_table(table: pa.Table) -> None:
    validate_table(table, VIDEO_SCHEMA, _ENUMS, VIDEO_RULES)


def validate_clip_table(table: pa.Table) -> None:
    validate_table(table, CLIP_SCHEMA, _ENUMS, CLIP_RULES)

# An ingest run's output folder, as release code reads it (pipeline/lineage.py writes it).
RUN_VIDEOS_FILE = "manifest/videos.parquet"
RUN_CLIPS_FILE = "manifest/clips.parquet"
RUN_SHARDS_DIR = "shards"
RUN_STATS_FILE = "stats.json"
RUN_CONFIG_FILE = "config.json"
