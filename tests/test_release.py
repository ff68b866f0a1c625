"""`genie release` and `genie verify` on two real ingest runs (offline world + real SMB footage):
the release verifies, tampering is caught and named, splits keep source videos apart, builds
are byte-identical, bad input samples are left out, and standard readers load the shards."""

import dataclasses
import json
import pathlib
import shutil

import pyarrow.parquet as pq
import pytest
import webdataset

from jobs.release import RaySection, ReleaseJobConfig, release_from_runs
from jobs.verify import main as verify_main
from release.inputs import InputError
from release.plan import BuildConfig, SplitFractions, assign_splits
from release.shard_io import ShardWriter, iter_samples
from release.verify import verify_release
from schemas import shard as clip_spec
from schemas.manifest import RUN_CLIPS_FILE
from schemas.release import CLIPS_FILE, INDEX_FILE, SPLITS, VIDEOS_FILE

BUILD = BuildConfig(seed=3, splits=SplitFractions(train=0.6, val=0.2, test=0.2), target_shard_bytes=800_000)


def build(runs, out: pathlib.Path, mode: str = "local", build: BuildConfig = BUILD, takedowns: str = "") -> dict:
    config = ReleaseJobConfig(name="platformers-test", takedowns=takedowns, build=build,
                              ray=RaySection(mode=mode, num_cpus=2))  # fmt: skip
    return release_from_runs([str(run) for run in runs], str(out), "v1", config, show_progress=False)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the tests that need one: the Ray build, Ray Data, training."""
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def release(ingest_runs, tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("releases") / "v1"
    build([ingest_runs.mario, ingest_runs.world], out)
    return out


def clip_rows(root: pathlib.Path) -> list[dict]:
    return pq.read_table(root / CLIPS_FILE).to_pylist()


def index_of(root: pathlib.Path) -> dict:
    return json.loads((root / INDEX_FILE).read_text())


def resign(root: pathlib.Path, shard: str) -> None:
    """Put a tampered shard's true size and sha256 into the index (as a careless re-release would)."""
    from release.shard_io import file_digest

    index = index_of(root)
    with open(root / shard, "rb") as file:
        size, sha256 = file_digest(file)
    for entry in index["shards"]:
        if entry["name"] == shard:
            entry["bytes"], entry["sha256"] = size, sha256
    (root / INDEX_FILE).write_text(json.dumps(index))


def tampered_copy(release: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    return copy


def test_release_of_two_runs_verifies_clean_and_holds_every_kept_clip_once(release, ingest_runs):
    """Every kept clip of both runs is in the release once (videos both runs found come from the
    first run given), with its lineage, and `genie verify` finds nothing wrong."""
    kept = {}
    for run in (ingest_runs.mario, ingest_runs.world):
        for row in pq.read_table(run / RUN_CLIPS_FILE).to_pylist():
            if row["status"] == "ok":
                kept.setdefault(row["clip_id"], str(run))
    rows = clip_rows(release)
    assert sorted(row["clip_id"] for row in rows) == sorted(kept)
    assert all(row["source_run"] == kept[row["clip_id"]] and row["url"].startswith("http://") for row in rows)
    assert {pathlib.Path(row["source_run"]).name for row in rows} == {ingest_runs.world.name, ingest_runs.mario.name}
    assert verify_release(release) == []
    assert verify_main([str(release), "--no-progress"]) == 0


def test_shards_are_near_the_target_size_and_shuffled_across_sources(release):
    """Shards are cut at the target size (the last of a split may be smaller) and mix videos."""
    index = index_of(release)
    for split in SPLITS:
        sizes = [entry["bytes"] for entry in index["shards"] if entry["split"] == split]
        assert sizes, f"split {split} is empty"
        assert all(size >= BUILD.target_shard_bytes * 0.5 for size in sizes[:-1])
    rows = clip_rows(release)
    per_shard = {}
    for row in rows:
        per_shard.setdefault(row["shard"], set()).add(row["video_id"])
    assert max(len(videos) for videos in per_shard.values()) >= 2


def test_no_source_video_is_in_two_splits(release):
    """Each source video's clips are all in one split, the one its video row names."""
    splits = {}
    for row in clip_rows(release):
        splits.setdefault(row["video_id"], set()).add(row["split"])
        assert row["shard"].startswith(f"{row['split']}/")
    videos = {row["video_id"]: row["split"] for row in pq.read_table(release / VIDEOS_FILE).to_pylist()}
    assert {video: {split} for video, split in videos.items()} == splits


def test_split_fractions_are_met_by_clip_hours_with_whole_videos():
    """With many videos, each split's share of hours is within a few percent of its fraction."""
    videos = {f"video-{number}": {"clip_hours": 0.05 + (number % 7) * 0.03} for number in range(2000)}
    splits = assign_splits(videos, SplitFractions(train=0.8, val=0.1, test=0.1), seed=1)
    total = sum(video["clip_hours"] for video in videos.values())
    share = {split: sum(videos[v]["clip_hours"] for v in videos if splits[v] == split) / total for split in SPLITS}
    assert share == pytest.approx({"train": 0.8, "val": 0.1, "test": 0.1}, abs=0.01)
    assert assign_splits(videos, SplitFractions(train=0.8, val=0.1, test=0.1), seed=2) != splits


def test_one_flipped_byte_fails_verify_naming_that_shard(release, tmp_path, capsys):
    """A byte flipped inside one shard: verify exits 1 and names that shard's checksum, no other."""
    copy = tampered_copy(release, tmp_path)
    shard = index_of(copy)["shards"][1]["name"]
    data = bytearray((copy / shard).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / shard).write_bytes(bytes(data))
    assert verify_main([str(copy), "--no-progress"]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(line.startswith(f"{shard}:") for line in printed)
    assert any("checksum mismatch" in line for line in printed)


def test_a_removed_sample_fails_verify_even_with_a_resigned_index(release, tmp_path):
    """A shard rewritten without one of its samples (and its new checksum put in the index) is
    caught: the manifest's clip is missing."""
    copy = tampered_copy(release, tmp_path)
    shard = index_of(copy)["shards"][0]["name"]
    with open(copy / shard, "rb") as file:
        samples = [sample for sample, _, _ in iter_samples(file)]
    with ShardWriter(copy / shard) as writer:
        for sample in samples[:-1]:
            writer.write(sample)
        writer.close()
    resign(copy, shard)
    problems = verify_release(copy)
    assert f"{shard}: clip {samples[-1]['__key__']!r} of the manifest is missing from the shard" in problems


def test_a_stray_sample_or_stray_shard_fails_verify(release, tmp_path):
    """A sample appended to a shard (index re-signed) and an extra tar in a split folder are named."""
    copy = tampered_copy(release, tmp_path)
    shard = index_of(copy)["shards"][0]["name"]
    with open(copy / shard, "rb") as file:
        samples = [sample for sample, _, _ in iter_samples(file)]
    with ShardWriter(copy / shard) as writer:
        for sample in [*samples, {**samples[0], "__key__": "stray_000000000_000000010"}]:
            writer.write(sample)
        writer.close()
    resign(copy, shard)
    shutil.copyfile(copy / shard, copy / "train" / "train-999999.tar")
    problems = verify_release(copy)
    assert f"{shard}: stray sample 'stray_000000000_000000010' at index {len(samples)}, not in the manifest" in problems
    assert "train/train-999999.tar: stray file, not in index.json" in problems


def test_same_seed_gives_byte_identical_shards_locally_and_on_ray(release, ingest_runs, tmp_path, local_ray):
    """A second build with the same seed, its shards written by Ray tasks, equals the first byte
    for byte; another seed orders clips differently."""
    again = tmp_path / "again"
    build([ingest_runs.mario, ingest_runs.world], again, mode="ray")
    first, second = index_of(release), index_of(again)
    assert [(entry["name"], entry["sha256"]) for entry in first["shards"]] == \
        [(entry["name"], entry["sha256"]) for entry in second["shards"]]  # fmt: skip
    for entry in first["shards"]:
        assert (release / entry["name"]).read_bytes() == (again / entry["name"]).read_bytes()
    other = tmp_path / "other"
    build([ingest_runs.mario, ingest_runs.world], other, build=dataclasses.replace(BUILD, seed=4))
    assert [row["clip_id"] for row in clip_rows(other)] != [row["clip_id"] for row in clip_rows(release)]


def test_planning_in_small_buckets_gives_the_same_release(release, ingest_runs, tmp_path):
    """The planner's memory bound (clip rows sorted a bucket at a time) does not change the
    release: two-clip buckets give the same shards as one bucket."""
    small = tmp_path / "small"
    build([ingest_runs.mario, ingest_runs.world], small, build=dataclasses.replace(BUILD, bucket_clips=2))
    assert index_of(small)["shards"] == index_of(release)["shards"]


def test_the_example_config_loads():
    """jobs/configs/release.toml is a valid ReleaseJobConfig."""
    from schemas.config import load

    config = load(ReleaseJobConfig, pathlib.Path(__file__).parents[1] / "jobs" / "configs" / "release.toml")
    assert config.build == BuildConfig()


def test_a_corrupt_input_sample_is_left_out_with_its_reason(ingest_runs, tmp_path):
    """A clip whose PNG is damaged in its ingest shard is left out (reason in provenance.json);
    the rest of the release is built and verifies."""
    run = tmp_path / "run"
    shutil.copytree(ingest_runs.world, run, ignore=shutil.ignore_patterns("downloads"))
    victim = next(row for row in pq.read_table(run / RUN_CLIPS_FILE).to_pylist() if row["status"] == "ok")
    path = run / "shards" / victim["shard"]
    data = bytearray(path.read_bytes())
    start = victim["shard_offset"] + 512 + 200  # inside the sample's frames.png (its first member)
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    out = tmp_path / "release"
    build([run], out)
    provenance = json.loads((out / "provenance.json").read_text())
    assert [(clip["clip_id"], clip["reason"].split(":")[0]) for clip in provenance["excluded_clips"]] == \
        [(victim["clip_id"], "bad_sample")]  # fmt: skip
    assert victim["clip_id"] not in {row["clip_id"] for row in clip_rows(out)}
    assert verify_release(out) == []


def test_a_folder_that_is_not_an_ingest_run_is_a_clear_error(tmp_path):
    """Building from a folder without an ingest manifest fails naming the missing file."""
    with pytest.raises(InputError, match="not an ingest run: no manifest/videos.parquet"):
        build([tmp_path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_webdataset_reads_release_shards(release):
    """webdataset.WebDataset's standard pipeline decodes every sample of the train split."""
    shards = sorted(str(path) for path in (release / "train").glob("*.tar"))
    dataset = webdataset.WebDataset(shards, shardshuffle=False).map(clip_spec.decode_sample)
    frames = {meta["clip_id"]: clip.shape for clip, meta in dataset}
    expected = {row["clip_id"]: (row["n_frames"], 90, 160, 3) for row in clip_rows(release) if row["split"] == "train"}
    assert frames == expected


def test_ray_data_read_webdataset_reads_release_shards(release, local_ray):
    """ray.data.read_webdataset on a split folder yields every clip of that split."""
    import ray

    rows = ray.data.read_webdataset(str(release / "val"), decoder=None).take_all()
    metas = [clip_spec.decode_meta(row["json"]) for row in rows]
    assert sorted(meta["clip_id"] for meta in metas) == sorted(r["clip_id"] for r in clip_rows(release) if r["split"] == "val")


def test_dataset_card_has_its_sections_and_plots(release):
    """The card of the world + SMB release names splits, licences, drop reasons, takedowns and
    configs, and its three plots are real PNGs with something drawn on them."""
    import cv2
    import numpy as np

    card = (release / "README.md").read_text()
    for heading in ("## Contents", "## Sources and licences", "## What curation kept and dropped",
                    "## Left out of this release", "## Takedowns", "## Clip length and quality", "## How it was made"):
        assert heading in card, heading
    assert "dropped:no_platformer_word" in card or "dropped:negative_word" in card
    assert "dropped:takedown" in card and "duplicate_video" in card
    assert '"takedowns":' in card  # the ingest runs' configs
    for name in ("clip_length.png", "quality_score.png", "contact_sheet.png"):
        image = cv2.imread(str(release / "card" / name))
        assert image is not None and image.shape[0] > 200 and image.std() > 10, name
        assert f"card/{name}" in card


@pytest.mark.slow
def test_genie_train_trains_from_a_release_split(release, tmp_path, local_ray):
    """`genie train tokenizer` with train.data.shards = [<release>/train] runs its steps."""
    from jobs.train import TrainJobConfig, fit
    from schemas.config import load

    config = load(TrainJobConfig, pathlib.Path(__file__).parents[1] / "jobs" / "configs" / "train_tokenizer_tiny.toml")
    train = config.train
    config = dataclasses.replace(
        config,
        run=dataclasses.replace(config.run, storage_path=str(tmp_path), max_failures=0),
        scaling=dataclasses.replace(config.scaling, workers=1),
        train=dataclasses.replace(
            train,
            data=dataclasses.replace(train.data, shards=(str(release / "train"),), window_frames=2, batch_size=1,
                                     loader_processes=0),
            optim=dataclasses.replace(train.optim, max_steps=2, warmup_steps=1),
            metrics=dataclasses.replace(train.metrics, log_every=1, checkpoint_every=2, sample_every=100),
        ),
    )  # fmt: skip
    result = fit("tokenizer", config)
    assert result.metrics["step"] == 2 and result.checkpoint is not None
