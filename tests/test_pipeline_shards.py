"""Per-video WebDataset shards (pipeline/shards.py), read back with the webdataset library."""

import hashlib
import tarfile

import numpy as np
import webdataset

from pipeline.shards import ShardConfig, VideoShardWriter, remove_temporaries
from schemas import ids
from schemas.shard import decode_sample, encode_sample

RNG = np.random.default_rng(1)


def sample(start: int, end: int, n_frames: int = 8) -> dict:
    frames = RNG.integers(0, 255, (n_frames, 90, 160, 3), np.uint8)
    meta = {"clip_id": ids.clip_id("vid", start, end), "video_id": "vid", "scene_index": 0, "start_frame": start,
            "end_frame": end, "start_s": start / 30, "end_s": end / 30, "n_frames": n_frames, "fps": 10, "width": 160,
            "height": 90, "quality_score": 1.0, "pipeline_version": "test"}  # fmt: skip
    return encode_sample(frames, meta)


def write(folder, samples, target_bytes=10**9):
    writer = VideoShardWriter(folder, "vid", ShardConfig(target_bytes=target_bytes))
    for start, item in samples:
        writer.write(item, start, start + 30)
    return writer.commit()


def test_every_sample_reads_back_with_webdataset_at_its_recorded_place(tmp_path):
    """webdataset yields the written samples in order; each placement's offset is the header of
    the sample's first member and its index is its position in the shard."""
    samples = [(30 * i, sample(30 * i, 30 * i + 30)) for i in range(5)]
    placements = write(tmp_path, samples)
    (shard,) = {placement.shard for placement in placements.values()}
    read = list(webdataset.WebDataset(str(tmp_path / shard), shardshuffle=False))
    assert [item["__key__"] for item in read] == [item["__key__"] for _, item in samples]
    assert decode_sample({"frames.png": read[2]["frames.png"], "json": read[2]["json"]})[1]["start_frame"] == 60
    members = {member.name: member.offset for member in tarfile.open(tmp_path / shard)}
    for index, (_, item) in enumerate(samples):
        placement = placements[item["__key__"]]
        assert placement.index == index
        assert members[f"{item['__key__']}.frames.png"] == placement.offset


def test_shards_split_at_the_target_size_and_are_named_by_their_content_range(tmp_path):
    """With a small target, samples spill into several shards named <video key>_<first>_<last end>."""
    samples = [(30 * i, sample(30 * i, 30 * i + 30)) for i in range(4)]
    size = len(samples[0][1]["frames.png"])  # one sample already passes it
    placements = write(tmp_path, samples, target_bytes=size)
    names = sorted({placement.shard for placement in placements.values()})
    key = ids.video_key("vid")
    assert names == [f"{key}_{30 * i:09d}_{30 * i + 30:09d}.tar" for i in range(4)]
    assert sorted(path.name for path in tmp_path.iterdir()) == names


def test_same_samples_give_byte_identical_shards(tmp_path):
    """Writing the same samples twice gives the same bytes (fixed mtime, owner, mode)."""
    samples = [(30 * i, sample(30 * i, 30 * i + 30)) for i in range(3)]
    digests = []
    for run in ("a", "b"):
        (shard,) = {placement.shard for placement in write(tmp_path / run, samples).values()}
        digests.append(hashlib.sha256((tmp_path / run / shard).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_nothing_is_visible_before_commit_and_discard_leaves_nothing(tmp_path):
    """Before commit only temporaries exist; discard removes them, shards included."""
    writer = VideoShardWriter(tmp_path, "vid", ShardConfig(target_bytes=1))
    writer.write(sample(0, 30), 0, 30)
    writer.write(sample(30, 60), 30, 60)
    assert all(path.name.startswith(".tmp-") for path in tmp_path.iterdir())
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_leftover_temporaries_are_removed(tmp_path):
    """A killed run's temporaries are removed; finished shards stay."""
    (tmp_path / ".tmp-abc-0-123.tar").write_bytes(b"partial")
    (tmp_path / "done.tar").write_bytes(b"x")
    assert remove_temporaries(tmp_path) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["done.tar"]
