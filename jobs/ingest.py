"""`genie ingest --config FILE`: keywords -> search -> download -> clips -> shards + lineage, on Ray.

    genie ingest                                  # the embedded default (jobs/configs/ingest_local.toml)
    genie ingest --config my.toml --site URL      # the offline site at URL (`genie world serve`)
    ray job submit --working-dir . -- python -m jobs.ingest --config my.toml   # on a cluster

The driver searches (a few requests) and applies the keyword rules; Ray Data then streams
the videos through downloads and processing. Downloads (network-bound) run in an actor pool
of their own, whose workers share one token bucket actor as the cluster-wide rate limit; or,
with `ray.download.workers = 0`, inside the processing tasks, each with an even share of the
limit. Processing runs as Ray Data tasks of one CPU each by default (decode once, cut, score, write
shards and lineage parts). At the end the driver gathers the parts into the manifest and
derives the stats. Every stage is plain code in pipeline/; this file only wires them.

Resume: rerunning the same config skips every video whose lineage parts read back (finished
ok or dropped) and redoes the rest; a killed run leaves no truncated file (everything is
written under a temporary name, fsynced and renamed), and its leftovers (temporaries, partial
downloads) are removed at start. One job per output_dir: the run holds `<output_dir>/.lock`
(pipeline/output_lock.py), so a second job fails at once, naming the holder.

Learned scorer (`quality.scorer` "learned" or "heuristic+learned"): processing stops before
writing (the heuristic still runs there), and each video's kept clips go, as encoded samples
and the model's small inputs, through an actor pool that holds the model (`[ray.score]`; on a
GPU when the cluster has one, `score_gpus`), then through write tasks (shards and lineage
parts).

Isolation: every stage turns any exception of one video into that video's error row; should a
processing task die outright (a crashed worker), its video is recorded as an error too
(`worker_lost`), so the run always ends with its manifest and stats.
"""

import argparse
import dataclasses
import functools
import importlib.metadata
import importlib.resources
import json
import os
import pathlib
import sys
import time
import warnings

from jobs.resources import WorkerResources
from pipeline import lineage
from pipeline.dedup import DedupConfig, dedup_run
from pipeline.download import Download, DownloadConfig
from pipeline.keywords import KeywordFilter
from pipeline.output_lock import OutputLock
from pipeline.process_video import SHARDS, PendingClips, ProcessVideo, SplitConfig, score_pending
from pipeline.quality import SCORERS, LearnedScorer, QualityConfig
from pipeline.rate_limit import TokenBucket, sleeping_acquire
from pipeline.rows import failed, is_ok, to_batch, to_rows
from pipeline.search import SearchConfig, search
from pipeline.shards import ShardConfig, remove_temporaries
from pipeline.stats import format_table, run_stats
from pipeline.takedowns import TakedownFilter
from schemas.config import load, to_dict
from schemas.manifest import RUN_CONFIG_FILE
from schemas.shard_io import write_atomic
from schemas.takedowns import load_takedowns

DEFAULT_CONFIG = "ingest_local.toml"
DOWNLOADS = "downloads"
STATS_FILE = "stats.json"
PIPELINE_VERSION = importlib.metadata.version("genie-platformers")


@dataclasses.dataclass(frozen=True)
class RaySection:
    """Where the job runs and how wide."""

    # "" joins the cluster in RAY_ADDRESS if set, else starts a local Ray; or "auto" / an address.
    address: str = ""
    # Local Ray only: CPUs to give it (0 = all) and its object store in MiB (0 = Ray's default).
    num_cpus: int = 0
    object_store_mb: int = 0
    # Concurrent downloads (actors), and the CPU each reserves (they mostly wait on the network).
    # workers = 0: no download actors; each processing worker downloads its own videos, with an
    # even share of the rate limit (one process and one hand-off per video fewer; for a local
    # site or a fast network, where a worker waiting on a download costs little).
    download: WorkerResources = WorkerResources(workers=2, cpus_per_worker=0.0)
    # Concurrent video processors (tasks); workers = 0: one per CPU of the cluster.
    process: WorkerResources = WorkerResources(workers=0, cpus_per_worker=1.0)
    # The learned scorer's actors (used only when quality.scorer names it). It is busy a sliver
    # of the time (~400 clips per CPU-second against ~3 for processing), so by default it holds
    # no CPU that processing could use.
    score: WorkerResources = WorkerResources(workers=1, cpus_per_worker=0.0)
    # Videos whose clips an actor takes per call (more: fewer calls, burstier writes).
    score_batch_videos: int = 1
    # GPUs each scoring actor takes when the cluster has any (0: always the CPU); on a cluster
    # without GPUs the actors run on CPU whatever this says.
    score_gpus: float = 1.0


@dataclasses.dataclass(frozen=True)
class IngestConfig:
    """The ingest job: its sections mirror the stages' own configs."""

    # Output folder (local or a shared filesystem every node mounts at the same path).
    output_dir: str = "out/ingest"
    # Progress bars (Ray Data's per operator, and one of finished videos).
    progress: bool = True
    # A takedown list (schemas/takedowns.py): its videos and uploaders are dropped at search
    # time, never downloaded; "" = none.
    takedowns: str = ""
    search: SearchConfig = SearchConfig()
    download: DownloadConfig = DownloadConfig()
    split: SplitConfig = SplitConfig()
    quality: QualityConfig = QualityConfig()
    # Near-duplicate removal over the learned scorer's embeddings, after every video is written.
    dedup: DedupConfig = DedupConfig()
    shards: ShardConfig = ShardConfig()
    ray: RaySection = RaySection()


def default_config() -> IngestConfig:
    """The embedded default: the offline site on 127.0.0.1:8765, local Ray, out/ingest."""
    with importlib.resources.as_file(importlib.resources.files("jobs") / "configs" / DEFAULT_CONFIG) as path:
        return load(IngestConfig, path)


def with_site(config: IngestConfig, site_url: str) -> IngestConfig:
    """The config with its search pointed at the local video site at `site_url`."""
    search_config = dataclasses.replace(
        config.search, backend="feed", feed_url=f"{site_url.rstrip('/')}/search?q={{query}}&limit={{limit}}"
    )
    return dataclasses.replace(config, search=search_config)


# --- the Ray side: rows travel as JSON so Arrow never guesses their types ---------------------


def _decode(batch) -> dict:
    return to_batch([json.loads(text) for text in batch["video"]], columns=())


def _encode(batch: dict) -> dict:
    return {"video": [json.dumps(row) for row in to_rows(batch)]}


def _encode_deferred(rows: list[dict]) -> dict:
    """Deferred videos: the row as JSON, its pending clips (an .npz) in a column of their own."""
    return {"video": [json.dumps({name: value for name, value in row.items() if name != "pending"}) for row in rows],
            "pending": [row.get("pending") or b"" for row in rows]}  # fmt: skip


def _decode_deferred(batch) -> tuple[list[dict], list[PendingClips | None]]:
    rows = [json.loads(text) for text in batch["video"]]
    return rows, [PendingClips.from_bytes(bytes(data)) if len(data) else None for data in batch["pending"]]


def _download_stage(config: IngestConfig, limiter, share: int) -> Download:
    """One worker's download stage: `limiter` is the cluster's bucket (an actor), or None when
    this worker's own bucket, 1/`share` of the limit, is its part of it."""
    import ray

    if limiter is None:
        reserve = TokenBucket(config.download.rate_per_s, config.download.rate_burst).share(share).reserve
    else:
        reserve = lambda: ray.get(limiter.reserve.remote())  # noqa: E731
    return Download(config.download, str(pathlib.Path(config.output_dir) / DOWNLOADS), sleeping_acquire(reserve))


class _DownloadActor:
    def __init__(self, config: IngestConfig, limiter) -> None:
        self.stage = _download_stage(config, limiter, share=1)
        self.takedowns = TakedownFilter(load_takedowns(config.takedowns), stage="download")

    def __call__(self, batch):
        return _encode(self.takedowns(self.stage(_decode(batch))))


class _VideoWorker:
    """Processes downloaded videos; with `download_share` (the number of processing workers), it
    downloads each video first."""

    def __init__(self, config: IngestConfig, download_share: int | None) -> None:
        import ray

        self.download = None if download_share is None else _download_stage(config, None, download_share)
        self.takedowns = TakedownFilter(load_takedowns(config.takedowns), stage="download")  # uploaders now known
        self.deferred = config.quality.uses_learned
        self.stage = ProcessVideo(config.split, config.quality, config.shards, config.output_dir, PIPELINE_VERSION,
                                  defer_learned=self.deferred)  # fmt: skip
        self.node_id = ray.get_runtime_context().get_node_id()

    def __call__(self, batch):
        batch = _decode(batch)
        rows = to_rows(self.stage(batch if self.download is None else self.takedowns(self.download(batch))))
        rows = [{**row, "node_id": self.node_id} for row in rows]
        return _encode_deferred(rows) if self.deferred else _encode(to_batch(rows))

    def write(self, batch):
        """Deferred videos, judged: their kept clips written (shards, lineage parts)."""
        rows, pendings = _decode_deferred(batch)
        written = [self.stage.write_pending(row, pending or PendingClips()) if "clips" in row else row
                   for row, pending in zip(rows, pendings)]  # fmt: skip
        return _encode(to_batch(written))


class _ScoreClips:
    """Actor: the learned scorer over the kept clips of a batch of deferred videos."""

    def __init__(self, config: IngestConfig) -> None:
        self.scorer = LearnedScorer(config.quality.learned)

    def __call__(self, batch):
        rows, pendings = _decode_deferred(batch)
        return _encode_deferred([{**row, "pending": data} for row, data in
                                 zip(score_pending(self.scorer, rows, pendings), batch["pending"])])  # fmt: skip


@functools.cache
def _video_worker(config: IngestConfig, download_share: int | None) -> _VideoWorker:
    """This process's worker, built once: Ray runs later tasks in the same process."""
    return _VideoWorker(config, download_share)


def _process_videos(batch, config: IngestConfig, download_share: int | None):
    """Ray Data task: one video. Tasks rather than an actor pool, which would cost a process per
    actor and Ray Data's actor-location tracker (one more process) for the same work."""
    return _video_worker(config, download_share)(batch)


def _write_videos(batch, config: IngestConfig, download_share: int | None):
    """Ray Data task: one deferred video's writes, after the learned scorer."""
    return _video_worker(config, download_share).write(batch)


def _process_on_ray(config: IngestConfig, todo: list[dict], on_done) -> list[dict]:
    """Stream `todo` through downloads (an actor pool, or inside processing) and processing
    (tasks, one CPU each); the finished rows."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        local = {}
        if not (config.ray.address or os.environ.get("RAY_ADDRESS")):
            local = {"num_cpus": config.ray.num_cpus or None, "include_dashboard": False,
                     "object_store_memory": config.ray.object_store_mb * 2**20 or None}  # fmt: skip
        ray.init(address=config.ray.address or None, logging_level="warning", **local)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = config.progress
        context.print_on_execution_start = False
        context.max_errored_blocks = -1  # a block (one video) whose task died is left out; _missing() records it
        process = config.ray.process
        per_worker = max(process.cpus_per_worker, 1e-3)
        workers = min(process.workers or max(1, int(ray.cluster_resources().get("CPU", 1) / per_worker)), len(todo))
        dataset = ray.data.from_items([{"video": json.dumps(row)} for row in todo], override_num_blocks=len(todo))
        # max_retries (below) has no named parameter in Ray 2.60's map_batches yet; the generic
        # remote-args path it takes warns on every run. Ours, not the user's: not shown.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        download_share = workers
        download = config.ray.download
        if download.workers > 0:
            download_share = None
            limiter = None  # one download worker: its own bucket is the cluster's
            if download.workers > 1:  # one bucket for every download worker of the cluster
                limiter = ray.remote(TokenBucket).options(num_cpus=0).remote(config.download.rate_per_s, config.download.rate_burst)
            dataset = dataset.map_batches(
                _DownloadActor, batch_size=1, **download.ray_options(),
                compute=ray.data.ActorPoolStrategy(size=download.workers),
                fn_constructor_kwargs={"config": config, "limiter": limiter},
            )  # fmt: skip
        dataset = dataset.map_batches(
            _process_videos, batch_size=1, **process.ray_options(), compute=ray.data.TaskPoolStrategy(size=workers),
            max_retries=2,  # a video that kills its worker thrice: worker_lost
            fn_kwargs={"config": config, "download_share": download_share},
        )  # fmt: skip
        if config.quality.uses_learned:
            score = config.ray.score
            gpus = score.gpus_per_worker or (config.ray.score_gpus if ray.cluster_resources().get("GPU", 0) > 0 else 0.0)
            dataset = dataset.map_batches(
                _ScoreClips, batch_size=config.ray.score_batch_videos, num_cpus=score.cpus_per_worker, num_gpus=gpus,
                compute=ray.data.ActorPoolStrategy(size=max(1, score.workers)), fn_constructor_kwargs={"config": config},
            ).map_batches(
                _write_videos, batch_size=1, **process.ray_options(), compute=ray.data.TaskPoolStrategy(size=workers),
                max_retries=2, fn_kwargs={"config": config, "download_share": download_share},
            )  # fmt: skip
        finished = []
        for item in dataset.iter_rows():
            finished.append(json.loads(item["video"]))
            on_done(finished[-1])
        return finished + _missing(todo, finished)
    finally:
        if started_here:
            ray.shutdown()


def _missing(todo: list[dict], finished: list[dict]) -> list[dict]:
    """Error rows for the videos whose task died without a row (a crashed or killed worker)."""
    done = {row["video_id"] for row in finished}
    reason = "worker_lost: the task processing this video died (see the Ray logs); retried next run"
    return [{**failed(row, "split", reason), "timings": {}, "source_s": 0.0} for row in todo if row["video_id"] not in done]


# --- the driver -------------------------------------------------------------------------------


def run_ingest(config: IngestConfig) -> dict:
    """Run the whole job; the stats (also written to <output_dir>/stats.json and printed).
    OutputLocked if another job is using output_dir."""
    with OutputLock(config.output_dir):
        return _run_locked(config)


def _run_locked(config: IngestConfig) -> dict:
    started = time.monotonic()
    output = pathlib.Path(config.output_dir)
    for folder in (SHARDS, lineage.PARTS, lineage.MANIFEST, f"{DOWNLOADS}/incoming", f"{DOWNLOADS}/videos"):
        (output / folder).mkdir(parents=True, exist_ok=True)
        remove_temporaries(output / folder)
    remove_temporaries(output)  # stats.json's
    for partial in (output / DOWNLOADS / "incoming").iterdir():  # downloads a killed run left half done
        if not partial.is_dir():
            partial.unlink()

    takedowns = TakedownFilter(load_takedowns(config.takedowns))  # a bad list fails before any request
    found = search(config.search)
    for query, reason in found.failed_queries.items():
        print(f"search: query {query!r} failed: {reason}", file=sys.stderr)
    judged = to_rows(KeywordFilter(config.search.rules)(takedowns(to_batch(found.videos, columns=("video_id",)))))
    rejected = [row for row in judged if not is_ok(row)]
    todo = [row for row in judged if is_ok(row) and not lineage.is_finished(output, row["video_id"])]
    skipped = sum(1 for row in judged if is_ok(row)) - len(todo)
    print(f"ingest: {len(judged)} videos found, {len(rejected)} rejected by the keyword rules, "
          f"{skipped} already finished, {len(todo)} to do", file=sys.stderr)  # fmt: skip

    finished: list[dict] = []
    if todo:
        from tqdm import tqdm

        with tqdm(total=len(todo), desc="videos", unit="video", disable=not config.progress, file=sys.stderr) as bar:
            finished = _process_on_ray(config, todo, lambda row: bar.update(1))

    stamp = lineage.now()
    unfinished = [row for row in finished if not lineage.is_finished(output, row["video_id"])]  # errors: retried next run
    others = [{**row, "pipeline_version": PIPELINE_VERSION, "created_at": stamp, "updated_at": stamp}
              for row in rejected + unfinished]  # fmt: skip
    if config.dedup.enabled:
        duplicates = dedup_run(output, config.dedup, config.shards)
        print(f"dedup: {len(duplicates)} near-duplicate clips dropped", file=sys.stderr)
    videos, clips = lineage.consolidate(output, others)
    stats = run_stats(videos, clips, finished, wall_s=time.monotonic() - started)
    stats["failed_queries"] = found.failed_queries  # a query is no video row, so its reason is kept here
    write_atomic(output / STATS_FILE, json.dumps(stats, indent=1, sort_keys=True).encode())
    write_atomic(output / RUN_CONFIG_FILE, json.dumps(to_dict(config), indent=1, sort_keys=True).encode())
    if config.progress:
        print(format_table(stats), file=sys.stderr)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, help=f"job config (TOML); default: the embedded {DEFAULT_CONFIG}")
    parser.add_argument("--site", help="base URL of a local video site to search (sets search.feed_url)")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--scorer", choices=SCORERS, help="override quality.scorer")
    parser.add_argument("--learned-model", help="override quality.learned.model_dir (a `genie quality train` folder)")
    options = parser.parse_args(argv)
    config = load(IngestConfig, options.config) if options.config else default_config()
    if options.site:
        config = with_site(config, options.site)
    if options.scorer or options.learned_model:
        learned = dataclasses.replace(config.quality.learned, model_dir=options.learned_model or config.quality.learned.model_dir)
        quality = dataclasses.replace(config.quality, scorer=options.scorer or config.quality.scorer, learned=learned)
        config = dataclasses.replace(config, quality=quality)
    if options.output_dir:
        config = dataclasses.replace(config, output_dir=options.output_dir)
    stats = run_ingest(config)
    print(json.dumps({"videos": stats["videos"], "clips": stats["clips"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    # Run as the importable module: Ray then pickles this file's task functions by reference,
    # so a worker process keeps one `_video_worker` for all its tasks (a function of __main__
    # would travel by value, with an empty cache each time).
    from jobs.ingest import main as module_main

    sys.exit(module_main())
