"""The shard sample spec: what curation writes into a WebDataset tar and training reads.

One sample is one clip:

    <clip_id>.frames.png   the clip's T frames (1..160) of 160x90 RGB stacked top to bottom
                           into one lossless PNG of 160 x (90*T) pixels
    <clip_id>.json         metadata, the fields of SAMPLE_META_SCHEMA

Why PNG strips (without row filters): measured on ../shared/corpus/smb
(benchmarks/frame_encoding.py), a strip decodes at ~80 clips/s per core and costs ~0.3 GB
per clip-hour, losslessly; per-frame JPEG q90 is smaller (0.2 GB) but caps reconstruction
at ~31 dB on sharp game graphics, raw arrays cost 1.6 GB, and a per-clip H.264 stream
decodes 8x slower through ffmpeg. Nothing in a sample is ever unpickled.

Decoding checks before it allocates (schemas/shard_io.py): the metadata's size and depth,
`n_frames` within 1..160, the sample key equal to a valid clip id, and the PNG's IHDR equal to
160 x 90*n_frames 8-bit RGB, all before the strip is decoded; anything bad is a ShardError.
"""

import json
import math
from fractions import Fraction

import cv2
import numpy as np
import pyarrow as pa

from schemas.shard_io import ShardError, decode_png, read_meta, spec_rule
from schemas.validation import SchemaError, validate_row

SHARD_SPEC_VERSION = "1"
FRAME_WIDTH = 160
FRAME_HEIGHT = 90
FRAME_RATE = 10
MAX_CLIP_FRAMES = 160
FRAMES_FIELD = "frames.png"
META_FIELD = "json"

SAMPLE_META_SCHEMA = pa.schema(
    [
        pa.field("spec_version", pa.string(), nullable=False),
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("scene_index", pa.int32(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),
        pa.field("fps", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("quality_score", pa.float32()),
        pa.field("pipeline_version", pa.string(), nullable=False),
    ],
    metadata={"genie.shard_spec_version": SHARD_SPEC_VERSION},
)


def _geometry_rule(row: dict) -> str | None:
    """What the schema's types cannot say: the frame count and the fixed geometry."""
    if not 1 <= row["n_frames"] <= MAX_CLIP_FRAMES:
        return f"field 'n_frames': {row['n_frames']} is outside 1..{MAX_CLIP_FRAMES}"
    if (row["fps"], row["width"], row["height"]) != (FRAME_RATE, FRAME_WIDTH, FRAME_HEIGHT):
        return f"fields 'fps', 'width', 'height': {row['fps']}, {row['width']}, {row['height']} (the spec: {FRAME_RATE}, {FRAME_WIDTH}, {FRAME_HEIGHT})"
    return None


_RULES = (spec_rule(SHARD_SPEC_VERSION), _geometry_rule)


def sample_frame(k: int, fps: Fraction) -> int:
    """The source frame of a video's sample k (k = 0, 1, ...): the first frame at or after k / 10 s."""
    return math.ceil(k * fps / FRAME_RATE)


def clip_source_frames(start_frame: int, n_frames: int, fps: Fraction) -> list[int]:
    """The source frame of each of a clip's samples, from its metadata (start_frame is its
    first sample's source frame; fps is the source's exact rate)."""
    first = start_frame * FRAME_RATE // fps  # the one k with sample_frame(k) == start_frame
    if sample_frame(first, fps) != start_frame:
        raise ValueError(f"source frame {start_frame} is no sample of a {fps} fps video")
    return [sample_frame(first + i, fps) for i in range(n_frames)]


def encode_sample(frames: np.ndarray, meta: dict) -> dict:
    """A WebDataset sample (key -> bytes) from frames (T, 90, 160, 3) uint8 RGB and metadata."""
    _check_frames(frames)
    meta = {"spec_version": SHARD_SPEC_VERSION, **meta}
    validate_row(meta, SAMPLE_META_SCHEMA, rules=_RULES)
    if meta["n_frames"] != len(frames):
        raise SchemaError(f"field 'n_frames': {meta['n_frames']} but {len(frames)} frames given")
    # (T*H, W, BGR); cvtColor swaps channels 15x faster than a numpy [..., ::-1] copy
    strip = cv2.cvtColor(np.ascontiguousarray(frames).reshape(-1, FRAME_WIDTH, 3), cv2.COLOR_RGB2BGR)
    # No PNG row filter: on game graphics it is 2.4x faster to encode, 1.9x to decode and 14%
    # smaller than the adaptive filters (benchmarks/RESULTS.md, ingest section); still lossless.
    ok, png = cv2.imencode(".png", strip, [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return {
        "__key__": meta["clip_id"],
        FRAMES_FIELD: png.tobytes(),
        META_FIELD: json.dumps(meta, sort_keys=True).encode(),
    }


def decode_sample(sample: dict) -> tuple[np.ndarray, dict]:
    """Frames (T, 90, 160, 3) uint8 RGB and metadata from a raw sample (field -> bytes);
    ShardError for anything that breaks the spec, checked before the frames are decoded."""
    for field in (FRAMES_FIELD, META_FIELD):
        if field not in sample:
            raise ShardError(f"sample {sample.get('__key__')!r} has no field {field!r}")
    meta = decode_meta(sample[META_FIELD])
    if "__key__" in sample and sample["__key__"] != meta["clip_id"]:
        raise ShardError(f"sample key {sample['__key__']!r} is not its clip id {meta['clip_id']!r}")
    n = meta["n_frames"]
    strip = decode_png(sample[FRAMES_FIELD], FRAME_WIDTH, n * FRAME_HEIGHT, FRAMES_FIELD)  # (n*H, W, 3) RGB
    return strip.reshape(n, FRAME_HEIGHT, FRAME_WIDTH, 3), meta


def with_meta(sample: dict, **changes) -> dict:
    """A copy of an encoded sample with metadata fields changed (validated again)."""
    meta = {**decode_meta(sample[META_FIELD]), **changes}
    validate_row(meta, SAMPLE_META_SCHEMA, rules=_RULES)
    return {**sample, META_FIELD: json.dumps(meta, sort_keys=True).encode()}


def decode_meta(raw: bytes) -> dict:
    """The sample's metadata, validated against SAMPLE_META_SCHEMA and the spec's rules."""
    return read_meta(raw, SAMPLE_META_SCHEMA, META_FIELD, _RULES)


def _check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (FRAME_HEIGHT, FRAME_WIDTH, 3):
        raise SchemaError(f"frames must be (T, {FRAME_HEIGHT}, {FRAME_WIDTH}, 3) uint8, got {frames.shape} {frames.dtype}")
    if not 1 <= len(frames) <= MAX_CLIP_FRAMES:
        raise SchemaError(f"a clip holds 1..{MAX_CLIP_FRAMES} frames, got {len(frames)}")
