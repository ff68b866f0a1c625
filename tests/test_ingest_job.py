"""The ingest job end to end (jobs/ingest.py): real yt-dlp against the local site serving an
offline-world corpus and real footage, real ffmpeg, real Ray (local, and a 2-node cluster)."""

import dataclasses
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import tarfile
import time

import pyarrow.parquet as pq
import pytest
import ray
import webdataset
from ray.cluster_utils import Cluster

from jobs.ingest import STATS_FILE, IngestConfig, RaySection, default_config, run_ingest, with_site
from jobs.resources import WorkerResources
from pipeline import lineage
from pipeline.download import DownloadConfig
from pipeline.process_video import SHARDS
from pipeline.rows import reason_code
from schemas.config import load
from schemas.manifest import validate_clip_table, validate_video_table
from schemas.shard import decode_sample
from world.corpus import CorpusConfig, generate_corpus
from world.site import Fault, VideoSite

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What each faulted on-topic video (by catalog position) must end as.
FAULTS = (
    (Fault("status", status=503, times=1), "ok"),
    (Fault("status", status=429), "http_429"),
    (Fault("status", status=403), "http_403"),
    (Fault("slow", delay_s=3.0), "timeout"),
    (Fault("truncate", fraction=0.5), "truncated"),
    (Fault("corrupt"), "unreadable"),
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, smb_dir):
    """Eight short offline-world uploads (two off-topic) and two real SMB levels."""
    root = tmp_path_factory.mktemp("ingest_world")
    catalog = generate_corpus(CorpusConfig(seed=21, videos=8, offtopic=2, min_duration_s=4, max_duration_s=8), root)
    smb = tmp_path_factory.mktemp("smb")
    for name in ("smb_1_1.mp4", "smb_1_2.mp4"):
        (smb / name).symlink_to(smb_dir / name)
    truth = {entry["id"]: json.loads((root / "truth" / f"{entry['id']}.json").read_text()) for entry in catalog["videos"]}
    on_topic = [video_id for video_id in truth if truth[video_id]["on_topic"]]
    assert len(on_topic) >= len(FAULTS)
    expected = {video_id: outcome for video_id, (_, outcome) in zip(on_topic, FAULTS)}
    faults = {video_id: fault for video_id, (fault, _) in zip(on_topic, FAULTS)}
    return root, smb, truth, faults, expected


@pytest.fixture(scope="module")
def site(corpus):
    root, smb, _, faults, _ = corpus
    with VideoSite(root, smb_dir=smb, faults=faults) as running:
        yield running


def job_config(site: VideoSite, output: pathlib.Path):
    config = with_site(default_config(), site.url)
    search = dataclasses.replace(config.search, queries=("platformer speedrun", "playthrough", "level", "recipe", "mario"))
    download = DownloadConfig(socket_timeout_s=1.0, video_timeout_s=20.0, max_attempts=3, backoff_initial_s=0.01,
                              backoff_max_s=0.05, extractors=("generic",), rate_per_s=50.0)  # fmt: skip
    ray_section = RaySection(num_cpus=2, object_store_mb=200, download=WorkerResources(workers=0))  # downloads inside processing
    return dataclasses.replace(config, output_dir=str(output), progress=False, search=search, download=download, ray=ray_section)


@pytest.fixture(scope="module")
def first_run(site, tmp_path_factory):
    """One uninterrupted run: its output folder and stats."""
    output = tmp_path_factory.mktemp("first_run")
    return output, run_ingest(job_config(site, output))


def manifest(output: pathlib.Path):
    videos = pq.read_table(output / lineage.MANIFEST / lineage.VIDEOS_FILE)
    clips = pq.read_table(output / lineage.MANIFEST / lineage.CLIPS_FILE)
    return videos, clips


def outcome(video: dict) -> str:
    return video["status"] if video["status"] == "ok" else reason_code(video["reason"])


def test_manifest_has_a_valid_row_for_every_video_the_search_found(first_run, site):
    """Every video the queries find has exactly one row; both tables pass their validators."""
    videos, clips = manifest(first_run[0])
    validate_video_table(videos)
    validate_clip_table(clips)
    found = {record.id for query in ("platformer speedrun", "playthrough", "level", "recipe", "mario")
             for record in site.search(query, 200)}  # fmt: skip
    assert sorted(videos.column("video_id").to_pylist()) == sorted(found)


def test_off_topic_videos_are_rejected_by_the_search_rules(first_run, corpus):
    """Off-topic uploads that search finds are dropped at the search stage with the rule's reason."""
    videos = {row["video_id"]: row for row in manifest(first_run[0])[0].to_pylist()}
    off_topic = [videos[video_id] for video_id, truth in corpus[2].items() if not truth["on_topic"] and video_id in videos]
    assert off_topic
    for video in off_topic:
        assert (video["status"], video["stage"]) == ("dropped", "search")
        assert reason_code(video["reason"]) in ("negative_word", "no_platformer_word", "no_action_word")


def test_site_faults_end_as_recorded_failures_and_the_job_completes(first_run, corpus):
    """429, 403, timeouts and truncated bodies fail the download, a corrupt file fails the probe,
    a fault that clears is retried into success, and the healthy videos still become clips."""
    videos = {row["video_id"]: row for row in manifest(first_run[0])[0].to_pylist()}
    assert {video_id: outcome(videos[video_id]) for video_id in corpus[4]} == corpus[4]
    assert videos["smb-1-1"]["status"] == videos["smb-1-2"]["status"] == "ok"
    assert first_run[1]["clips"]["kept"] > 0


def test_shards_and_manifest_agree_both_ways(first_run):
    """Every sample in every shard (read with webdataset) is a kept clip of the manifest, and
    every kept clip is in exactly one shard, at its recorded index and byte offset."""
    output = first_run[0]
    kept = {row["clip_id"]: row for row in manifest(output)[1].to_pylist() if row["status"] == "ok"}
    seen = {}
    for shard in sorted((output / SHARDS).glob("*.tar")):
        offsets = {member.name: member.offset for member in tarfile.open(shard)}
        for index, sample in enumerate(webdataset.WebDataset(str(shard), shardshuffle=False)):
            frames, meta = decode_sample({"frames.png": sample["frames.png"], "json": sample["json"]})
            assert sample["__key__"] not in seen
            seen[sample["__key__"]] = (shard.name, index, offsets[f"{sample['__key__']}.frames.png"])
            row = kept[sample["__key__"]]
            assert (meta["start_frame"], meta["end_frame"], len(frames)) == (row["start_frame"], row["end_frame"], row["n_frames"])
    assert seen == {clip: (row["shard"], row["shard_index"], row["shard_offset"]) for clip, row in kept.items()}


def test_stats_count_hours_reasons_and_nodes(first_run):
    """stats.json has hours in and out per stage and counts per reason, matching the manifest."""
    output, stats = first_run
    assert json.loads((output / STATS_FILE).read_text()) == json.loads(json.dumps(stats))
    videos, clips = manifest(output)
    assert stats["clips"]["kept"] == clips.column("status").to_pylist().count("ok")
    assert stats["videos"]["error:http_403"] == 1
    assert stats["stages"]["quality"]["out_hours"] <= stats["stages"]["split"]["out_hours"] <= stats["stages"]["split"]["in_hours"]
    assert stats["throughput"]["decode"]["source_s_per_cpu_s"] > 0
    assert len(stats["videos_per_node"]) == 1


def shard_digests(output: pathlib.Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted((output / SHARDS).glob("*"))}


def lineage_view(output: pathlib.Path) -> tuple[list, list]:
    """The manifest without timestamps and download attempts (which a rerun may change)."""
    videos, clips = manifest(output)
    video_view = sorted((row["video_id"], outcome(row), row["n_clips"], row["content_sha256"]) for row in videos.to_pylist())
    clip_view = sorted((row["clip_id"], row["status"], reason_code(row["reason"]), row["shard"], row["shard_index"],
                        row["shard_offset"], row["quality_score"]) for row in clips.to_pylist())  # fmt: skip
    return video_view, clip_view


def test_rerun_skips_finished_videos_and_changes_nothing(first_run, site):
    """Rerunning the same config fetches no finished video again and leaves shards byte-identical."""
    output = first_run[0]
    before_shards, before_lineage = shard_digests(output), lineage_view(output)
    finished = ["smb-1-1", "smb-1-2"]
    requests = [site.request_count(video_id) for video_id in finished]
    run_ingest(job_config(site, output))
    assert [site.request_count(video_id) for video_id in finished] == requests
    assert shard_digests(output) == before_shards
    assert lineage_view(output) == before_lineage


def to_toml(config, table: str = "") -> str:
    """A config dataclass as TOML (sections mirror the nested dataclasses)."""
    lines = [f"[{table}]"] if table else []
    nested = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            nested.append(to_toml(value, f"{table}.{field.name}" if table else field.name))
        else:
            lines.append(f"{field.name} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    return "\n".join(lines + nested) + "\n"


def session_processes(session: int) -> list[int]:
    """Live processes of a session (the killed job's Ray processes would be here)."""
    alive = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.slow
def test_a_killed_run_rerun_ends_as_an_uninterrupted_run(first_run, site, tmp_path):
    """SIGKILL the job (a subprocess) once it has finished a video, rerun it: no duplicate, lost
    or truncated clip, and shards and lineage equal to an uninterrupted run's."""
    output = tmp_path / "killed"
    config_file = tmp_path / "ingest.toml"
    config_file.write_text(to_toml(job_config(site, output)))
    job = subprocess.Popen([sys.executable, "-m", "jobs.ingest", "--config", str(config_file)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not list((output / lineage.PARTS).glob("*.video.parquet")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL
    # Ray's workers sit in process groups of their own, so killpg misses them; they exit once they
    # see their raylet gone, which took 3 s on an idle machine and over 10 s on a loaded CI one.
    deadline = time.monotonic() + 90
    while session_processes(job.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(job.pid) == []
    assert len(list((output / lineage.PARTS).glob("*.video.parquet"))) < 3  # killed before the end
    reference = shard_digests(first_run[0])
    visible = {name: digest for name, digest in shard_digests(output).items() if not name.startswith(".tmp-")}
    assert all(reference[name] == digest for name, digest in visible.items())  # complete, or not there

    run_ingest(job_config(site, output))
    assert not [path for path in output.rglob(".tmp-*")]
    assert shard_digests(output) == shard_digests(first_run[0])
    assert lineage_view(output) == lineage_view(first_run[0])


@pytest.mark.slow
def test_the_same_job_spreads_over_a_two_node_cluster(first_run, site, tmp_path):
    """On a 2-node ray.cluster_utils.Cluster, with a pool of two download actors sharing one rate
    limiter, videos are processed on both nodes and the result equals the single-node run's
    (where each processing worker downloads its own videos)."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20)
    try:
        ray.init(address=cluster.address, logging_level="warning")
        config = job_config(site, tmp_path / "cluster")
        stats = run_ingest(dataclasses.replace(config, ray=dataclasses.replace(config.ray, address=cluster.address, download=WorkerResources(workers=2, cpus_per_worker=0.0))))
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert len(stats["videos_per_node"]) == 2
    assert lineage_view(tmp_path / "cluster") == lineage_view(first_run[0])


@pytest.mark.slow
def test_the_learned_scorer_runs_as_an_actor_pool_and_the_same_clips_land_in_the_same_places(first_run, site, tmp_path):
    """heuristic+learned on Ray (processing tasks -> scoring actor -> write tasks): with a
    threshold that keeps all, the clips, their shards and offsets are the first run's (the
    embedded default, whose shipped model drops none of this corpus: its one healthy world
    upload is clean gameplay, and SMB 1-1 and 1-2); each judged clip records both scorers'
    scores, and the scoring CPU is counted."""
    from models.quality import QUALITY_MODELS, QualityModel, save_quality_model
    from pipeline.quality import LearnedConfig, QualityConfig

    save_quality_model(tmp_path / "model", QualityModel(QUALITY_MODELS["tiny"]), {"threshold": 0.5})
    learned = LearnedConfig(model_dir=str(tmp_path / "model"), threshold=0.0)
    config = job_config(site, tmp_path / "learned")
    stats = run_ingest(dataclasses.replace(config, quality=QualityConfig(scorer="heuristic+learned", learned=learned)))
    placed = lambda output: sorted((row[0], row[1], row[3], row[4], row[5]) for row in lineage_view(output)[1])  # noqa: E731
    assert not [row for row in lineage_view(first_run[0])[1] if row[2] == "learned"]
    assert placed(tmp_path / "learned") == placed(first_run[0])
    kept = [row for row in manifest(tmp_path / "learned")[1].to_pylist() if row["status"] == "ok"]
    assert kept and all([score["scorer"] for score in row["quality_scores"]] == ["heuristic-v2", row["quality_scorer"]]
                        and row["quality_scorer"].startswith("learned-cnn:") for row in kept)  # fmt: skip
    assert stats["throughput"]["learned"]["cpu_s"] > 0


@pytest.mark.parametrize("name", ["ingest_local.toml", "ingest_youtube.toml"])
def test_shipped_configs_load(name):
    """Every shipped ingest config loads into IngestConfig (unknown keys would be an error)."""
    config = load(IngestConfig, ROOT / "jobs" / "configs" / name)
    assert config.search.queries and config.output_dir
