"""The lineage manifest on disk: per-video parts while a job runs, two Parquet tables after.

    parts/<video_key>.clips.parquet    every clip cut from the video (CLIP_SCHEMA)
    parts/<video_key>.embeddings.parquet  the embeddings of its kept clips, where the scorer
                                       made them (schemas/embeddings.py; for pipeline/dedup.py)
    parts/<video_key>.video.parquet    the video's row (VIDEO_SCHEMA), written last: its
                                       presence means the video is finished
    manifest/videos.parquet            every video of the run: the search's rejects, and
                                       every finished video in parts/
    manifest/clips.parquet             every clip of every finished video

Every file is validated against its schema before it is written, and written atomically and
durably (fsync of file and folder before the rename). A part that cannot be read back (a disk
that lost it, a hand edit) means the video is not finished: it is removed and the video redone.
"""

import datetime as dt
import os
import pathlib
import sys
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.ids import video_key
from schemas.embeddings import embeddings_table
from schemas.manifest import CLIP_SCHEMA, STATUS_OK, VIDEO_SCHEMA, validate_clip_table, validate_video_table
from schemas.shard_io import AtomicFile

PARTS = "parts"
MANIFEST = "manifest"
VIDEOS_FILE = "videos.parquet"
CLIPS_FILE = "clips.parquet"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def video_table(rows: Sequence[dict]) -> pa.Table:
    """VIDEO_SCHEMA rows (extra keys ignored) as a validated table."""
    table = pa.Table.from_pylist([{name: row.get(name) for name in VIDEO_SCHEMA.names} for row in rows], schema=VIDEO_SCHEMA)
    validate_video_table(table)
    return table


def clip_table(rows: Sequence[dict]) -> pa.Table:
    """CLIP_SCHEMA rows (extra keys ignored) as a validated table."""
    table = pa.Table.from_pylist([{name: row.get(name) for name in CLIP_SCHEMA.names} for row in rows], schema=CLIP_SCHEMA)
    validate_clip_table(table)
    return table


def is_finished(output_dir: str | os.PathLike, video_id: str) -> bool:
    """Whether a previous run finished this video: both its parts exist and read back valid.
    Unreadable parts are removed, so the video is redone."""
    return read_parts(_part(output_dir, video_id, "video")) is not None


def read_parts(video_part: pathlib.Path) -> tuple[pa.Table, pa.Table] | None:
    """A finished video's (video table, clips table) from its video part's path; None, after
    removing both parts, if either is missing or does not read back with its schema."""
    clips_part = video_part.with_name(video_part.name.replace(".video.", ".clips."))
    if not video_part.is_file():
        return None
    try:  # parts were validated before they were written: reading them back is the check
        video, clips = pq.read_table(video_part, schema=VIDEO_SCHEMA), pq.read_table(clips_part, schema=CLIP_SCHEMA)
    except (OSError, ValueError, pa.ArrowException) as error:
        print(f"lineage: {video_part.name} or its clips part is unreadable ({error}); the video will be redone",
              file=sys.stderr)
        video_part.unlink(missing_ok=True)
        clips_part.unlink(missing_ok=True)
        return None
    return video, clips


def write_parts(output_dir: str | os.PathLike, video: dict, clips: Sequence[dict]) -> None:
    """Write a finished video's clip part, its kept clips' embeddings (those whose dict has an
    `embedding`), then its video part (the marker), atomically."""
    write_table(_part(output_dir, video["video_id"], "clips"), clip_table(clips))
    embedded = [clip for clip in clips if clip.get("status") == STATUS_OK and clip.get("embedding") is not None]
    if embedded:
        write_table(embeddings_part(output_dir, video["video_id"]), embeddings_table(embedded))
    write_table(_part(output_dir, video["video_id"], "video"), video_table([video]))


def consolidate(output_dir: str | os.PathLike, other_videos: Iterable[dict] = ()) -> tuple[pa.Table, pa.Table]:
    """Gather every part (plus `other_videos`, e.g. the search's rejects, unless a part has the
    same video) into manifest/videos.parquet and manifest/clips.parquet; both tables."""
    root = pathlib.Path(output_dir)
    parts = [read_parts(path) for path in finished_video_parts(root)]
    videos = [video for video, _ in filter(None, parts)]
    clips = [clip for _, clip in filter(None, parts)]
    finished = {video_id for table in videos for video_id in table.column("video_id").to_pylist()}
    extra = [row for row in other_videos if row["video_id"] not in finished]
    if extra:
        videos.append(video_table(extra))
    video_rows = pa.concat_tables(videos) if videos else VIDEO_SCHEMA.empty_table()
    clip_rows = pa.concat_tables(clips) if clips else CLIP_SCHEMA.empty_table()
    video_rows = video_rows.sort_by("video_id")
    clip_rows = clip_rows.sort_by([("video_id", "ascending"), ("start_frame", "ascending")])
    validate_video_table(video_rows)
    validate_clip_table(clip_rows)
    write_table(root / MANIFEST / VIDEOS_FILE, video_rows)
    write_table(root / MANIFEST / CLIPS_FILE, clip_rows)
    return video_rows, clip_rows


def write_table(path: pathlib.Path, table: pa.Table) -> None:
    """Write a Parquet file atomically and durably (schemas/shard_io.py's AtomicFile)."""
    with AtomicFile(path) as target:
        pq.write_table(table, target.file)


def clips_part(output_dir: str | os.PathLike, video_id: str) -> pathlib.Path:
    return _part(output_dir, video_id, "clips")


def embeddings_part(output_dir: str | os.PathLike, video_id: str) -> pathlib.Path:
    return _part(output_dir, video_id, "embeddings")


def finished_video_parts(output_dir: str | os.PathLike) -> list[pathlib.Path]:
    """The video parts (markers of finished videos) of a run, sorted."""
    return sorted((pathlib.Path(output_dir) / PARTS).glob("*.video.parquet"))


def _part(output_dir: str | os.PathLike, video_id: str, kind: str) -> pathlib.Path:
    return pathlib.Path(output_dir) / PARTS / f"{video_key(video_id)}.{kind}.parquet"
