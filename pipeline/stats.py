"""Run statistics derived from the lineage manifest (and the run's per-step CPU timings).

Hours in and out per stage, counts per drop or error reason (by reason code), and
throughput per step in source seconds per CPU second. `format_table` prints it for people;
the dict itself is what the job writes as JSON.
"""

import collections
from collections.abc import Iterable, Mapping

import pyarrow as pa

from pipeline.rows import reason_code
from schemas.manifest import STATUS_OK

HOUR = 3600.0
STEPS = ("download_s", "probe_s", "decode_s", "detect_s", "quality_s", "learned_s", "write_s")  # learned_s: the scoring actors'


def run_stats(videos: pa.Table, clips: pa.Table, processed: Iterable[Mapping] = (), wall_s: float | None = None) -> dict:
    """Stats of a run: `videos` and `clips` are the manifest tables, `processed` the video rows
    this run processed (with `timings`, `source_s` and `node_id`)."""
    video_rows = videos.to_pylist()
    clip_rows = clips.select(["status", "stage", "reason", "start_s", "end_s", "shard"]).to_pylist()
    searched = video_rows
    kept_by_rules = [row for row in searched if not (row["stage"] == "search" and row["status"] != STATUS_OK)]
    downloaded = [row for row in kept_by_rules if row["stage"] != "download"]
    decoded = [row for row in video_rows if row["status"] == STATUS_OK]
    cut = [clip for clip in clip_rows if not (clip["stage"] == "split" and clip["status"] != STATUS_OK)]
    kept = [clip for clip in clip_rows if clip["status"] == STATUS_OK]
    stages = {
        "search": _stage(len(searched), _metadata_hours(searched), len(kept_by_rules), _metadata_hours(kept_by_rules)),
        "download": _stage(len(kept_by_rules), _metadata_hours(kept_by_rules), len(downloaded), _metadata_hours(downloaded)),
        "split": _stage(len(downloaded), _metadata_hours(downloaded), len(cut), _clip_hours(cut), source_hours=_source_hours(decoded)),
        "quality": _stage(len(cut), _clip_hours(cut), len(kept), _clip_hours(kept)),
        "write": _stage(len(kept), _clip_hours(kept), len({clip["shard"] for clip in kept}), _clip_hours(kept), unit_out="shards"),
    }
    processed = list(processed)
    return {
        "videos": {"total": len(video_rows), "ok": len(decoded), **_counts(video_rows)},
        "clips": {"total": len(clip_rows), "kept": len(kept), **_counts(clip_rows)},
        "stages": stages,
        "throughput": _throughput(processed),
        "download_wall_s": sum((row.get("timings") or {}).get("download_wall_s", 0.0) for row in processed),
        "videos_per_node": dict(collections.Counter(row.get("node_id") for row in processed if row.get("node_id"))),
        "wall_s": wall_s,
    }


def format_table(stats: Mapping) -> str:
    """The stats as a few aligned plain-text tables."""
    lines = [f"{'stage':<10}{'in':>10}{'in h':>10}{'out':>10}{'out h':>10}"]
    for name, stage in stats["stages"].items():
        lines.append(f"{name:<10}{stage['in']:>10}{stage['in_hours']:>10.3f}{stage['out']:>10}{stage['out_hours']:>10.3f}")
    for table in ("videos", "clips"):
        reasons = {key: value for key, value in stats[table].items() if key.startswith(("dropped:", "error:"))}
        if reasons:
            lines.append(f"{table} not kept, by reason:")
            lines.extend(f"  {reason:<40}{count:>8}" for reason, count in sorted(reasons.items()))
    if stats["throughput"]:
        lines.append(f"{'step':<10}{'cpu s':>10}{'src s/cpu s':>14}")
        for step, figures in stats["throughput"].items():
            rate = figures["source_s_per_cpu_s"]
            lines.append(f"{step:<10}{figures['cpu_s']:>10.2f}{'-' if rate is None else f'{rate:.1f}':>14}")
    if stats["videos_per_node"]:
        lines.append("videos per node: " + ", ".join(f"{node[:12]}={count}" for node, count in stats["videos_per_node"].items()))
    return "\n".join(lines)


def _stage(count_in: int, hours_in: float, count_out: int, hours_out: float, unit_out: str | None = None, **extra) -> dict:
    stage = {"in": count_in, "in_hours": hours_in, "out": count_out, "out_hours": hours_out, **extra}
    if unit_out:
        stage["out_unit"] = unit_out
    return stage


def _counts(rows: list[Mapping]) -> dict[str, int]:
    counts = collections.Counter(f"{row['status']}:{reason_code(row['reason'])}" for row in rows if row["status"] != STATUS_OK)
    return dict(sorted(counts.items()))


def _metadata_hours(rows: list[Mapping]) -> float:
    return sum(row["duration_s"] or 0.0 for row in rows) / HOUR


def _source_hours(rows: list[Mapping]) -> float:
    return sum(row["n_frames"] / row["fps"] for row in rows if row["n_frames"] and row["fps"]) / HOUR


def _clip_hours(clips: list[Mapping]) -> float:
    return sum(clip["end_s"] - clip["start_s"] for clip in clips) / HOUR


def _throughput(processed: list[Mapping]) -> dict:
    """CPU per step, plus "other": the processing workers' own CPU outside the timed steps
    (pipe reads, lineage writes, Ray's threads in the worker). Empty when the run processed
    no video (a rerun with everything finished)."""
    if not processed:
        return {}
    source_s = sum(row.get("source_s") or 0.0 for row in processed)
    totals = {step: sum((row.get("timings") or {}).get(step, 0.0) for row in processed) for step in (*STEPS, "worker_s")}
    in_worker = sum(totals[step] for step in ("probe_s", "detect_s", "quality_s", "write_s"))
    totals["other_s"] = max(0.0, totals.pop("worker_s") - in_worker)
    return {
        step.removesuffix("_s"): {"cpu_s": cpu_s, "source_s_per_cpu_s": source_s / cpu_s if cpu_s else None}
        for step, cpu_s in totals.items()
    }
