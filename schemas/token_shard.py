"""The token shard sample spec: what `genie tokenize` writes and dynamics training reads.

One sample is one clip of a clip shard (schemas/shard.py), turned into the trained
tokenizer's tokens and the trained latent action model's actions, so dynamics training
never runs the encoders:

    <clip_id>.tokens.npy    uint16 (T, h, w): the tokenizer's codes for the clip's T frames
    <clip_id>.actions.npy   uint8 (T-1,): actions[t] is the latent action from frame t to t+1
    <clip_id>.json          metadata, the fields of TOKEN_META_SCHEMA

Arrays are `.npy` (numpy's own format, read with allow_pickle=False), so nothing in a
sample is ever unpickled. uint16 holds a codebook of up to 65,536 codes (the paper's is
1024) and uint8 up to 256 actions (the paper's is 8).
"""

import io
import json

import numpy as np
import pyarrow as pa

from schemas.validation import SchemaError, decode_json_row, validate_row

TOKEN_SHARD_SPEC_VERSION = "1"
TOKENS_FIELD = "tokens.npy"
ACTIONS_FIELD = "actions.npy"
META_FIELD = "json"
TOKEN_DTYPE = np.uint16
ACTION_DTYPE = np.uint8

TOKEN_META_SCHEMA = pa.schema(
    [
        pa.field("spec_version", pa.string(), nullable=False),
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),
        pa.field("grid_height", pa.int32(), nullable=False),
        pa.field("grid_width", pa.int32(), nullable=False),
        pa.field("num_codes", pa.int32(), nullable=False),
        pa.field("num_actions", pa.int32(), nullable=False),
        pa.field("tokenizer_checkpoint", pa.string(), nullable=False),
        pa.field("lam_checkpoint", pa.string(), nullable=False),
        pa.field("source_shard", pa.string(), nullable=False),
        pa.field("source_spec_version", pa.string(), nullable=False),
    ],
    metadata={"genie.token_shard_spec_version": TOKEN_SHARD_SPEC_VERSION},
)


def encode_token_sample(tokens: np.ndarray, actions: np.ndarray, meta: dict) -> dict:
    """A WebDataset sample (key -> bytes) from tokens (T, h, w), actions (T-1,) and metadata."""
    meta = {"spec_version": TOKEN_SHARD_SPEC_VERSION, **meta}
    validate_row(meta, TOKEN_META_SCHEMA)
    _check_arrays(tokens, actions, meta)
    return {
        "__key__": meta["clip_id"],
        TOKENS_FIELD: _npy_bytes(tokens),
        ACTIONS_FIELD: _npy_bytes(actions),
        META_FIELD: json.dumps(meta, sort_keys=True).encode(),
    }


def decode_token_sample(sample: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Tokens (T, h, w) uint16, actions (T-1,) uint8 and metadata from a raw sample."""
    for field in (TOKENS_FIELD, ACTIONS_FIELD, META_FIELD):
        if field not in sample:
            raise SchemaError(f"sample {sample.get('__key__')!r} has no field {field!r}")
    meta = decode_token_meta(sample[META_FIELD])
    tokens = _load_npy(sample[TOKENS_FIELD], TOKENS_FIELD)
    actions = _load_npy(sample[ACTIONS_FIELD], ACTIONS_FIELD)
    _check_arrays(tokens, actions, meta)
    return tokens, actions, meta


def decode_token_meta(raw: bytes) -> dict:
    """The sample's metadata, validated against TOKEN_META_SCHEMA."""
    return decode_json_row(raw, TOKEN_META_SCHEMA, META_FIELD)


def _check_arrays(tokens: np.ndarray, actions: np.ndarray, meta: dict) -> None:
    n, h, w = meta["n_frames"], meta["grid_height"], meta["grid_width"]
    if n < 1:
        raise SchemaError(f"field 'n_frames': a clip holds at least 1 frame, got {n}")
    if tokens.dtype != TOKEN_DTYPE or tokens.shape != (n, h, w):
        raise SchemaError(f"field {TOKENS_FIELD!r}: expected uint16 {(n, h, w)}, got {tokens.dtype} {tokens.shape}")
    if actions.dtype != ACTION_DTYPE or actions.shape != (n - 1,):
        raise SchemaError(f"field {ACTIONS_FIELD!r}: expected uint8 {(n - 1,)}, got {actions.dtype} {actions.shape}")
    if tokens.size and int(tokens.max()) >= meta["num_codes"]:
        raise SchemaError(f"field {TOKENS_FIELD!r}: code {int(tokens.max())} >= num_codes {meta['num_codes']}")
    if actions.size and int(actions.max()) >= meta["num_actions"]:
        raise SchemaError(f"field {ACTIONS_FIELD!r}: action {int(actions.max())} >= num_actions {meta['num_actions']}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _load_npy(raw: bytes, field: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise SchemaError(f"field {field!r} is not a plain .npy array: {error}") from None
