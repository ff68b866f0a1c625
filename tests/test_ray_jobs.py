"""The cluster path as cluster users run it: `ray start` a head and a worker node, `ray job submit`
the ingest and a tiny training job, watch them with `ray job status` / `ray job logs`.

The cluster binds only 127.0.0.1 on free ports with a temp dir of its own (tests/ray_processes.py),
so other Ray clusters on the machine are left alone, and it is always stopped.
"""

import json
import pathlib
import re

import pytest

from train.checkpoint import load_meta
from world.corpus import CorpusConfig, generate_corpus
from world.site import VideoSite

# starting a head, a worker and two job drivers takes minutes on 2 busy cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = pathlib.Path(__file__).resolve().parents[1]
EXCLUDES = json.dumps({"excludes": [".git", ".venv", "out", "runs", "__pycache__", "*.egg-info"]})



def ingest_config(output: pathlib.Path, site: str) -> str:
    """jobs/configs/ingest_local.toml (its keyword rules know the offline world's games) pointed at the test site."""
    text = (ROOT / "jobs" / "configs" / "ingest_local.toml").read_text()
    text = re.sub(r'^output_dir = .*$', f'output_dir = "{output}"', text, count=1, flags=re.M)
    text = re.sub(r'^progress = .*$', "progress = false", text, count=1, flags=re.M)
    text = re.sub(r'^feed_url = .*$', f'feed_url = "{site}/search?q={{query}}&limit={{limit}}"', text, count=1, flags=re.M)
    return re.sub(r'^queries = .*$', 'queries = ["platformer speedrun", "playthrough", "level"]', text, count=1, flags=re.M)

TRAIN = """[run]
name = "lam-submitted"
storage_path = "{storage}"
max_failures = 0
[scaling]
workers = 2
cpus_per_worker = 1
[train]
model = "tiny"
[train.data]
shards = ["{shards}"]
window_frames = 2
batch_size = 1
loader_processes = 0
[train.optim]
max_steps = 2
warmup_steps = 1
[train.parallel]
mixed_precision = "fp32"
[train.metrics]
log_every = 1
checkpoint_every = 2
sample_every = 0
tensorboard = false
"""


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    """Both jobs submitted to a 2-node cluster in turn; their folders, final statuses and logs."""
    from ray_processes import ray_cluster

    folder = tmp_path_factory.mktemp("ray_jobs")
    # seed 1: three clean uploads, each kept by the embedded default's learned quality filter (a shard each)
    generate_corpus(CorpusConfig(seed=1, videos=3, offtopic=0, min_duration_s=4, max_duration_s=6), folder / "corpus")
    (folder / "train.toml").write_text(TRAIN.format(storage=folder / "train", shards=folder / "ingest" / "shards"))
    results = {}
    with VideoSite(folder / "corpus") as site, ray_cluster(workers=1, cpus_per_node=1) as cluster:
        (folder / "ingest.toml").write_text(ingest_config(folder / "ingest", site.url.rstrip("/")))
        for name, entrypoint in [("ingest", ["python", "-m", "jobs.ingest", "--config", str(folder / "ingest.toml")]),
                                 ("train", ["python", "-m", "jobs.cli", "train", "lam", "--config", str(folder / "train.toml")])]:
            submission = f"{name}-{folder.name}"
            cluster.job("submit", "--submission-id", submission, "--no-wait", "--working-dir", str(ROOT),
                        "--runtime-env-json", EXCLUDES, "--", *entrypoint)
            status = cluster.wait_for_job(submission, timeout_s=600)
            results[name] = {"status": status, "logs": cluster.job("logs", submission), "list": cluster.job("list")}
            if status != "SUCCEEDED":
                break
        results["nodes"] = len([p for p in cluster.processes() if p.name() == "raylet"])
    return folder, results


def test_ingest_job_submitted_to_the_cluster_writes_shards_and_lineage(submitted):
    """`ray job submit ... python -m jobs.ingest` succeeds on the 2-node cluster and writes shards, manifest and stats."""
    folder, results = submitted
    assert results["nodes"] == 2
    assert results["ingest"]["status"] == "SUCCEEDED", results["ingest"]["logs"][-3000:]
    assert len(list((folder / "ingest" / "shards").glob("*.tar"))) >= 2
    assert (folder / "ingest" / "manifest" / "clips.parquet").is_file()
    stats = json.loads((folder / "ingest" / "stats.json").read_text())
    assert stats


def test_training_job_submitted_to_the_cluster_checkpoints_its_last_step(submitted):
    """`ray job submit ... genie train lam` on the ingest's shards trains 2 workers to step 2 and checkpoints it."""
    folder, results = submitted
    assert results["train"]["status"] == "SUCCEEDED", results["train"]["logs"][-3000:]
    checkpoint = folder / "train" / "lam-submitted" / "checkpoint_000000002"
    assert load_meta(checkpoint)["step"] == 2


def test_submitted_jobs_are_watched_with_ray_job_logs_and_list(submitted):
    """`ray job logs` shows the driver's own output and `ray job list` knows both jobs."""
    folder, results = submitted
    assert "finished at step 2" in results["train"]["logs"]
    assert f"ingest-{folder.name}" in results["train"]["list"] and f"train-{folder.name}" in results["train"]["list"]
