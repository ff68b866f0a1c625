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

Decoding checks the metadata (n_frames 1..160, a grid no finer than a pixel, the vocabulary
sizes, the key equal to a valid clip id) and then each .npy header's dtype and shape against
it before any array exists (schemas/shard_io.py); anything bad is a ShardError.
"""

import io
import json

import numpy as np
import pyarrow as pa

from schemas.shard import MAX_CLIP_FRAMES, FRAME_HEIGHT, FRAME_WIDTH
from schemas.shard_io import ShardError, read_meta, read_npy, spec_rule
from schemas.validation import validate_row

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


def _bounds_rule(row: dict) -> str | None:
    """What the schema's types cannot say: every size within its bound."""
    bounds = {"n_frames": MAX_CLIP_FRAMES, "grid_height": FRAME_HEIGHT, "grid_width": FRAME_WIDTH,
              "num_codes": np.iinfo(TOKEN_DTYPE).max + 1, "num_actions": np.iinfo(ACTION_DTYPE).max + 1}
    for name, most in bounds.items():
        if not 1 <= row[name] <= most:
            return f"field {name!r}: {row[name]} is outside 1..{most}"
    return None


_RULES = (spec_rule(TOKEN_SHARD_SPEC_VERSION), _bounds_rule)


def encode_token_sample(tokens: np.ndarray, actions: np.ndarray, meta: dict) -> dict:
    """A WebDataset sample (key -> bytes) from tokens (T, h, w), actions (T-1,) and metadata."""
    meta = {"spec_version": TOKEN_SHARD_SPEC_VERSION, **meta}
    validate_row(meta, TOKEN_META_SCHEMA, rules=_RULES)
    _check_arrays(tokens, actions, meta)
    return {
        "__key__": meta["clip_id"],
        TOKENS_FIELD: _npy_bytes(tokens),
        ACTIONS_FIELD: _npy_bytes(actions),
        META_FIELD: json.dumps(meta, sort_keys=True).encode(),
    }


def decode_token_sample(sample: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Tokens (T, h, w) uint16, actions (T-1,) uint8 and metadata from a raw sample;
    ShardError for anything that breaks the spec, checked before the arrays exist."""
    for field in (TOKENS_FIELD, ACTIONS_FIELD, META_FIELD):
        if field not in sample:
            raise ShardError(f"sample {sample.get('__key__')!r} has no field {field!r}")
    meta = decode_token_meta(sample[META_FIELD])
    if "__key__" in sample and sample["__key__"] != meta["clip_id"]:
        raise ShardError(f"sample key {sample['__key__']!r} is not its clip id {meta['clip_id']!r}")
    n, h, w = meta["n_frames"], meta["grid_height"], meta["grid_width"]
    tokens = read_npy(sample[TOKENS_FIELD], TOKEN_DTYPE, (n, h, w), TOKENS_FIELD)
    actions = read_npy(sample[ACTIONS_FIELD], ACTION_DTYPE, (n - 1,), ACTIONS_FIELD)
    _check_arrays(tokens, actions, meta)
    return tokens, actions, meta


def decode_token_meta(raw: bytes) -> dict:
    """The sample's metadata, validated against TOKEN_META_SCHEMA and the spec's rules."""
    return read_meta(raw, TOKEN_META_SCHEMA, META_FIELD, _RULES)


def _check_arrays(tokens: np.ndarray, actions: np.ndarray, meta: dict) -> None:
    n, h, w = meta["n_frames"], meta["grid_height"], meta["grid_width"]
    if tokens.dtype != TOKEN_DTYPE or tokens.shape != (n, h, w):
        raise ShardError(f"field {TOKENS_FIELD!r}: expected uint16 {(n, h, w)}, got {tokens.dtype} {tokens.shape}")
    if actions.dtype != ACTION_DTYPE or actions.shape != (n - 1,):
        raise ShardError(f"field {ACTIONS_FIELD!r}: expected uint8 {(n - 1,)}, got {actions.dtype} {actions.shape}")
    if tokens.size and int(tokens.max()) >= meta["num_codes"]:
        raise ShardError(f"field {TOKENS_FIELD!r}: code {int(tokens.max())} >= num_codes {meta['num_codes']}")
    if actions.size and int(actions.max()) >= meta["num_actions"]:
        raise ShardError(f"field {ACTIONS_FIELD!r}: action {int(actions.max())} >= num_actions {meta['num_actions']}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()
