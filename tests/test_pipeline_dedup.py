"""Near-duplicate removal (pipeline/dedup.py): the LSH partition and the resolution on vectors,
then a run folder of real SMB clips with planted duplicates, embedded by open-clip's image
tower (ViT-S-32 built untrained with a fixed seed: nothing is downloaded)."""

import random
import subprocess

import numpy as np
import pytest
from fixtures_run import write_run

from pipeline import lineage
from pipeline.dedup import (
    BucketPartitions,
    DedupConfig,
    bucket_rows,
    dedup_run,
    find_duplicates,
    pair_recall,
    partition_pairs,
    resolve,
)
from pipeline.shards import ShardConfig
from schemas import ids
from schemas.embeddings import embeddings_table
from schemas.shard_io import iter_samples, list_shards, read_samples
from schemas.validation import SchemaError


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_lsh_finds_planted_near_copies_in_small_buckets_whatever_the_row_order(tmp_path):
    """2,000 random vectors plus 50 near copies: every copy found, nothing else, buckets far smaller than
    the set, row order irrelevant, and the partitioned search (7 bucket files) decides the same."""
    rng = np.random.default_rng(1)
    base = _unit(rng.standard_normal((2000, 64)))
    copies = _unit(base[:50] + 0.05 * rng.standard_normal((50, 64)) / 8)  # cosine distance ~0.001
    config = DedupConfig(enabled=True, max_cosine_distance=0.01, hash_bits=8, hash_tables=6)
    rows = [{"clip_id": ids.clip_id(f"v{i}", 0, 10), "video_id": f"v{i}", "quality_score": 1.0, "embedding": vector}
            for i, vector in enumerate(base)] + [
           {"clip_id": ids.clip_id(f"v{i}", 10, 20), "video_id": f"v{i}", "quality_score": 0.5, "embedding": vector}
            for i, vector in enumerate(copies)]  # fmt: skip
    decisions = find_duplicates(embeddings_table(rows), config)
    assert decisions == {ids.clip_id(f"v{i}", 10, 20): ids.clip_id(f"v{i}", 0, 10) for i in range(50)}
    assert max(len(bucket) for bucket in bucket_rows(np.stack([row["embedding"] for row in rows]), config)) < 100
    random.Random(0).shuffle(rows)
    assert find_duplicates(embeddings_table(rows), config) == decisions
    assert pair_recall(config) > 0.99
    partitions = BucketPartitions(tmp_path, config, partitions=7)  # the on-disk shuffle finds the same
    for start in range(0, len(rows), 300):
        partitions.add(embeddings_table(rows[start : start + 300]))
    pairs, scores = set(), {}
    for path in partitions.close():
        found, found_scores = partition_pairs(path, config)
        pairs, scores = pairs | found, {**scores, **found_scores}
    assert len(list(tmp_path.iterdir())) == 7 and resolve(scores, pairs) == decisions


def test_resolve_keeps_the_best_scored_clip_of_a_chain_and_ignores_pair_order():
    """In a chain a~b~c with b best, b is kept and a and c point at it; pair order never matters; ties go to the smaller id."""
    scores = {"a": 0.2, "b": 0.9, "c": 0.5, "x": 0.5, "y": 0.5}
    pairs = [("a", "b"), ("b", "c"), ("x", "y")]
    expected = {"a": "b", "c": "b", "y": "x"}
    assert resolve(scores, pairs) == expected
    assert resolve(scores, [(b, a) for a, b in reversed(pairs)]) == expected
    # a~b, b~c, not a~c, with a best: b goes, so c (whose only neighbour is gone) stays
    assert resolve({"a": 0.9, "b": 0.5, "c": 0.1}, [("a", "b"), ("b", "c")]) == {"b": "a"}


def _decode(path, start: int, n_frames: int) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "fps=10,scale=160:90", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    video = np.frombuffer(subprocess.run(args, capture_output=True, check=True).stdout, np.uint8).reshape(-1, 90, 160, 3)
    return video[start : start + n_frames]


def _reencode(frames: np.ndarray) -> np.ndarray:
    """The frames through H.264 at a low quality and back (a re-upload's re-encode)."""
    encode = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "160x90", "-r", "10", "-i", "-",
              "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p", "-f", "matroska", "-"]  # fmt: skip
    stream = subprocess.run(encode, input=frames.tobytes(), capture_output=True, check=True).stdout
    decode = ["ffmpeg", "-v", "error", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(decode, input=stream, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(frames.shape)


def _embed(clips: list[np.ndarray]) -> np.ndarray:
    """Unit-norm clip embeddings: open-clip's image tower on every frame, averaged (an untrained
    tower (ViT-S-32 at 96x160 here, for speed) tells little apart frame by frame; a clip's mean over its frames still does)."""
    import open_clip
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    tower = open_clip.create_model("ViT-S-32", pretrained=None, force_image_size=(96, 160)).visual.eval()
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    frames = len(clips[0])
    x = torch.from_numpy(np.stack(clips)).flatten(0, 1).permute(0, 3, 1, 2).float().div(255)  # (B*K, 3, 90, 160)
    x = F.interpolate(x, size=tower.image_size, mode="bilinear", align_corners=False)
    with torch.no_grad():
        features = tower((x - mean) / std).view(len(clips), frames, -1).mean(dim=1)  # (B, D)
    return F.normalize(features, dim=1).numpy()


def test_planted_duplicates_are_dropped_and_distinct_clips_of_the_level_survive(tmp_path, smb_dir):
    """A re-encoded copy and a one-frame-shifted copy are dropped (naming their originals, gone from
    the shards); four distinct clips of SMB 1-1 survive; a rerun changes nothing."""
    level = _decode(smb_dir / "smb_1_1.mp4", 0, 200)
    originals = [level[start : start + 10] for start in (10, 60, 110, 160)]  # 1 s each, 5 s apart
    copies = [_reencode(originals[0]), level[61:71]]
    embeddings = _embed(originals + copies)
    videos = {"site:smb-1-1": originals, "site:reupload": copies}
    extra = {"site:smb-1-1": [{"quality_score": 0.9, "embedding": vector} for vector in embeddings[:4]],
             "site:reupload": [{"quality_score": 0.5, "embedding": vector} for vector in embeddings[4:]]}
    run = write_run(tmp_path / "run", videos, extra, target_bytes=1)  # one shard per clip
    config = DedupConfig(enabled=True, max_cosine_distance=0.001, hash_bits=4, hash_tables=4)
    assert dedup_run(run.root, config, ShardConfig(target_bytes=1)) == {
        run.clip_ids["site:reupload"][0]: run.clip_ids["site:smb-1-1"][0],
        run.clip_ids["site:reupload"][1]: run.clip_ids["site:smb-1-1"][1],
    }
    _, clips = lineage.consolidate(run.root)
    rows = {row["clip_id"]: row for row in clips.to_pylist()}
    for copy, original in zip(run.clip_ids["site:reupload"], run.clip_ids["site:smb-1-1"]):
        assert (rows[copy]["status"], rows[copy]["stage"], rows[copy]["reason"]) == ("dropped", "dedup", f"duplicate: {original}")
    assert all(rows[clip]["status"] == "ok" for clip in run.clip_ids["site:smb-1-1"])
    in_shards = [sample["__key__"] for shard in list_shards([str(run.root / "shards")]) for sample in iter_samples(shard)]
    assert sorted(in_shards) == sorted(run.clip_ids["site:smb-1-1"])
    before = {path.name: path.read_bytes() for path in (run.root / "shards").iterdir()}
    assert dedup_run(run.root, config, ShardConfig(target_bytes=1)) == {}
    assert {path.name: path.read_bytes() for path in (run.root / "shards").iterdir()} == before


def test_a_pass_killed_between_shards_and_manifest_is_completed_by_the_next(tmp_path, monkeypatch):
    """Killed after the new shards are in place but before the clips part: the rerun ends with the
    duplicate gone from shards and manifest, every kept clip readable at its placement."""
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 255, (4, 90, 160, 3), np.uint8) for _ in range(4)]
    vectors = _unit(rng.standard_normal((4, 16)))
    videos = {"site:a": frames[:3], "site:b": frames[3:]}
    extra = {"site:a": [{"embedding": vector} for vector in vectors[:3]],
             "site:b": [{"quality_score": 0.9, "embedding": vectors[1]}]}  # b's clip: a's second, better scored
    run = write_run(tmp_path / "run", videos, extra, target_bytes=1)
    config, shards = DedupConfig(enabled=True, max_cosine_distance=0.01, hash_tables=2), ShardConfig(target_bytes=1)
    real_write = lineage.write_table

    def killed_at_the_clips_part(path, table):
        if path.name.endswith(".clips.parquet"):
            raise KeyboardInterrupt("killed")
        real_write(path, table)

    monkeypatch.setattr(lineage, "write_table", killed_at_the_clips_part)
    try:
        dedup_run(run.root, config, shards)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(lineage, "write_table", real_write)
    duplicate, original = run.clip_ids["site:a"][1], run.clip_ids["site:b"][0]
    _, clips = lineage.read_parts(run.root / lineage.PARTS / f"{ids.video_key('site:a')}.video.parquet")
    assert {row["clip_id"]: row["status"] for row in clips.to_pylist()}[duplicate] == "ok"  # the kill left it half done
    assert dedup_run(run.root, config, shards) == {duplicate: original}
    _, clips = lineage.consolidate(run.root)
    kept = [row for row in clips.to_pylist() if row["status"] == "ok"]
    assert sorted(row["clip_id"] for row in kept) == sorted(set(run.clip_ids["site:a"] + [original]) - {duplicate})
    for row in kept:
        with open(run.root / "shards" / row["shard"], "rb") as file:
            file.seek(row["shard_offset"])
            assert next(read_samples(file, row["shard"]))["__key__"] == row["clip_id"]
    in_shards = [sample["__key__"] for shard in list_shards([str(run.root / "shards")]) for sample in iter_samples(shard)]
    assert sorted(in_shards) == sorted(row["clip_id"] for row in kept)


def test_an_unreadable_embeddings_part_leaves_its_video_alone_and_the_rest_deduplicated(tmp_path, capsys):
    """A torn embeddings part is reported; the other videos' duplicates are still dropped."""
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 255, (4, 90, 160, 3), np.uint8) for _ in range(3)]
    vector = _unit(rng.standard_normal((1, 16)))[0]
    videos = {"site:a": frames[:1], "site:b": frames[1:2], "site:c": frames[2:]}
    extra = {name: [{"quality_score": score, "embedding": vector}] for name, score in (("site:a", 0.9), ("site:b", 0.5), ("site:c", 0.1))}
    run = write_run(tmp_path / "run", videos, extra)
    part = lineage.embeddings_part(run.root, "site:c")
    part.write_bytes(part.read_bytes()[:100])
    config = DedupConfig(enabled=True, max_cosine_distance=0.01, hash_tables=2)
    assert dedup_run(run.root, config, ShardConfig()) == {run.clip_ids["site:b"][0]: run.clip_ids["site:a"][0]}
    assert "unreadable" in capsys.readouterr().err


def test_embeddings_of_two_sizes_or_a_bad_clip_id_are_not_an_embeddings_table():
    """The embeddings schema refuses rows whose vectors differ in size, and hostile clip ids."""
    row = {"clip_id": ids.clip_id("v", 0, 10), "video_id": "v", "quality_score": None, "embedding": [1.0, 0.0]}
    with pytest.raises(SchemaError, match="'embedding'"):
        embeddings_table([row, {**row, "clip_id": ids.clip_id("v", 10, 20), "embedding": [1.0, 0.0, 0.0]}])
    with pytest.raises(SchemaError, match="'clip_id'"):
        embeddings_table([{**row, "clip_id": "../x"}])
