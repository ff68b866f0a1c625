"""The quality labels file: one Parquet table, one row per labelled clip, a 1-5 score each.

Written by the labelling page (`genie quality label`) and by `genie quality labels-from-world`,
read by `genie quality train`. The paper's scale: 5 is clear gameplay, 1 is not gameplay
(menus, face-cams, letterboxes, off-topic footage). A clip has at most one row; labelling it
again replaces its row. `labeller` says who gave the score (a person's name, or `world` for
the offline world's ground truth); `video_id`, where known, is the source video, which a
train/test split groups by (the clip id's first 16 characters are its hash in any case).
"""

import datetime
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.ids import clip_id_problem
from schemas.shard_io import atomic_output, resolve
from schemas.validation import SchemaError, validate_row, validate_table

LABELS_VERSION = "1"
SCORE_MIN, SCORE_MAX = 1, 5

LABELS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("score", pa.int8(), nullable=False),
        pa.field("labeller", pa.string(), nullable=False),
        pa.field("labelled_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("video_id", pa.string()),
    ],
    metadata={"genie.labels_version": LABELS_VERSION, "genie.table": "labels"},
)


def _clip_id_is_valid(row: Mapping) -> str | None:
    problem = clip_id_problem(row["clip_id"])
    return f"field 'clip_id': {problem}" if problem else None


def _score_in_range(row: Mapping) -> str | None:
    score = row["score"]
    if isinstance(score, bool) or not isinstance(score, int) or not SCORE_MIN <= score <= SCORE_MAX:
        return f"field 'score': {score!r} is not an integer in {SCORE_MIN}..{SCORE_MAX}"
    return None


def _labeller_named(row: Mapping) -> str | None:
    return None if row["labeller"].strip() else "field 'labeller' is empty"


LABEL_RULES = (_clip_id_is_valid, _score_in_range, _labeller_named)


def label_row(clip_id: str, score: int, labeller: str, video_id: str | None = None,
              labelled_at: datetime.datetime | None = None) -> dict:
    """A validated labels row; `labelled_at` defaults to now (UTC)."""
    row = {"clip_id": clip_id, "score": score, "labeller": labeller,
           "labelled_at": labelled_at or datetime.datetime.now(datetime.timezone.utc), "video_id": video_id}
    validate_label_row(row)
    return row


def validate_label_row(row: Mapping) -> None:
    validate_row(row, LABELS_SCHEMA, rules=LABEL_RULES)


def validate_labels_table(table: pa.Table) -> None:
    """SchemaError unless every row is valid and no clip has two rows. The rules are checked
    column by column (a labelling session rewrites the file on every key press)."""
    validate_table(table.slice(0, 0), LABELS_SCHEMA)  # columns and types
    for field in LABELS_SCHEMA:
        if not field.nullable and table.column(field.name).null_count:
            raise SchemaError(f"field {field.name!r} is required")
    clip_ids = table.column("clip_id")
    spans = pc.match_substring_regex(clip_ids, r"^[0-9a-f]{16}_[0-9]{9}_[0-9]{9}$")
    spans = pc.and_(spans, pc.less(pc.utf8_slice_codeunits(clip_ids, 17, 26), pc.utf8_slice_codeunits(clip_ids, 27, 36)))
    checks = (("clip_id", spans),  # 9-digit zero-padded numbers compare as text
              ("score", pc.and_(pc.greater_equal(table.column("score"), SCORE_MIN), pc.less_equal(table.column("score"), SCORE_MAX))),
              ("labeller", pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(table.column("labeller"))), 0)))  # fmt: skip
    for name, passed in checks:
        failed = pc.indices_nonzero(pc.invert(passed))
        if len(failed):
            index = failed[0].as_py()
            try:
                validate_label_row(table.slice(index, 1).to_pylist()[0])  # the row's own message
            except SchemaError as error:
                raise SchemaError(f"row {index}: {error}") from None
            raise SchemaError(f"row {index}: field {name!r} breaks its rule")
    if len(pc.unique(clip_ids)) != len(clip_ids):
        counts = pc.value_counts(clip_ids).to_pylist()
        twice = min(count["values"] for count in counts if count["counts"] > 1)
        raise SchemaError(f"field 'clip_id': {twice!r} is labelled more than once")


def labels_table(rows: Iterable[Mapping]) -> pa.Table:
    """A validated labels table from rows, sorted by clip id."""
    table = pa.Table.from_pylist([dict(row) for row in rows], schema=LABELS_SCHEMA).sort_by("clip_id")
    validate_labels_table(table)
    return table


def write_labels(location: str, rows: Iterable[Mapping] | pa.Table) -> pa.Table:
    """Write a labels file (a path or URI) atomically and durably; the table written."""
    table = labels_table(rows.to_pylist() if isinstance(rows, pa.Table) else rows)
    with atomic_output(str(location)) as stream:
        pq.write_table(table, stream)
    return table


def read_labels(location: str) -> pa.Table:
    """The validated labels table at a path or URI; SchemaError if it is not one."""
    filesystem, path = resolve(str(location))
    try:
        with filesystem.open_input_file(path) as stream:
            table = pq.read_table(stream)
    except (OSError, pa.ArrowException) as error:
        raise SchemaError(f"{location}: not a readable labels file: {error}") from None
    validate_labels_table(table)
    return table
