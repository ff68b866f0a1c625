"""Clip embeddings of an ingest run: one Parquet part per video, one row per kept clip the
learned scorer embedded, which the near-duplicate pass (pipeline/dedup.py) reads.

    parts/<video_key>.embeddings.parquet   (pipeline/lineage.py writes it beside the clips part)

`embedding` is the quality encoder's vector (models/quality.py: unit norm, so cosine similarity
is a dot product; readers normalise anyway). `quality_score` orders which of two duplicates is
kept (the higher).
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.ids import clip_id_problem
from schemas.validation import SchemaError, validate_table

EMBEDDINGS_VERSION = "1"

EMBEDDING_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("quality_score", pa.float32()),
        pa.field("embedding", pa.list_(pa.field("item", pa.float32(), nullable=False)), nullable=False),
    ],
    metadata={"genie.embeddings_version": EMBEDDINGS_VERSION, "genie.table": "embeddings"},
)


def _clip_id_is_valid(row) -> str | None:
    problem = clip_id_problem(row["clip_id"])
    return f"field 'clip_id': {problem}" if problem else None


def embeddings_table(rows: list[dict]) -> pa.Table:
    """A validated embeddings table from rows whose `embedding` is any float sequence."""
    table = pa.Table.from_pylist(
        [{**{name: row.get(name) for name in EMBEDDING_SCHEMA.names},
          "embedding": np.asarray(row["embedding"], np.float32).tolist()} for row in rows],  # fmt: skip
        schema=EMBEDDING_SCHEMA,
    )
    validate_embeddings_table(table)
    return table


def validate_embeddings_table(table: pa.Table) -> None:
    """SchemaError unless every row is valid and all embeddings have one size."""
    validate_table(table.select(["clip_id", "video_id", "quality_score"]),
                   pa.schema([EMBEDDING_SCHEMA.field(name) for name in ("clip_id", "video_id", "quality_score")]),
                   rules=(_clip_id_is_valid,))  # fmt: skip
    if table.schema.field("embedding").type != EMBEDDING_SCHEMA.field("embedding").type:
        raise SchemaError(f"column 'embedding' has type {table.schema.field('embedding').type}")
    if table.column("embedding").null_count:
        raise SchemaError("field 'embedding' is required")
    sizes = pc.unique(pc.list_value_length(table.column("embedding"))).to_pylist()
    if len(sizes) > 1 or (sizes and not sizes[0]):
        raise SchemaError(f"field 'embedding': sizes {sorted(s for s in sizes if s is not None)} (one size > 0 needed)")


def embedding_matrix(table: pa.Table) -> np.ndarray:
    """(N, D) float32 unit-norm rows (a zero vector stays zero)."""
    if not len(table):
        return np.zeros((0, 0), np.float32)
    values = table.column("embedding").combine_chunks()
    matrix = values.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(table), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)
