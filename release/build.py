"""Building a release from ingest runs: plan, write shards, then manifest, index and card.

`build_release` runs on one machine; the shard writes, the only heavy part, go through a
`map_ordered(function, tasks)` the caller gives (jobs/release.py: a plain loop, or Ray
tasks with a bounded number in flight), which must yield results in task order. Memory:
the planner's buckets (release/plan.py), one shard's rows per task in flight, and one sample
at a time per writer; the manifest is written as results arrive.

A sample that cannot be read or does not match its manifest row is left out of its shard
and listed in provenance.json with its reason; the release goes on. The release is written
under a temporary folder beside `out` and renamed into place at the end.
"""

import collections
import dataclasses
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator

from release import plan as planner
from release.card import write_card
from release.plan import BuildConfig, ShardTask
from release.samples import check_sample
from release.shard_io import ShardError, ShardWriter, open_input, read_sample_at
from release.writing import ReleaseWriter, staged_release, takedown_record
from schemas.takedowns import TakedownList, takedown_dict

MapOrdered = Callable[[Callable, Iterable], Iterator]
SCRATCH = ".plan"
OPEN_SOURCES = 32  # input shards a shard writer keeps open at once


def local_map(function: Callable, tasks: Iterable) -> Iterator:
    """map_ordered on this process, one task at a time."""
    return map(function, tasks)


def write_shard(task: ShardTask, release_dir: str, check_frames: bool) -> dict:
    """Write one release shard from its planned clips; its index entry, manifest rows and the
    clips left out (with their reasons)."""
    rows, excluded = [], []
    sources = _OpenFiles(OPEN_SOURCES)
    writer = ShardWriter(pathlib.Path(release_dir) / task.name)
    try:
        for clip in task.clips.to_pylist():
            try:
                sample = read_sample_at(sources.get(clip["source_shard"]), clip["source_offset"], clip["source_shard"])
                problem = check_sample(sample, clip, check_frames)
            except (OSError, ShardError) as error:
                problem = f"unreadable: {error}"
            if problem is not None:
                excluded.append({"clip_id": clip["clip_id"], "video_id": clip["video_id"], "reason": f"bad_sample: {problem}",
                                 "source_shard": clip["source_shard"]})  # fmt: skip
                continue
            offset, size = writer.write(sample)
            rows.append(_manifest_row(clip, task, len(rows), offset, size))
        if not rows:
            writer.discard()
            return {"entry": None, "rows": [], "excluded": excluded}
        size, sha256 = writer.close()
    except BaseException:
        writer.discard()
        raise
    finally:
        sources.close()
    entry = {"name": task.name, "split": task.split, "bytes": size, "sha256": sha256, "clips": len(rows)}
    return {"entry": entry, "rows": rows, "excluded": excluded}


class _OpenFiles:
    """Source shards kept open for reuse, the least recently used closed beyond `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit, self.files = limit, collections.OrderedDict()

    def get(self, location: str):
        if location in self.files:
            self.files.move_to_end(location)
        else:
            self.files[location] = open_input(location)
            if len(self.files) > self.limit:
                self.files.popitem(last=False)[1].close()
        return self.files[location]

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        self.files.clear()


def _manifest_row(clip: dict, task: ShardTask, index: int, offset: int, size: int) -> dict:
    row = {name: clip[name] for name in clip if name not in ("order", "source_offset", "estimated_bytes")}
    return {**row, "split": task.split, "shard": task.name, "shard_index": index, "shard_offset": offset, "sample_bytes": size}


def build_release(runs: list[str], out: str | os.PathLike, name: str, version: str, config: BuildConfig,
                  takedowns: TakedownList = TakedownList(), map_ordered: MapOrdered = local_map,
                  progress: Callable[[dict], None] | None = None) -> dict:
    """Build release `version` of data set `name` from ingest `runs` into `out`; its index."""
    if not runs:
        raise ValueError("a release needs at least one ingest run")
    with staged_release(out) as working:
        videos = planner.choose_videos(runs, takedowns)
        splits = planner.assign_splits(videos.chosen, config.splits, config.seed)
        tasks = planner.plan_shards(runs, videos, splits, config, working / SCRATCH)
        write = _bind(write_shard, release_dir=str(working), check_frames=config.check_frames)
        writer = ReleaseWriter(working)
        excluded_clips = []
        for result in map_ordered(write, tasks):
            writer.add_shard(result["entry"], result["rows"])
            excluded_clips.extend(result["excluded"])
            if progress is not None:
                progress(result)
        planner.remove_scratch(working / SCRATCH)
        video_rows = [{**video, "split": splits[video_id]} for video_id, video in videos.chosen.items()]
        records = []
        for entry in map(takedown_dict, takedowns.takedown):
            removed = [video for video in videos.excluded if video.get("takedown") == entry]
            records.append(takedown_record(entry, removed, version, applied_by="build"))
        provenance = {
            "release": {"name": name, "version": version, "built_from": "ingest runs", "config": dataclasses.asdict(config)},
            "runs": [planner.inputs.run_summary(run, planner.inputs.read_videos(run)) for run in runs],
            "excluded_videos": videos.excluded,
            "excluded_clips": excluded_clips,
            "takedowns": records,
            "history": [],
        }
        index = writer.finish(name, version, config.seed, dataclasses.asdict(config.splits), video_rows, provenance)
        write_card(working)
    return index


class _bind:
    """A picklable partial (Ray ships it to workers)."""

    def __init__(self, function: Callable, **kwargs) -> None:
        self.function, self.kwargs = function, kwargs

    def __call__(self, task):
        return self.function(task, **self.kwargs)

