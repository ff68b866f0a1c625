"""Rows and batches as every stage sees them.

A batch is a dict of equal-length columns (the shape of a Ray Data UDF's batch); a row is one
dict. Stages never mutate what they are given: they build new rows with `ok`, `dropped` or
`failed`, which also set the row's `status`, `stage` and `reason` (the manifest's columns).

A reason is "code" or "code: detail"; stats count reasons by their code (`reason_code`), so
codes are short and stable (`http_429`, `no_action_word`, `static`) and details free text.
"""

from collections.abc import Iterable, Mapping, Sequence

from schemas.manifest import STATUS_DROPPED, STATUS_ERROR, STATUS_OK

Batch = dict[str, list]


def to_rows(batch: Mapping[str, Sequence]) -> list[dict]:
    """The rows of a columnar batch, as new dicts."""
    columns = list(batch)
    if not columns:
        return []
    length = len(batch[columns[0]])
    if any(len(batch[name]) != length for name in columns):
        raise ValueError(f"batch columns differ in length: { {name: len(batch[name]) for name in columns} }")
    return [{name: _plain(batch[name][index]) for name in columns} for index in range(length)]


def to_batch(rows: Iterable[Mapping], columns: Sequence[str] = ()) -> Batch:
    """A columnar batch of rows that all have the same keys (`columns` names them when empty)."""
    rows = list(rows)
    names = list(rows[0]) if rows else list(columns)
    for row in rows:
        if set(row) != set(names):
            raise ValueError(f"rows differ in keys: {sorted(row)} vs {sorted(names)}")
    return {name: [row[name] for row in rows] for name in names}


def ok(row: Mapping, **changes) -> dict:
    """A copy of `row` with `changes`, marked ok."""
    return {**row, **changes, "status": STATUS_OK, "reason": None}


def dropped(row: Mapping, stage: str, reason: str, **changes) -> dict:
    """A copy of `row` with `changes`, dropped by a rule of `stage`."""
    return {**row, **changes, "status": STATUS_DROPPED, "stage": stage, "reason": reason}


def failed(row: Mapping, stage: str, reason: str, **changes) -> dict:
    """A copy of `row` with `changes`, failed in `stage` with an error."""
    return {**row, **changes, "status": STATUS_ERROR, "stage": stage, "reason": reason}


def is_ok(row: Mapping) -> bool:
    return row.get("status") == STATUS_OK


def reason_code(reason: str | None) -> str | None:
    """The stable code of a reason ("http_429: HTTP Error 429 ..." -> "http_429")."""
    return None if reason is None else reason.split(":", 1)[0].strip()


def _plain(value):
    """numpy scalars (what a Ray numpy batch holds) as plain Python values."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value
