"""Takedowns: ingest drops listed videos at search time, `genie release` leaves them out, and a
new version made from an old one minus a takedown list rewrites only the shards that held them."""

import datetime as dt
import json
import pathlib

import pyarrow.parquet as pq
import pytest

from fixtures_release import TAKEDOWN_AT_SEARCH, TAKEDOWN_UPLOADER, write_takedowns
from jobs.release import RaySection, ReleaseJobConfig, main, release_from_runs, release_minus_takedowns
from release.plan import BuildConfig, SplitFractions
from release.verify import verify_release
from schemas.config import ConfigError
from schemas.manifest import RUN_VIDEOS_FILE
from schemas.release import CLIPS_FILE, INDEX_FILE
from schemas.takedowns import load_takedowns

BUILD = BuildConfig(seed=3, splits=SplitFractions(train=0.6, val=0.2, test=0.2), target_shard_bytes=800_000)


def shard_bytes(root: pathlib.Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.glob("*/*.tar"))}


@pytest.fixture(scope="module")
def versions(ingest_runs, tmp_path_factory):
    """v1 of both runs; two of its source videos (in different shards); v2 = v1 minus them."""
    root = tmp_path_factory.mktemp("takedown_releases")
    config = ReleaseJobConfig(name="platformers-test", build=BUILD, ray=RaySection(mode="local"))
    release_from_runs([str(ingest_runs.mario), str(ingest_runs.world)], str(root / "v1"), "v1", config, show_progress=False)
    rows = pq.read_table(root / "v1" / CLIPS_FILE).to_pylist()
    first = rows[0]["video_id"]
    second = next(row["video_id"] for row in rows if row["video_id"] != first and row["shard"] != rows[0]["shard"])
    takedowns = write_takedowns(root / "takedowns.toml", [
        {"video_id": first, "reason": "DMCA notice 17", "requested": dt.date(2025, 4, 2)},
        {"video_id": second, "reason": "uploader opted out", "requested": dt.date(2025, 4, 3)},
    ])  # fmt: skip
    assert main(["--base", str(root / "v1"), "--takedowns", str(takedowns), "--out", str(root / "v2"),
                 "--version", "v2", "--no-progress"]) == 0  # fmt: skip
    return root / "v1", root / "v2", {first, second}, takedowns


def test_ingest_drops_takedown_videos_before_processing_them(ingest_runs):
    """The run with a takedown list dropped the listed video at search (never downloaded) and
    the listed uploader's video right after download (the feed does not name uploaders);
    neither has a clip, the other videos were processed."""
    videos = {row["video_id"]: row for row in pq.read_table(ingest_runs.mario / RUN_VIDEOS_FILE).to_pylist()}
    by_id = videos[TAKEDOWN_AT_SEARCH]
    assert (by_id["status"], by_id["stage"]) == ("dropped", "search")
    assert by_id["reason"] == "takedown: rights holder request (requested 2025-03-01)"
    pointers = [json.loads(path.read_text()) for path in (ingest_runs.mario / "downloads" / "videos").glob("*.json")]
    assert len(pointers) == sum(1 for row in videos.values() if row["stage"] != "search")
    by_uploader = [row for row in videos.values() if (row["uploader"] or "").casefold() == TAKEDOWN_UPLOADER]
    assert [(row["status"], row["stage"], row["reason"].split(":")[0]) for row in by_uploader] == [("dropped", "download", "takedown")]
    clips = pq.read_table(ingest_runs.mario / "manifest" / "clips.parquet").to_pylist()
    assert {clip["video_id"] for clip in clips} == {row["video_id"] for row in videos.values() if row["status"] == "ok"}
    assert any(row["status"] == "ok" for row in videos.values())


def test_v2_drops_the_taken_down_clips_and_verifies(versions):
    """v2 has none of the removed videos' clips, every other clip of v1, and verifies clean."""
    v1, v2, removed, _ = versions
    before = {row["clip_id"]: row for row in pq.read_table(v1 / CLIPS_FILE).to_pylist()}
    after = {row["clip_id"]: row for row in pq.read_table(v2 / CLIPS_FILE).to_pylist()}
    assert set(after) == {clip for clip, row in before.items() if row["video_id"] not in removed}
    assert all(after[clip]["split"] == before[clip]["split"] for clip in after)
    assert verify_release(v2) == []


def test_only_shards_that_held_removed_clips_change(versions):
    """Every v1 shard without a removed clip is byte-identical in v2; the others differ."""
    v1, v2, removed, _ = versions
    touched = {row["shard"] for row in pq.read_table(v1 / CLIPS_FILE).to_pylist() if row["video_id"] in removed}
    old, new = shard_bytes(v1), shard_bytes(v2)
    assert touched and set(old) - touched
    for name, data in old.items():
        if name in touched:
            assert new.get(name) != data
        else:
            assert new[name] == data


def test_card_and_provenance_record_what_was_removed_when_and_why(versions):
    """The v2 card's takedown table and provenance name each entry, its dates, reason and clips."""
    v1, v2, removed, _ = versions
    index = json.loads((v2 / INDEX_FILE).read_text())
    assert index["based_on"] == "v1"
    records = json.loads((v2 / "provenance.json").read_text())["takedowns"]
    assert {video for record in records for video in record["videos_removed"]} == removed
    assert {record["reason"] for record in records} == {"DMCA notice 17", "uploader opted out"}
    assert all(record["applied_in"] == "v2" and record["clips_removed"] > 0 for record in records)
    card = (v2 / "README.md").read_text()
    assert "DMCA notice 17" in card and "2025-04-02" in card and "derived from version v1" in card


def test_a_release_built_with_the_takedown_list_leaves_the_same_clips_out(versions, ingest_runs, tmp_path):
    """Building from the runs with the takedown list gives v2's clip set."""
    _, v2, removed, takedowns = versions
    config = ReleaseJobConfig(name="platformers-test", takedowns=str(takedowns), build=BUILD, ray=RaySection(mode="local"))
    release_from_runs([str(ingest_runs.mario), str(ingest_runs.world)], str(tmp_path / "v2b"), "v2", config, show_progress=False)
    clips = lambda root: sorted(row["clip_id"] for row in pq.read_table(root / CLIPS_FILE).to_pylist())  # noqa: E731
    assert clips(tmp_path / "v2b") == clips(v2)
    excluded = json.loads((tmp_path / "v2b" / "provenance.json").read_text())["excluded_videos"]
    assert {video["video_id"] for video in excluded if video["reason"] == "takedown"} == removed


def test_a_takedown_entry_must_name_one_video_or_uploader_and_a_reason(tmp_path):
    """Entries naming both, neither, or no reason are errors; unknown keys are named."""
    bad = [
        {"video_id": "a", "uploader": "b", "reason": "x", "requested": dt.date(2025, 1, 1)},
        {"reason": "x", "requested": dt.date(2025, 1, 1)},
        {"video_id": "a", "reason": " ", "requested": dt.date(2025, 1, 1)},
        {"video_id": "a", "reason": "x", "requested": dt.date(2025, 1, 1), "why": "typo"},
    ]
    for number, entry in enumerate(bad):
        with pytest.raises(ConfigError):
            load_takedowns(write_takedowns(tmp_path / f"bad{number}.toml", [entry]))


def test_uploaders_match_ignoring_case_and_space(tmp_path):
    """An uploader entry covers every video of that uploader, however the name is cased."""
    entries = load_takedowns(write_takedowns(tmp_path / "list.toml", [
        {"uploader": " Retro Runner", "reason": "opted out", "requested": dt.date(2025, 1, 1)}]))  # fmt: skip
    assert entries.match("any-id", "retro runner ").reason == "opted out"
    assert entries.match("any-id", "Retro Runner 2") is None and entries.match("any-id", None) is None


def test_a_takedown_release_refuses_a_corrupt_base(versions, tmp_path):
    """A base shard that no longer matches its index stops the takedown release, leaving nothing."""
    import shutil

    v1, _, _, takedowns = versions
    base = tmp_path / "v1"
    shutil.copytree(v1, base)
    index = json.loads((base / INDEX_FILE).read_text())
    victim = base / index["shards"][-1]["name"]
    victim.write_bytes(victim.read_bytes()[:-1] + b"x")
    with pytest.raises(ValueError, match="does not match its index"):
        release_minus_takedowns(str(base), str(tmp_path / "v2"), "v2", str(takedowns), RaySection(mode="local"), False)
    assert not (tmp_path / "v2").exists()
