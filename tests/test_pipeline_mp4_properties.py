"""Property tests of the MP4 header reader (pipeline/mp4.py): random bytes, random box trees
and mutations of a real MP4 give an Mp4Track, None or Mp4Error, never another exception."""

import functools
import io
import struct
import subprocess
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.mp4 import Mp4Error, Mp4Track, read_mp4_info

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"hdlr", b"mdhd", b"stts", b"stsd", b"pasp", b"avc1", b"free", b"ftyp"]


@functools.cache
def real_mp4() -> bytes:
    """A 1 s, 64x36 H.264 MP4 with its moov first (faststart), from ffmpeg's test source."""
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/seed.mp4"
        command = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10:duration=1", "-c:v",
                   "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", path]  # fmt: skip
        subprocess.run(command, check=True)
        with open(path, "rb") as handle:
            return handle.read()


def check(data: bytes) -> None:
    """The reader's contract on `data`."""
    try:
        track = read_mp4_info(io.BytesIO(data))
    except Mp4Error:
        return
    if track is not None:
        assert isinstance(track, Mp4Track)
        assert track.width > 0 and track.height > 0 and track.fps > 0 and track.duration_s > 0 and track.sample_aspect > 0


def boxes(depth: int = 3) -> st.SearchStrategy[bytes]:
    """Box trees of the kinds the reader looks at, with sizes that may lie."""
    leaf = st.builds(lambda kind, payload: struct.pack(">I", 8 + len(payload)) + kind + payload,
                     st.sampled_from(KINDS), st.binary(max_size=64))  # fmt: skip
    lying = st.builds(lambda kind, size, payload: struct.pack(">I", size) + kind + payload,
                      st.sampled_from(KINDS), st.sampled_from([0, 1, 7, 8, 9, 2**31, 2**32 - 1]), st.binary(max_size=24))  # fmt: skip

    def nest(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
        return st.builds(lambda kind, inner: struct.pack(">I", 8 + len(b"".join(inner))) + kind + b"".join(inner),
                         st.sampled_from(KINDS), st.lists(children, max_size=4))  # fmt: skip

    return st.recursive(leaf | lying, nest, max_leaves=12)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


@st.composite
def video_tracks(draw) -> bytes:
    """A moov shaped like a video track's (hdlr saying 'vide', mdhd, stbl with stts and stsd),
    each box's payload random or cut short, boxes left out or repeated."""
    def payload() -> bytes:
        return draw(st.binary(min_size=0, max_size=draw(st.sampled_from([0, 3, 12, 40, 120]))))
    def some(*parts: bytes) -> bytes:
        chosen = draw(st.lists(st.sampled_from(parts), max_size=len(parts) + 1, unique_by=id)) if draw(st.booleans()) else list(parts)
        return b"".join(chosen)
    hdlr = box(b"hdlr", bytes(8) + b"vide" + payload())
    stts = box(b"stts", payload())
    stsd = box(b"stsd", payload())
    stbl = box(b"stbl", some(stts, stsd))
    mdia = box(b"mdia", some(hdlr, box(b"minf", stbl), box(b"mdhd", payload())))
    return box(b"moov", box(b"trak", mdia))


@SETTINGS
@given(video_tracks())
def test_random_video_tracks(moov):
    """A video track's boxes with random, short or missing contents: a track, None or Mp4Error."""
    check(moov)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    """Arbitrary bytes: a track, None or Mp4Error."""
    check(data)


@SETTINGS
@given(st.lists(boxes(), min_size=1, max_size=4))
def test_random_box_trees(tree):
    """Nested boxes of the reader's kinds, with true and lying sizes: a track, None or Mp4Error."""
    check(b"".join(tree))


@SETTINGS
@given(st.data())
def test_mutated_real_file(data):
    """A real MP4 with bytes overwritten, removed or the file cut short: a track, None or Mp4Error."""
    seed = bytearray(real_mp4())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(seed) - 1))
        action = data.draw(st.sampled_from(["byte", "word", "delete", "cut"]))
        if action == "byte":
            seed[position] = data.draw(st.integers(0, 255))
        elif action == "word":
            seed[position : position + 4] = struct.pack(">I", data.draw(st.sampled_from([0, 1, 7, 8, 2**31, 2**32 - 1])))
        elif action == "delete":
            del seed[position : position + data.draw(st.integers(1, 16))]
        else:
            del seed[position:]
        if not seed:
            break
    check(bytes(seed))


def test_the_seed_reads_as_a_track():
    """The unmutated seed is read (so the mutations start from a file the reader understands)."""
    track = read_mp4_info(io.BytesIO(real_mp4()))
    assert (track.width, track.height, track.fps) == (64, 36, 10)
