"""Identifiers that cross a boundary: video ids from a site, clip ids, shard names.

Everything here is deterministic, so a rerun of the same input produces the same names, and
safe, so nothing from outside (a site's id, a title) can steer a path.
"""

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_CLIP_ID = re.compile(r"([0-9a-f]{16})_(\d{9})_(\d{9})")


def sanitize_key(text: str, max_length: int = 80) -> str:
    """A string reduced to [A-Za-z0-9_-], never empty, never longer than max_length.

    Used wherever an outside name becomes a file name or a WebDataset key. Dots are removed
    because WebDataset splits a sample's key from its field at the first dot.
    """
    cleaned = _UNSAFE.sub("_", text).strip("_-")
    if not cleaned:
        cleaned = "x"
    if len(cleaned) > max_length:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: max_length - 9]}_{digest}"
    return cleaned


def video_key(video_id: str) -> str:
    """A short, stable, path-safe key for a source video id (which may hold any text)."""
    return hashlib.sha1(video_id.encode()).hexdigest()[:16]


def clip_id(video_id: str, start_frame: int, end_frame: int) -> str:
    """The clip id: source video and span in source frames, end exclusive.

    The same video and span always give the same id, so a resumed run cannot duplicate a clip.
    """
    if not 0 <= start_frame < end_frame:
        raise ValueError(f"bad clip span [{start_frame}, {end_frame})")
    return f"{video_key(video_id)}_{start_frame:09d}_{end_frame:09d}"


def check_clip_id(text: object) -> str:
    """`text` if it is a clip id as `clip_id` makes them (video key, start < end), else ValueError.

    Called wherever a clip id is read from outside (a shard sample, a manifest), so a hostile
    id (`../../x`) never reaches a member name or a path."""
    problem = clip_id_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def clip_id_problem(text: object) -> str | None:
    """Why `text` is not a clip id, or None if it is one."""
    match = _CLIP_ID.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(2)) >= int(match.group(3)):
        return f"{str(text)[:80]!r} is not a clip id (<16 hex>_<start>_<end>, 9 digits each, start < end)"
    return None
