"""A dataset release: its folder layout, manifest tables and shard index, versioned.

    <release>/
      index.json                  what the release is and holds: name, version, seed, splits,
                                  every shard with its split, size, sha256 and clip count, and
                                  the sha256 of every manifest file (INDEX_* below)
      SHA256SUMS                  the same checksums in `sha256sum -c` form
      manifest/clips.parquet      one row per clip (RELEASE_CLIP_SCHEMA), in shard order
      manifest/videos.parquet     one row per source video (RELEASE_VIDEO_SCHEMA)
      provenance.json             the ingest runs it was built from (their configs, pipeline
                                  versions, drop reasons) and every takedown applied
      README.md, card/*.png       the dataset card
      train/train-000000.tar      shards of the train split (samples of schemas/shard.py)
      val/val-000000.tar ...
      test/test-000000.tar ...

A sample in a release shard is byte for byte the sample ingest wrote: a release changes
where clips live, never what they are. A split folder is a plain folder of WebDataset tars,
so anything that reads clip shards (`genie train`, webdataset, Ray Data) reads a split.
"""

import re

import pyarrow as pa

from schemas.manifest import CLIP_SCHEMA, VIDEO_SCHEMA
from schemas.validation import SchemaError, validate_row, validate_table

RELEASE_FORMAT_VERSION = "1"
SPLITS = ("train", "val", "test")
INDEX_FILE = "index.json"
CHECKSUMS_FILE = "SHA256SUMS"
PROVENANCE_FILE = "provenance.json"
CARD_FILE = "README.md"
CARD_DIR = "card"
MANIFEST_DIR = "manifest"
CLIPS_FILE = "manifest/clips.parquet"
VIDEOS_FILE = "manifest/videos.parquet"
MANIFEST_FILES = (CLIPS_FILE, VIDEOS_FILE)

_SHARD_NAME = re.compile(r"^(train|val|test)/(train|val|test)-(\d{6})\.tar$")

def _lineage(table: pa.Schema, *names: str) -> list[pa.Field]:
    """Fields of the lineage manifest (schemas/manifest.py), carried forward as they are."""
    return [table.field(name) for name in names]


_SPLIT = pa.field("split", pa.string(), nullable=False)
_SOURCE_RUN = pa.field("source_run", pa.string(), nullable=False)  # the ingest output it came from

RELEASE_CLIP_SCHEMA = pa.schema(
    [
        CLIP_SCHEMA.field("clip_id"),
        _SPLIT,
        pa.field("shard", pa.string(), nullable=False),  # path in the release, e.g. train/train-000003.tar
        pa.field("shard_index", pa.int32(), nullable=False),  # the sample's position in its shard
        pa.field("shard_offset", pa.int64(), nullable=False),  # byte offset of its first tar header
        pa.field("sample_bytes", pa.int64(), nullable=False),  # its tar members, headers and padding
        *_lineage(VIDEO_SCHEMA, "video_id", "url", "uploader", "license"),
        *_lineage(CLIP_SCHEMA, "scene_index", "start_frame", "end_frame", "start_s", "end_s", "n_frames",
                  "quality_score", "quality_scorer", "pipeline_version"),
        _SOURCE_RUN,
        pa.field("source_shard", pa.string(), nullable=False),  # the ingest shard it was in
    ],
    metadata={"genie.release_format_version": RELEASE_FORMAT_VERSION, "genie.table": "release_clips"},
)

RELEASE_VIDEO_SCHEMA = pa.schema(
    [
        VIDEO_SCHEMA.field("video_id"),
        _SPLIT,
        *_lineage(VIDEO_SCHEMA, "url", "title", "uploader", "license", "content_sha256"),
        pa.field("n_clips", pa.int32(), nullable=False),  # clips of the video in this release
        pa.field("clip_hours", pa.float64(), nullable=False),
        _SOURCE_RUN,
    ],
    metadata={"genie.release_format_version": RELEASE_FORMAT_VERSION, "genie.table": "release_videos"},
)

# index.json, checked field by field by `validate_index`.
INDEX_SHARD_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("clips", pa.int64(), nullable=False),
    ]
)
INDEX_SCHEMA = pa.schema(
    [
        pa.field("format_version", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("created_at", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("split_fractions", pa.struct([pa.field(split, pa.float64(), nullable=False) for split in SPLITS]), nullable=False),
        pa.field("shards", pa.list_(pa.struct(list(INDEX_SHARD_SCHEMA))), nullable=False),
        pa.field("files", pa.list_(pa.struct([pa.field("name", pa.string(), nullable=False),
                                              pa.field("bytes", pa.int64(), nullable=False),
                                              pa.field("sha256", pa.string(), nullable=False)])), nullable=False),
        pa.field("based_on", pa.string()),  # the version a takedown release was derived from
    ],
    metadata={"genie.release_format_version": RELEASE_FORMAT_VERSION},
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENUMS = {"split": frozenset(SPLITS)}


def shard_name(split: str, number: int) -> str:
    """The release path of a split's shard `number`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return f"{split}/{split}-{number:06d}.tar"


def _shard_in_its_split(row) -> str | None:
    match = _SHARD_NAME.match(row["shard"])
    if match is None or match.group(1) != match.group(2):
        return f"field 'shard': {row['shard']!r} is not a release shard name"
    if match.group(1) != row["split"]:
        return f"field 'shard': {row['shard']!r} is not in split {row['split']!r}"
    return None


def _span_is_ordered(row) -> str | None:
    if row["start_frame"] >= row["end_frame"] or row["start_s"] >= row["end_s"]:
        return f"clip {row['clip_id']!r}: span [{row['start_s']}, {row['end_s']}) s is empty"
    if not 1 <= row["n_frames"] <= 160:
        return f"field 'n_frames': {row['n_frames']} is outside 1..160"
    return None


def validate_clip_table(table: pa.Table) -> None:
    validate_table(table, RELEASE_CLIP_SCHEMA, _ENUMS, (_shard_in_its_split, _span_is_ordered))


def validate_video_table(table: pa.Table) -> None:
    validate_table(table, RELEASE_VIDEO_SCHEMA, _ENUMS)


def validate_index(index: dict) -> None:
    """Raise SchemaError unless `index` (index.json, parsed) is well formed."""
    validate_row(index, INDEX_SCHEMA)
    if index["format_version"] != RELEASE_FORMAT_VERSION:
        raise SchemaError(f"field 'format_version': {index['format_version']!r}, this code reads {RELEASE_FORMAT_VERSION!r}")
    names = set()
    for entry in index["shards"]:
        validate_row(entry, INDEX_SHARD_SCHEMA, _ENUMS)
        problem = _shard_in_its_split({"shard": entry["name"], "split": entry["split"]})
        if problem:
            raise SchemaError(f"index shard {entry['name']!r}: {problem}")
        if entry["name"] in names:
            raise SchemaError(f"index lists shard {entry['name']!r} twice")
        names.add(entry["name"])
    for entry in index["files"]:
        if entry["name"] not in (*MANIFEST_FILES, PROVENANCE_FILE):
            raise SchemaError(f"index file {entry['name']!r} is not one of {[*MANIFEST_FILES, PROVENANCE_FILE]}")
    for entry in [*index["shards"], *index["files"]]:
        if not _SHA256.match(entry["sha256"]):
            raise SchemaError(f"index entry {entry['name']!r}: sha256 {entry['sha256']!r} is not 64 hex digits")
