"""Video stream facts straight from an MP4/MOV header (the `moov` box), without a process.

Starting ffprobe costs ~50 ms of CPU per video (it loads ~200 shared libraries), as much as
decoding a short low-resolution upload; most uploads are MP4, whose header already says
everything the pipeline needs. Reads the first video track: size (tkhd, or the sample entry),
pixel aspect (pasp), timescale and duration (mdhd), frame count and frame duration (stts).
The frame rate is the timescale over the most common frame duration, exactly (30000/1001).
Anything unexpected returns None and the caller falls back to ffprobe.
"""

import collections
import os
import struct
from fractions import Fraction


class Mp4Track(collections.namedtuple("Mp4Track", "width height fps duration_s sample_aspect")):
    """The first video track of an MP4: size, exact frame rate, duration, pixel aspect."""

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_MAX_HEADER_BYTES = 64 * 2**20


def read_mp4_info(path: str | os.PathLike) -> Mp4Track | None:
    """The first video track's facts, or None if this is not an MP4 whose header says them."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            moov = _find(handle, 0, size, b"moov")
            if moov is None or moov[1] - moov[0] > _MAX_HEADER_BYTES:
                return None
            handle.seek(moov[0])
            data = handle.read(moov[1] - moov[0])
    except OSError:
        return None
    try:
        for start, end in _children(data, 0, len(data), b"trak"):
            info = _video_track(data, start, end)
            if info is not None:
                return info
    except (struct.error, ValueError, ZeroDivisionError):
        return None
    return None


def _find(handle, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, end) of the first top-level box `kind`, reading only box headers."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        header = handle.read(16)
        if len(header) < 8:
            return None
        box_size, box_kind = struct.unpack(">I4s", header[:8])
        payload = position + 8
        if box_size == 1 and len(header) == 16:
            box_size, payload = struct.unpack(">Q", header[8:16])[0], position + 16
        elif box_size == 0:
            box_size = end - position
        if box_size < payload - position:
            return None
        if box_kind == kind:
            return payload, min(position + box_size, end)
        position += box_size
    return None


def _children(data: bytes, start: int, end: int, kind: bytes):
    """(payload start, end) of every direct child box `kind` between start and end."""
    position = start
    while position + 8 <= end:
        box_size, box_kind = struct.unpack_from(">I4s", data, position)
        payload = position + 8
        if box_size == 1:
            box_size, payload = struct.unpack_from(">Q", data, position + 8)[0], position + 16
        elif box_size == 0:
            box_size = end - position
        if box_size < payload - position or position + box_size > end:
            raise ValueError("bad box size")
        if box_kind == kind:
            yield payload, position + box_size
        position += box_size


def _child(data: bytes, span: tuple[int, int], *path: bytes) -> tuple[int, int]:
    for kind in path:
        span = next(_children(data, span[0], span[1], kind), None)
        if span is None:
            raise ValueError(f"no {kind!r} box")
    return span


def _video_track(data: bytes, start: int, end: int) -> Mp4Track | None:
    trak = (start, end)
    hdlr = _child(data, trak, b"mdia", b"hdlr")
    if data[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
        return None
    mdhd = _child(data, trak, b"mdia", b"mdhd")
    if data[mdhd[0]] == 1:
        timescale, duration = struct.unpack_from(">IQ", data, mdhd[0] + 20)
    else:
        timescale, duration = struct.unpack_from(">II", data, mdhd[0] + 12)
    stbl = _child(data, trak, b"mdia", b"minf", b"stbl")
    stts = _child(data, stbl, b"stts")
    (entries,) = struct.unpack_from(">I", data, stts[0] + 4)
    counts: collections.Counter = collections.Counter()
    for index in range(entries):
        count, delta = struct.unpack_from(">II", data, stts[0] + 8 + 8 * index)
        counts[delta] += count
    frames = sum(counts.values())
    stsd = _child(data, stbl, b"stsd")
    entry = stsd[0] + 8  # the first sample entry: size, format, then the visual fields
    entry_size = struct.unpack_from(">I", data, entry)[0]
    width, height = struct.unpack_from(">HH", data, entry + 32)
    pixel_aspect = Fraction(1)
    pasp = next(_children(data, entry + 86, entry + entry_size, b"pasp"), None)
    if pasp is not None:
        horizontal, vertical = struct.unpack_from(">II", data, pasp[0])
        if horizontal and vertical:
            pixel_aspect = Fraction(horizontal, vertical)
    delta = counts.most_common(1)[0][0] if counts else 0
    if not (timescale and duration and frames and delta and width and height):
        return None
    return Mp4Track(width, height, Fraction(timescale, delta), duration / timescale, pixel_aspect)
