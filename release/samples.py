"""Checking one clip sample against the manifest row that claims it (build and verify both)."""

from schemas import shard as clip_spec
from schemas.shard_io import png_size
from schemas.validation import SchemaError

SAMPLE_FIELDS = frozenset({clip_spec.FRAMES_FIELD, clip_spec.META_FIELD})
# Fields a sample's metadata and its manifest row must agree on.
MATCHED = ("clip_id", "video_id", "scene_index", "start_frame", "end_frame", "n_frames")


def check_sample(sample: dict, row: dict, check_frames: bool) -> str | None:
    """Why `sample` is not the clip `row` describes, or None when it is.

    Checks the fields, the metadata against SAMPLE_META_SCHEMA and the row, and the frames:
    fully decoded with `check_frames`, else only the PNG header's size and colour type.
    """
    fields = set(sample) - {"__key__", "__url__"}
    if fields != SAMPLE_FIELDS:
        return f"fields {sorted(fields)}, expected {sorted(SAMPLE_FIELDS)}"
    if sample["__key__"] != row["clip_id"]:
        return f"key {sample['__key__']!r} is not clip {row['clip_id']!r}"
    try:
        if check_frames:
            _, meta = clip_spec.decode_sample(sample)
        else:
            meta = clip_spec.decode_meta(sample[clip_spec.META_FIELD])
            _check_png_header(sample[clip_spec.FRAMES_FIELD], meta["n_frames"])
    except SchemaError as error:
        return str(error)
    for name in MATCHED:
        if meta[name] != row[name]:
            return f"metadata {name}={meta[name]!r} but the manifest says {row[name]!r}"
    return None


def _check_png_header(data: bytes, n_frames: int) -> None:
    """The PNG's IHDR: 160 x 90*n, 8-bit RGB."""
    size = png_size(data, clip_spec.FRAMES_FIELD)
    expected = (clip_spec.FRAME_WIDTH, clip_spec.FRAME_HEIGHT * n_frames)
    if size != expected:
        raise SchemaError(f"field {clip_spec.FRAMES_FIELD!r}: PNG is {size[0]}x{size[1]}, expected {expected[0]}x{expected[1]}")
