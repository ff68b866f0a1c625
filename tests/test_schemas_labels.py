import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import ids, labels
from schemas.validation import SchemaError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
CLIP = ids.clip_id("site:abc", 0, 160)


def row(**changes):
    fields = {"clip_id": CLIP, "score": 5, "labeller": "ana", "labelled_at": NOW, "video_id": "site:abc"}
    fields.update(changes)
    return fields


def test_labels_round_trip_through_the_file_sorted_by_clip(tmp_path):
    """Rows written by write_labels read back equal, sorted by clip id, with no temporary left."""
    other = ids.clip_id("site:abc", 160, 320)
    rows = [row(clip_id=other, score=1, video_id=None), labels.label_row(CLIP, 5, "ana", "site:abc", NOW)]
    labels.write_labels(str(tmp_path / "labels.parquet"), rows)
    table = labels.read_labels(str(tmp_path / "labels.parquet"))
    assert table.to_pylist() == sorted(rows, key=lambda item: item["clip_id"])
    assert table.schema.metadata[b"genie.labels_version"] == labels.LABELS_VERSION.encode()
    assert [path.name for path in tmp_path.iterdir()] == ["labels.parquet"]


@pytest.mark.parametrize("bad, field", [
    (row(clip_id="../../etc/passwd"), "clip_id"),
    (row(score=0), "score"),
    (row(score=6), "score"),
    (row(score=True), "score"),
    (row(score=3.5), "score"),
    (row(labeller=" "), "labeller"),
    (row(labelled_at=None), "labelled_at"),
    (row(colour="red"), "colour"),
])
def test_malformed_label_rows_are_rejected_naming_the_field(bad, field):
    """Each malformed labels row is rejected with a message that names the offending field."""
    with pytest.raises(SchemaError, match=repr(field)):
        labels.validate_label_row(bad)


def test_a_clip_labelled_twice_is_rejected(tmp_path):
    """A file with two rows for one clip is not a labels file."""
    with pytest.raises(SchemaError, match="labelled more than once"):
        labels.write_labels(str(tmp_path / "labels.parquet"), [row(), row(score=1)])
    table = pa.Table.from_pylist([row(), row(score=1)], schema=labels.LABELS_SCHEMA)
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(SchemaError, match="labelled more than once"):
        labels.read_labels(str(tmp_path / "twice.parquet"))


def test_a_file_that_is_not_a_labels_table_is_rejected(tmp_path):
    """A missing file, a non-Parquet file and a table with the wrong columns each raise SchemaError."""
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    pq.write_table(pa.table({"clip_id": [CLIP], "score": [5]}), tmp_path / "short.parquet")
    for name, message in (("missing.parquet", "not a readable"), ("junk.parquet", "not a readable"),
                          ("short.parquet", "'labeller'")):
        with pytest.raises(SchemaError, match=message):
            labels.read_labels(str(tmp_path / name))


@pytest.mark.parametrize("bad, field", [
    (row(score=9), "score"),
    (row(clip_id=CLIP[:17] + "000000160_000000000"), "clip_id"),
    (row(clip_id="x" + CLIP[1:]), "clip_id"),
    (row(labeller=" "), "labeller"),
])
def test_a_file_with_a_bad_row_is_rejected_naming_row_and_field(tmp_path, bad, field):
    """The column-wise table checks catch what the row rules catch, naming the row and the field."""
    other = row(clip_id=ids.clip_id("site:abc", 500, 600))
    pq.write_table(pa.Table.from_pylist([other, bad], schema=labels.LABELS_SCHEMA), tmp_path / "bad.parquet")
    with pytest.raises(SchemaError, match=f"row 1: .*{field!r}"):
        labels.read_labels(str(tmp_path / "bad.parquet"))
