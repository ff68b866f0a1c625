"""The dataset card: README.md and card/*.png, made from what a release folder holds.

Everything comes from the release itself (index, manifest tables, provenance), so a card can
be remade at any time and a takedown release gets a card of its own. The clip table is read
in batches (histograms with fixed bins, a bounded heap for the contact sheet's clips).
"""

import collections
import heapq
import json
import pathlib
import urllib.parse

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from release.plan import keyed_hash  # noqa: E402
from release.shard_io import read_sample_at  # noqa: E402
from schemas import shard as clip_spec  # noqa: E402
from schemas.release import CARD_DIR, CARD_FILE, CLIPS_FILE, INDEX_FILE, PROVENANCE_FILE, SPLITS, VIDEOS_FILE  # noqa: E402

CONTACT_CLIPS = 12
CONTACT_FRAMES = 5
LENGTH_BINS = np.arange(0, 16.5, 0.5)
SCORE_BINS = np.linspace(0, 1, 21)  # a scorer's score is in [0, 1] (pipeline/quality.py)
HOUR = 3600.0
STAGES = ("search", "download", "split", "quality", "write")  # ingest's stages, in order


def write_card(root: str | pathlib.Path) -> pathlib.Path:
    """Write README.md and its plots into the release folder `root`; the README's path."""
    root = pathlib.Path(root)
    (root / CARD_DIR).mkdir(exist_ok=True)
    index = json.loads((root / INDEX_FILE).read_text())
    provenance = json.loads((root / PROVENANCE_FILE).read_text())
    videos = pq.read_table(root / VIDEOS_FILE).to_pylist()
    clips = _clip_summary(root / CLIPS_FILE, index["seed"])
    _plot_histograms(clips, root / CARD_DIR / "clip_length.png", root / CARD_DIR / "quality_score.png")
    _plot_contact_sheet(root, clips["contact"], videos, root / CARD_DIR / "contact_sheet.png")
    text = "\n".join(_card_lines(index, provenance, videos, clips)) + "\n"
    (root / CARD_FILE).write_text(text)
    return root / CARD_FILE


def _clip_summary(path: pathlib.Path, seed: int) -> dict:
    lengths = {split: np.zeros(len(LENGTH_BINS) - 1, np.int64) for split in SPLITS}
    scores = np.zeros(len(SCORE_BINS) - 1, np.int64)
    unscored = 0
    versions: collections.Counter = collections.Counter()
    scorers: collections.Counter = collections.Counter()
    contact: list[tuple[int, dict]] = []
    columns = ["clip_id", "video_id", "split", "shard", "shard_offset", "n_frames", "quality_score", "quality_scorer",
               "pipeline_version"]  # fmt: skip
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns):
        seconds = np.minimum(batch["n_frames"].to_numpy() / clip_spec.FRAME_RATE, LENGTH_BINS[-1] - 1e-9)
        split = np.array(batch["split"].to_pylist())
        for name in SPLITS:
            lengths[name] += np.histogram(seconds[split == name], LENGTH_BINS)[0]
        score = batch["quality_score"]
        unscored += score.null_count
        scores += np.histogram(np.clip(pc.drop_null(score).to_numpy(), 0, 1), SCORE_BINS)[0]
        versions.update(batch["pipeline_version"].to_pylist())
        scorers.update(value for value in batch["quality_scorer"].to_pylist() if value)
        for row in batch.select(["clip_id", "video_id", "split", "shard", "shard_offset"]).to_pylist():
            item = (-keyed_hash(seed, "card", row["clip_id"]), row["clip_id"], row)
            if len(contact) < CONTACT_CLIPS:
                heapq.heappush(contact, item)
            elif item > contact[0]:
                heapq.heapreplace(contact, item)
    return {"lengths": lengths, "scores": scores,
            "unscored": unscored, "versions": dict(versions), "scorers": dict(scorers),
            "contact": [row for _, _, row in sorted(contact, reverse=True)]}  # fmt: skip


def _plot_histograms(clips: dict, length_png: pathlib.Path, score_png: pathlib.Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=100)
    bottom = np.zeros(len(LENGTH_BINS) - 1, np.int64)
    for split, colour in zip(SPLITS, ("#4477aa", "#ee6677", "#ccbb44")):
        axes.bar(LENGTH_BINS[:-1], clips["lengths"][split], width=0.5, align="edge", bottom=bottom, color=colour, label=split)
        bottom = bottom + clips["lengths"][split]
    axes.legend(fontsize=8)
    axes.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set(xlabel="clip length (s)", ylabel="clips", title="Clip length by split")
    figure.tight_layout()
    figure.savefig(length_png)
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=100)
    if clips["scores"].sum():
        axes.bar(SCORE_BINS[:-1], clips["scores"], width=SCORE_BINS[1], align="edge", color="#228833")
        axes.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    else:
        axes.text(0.5, 0.5, "no clip has a quality score", ha="center", va="center", transform=axes.transAxes)
    scorer = ", ".join(sorted(clips["scorers"])) or "none"
    axes.set(xlabel=f"quality score (scorer: {scorer})", ylabel="clips",
             title=f"Quality score ({clips['unscored']} clips unscored)")  # fmt: skip
    figure.tight_layout()
    figure.savefig(score_png)
    plt.close(figure)


def _plot_contact_sheet(root: pathlib.Path, rows: list[dict], videos: list[dict], png: pathlib.Path) -> None:
    titles = {video["video_id"]: video["title"] or video["video_id"] for video in videos}
    figure, axes = plt.subplots(max(1, len(rows)), CONTACT_FRAMES, figsize=(CONTACT_FRAMES * 1.9, max(1, len(rows)) * 1.2),
                                dpi=100, squeeze=False)  # fmt: skip
    for axis in axes.flat:
        axis.axis("off")
    for line, row in enumerate(rows):
        with open(root / row["shard"], "rb") as file:
            frames, _ = clip_spec.decode_sample(read_sample_at(file, row["shard_offset"], row["shard"]))
        picks = np.linspace(0, len(frames) - 1, CONTACT_FRAMES).round().astype(int)
        for column, frame in enumerate(picks):
            axes[line, column].imshow(frames[frame])
            axes[line, column].set_title(f"t={frame / clip_spec.FRAME_RATE:.1f}s", fontsize=6, pad=1)
        label = f"{row['split']}: {titles.get(row['video_id'], row['video_id'])[:40]}"
        axes[line, 0].text(-0.05, 0.5, label, fontsize=6, ha="right", va="center", transform=axes[line, 0].transAxes)
    figure.subplots_adjust(left=0.24, right=0.99, top=0.97, bottom=0.01, wspace=0.04, hspace=0.35)
    figure.savefig(png)
    plt.close(figure)


def _card_lines(index: dict, provenance: dict, videos: list[dict], clips: dict) -> list[str]:
    name, version = index["name"], index["version"]
    lines = [f"# {name} {version}", ""]
    derived = f", derived from version {index['based_on']} by takedowns" if index.get("based_on") else ""
    lines += [f"Release {version} of {name}, built {index['created_at']}{derived}; seed {index['seed']}. "
              "Each sample is one clip of up to 16 s: 160x90 RGB frames at 10 FPS stacked in a lossless PNG strip "
              "(`frames.png`) and its metadata (`json`), as `schemas/shard.py` specifies.", ""]  # fmt: skip
    lines += ["## Contents", "", "| split | videos | clips | hours | shards | GiB |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for split in SPLITS:
        shards = [entry for entry in index["shards"] if entry["split"] == split]
        split_videos = [video for video in videos if video["split"] == split]
        hours = sum(video["clip_hours"] for video in split_videos)
        lines.append(f"| {split} | {len(split_videos)} | {sum(entry['clips'] for entry in shards)} | {hours:.3f} | "
                     f"{len(shards)} | {sum(entry['bytes'] for entry in shards) / 1024**3:.3f} |")  # fmt: skip
    fractions = ", ".join(f"{split} {index['split_fractions'][split]:g}" for split in SPLITS)
    lines += ["", f"Splits are by source video (no video is in two splits), by clip hours: {fractions}.", ""]
    lines += ["## Reading it", "", "```python",
              "import webdataset as wds",
              "dataset = wds.WebDataset(\"train/train-{000000..%06d}.tar\", shardshuffle=False)" % max(0, _count(index, "train") - 1),
              "# or: ray.data.read_webdataset(\"train/\"); or `genie train` with train.data.shards = [\"<release>/train\"]",
              "```", "",
              "`genie verify <release>` checks every checksum, every sample against `manifest/clips.parquet` and the split rule.",
              ""]  # fmt: skip
    lines += _sources(videos)
    lines += _curation(provenance)
    lines += _left_out(provenance)
    lines += _takedowns(provenance)
    lines += ["## Clip length and quality", "", "![clip length](card/clip_length.png)", "",
              "![quality score](card/quality_score.png)", "",
              "## Random clips", "", f"{CONTACT_CLIPS} clips picked by a seeded hash, {CONTACT_FRAMES} frames each:", "",
              "![contact sheet](card/contact_sheet.png)", ""]  # fmt: skip
    lines += ["## How it was made", "", "Pipeline versions of the clips: "
              + ", ".join(f"`{key}` ({count} clips)" for key, count in sorted(clips["versions"].items())), "",
              "Release config:", "", "```json", json.dumps(provenance["release"], indent=1, sort_keys=True), "```", ""]  # fmt: skip
    for run in provenance["runs"]:
        lines += [f"Ingest config of `{run['run']}`:", "", "```json",
                  json.dumps(run["config"], indent=1, sort_keys=True) if run["config"] else "(the run recorded no config)",
                  "```", ""]  # fmt: skip
    return lines


def _count(index: dict, split: str) -> int:
    return sum(1 for entry in index["shards"] if entry["split"] == split)


def _table(title: str, key_name: str, groups: dict[str, list[dict]], limit: int | None = None) -> list[str]:
    lines = [f"| {key_name} | videos | hours |", "| --- | ---: | ---: |"]
    ordered = sorted(groups.items(), key=lambda item: -sum(video["clip_hours"] for video in item[1]))
    for key, members in ordered[:limit]:
        lines.append(f"| {key} | {len(members)} | {sum(video['clip_hours'] for video in members):.3f} |")
    if limit and len(ordered) > limit:
        lines.append(f"| ({len(ordered) - limit} more) | | |")
    return [title, "", *lines, ""]


def _sources(videos: list[dict]) -> list[str]:
    licences, sites, uploaders = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(list)
    for video in videos:
        licences[video["license"] or "unknown"].append(video)
        sites[urllib.parse.urlsplit(video["url"]).netloc or "unknown"].append(video)
        uploaders[video["uploader"] or "unknown"].append(video)
    return ["## Sources and licences", "", "Every clip's source video, URL, uploader and licence are in "
            "`manifest/clips.parquet` and `manifest/videos.parquet`.", "",
            *_table("By licence:", "licence", licences), *_table("By site:", "site", sites),
            *_table("By uploader (top 10):", "uploader", uploaders, limit=10)]  # fmt: skip


def _curation(provenance: dict) -> list[str]:
    lines = ["## What curation kept and dropped", "",
             "Counts from each ingest run's lineage manifest: `ok`, or `status:reason`.", ""]  # fmt: skip
    for run in provenance["runs"]:
        lines += [f"Run `{run['run']}` (pipeline {', '.join(run['pipeline_versions'])}):", "",
                  "| what | outcome | count |", "| --- | --- | ---: |"]  # fmt: skip
        for table in ("videos", "clips"):
            lines += [f"| {table} | {reason} | {count} |" for reason, count in run[table].items()]
        stages = (run.get("stats") or {}).get("stages")
        if stages:
            lines += ["", "| stage | in | in hours | out | out hours |", "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {stage} | {stages[stage]['in']} | {stages[stage]['in_hours']:.3f} | {stages[stage]['out']} | "
                      f"{stages[stage]['out_hours']:.3f} |" for stage in STAGES if stage in stages]  # fmt: skip
        lines.append("")
    return lines


def _left_out(provenance: dict) -> list[str]:
    counts: collections.Counter = collections.Counter()
    for video in provenance["excluded_videos"]:
        counts[f"video {video['reason'].split(':', 1)[0]}"] += video["n_clips"]
    for clip in provenance["excluded_clips"]:
        counts[f"clip {clip['reason'].split(':', 1)[0]}"] += 1
    lines = ["## Left out of this release", ""]
    if not counts:
        return lines + ["Nothing: every kept clip of the runs is in the release.", ""]
    lines += ["Kept by ingest but not released (clips), by reason; details in `provenance.json`:", "",
              "| reason | clips |", "| --- | ---: |"]  # fmt: skip
    return lines + [f"| {reason} | {count} |" for reason, count in sorted(counts.items())] + [""]


def _takedowns(provenance: dict) -> list[str]:
    lines = ["## Takedowns", ""]
    records = provenance["takedowns"]
    if not records:
        return lines + ["None applied.", ""]
    lines += ["| what | requested | applied in | on | reason | videos | clips | hours |",
              "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for record in records:
        what = f"video `{record['video_id']}`" if record["video_id"] else f"uploader `{record['uploader']}`"
        lines.append(f"| {what} | {record['requested']} | {record['applied_in']} | {record['applied_on']} | "
                     f"{record['reason']} | {len(record['videos_removed'])} | {record['clips_removed']} | "
                     f"{record['hours_removed']:.3f} |")  # fmt: skip
    return lines + [""]
