"""Ingest runs as a release reads them: manifests, shard sizes, configs and drop reasons.

A run is the output folder of `genie ingest` (schemas/manifest.py's RUN_* layout), given as a
local path or a pyarrow/fsspec URI. Clip rows are read in record batches, so memory does not
grow with the size of a run; video rows (far fewer) are read whole.
"""

import collections
import json
import posixpath
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from release.shard_io import open_input
from schemas.manifest import (
    CLIP_SCHEMA,
    RUN_CLIPS_FILE,
    RUN_CONFIG_FILE,
    RUN_SHARDS_DIR,
    RUN_STATS_FILE,
    RUN_VIDEOS_FILE,
    STATUS_OK,
    VIDEO_SCHEMA,
    validate_video_table,
)
from schemas.shard_io import resolve
from schemas.validation import SchemaError

BATCH_ROWS = 65_536


class InputError(ValueError):
    """An ingest run cannot be read or does not match its schemas."""


def join(location: str, relative: str) -> str:
    """`relative` inside a run location (a path or a URI)."""
    return location.rstrip("/") + "/" + relative


def check_run(run: str) -> None:
    """Raise InputError unless `run` holds an ingest run's manifest."""
    filesystem, path = resolve(join(run, RUN_VIDEOS_FILE))
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        raise InputError(f"{run} is not an ingest run: no {RUN_VIDEOS_FILE}")


def read_videos(run: str) -> pa.Table:
    """The run's video table, checked against VIDEO_SCHEMA."""
    table = _read_table(run, RUN_VIDEOS_FILE, VIDEO_SCHEMA)
    try:
        validate_video_table(table)
    except SchemaError as error:
        raise InputError(f"{join(run, RUN_VIDEOS_FILE)}: {error}") from None
    return table


def iter_clip_batches(run: str, columns: list[str]) -> Iterator[pa.Table]:
    """The run's clip rows, `columns` only, in batches of at most BATCH_ROWS."""
    path = join(run, RUN_CLIPS_FILE)
    try:
        with open_input(path) as file:
            parquet = pq.ParquetFile(file)
            _check_schema(path, parquet.schema_arrow, CLIP_SCHEMA)
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def kept_clip_batches(run: str, columns: list[str]) -> Iterator[pa.Table]:
    """Only the kept clips (status ok, placed in a shard)."""
    for batch in iter_clip_batches(run, sorted({*columns, "status"})):
        yield batch.filter(pc.equal(batch["status"], STATUS_OK)).select(columns)


def shard_sizes(run: str) -> dict[str, int]:
    """Bytes of every shard of the run, by file name."""
    filesystem, path = resolve(join(run, RUN_SHARDS_DIR))
    try:
        found = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
    except (OSError, FileNotFoundError) as error:
        raise InputError(f"cannot list {join(run, RUN_SHARDS_DIR)}: {error}") from None
    return {entry.base_name: entry.size for entry in found if entry.type == pafs.FileType.File}


def shard_location(run: str, shard: str) -> str:
    """Where a run's shard (a file name from its manifest) is; names with a path are refused."""
    if posixpath.basename(shard) != shard or shard.startswith("."):
        raise InputError(f"{run}: manifest names shard {shard!r}, which is not a plain file name")
    return join(run, f"{RUN_SHARDS_DIR}/{shard}")


def run_summary(run: str, videos: pa.Table) -> dict:
    """What the card says about a run: counts per status and reason code, stats and config."""
    summary = {
        "run": run,
        "videos": _reason_counts(videos.select(["status", "reason"]).to_pylist()),
        "clips": collections.Counter(),
        "pipeline_versions": sorted(set(videos["pipeline_version"].to_pylist())),
        "stats": _read_json(run, RUN_STATS_FILE),
        "config": _read_json(run, RUN_CONFIG_FILE),
    }
    for batch in iter_clip_batches(run, ["status", "reason"]):
        counts = batch.group_by(["status", "reason"]).aggregate([([], "count_all")]).to_pylist()
        for row in counts:
            summary["clips"][_reason_key(row["status"], row["reason"])] += row["count_all"]
    summary["clips"] = dict(sorted(summary["clips"].items()))
    return summary


def _reason_counts(rows: list[dict]) -> dict[str, int]:
    return dict(sorted(collections.Counter(_reason_key(row["status"], row["reason"]) for row in rows).items()))


def _reason_key(status: str, reason: str | None) -> str:
    """'ok', or 'status:code' with the reason's code (the text before its first colon)."""
    if status == STATUS_OK:
        return STATUS_OK
    return f"{status}:{(reason or '').split(':', 1)[0].strip() or 'unknown'}"


def _read_table(run: str, relative: str, schema: pa.Schema) -> pa.Table:
    path = join(run, relative)
    try:
        with open_input(path) as file:
            parquet = pq.ParquetFile(file)
            _check_schema(path, parquet.schema_arrow, schema)
            return parquet.read()
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def _check_schema(path: str, actual: pa.Schema, expected: pa.Schema) -> None:
    for field in expected:
        if field.name not in actual.names:
            raise InputError(f"{path}: column {field.name!r} is missing (is this an ingest run?)")
        if actual.field(field.name).type != field.type:
            raise InputError(f"{path}: column {field.name!r} has type {actual.field(field.name).type}, expected {field.type}")


def _read_json(run: str, relative: str) -> dict | None:
    """A JSON file of the run, or None when the run has none."""
    try:
        with open_input(join(run, relative)) as file:
            return json.loads(file.read())
    except (OSError, FileNotFoundError, json.JSONDecodeError):
        return None
