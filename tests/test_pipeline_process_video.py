"""A downloaded video through decode, cuts, clips, quality and shards in one pass
(pipeline/process_video.py), and its lineage parts (pipeline/lineage.py)."""

import copy
import subprocess

import pyarrow.parquet as pq
import pytest

from pipeline import lineage
from pipeline.process_video import SHARDS, ProcessVideo, SplitConfig
from pipeline.quality import QualityConfig
from pipeline.rows import to_batch, to_rows
from pipeline import stats
from pipeline.shards import ShardConfig
from schemas.ids import video_key
from schemas.manifest import VIDEO_SCHEMA


def video_row(video_id: str, path, status: str = "ok") -> dict:
    row = {name: None for name in VIDEO_SCHEMA.names if name not in ("created_at", "updated_at", "pipeline_version")}
    row.update(video_id=video_id, url=f"http://site/watch/{video_id}", queries=["q"], status=status, stage="download",
               path=str(path), reason=None if status == "ok" else "http_403: forbidden")  # fmt: skip
    return row


def process(tmp_path, *rows: dict, split: SplitConfig = SplitConfig()) -> list[dict]:
    stage = ProcessVideo(split, QualityConfig(), ShardConfig(), tmp_path, "test")
    return to_rows(stage(to_batch(rows)))


def make_video(path, source: str, rate: int, seconds: float) -> str:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=size=320x180:rate={rate}:duration={seconds}",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(command, check=True)
    return str(path)


def test_real_footage_becomes_clips_in_shards_with_lineage(smb_dir, tmp_path):
    """An SMB level: ok row with size, rate, frames and scenes; its parts list every clip, kept
    ones placed in shards that exist; the input batch is unchanged."""
    batch = to_batch([video_row("smb-1-2", smb_dir / "smb_1_2.mp4")])
    before = copy.deepcopy(batch)
    (video,) = to_rows(ProcessVideo(SplitConfig(), QualityConfig(), ShardConfig(), tmp_path, "test")(batch))
    assert batch == before
    assert (video["status"], video["width"], video["height"], video["fps"], video["n_frames"]) == ("ok", 256, 240, 60.0, 1309)
    assert video["scene_spans"][0]["start_frame"] == 0 and video["scene_spans"][-1]["end_frame"] == 1309
    clips = pq.read_table(tmp_path / lineage.PARTS / f"{video_key('smb-1-2')}.clips.parquet").to_pylist()
    assert len(clips) == video["n_clips"] > 0
    kept = [clip for clip in clips if clip["status"] == "ok"]
    assert kept and all((tmp_path / SHARDS / clip["shard"]).is_file() for clip in kept)
    assert lineage.is_finished(tmp_path, "smb-1-2")
    assert set(video["timings"]) >= {"probe_s", "decode_s", "detect_s", "quality_s", "write_s"}


def test_a_garbled_stream_is_an_error_with_no_shards_and_no_parts(tmp_path):
    """A file whose middle is garbage decodes short: decode_incomplete, nothing written, not finished."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", 30, 6)
    data = bytearray(open(path, "rb").read())
    for index in range(len(data) // 3, 2 * len(data) // 3):
        data[index] ^= 0xA5
    open(path, "wb").write(bytes(data))
    (video,) = process(tmp_path / "out", video_row("garbled", path))
    assert (video["status"], video["stage"], video["reason"].split(":")[0]) == ("error", "decode", "decode_incomplete")
    assert not list((tmp_path / "out" / SHARDS).iterdir())
    assert not lineage.is_finished(tmp_path / "out", "garbled")


def test_an_unreadable_file_is_an_error(tmp_path):
    """Bytes that are no video fail at the probe with reason "unreadable"."""
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00" * 5000)
    (video,) = process(tmp_path / "out", video_row("bad", path))
    assert (video["status"], video["stage"], video["reason"].split(":")[0]) == ("error", "probe", "unreadable")


@pytest.mark.parametrize("rate, seconds, split, reason", [
    (5, 3, SplitConfig(), "low_frame_rate"),
    (30, 3, SplitConfig(max_duration_s=2.0), "too_long"),
])
def test_unusable_videos_are_dropped_and_finished(tmp_path, rate, seconds, split, reason):
    """A source under 10 fps or over the duration cap is dropped (a final answer: parts written)."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", rate, seconds)
    (video,) = process(tmp_path / "out", video_row("v", path), split=split)
    assert (video["status"], video["reason"].split(":")[0]) == ("dropped", reason)
    assert lineage.is_finished(tmp_path / "out", "v")


def test_failed_downloads_pass_through_untouched(tmp_path):
    """A row that failed before this stage comes out with its status and reason, nothing written."""
    (video,) = process(tmp_path, video_row("x", "", status="error"))
    assert (video["status"], video["reason"]) == ("error", "http_403: forbidden")
    assert not lineage.is_finished(tmp_path, "x")


def test_consolidate_gathers_parts_and_other_rows_into_valid_tables(smb_dir, tmp_path):
    """The manifest holds every finished video and clip, plus rows given for videos without parts."""
    process(tmp_path, video_row("smb-1-1", smb_dir / "smb_1_1.mp4"))
    rejected = {**video_row("off", ""), "status": "dropped", "stage": "search", "reason": "no_action_word",
                "pipeline_version": "test", "created_at": lineage.now(), "updated_at": lineage.now()}  # fmt: skip
    videos, clips = lineage.consolidate(tmp_path, [rejected])
    assert sorted(videos.column("video_id").to_pylist()) == ["off", "smb-1-1"]
    assert set(clips.column("video_id").to_pylist()) == {"smb-1-1"}
    assert (tmp_path / lineage.MANIFEST / lineage.VIDEOS_FILE).is_file()


def test_stats_of_a_run_and_of_a_rerun_with_nothing_left_to_do(smb_dir, tmp_path):
    """The stats table prints per-step throughput for a run that processed videos, and prints
    (without it) for a rerun in which every video was already finished."""
    processed = process(tmp_path, video_row("smb-1-1", smb_dir / "smb_1_1.mp4"))
    videos, clips = lineage.consolidate(tmp_path, [])
    first = stats.run_stats(videos, clips, processed)
    assert first["throughput"]["decode"]["cpu_s"] > 0 and first["throughput"]["decode"]["source_s_per_cpu_s"] > 0
    assert "decode" in stats.format_table(first)

    rerun = stats.run_stats(videos, clips, [])
    assert rerun["throughput"] == {}
    assert rerun["clips"] == first["clips"] and rerun["stages"] == first["stages"]
    table = stats.format_table(rerun)
    assert "quality" in table and "src s/cpu s" not in table


def test_an_unexpected_exception_is_that_videos_error_and_the_batch_goes_on(tmp_path):
    """A row that makes a step raise something unforeseen (an ok row with no file) ends as an
    'internal' error naming the exception; the next video of the batch is still processed."""
    good = make_video(tmp_path / "v.mp4", "testsrc2", 30, 2)
    broken = {**video_row("broken", "x"), "path": None}
    first, second = process(tmp_path / "out", broken, video_row("good", good))
    assert (first["status"], first["reason"].split(":")[0]) == ("error", "internal") and "TypeError" in first["reason"]
    assert second["status"] == "ok" and lineage.is_finished(tmp_path / "out", "good")


def test_a_playlist_is_dropped_without_opening_what_it_names(tmp_path, smb_dir):
    """An HLS playlist saved as .mp4 and naming a local video is dropped as not_a_video; no clip."""
    path = tmp_path / "playlist.mp4"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n{smb_dir / 'smb_1_1.mp4'}\n#EXT-X-ENDLIST\n")
    (video,) = process(tmp_path / "out", video_row("playlist", path))
    assert (video["status"], video["reason"].split(":")[0]) == ("dropped", "not_a_video")
    assert not list((tmp_path / "out").glob(f"{SHARDS}/*")) and lineage.is_finished(tmp_path / "out", "playlist")


def test_a_torn_part_means_not_finished_and_consolidation_skips_it(tmp_path):
    """A video part cut short (a lost write) makes its video unfinished, is removed, and the
    manifest is still built from the other parts."""
    good = make_video(tmp_path / "v.mp4", "testsrc2", 30, 2)
    process(tmp_path / "out", video_row("torn", good), video_row("whole", good))
    part = tmp_path / "out" / lineage.PARTS / f"{video_key('torn')}.video.parquet"
    part.write_bytes(part.read_bytes()[:40])
    videos, _ = lineage.consolidate(tmp_path / "out")
    assert videos.column("video_id").to_pylist() == ["whole"]
    assert not lineage.is_finished(tmp_path / "out", "torn") and not part.exists()
