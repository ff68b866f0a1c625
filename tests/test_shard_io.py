"""The shard I/O module (schemas/shard_io.py): the tar layout, its limits, and atomic writes."""

import gzip
import io
import json
import resource
import struct
import tarfile
import zlib

import numpy as np
import pytest
import webdataset

from schemas import ids, shard_io
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.shard_io import AtomicFile, ShardError, ShardWriter, atomic_output, iter_samples, read_samples

CLIP = ids.clip_id("video", 0, 30)


def clip_sample(n_frames: int = 3) -> dict:
    frames = np.random.default_rng(0).integers(0, 255, (n_frames, 90, 160, 3), np.uint8)
    meta = {"clip_id": CLIP, "video_id": "video", "scene_index": 0, "start_frame": 0, "end_frame": 30,
            "start_s": 0.0, "end_s": 1.0, "n_frames": n_frames, "fps": 10, "width": 160, "height": 90,
            "quality_score": None, "pipeline_version": "test"}  # fmt: skip
    return clip_spec.encode_sample(frames, meta)


def tar_bytes(samples: list[dict]) -> bytes:
    buffer = io.BytesIO()
    with ShardWriter(buffer) as writer:
        for sample in samples:
            writer.write(sample)
    return buffer.getvalue()


def with_meta(sample: dict, **changes) -> dict:
    return {**sample, "json": json.dumps({**json.loads(sample["json"]), **changes}).encode()}


def png_header_only(width: int, height: int) -> bytes:
    """A small PNG whose IHDR claims width x height (its data is a few rows: a bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(3 * width + 1) * 4)) + chunk(b"IEND", b"")


def test_writer_is_byte_deterministic_and_webdataset_reads_it(tmp_path):
    """Two writes of the same samples give equal bytes, which webdataset reads back unchanged."""
    samples = [clip_sample(), {**clip_sample(2), "__key__": ids.clip_id("video", 30, 60)}]
    first, second = tar_bytes(samples), tar_bytes(samples)
    assert first == second
    (tmp_path / "a.tar").write_bytes(first)
    theirs = [{k: v for k, v in s.items() if k == "__key__" or not k.startswith("__")}
              for s in webdataset.WebDataset(str(tmp_path / "a.tar"), shardshuffle=False)]
    assert theirs == samples
    assert [member.mtime for member in tarfile.open(tmp_path / "a.tar")] == [0] * 4


def test_writer_refuses_keys_that_could_steer_a_path():
    """A key with a slash, a dot or nothing in it is refused before anything is written."""
    for key in ("../../x", "a.b", "", "a/b"):
        with pytest.raises(ShardError, match="key"):
            ShardWriter(io.BytesIO()).write({"__key__": key, "json": b"{}"})


def test_compressed_tars_are_refused():
    """A gzip-compressed tar (a 1.5 MB file can hold 1.5 GiB) is refused, naming the compression."""
    packed = gzip.compress(tar_bytes([clip_sample()]))
    with pytest.raises(ShardError, match="gzip-compressed"):
        list(read_samples(io.BytesIO(packed), "bomb.tar"))


def test_oversized_headers_and_members_are_refused_before_they_are_read():
    """A PAX header or a member declaring more than its limit fails at its header."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        member = tarfile.TarInfo("key.json")
        member.size, member.pax_headers = 2, {"comment": "x" * (shard_io.MAX_HEADER_BYTES + 1)}
        archive.addfile(member, io.BytesIO(b"{}"))
    with pytest.raises(ShardError, match="extended header"):
        list(read_samples(io.BytesIO(buffer.getvalue()), "pax.tar"))
    header = tarfile.TarInfo("key.frames.png")
    header.size = 600 * 2**20  # declared, never sent
    with pytest.raises(ShardError, match="limit"):
        list(read_samples(io.BytesIO(header.tobuf(tarfile.USTAR_FORMAT)), "big.tar"))


def test_truncated_tar_yields_whole_samples_then_fails():
    """A tar cut inside its second sample yields the first sample, then a ShardError."""
    data = tar_bytes([clip_sample(), {**clip_sample(), "__key__": ids.clip_id("video", 30, 60)}])
    reader = read_samples(io.BytesIO(data[: len(data) // 2 + 600]), "cut.tar")
    assert next(reader)["__key__"] == CLIP
    with pytest.raises(ShardError, match="truncated"):
        next(reader)


def test_png_bomb_is_refused_from_its_header_without_decoding():
    """A small PNG declaring 20000x20000 is refused by its IHDR; memory does not grow."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ShardError, match="20000x20000"):
        clip_spec.decode_sample({**clip_sample(), "frames.png": png_header_only(20000, 20000)})
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB


def test_frame_count_is_range_checked_before_decoding():
    """n_frames of 2^31-1 (or a PNG of another height than n_frames says) is a ShardError."""
    with pytest.raises(ShardError, match="n_frames"):
        clip_spec.decode_sample(with_meta(clip_sample(), n_frames=2**31 - 1))
    with pytest.raises(ShardError, match="160x270"):
        clip_spec.decode_sample(with_meta(clip_sample(2), n_frames=3))


def test_deep_json_is_refused():
    """Metadata nested 100000 deep (a RecursionError in json) is a ShardError."""
    for raw in (b"[" * 100_000 + b"]" * 100_000, b"[" * 1000 + b"]" * 1000):
        with pytest.raises(ShardError):
            clip_spec.decode_sample({**clip_sample(), "json": raw})


def test_hostile_clip_ids_are_refused():
    """A clip id that is not <video key>_<start>_<end>, or differs from the sample's key, is refused."""
    with pytest.raises(ShardError, match="clip_id"):
        clip_spec.decode_sample(with_meta(clip_sample(), clip_id="../../x"))
    with pytest.raises(ShardError, match="sample key"):
        clip_spec.decode_sample({**clip_sample(), "__key__": ids.clip_id("other", 0, 30)})


def test_npy_header_declaring_a_huge_shape_is_refused_before_allocation():
    """An .npy header declaring 2^40 values (MemoryError in np.load) is a ShardError."""
    meta = {"clip_id": CLIP, "video_id": "video", "n_frames": 2, "grid_height": 1, "grid_width": 1, "num_codes": 4,
            "num_actions": 2, "tokenizer_checkpoint": "t", "lam_checkpoint": "l", "source_shard": "s.tar",
            "source_spec_version": "1"}  # fmt: skip
    sample = token_spec.encode_token_sample(np.zeros((2, 1, 1), np.uint16), np.zeros(1, np.uint8), meta)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<u2", "fortran_order": False, "shape": (2**40,)})
    with pytest.raises(ShardError, match="tokens.npy"):
        token_spec.decode_token_sample({**sample, "tokens.npy": header.getvalue()})


def test_atomic_file_is_invisible_until_commit_and_discard_leaves_nothing(tmp_path):
    """Before commit only a hidden temporary exists; commit puts the bytes in place; discard removes it."""
    atomic = AtomicFile(tmp_path / "a.bin")
    atomic.file.write(b"data")
    assert [path.name.startswith(".tmp-") for path in tmp_path.iterdir()] == [True]
    atomic.commit()
    assert [path.name for path in tmp_path.iterdir()] == ["a.bin"] and (tmp_path / "a.bin").read_bytes() == b"data"
    with pytest.raises(RuntimeError):
        with AtomicFile(tmp_path / "b.bin") as failing:
            failing.file.write(b"half")
            raise RuntimeError("killed")
    assert [path.name for path in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_output_writes_to_filesystem_uris():
    """atomic_output publishes to a URI (an fsspec memory:// folder) only when the stream closes."""
    location = "memory:///genie-atomic/x.tar"
    with atomic_output(location) as stream, ShardWriter(stream) as writer:
        writer.write(clip_sample())
    assert [sample["__key__"] for sample in iter_samples(location)] == [CLIP]
