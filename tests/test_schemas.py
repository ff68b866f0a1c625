import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import ids, manifest, shard
from schemas.validation import SchemaError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def video_row(**changes):
    row = {name: None for name in manifest.VIDEO_SCHEMA.names}
    row.update(video_id="site:abc", url="http://127.0.0.1:8000/v/abc.mp4", queries=["mario speedrun"],
               status="ok", pipeline_version="0.1.0", created_at=NOW, updated_at=NOW,
               scene_spans=[{"start_frame": 0, "end_frame": 30, "start_s": 0.0, "end_s": 1.0}])
    row.update(changes)
    return row


def clip_row(**changes):
    row = {name: None for name in manifest.CLIP_SCHEMA.names}
    row.update(clip_id=ids.clip_id("site:abc", 0, 30), video_id="site:abc", scene_index=0, start_frame=0,
               end_frame=30, start_s=0.0, end_s=1.0, n_frames=10, status="ok", shard="shard-000000.tar",
               shard_index=0, shard_offset=0, pipeline_version="0.1.0", created_at=NOW)
    row.update(changes)
    return row


def test_valid_rows_pass_and_round_trip_through_parquet():
    """A valid video row and clip row validate, and survive a Parquet round trip unchanged."""
    for row, schema, check in ((video_row(), manifest.VIDEO_SCHEMA, manifest.validate_video_table),
                               (clip_row(), manifest.CLIP_SCHEMA, manifest.validate_clip_table)):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([row], schema=schema), buffer)
        table = pq.read_table(io.BytesIO(buffer.getvalue()))
        check(table)
        assert table.to_pylist() == [row]


@pytest.mark.parametrize("row, field", [
    (video_row(video_id=None), "video_id"),
    (video_row(duration_s="long"), "duration_s"),
    (video_row(status="maybe"), "status"),
    (video_row(status="error", reason=None), "reason"),
    (video_row(colour="red"), "colour"),
    (video_row(queries="mario"), "queries"),
    (video_row(scene_spans=[{"start_frame": 0}]), "scene_spans"),
])
def test_malformed_video_rows_are_rejected_naming_the_field(row, field):
    """Each malformed video row is rejected with a message that names the offending field."""
    with pytest.raises(SchemaError, match=repr(field)):
        manifest.validate_video_row(row)


@pytest.mark.parametrize("row, field", [
    (clip_row(end_frame=0), "end_frame"),
    (clip_row(n_frames=161), "n_frames"),
    (clip_row(shard=None), "shard"),
    (clip_row(status="dropped", reason="static"), "shard"),
    (clip_row(status="dropped", shard=None, shard_index=None, shard_offset=None), "reason"),
    (clip_row(quality_score="good"), "quality_score"),
])
def test_malformed_clip_rows_are_rejected_naming_the_field(row, field):
    """Each malformed clip row is rejected with a message that names the offending field."""
    with pytest.raises(SchemaError, match=repr(field)):
        manifest.validate_clip_row(row)


def test_table_with_wrong_column_type_is_rejected():
    """A table whose column has the wrong Arrow type is rejected, naming the column."""
    table = pa.Table.from_pylist([clip_row()], schema=manifest.CLIP_SCHEMA)
    table = table.set_column(table.schema.get_field_index("n_frames"), "n_frames", pa.array([10], pa.int64()))
    with pytest.raises(SchemaError, match="'n_frames'"):
        manifest.validate_clip_table(table)


def sample_meta(n_frames=5):
    return {"clip_id": ids.clip_id("site:abc", 0, 30), "video_id": "site:abc", "scene_index": 0,
            "start_frame": 0, "end_frame": 30, "start_s": 0.0, "end_s": 1.0, "n_frames": n_frames,
            "fps": 10, "width": 160, "height": 90, "quality_score": 0.5, "pipeline_version": "0.1.0"}


def test_shard_sample_round_trips_losslessly():
    """Frames and metadata encoded into a sample decode back bit-exactly."""
    frames = np.random.default_rng(0).integers(0, 256, (5, 90, 160, 3), dtype=np.uint8)
    sample = shard.encode_sample(frames, sample_meta())
    assert sample["__key__"] == sample_meta()["clip_id"] and "." not in sample["__key__"]
    decoded, meta = shard.decode_sample(sample)
    np.testing.assert_array_equal(decoded, frames)
    assert meta == {"spec_version": shard.SHARD_SPEC_VERSION, **sample_meta()}


def test_shard_sample_rejects_bad_frames_and_meta():
    """Wrong frame shapes, frame-count mismatch and corrupt fields are rejected with a clear error."""
    good = np.zeros((5, 90, 160, 3), np.uint8)
    with pytest.raises(SchemaError, match="frames must be"):
        shard.encode_sample(np.zeros((5, 90, 120, 3), np.uint8), sample_meta())
    with pytest.raises(SchemaError, match="'n_frames'"):
        shard.encode_sample(good, sample_meta(n_frames=4))
    sample = shard.encode_sample(good, sample_meta())
    with pytest.raises(SchemaError, match="frames.png"):
        shard.decode_sample({**sample, "frames.png": b"not a png"})
    with pytest.raises(SchemaError, match="'json'"):
        shard.decode_sample({**sample, "json": b"{oops"})


def test_ids_are_deterministic_and_path_safe():
    """Clip ids depend only on source and span; outside names are reduced to safe keys."""
    assert ids.clip_id("a", 1, 2) == ids.clip_id("a", 1, 2) != ids.clip_id("a", 1, 3)
    for nasty in ("../../etc/passwd", "a.b.c", "", "x" * 500, "日本語"):
        key = ids.sanitize_key(nasty)
        assert key and len(key) <= 80 and all(c.isalnum() or c in "_-" for c in key)
    with pytest.raises(ValueError):
        ids.clip_id("a", 5, 5)
