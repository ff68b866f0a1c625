"""Video stream facts straight from an MP4/MOV header (the `moov` box), without a process.

Starting ffprobe costs ~50 ms of CPU per video (it loads ~200 shared libraries), as much as
decoding a short low-resolution upload; most uploads are MP4, whose header already says
everything the pipeline needs. Reads the first video track: size (the sample entry), pixel
aspect (pasp), timescale and duration (mdhd), frame count and frame duration (stts). The
frame rate is the timescale over the most common frame duration, exactly (30000/1001).

Kept rather than replaced by PyAV (measured, benchmarks/RESULTS.md "Probing"): PyAV reads the
same facts in 1-24 ms a file plus 0.15 CPU-s to import, within the 50 ms budget, but it runs
libavformat's C parsers inside the worker on untrusted bytes (a memory-safety bug there is a
crashed or subverted worker; here it can only be an exception) and brings a second FFmpeg
build beside the one that decodes. This reader is pure Python: every offset is checked
against the box that holds it, the header is read only when it is at most 64 MiB, and a
property test (tests/test_pipeline_mp4_properties.py) feeds it random and mutated files:
it returns an Mp4Track, None (not an MP4 with a plain video track: ask ffprobe) or raises
Mp4Error, nothing else.
"""

import collections
import io
import os
import struct
from fractions import Fraction
from typing import BinaryIO

import numpy as np


class Mp4Track(collections.namedtuple("Mp4Track", "width height fps duration_s sample_aspect")):
    """The first video track of an MP4: size, exact frame rate, duration, pixel aspect."""


class Mp4Error(ValueError):
    """The file's MP4 header is malformed (a box overruns its parent, a field is missing)."""


_MAX_HEADER_BYTES = 64 * 2**20
_MAX_BOXES = 4096  # boxes looked at in one parent (a real file has a handful)
_VISUAL_ENTRY_BYTES = 86  # a visual sample entry's box header and fixed fields


def read_mp4_info(source: str | os.PathLike | BinaryIO) -> Mp4Track | None:
    """The first video track's facts from a file path or a binary file; None if this is not an
    MP4 whose header says them plainly; Mp4Error if its header is malformed."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                return read_mp4_info(handle)
        except OSError:
            return None
    try:
        size = source.seek(0, io.SEEK_END)
        moov = _find_top_level(source, size, b"moov")
        if moov is None:
            return None
        if moov[1] - moov[0] > _MAX_HEADER_BYTES:
            raise Mp4Error(f"moov box of {moov[1] - moov[0]} bytes is over {_MAX_HEADER_BYTES}")
        source.seek(moov[0])
        data = source.read(moov[1] - moov[0])
    except OSError:
        return None
    if len(data) != moov[1] - moov[0]:
        raise Mp4Error("file ends inside the moov box")
    for start, end in _children(data, 0, len(data), b"trak"):
        track = _video_track(data, start, end)
        if track is not None:
            return track
    return None


def _find_top_level(handle: BinaryIO, size: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, end) of the first top-level box `kind`, reading only box headers; None
    when the readable boxes hold none (a box overrunning the file ends the search)."""
    position = 0
    for _ in range(_MAX_BOXES):
        if position + 8 > size:
            return None
        handle.seek(position)
        header = handle.read(16)
        box_size, box_kind = struct.unpack(">I4s", header[:8])
        payload = position + 8
        if box_size == 1:
            if len(header) < 16:
                return None
            box_size, payload = struct.unpack(">Q", header[8:16])[0], position + 16
        elif box_size == 0:
            box_size = size - position
        if box_size < payload - position:
            raise Mp4Error(f"top-level box {box_kind!r} declares {box_size} bytes")
        if box_kind == kind:
            if position + box_size > size:
                raise Mp4Error(f"{kind!r} box runs past the end of the file")
            return payload, position + box_size
        position += box_size
    return None


def _children(data: bytes, start: int, end: int, kind: bytes):
    """(payload start, end) of every direct child box `kind` between start and end."""
    position = start
    for _ in range(_MAX_BOXES):
        if position >= end:
            return
        if position + 8 > end:
            raise Mp4Error("a box header overruns its parent")
        box_size, box_kind = struct.unpack_from(">I4s", data, position)
        payload = position + 8
        if box_size == 1:
            box_size, payload = _field(data, position + 8, ">Q", end)[0], position + 16
        elif box_size == 0:
            box_size = end - position
        if box_size < payload - position or position + box_size > end:
            raise Mp4Error(f"box {box_kind!r} of {box_size} bytes overruns its parent")
        if box_kind == kind:
            yield payload, position + box_size
        position += box_size
    raise Mp4Error(f"more than {_MAX_BOXES} boxes in one parent")


def _child(data: bytes, span: tuple[int, int], *path: bytes) -> tuple[int, int]:
    for kind in path:
        span = next(_children(data, span[0], span[1], kind), None)
        if span is None:
            raise Mp4Error(f"no {kind.decode()} box")
    return span


def _field(data: bytes, offset: int, layout: str, end: int) -> tuple:
    """struct fields at `offset`, which must lie before `end` (the box holding them)."""
    if offset + struct.calcsize(layout) > end:
        raise Mp4Error(f"a {layout} field at {offset} overruns its box (ends at {end})")
    return struct.unpack_from(layout, data, offset)


def _video_track(data: bytes, start: int, end: int) -> Mp4Track | None:
    trak = (start, end)
    hdlr = _child(data, trak, b"mdia", b"hdlr")
    if _field(data, hdlr[0] + 8, "4s", hdlr[1])[0] != b"vide":
        return None
    mdhd = _child(data, trak, b"mdia", b"mdhd")
    version = _field(data, mdhd[0], "B", mdhd[1])[0]
    if version == 1:
        timescale, duration = _field(data, mdhd[0] + 20, ">IQ", mdhd[1])
    elif version == 0:
        timescale, duration = _field(data, mdhd[0] + 12, ">II", mdhd[1])
    else:
        raise Mp4Error(f"mdhd version {version}")
    stbl = _child(data, trak, b"mdia", b"minf", b"stbl")
    frames, delta = _frame_durations(data, _child(data, stbl, b"stts"))
    stsd = _child(data, stbl, b"stsd")
    entry = stsd[0] + 8  # the first sample entry: size, format, then the visual fields
    entry_size = _field(data, entry, ">I", stsd[1])[0]
    if entry_size < _VISUAL_ENTRY_BYTES or entry + entry_size > stsd[1]:
        raise Mp4Error(f"visual sample entry of {entry_size} bytes")
    width, height = _field(data, entry + 32, ">HH", entry + entry_size)
    pixel_aspect = Fraction(1)
    pasp = next(_children(data, entry + _VISUAL_ENTRY_BYTES, entry + entry_size, b"pasp"), None)
    if pasp is not None:
        horizontal, vertical = _field(data, pasp[0], ">II", pasp[1])
        if horizontal and vertical:
            pixel_aspect = Fraction(horizontal, vertical)
    if not (timescale and duration and frames and delta and width and height):
        return None  # e.g. a fragmented MP4, whose samples are described after the moov: ffprobe's case
    return Mp4Track(width, height, Fraction(timescale, delta), duration / timescale, pixel_aspect)


def _frame_durations(data: bytes, stts: tuple[int, int]) -> tuple[int, int]:
    """(frame count, most common frame duration) from the stts table."""
    (entries,) = _field(data, stts[0] + 4, ">I", stts[1])
    if stts[0] + 8 + 8 * entries > stts[1]:
        raise Mp4Error(f"stts declares {entries} entries, more than its box holds")
    table = np.frombuffer(data, ">u4", 2 * entries, stts[0] + 8).reshape(entries, 2).astype(np.int64)
    counts, deltas = table[:, 0], table[:, 1]
    if not entries or not counts.sum():
        return 0, 0
    values, index = np.unique(deltas, return_inverse=True)
    weights = np.bincount(index, weights=counts)
    return int(counts.sum()), int(values[int(np.argmax(weights))])
