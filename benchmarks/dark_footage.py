"""Dark footage: does the split keep dark gameplay whole while still cutting real fades and
dropping black screens?

    .venv/bin/python benchmarks/dark_footage.py [--world-videos 16] [--seed 8] [--dark-only] [--sheets DIR]

Every video goes through the processing stage (pipeline/process_video.py: probe, decode,
scene split, clips, quality heuristic, shards) in this process, with the embedded default
config (jobs/configs/ingest_local.toml's [split] and [quality]):

1. ../shared/corpus/smb: each file is one level of continuous gameplay (World 3-2 has no
   cut; 1-2, 2-2 and 4-2 end by a pipe into another area, an instant cut). Per level: seconds
   of source in kept clips, the scenes found and every dropped clip's reason. Targets: every
   level yields kept clips and >= 95% of all source seconds are in kept clips.
2. An offline-world corpus in the default theme mix (dark themes included; --dark-only: only
   underground, castle and midnight gameplay), seeded: cut F1
   within one source frame against the sidecars (target >= 0.95, overall and on videos with
   dark gameplay), and the share of each kind of shot that lands in kept clips (gameplay by
   theme should be kept; black gaps, slides and menus dropped).

--sheets DIR writes contact sheets (PNG, one middle frame per clip with its verdict): the
kept clips of dark-theme gameplay, and every dropped clip with its reason, to look at.
"""

import argparse
import collections
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jobs.ingest import default_config  # noqa: E402
from pipeline import lineage  # noqa: E402
from pipeline.process_video import ProcessVideo  # noqa: E402
from schemas.manifest import VIDEO_SCHEMA  # noqa: E402
from world.canvas import draw_text  # noqa: E402
from world.corpus import CorpusConfig, generate_corpus  # noqa: E402
from world.themes import DARK_THEMES  # noqa: E402
from world.truth import f1, load_truth, matched_cuts, seconds_by_label, truth_cuts  # noqa: E402

SMB = pathlib.Path(__file__).resolve().parents[2] / "shared" / "corpus" / "smb"


class RecordingScorer:
    """The stage's scorer, unchanged, that also keeps each clip's middle frame and verdict."""

    def __init__(self, scorer) -> None:
        self.scorer, self.name = scorer, scorer.name
        self.seen: list[tuple[np.ndarray, str | None]] = []

    def __call__(self, clips):
        verdicts = self.scorer(clips)
        self.seen.extend((frames[len(frames) // 2].copy(), verdict.reason) for frames, verdict in zip(clips, verdicts))
        return verdicts


def process(paths: dict[str, pathlib.Path], output: pathlib.Path) -> tuple[dict, dict, dict]:
    """Every video through the stage: its row, its clip rows, its recorded frames, by video id."""
    config = default_config()
    stage = ProcessVideo(config.split, config.quality, config.shards, output, "dark-footage")
    recorder = RecordingScorer(stage.quality.scorer)
    stage.quality.scorer = recorder
    videos, frames = {}, {}
    for video_id, path in paths.items():
        row = {name: None for name in VIDEO_SCHEMA.names}
        row.update(video_id=video_id, url=f"file://{path.name}", queries=["q"], status="ok", stage="download", path=str(path))
        videos[video_id] = stage.process(row)
        frames[video_id], recorder.seen = recorder.seen, []
    _, clip_table = lineage.consolidate(output)
    clips = collections.defaultdict(list)
    for clip in clip_table.to_pylist():
        clips[clip["video_id"]].append(clip)
    return videos, clips, frames


def kept_seconds(clips: list[dict]) -> float:
    return sum(clip["end_s"] - clip["start_s"] for clip in clips if clip["status"] == "ok")


def smb(work: pathlib.Path, sheets: list) -> None:
    paths = {path.stem.replace("_", "-"): path for path in sorted(SMB.glob("smb_*.mp4"))}
    videos, clips, frames = process(paths, work / "smb_out")
    total_source = total_kept = 0.0
    print("SMB levels (../shared/corpus/smb): seconds in kept clips / source seconds, scenes, drops")
    for video_id, video in videos.items():
        kept, source = kept_seconds(clips[video_id]), video["source_s"]
        total_source, total_kept = total_source + source, total_kept + kept
        drops = [f"{clip['start_s']:.1f}-{clip['end_s']:.1f} {clip['reason']}" for clip in clips[video_id] if clip["status"] != "ok"]
        print(f"  {video_id}  {kept:5.1f} / {source:5.1f} s ({kept / source:4.0%})  scenes {len(video['scene_spans'])}"
              + (f"  dropped: {'; '.join(drops)}" if drops else ""))  # fmt: skip
        sheets.extend((f"{video_id} {reason or 'kept'}", frame) for frame, reason in frames[video_id] if reason)
    levels_with_clips = sum(any(clip["status"] == "ok" for clip in clips[video_id]) for video_id in videos)
    print(f"  all: {total_kept:.1f} / {total_source:.1f} s in kept clips ({total_kept / total_source:.1%}, target >= 95%); "
          f"levels with kept clips {levels_with_clips}/{len(videos)}")  # fmt: skip


def world(work: pathlib.Path, videos_count: int, seed: int, dark_only: bool, kept_sheet: list, dropped_sheet: list) -> None:
    corpus = work / "world"
    config = CorpusConfig(seed=seed, videos=videos_count, offtopic=max(1, videos_count // 8), min_duration_s=20,
                          max_duration_s=40, themes=DARK_THEMES if dark_only else CorpusConfig().themes)  # fmt: skip
    if not (corpus / "catalog.json").is_file():
        generate_corpus(config, corpus)
    paths = {path.stem: path for path in sorted((corpus / "videos").glob("*.mp4"))}
    videos, clips, frames = process(paths, work / "world_out")
    counts = {"all": [0, 0, 0], "with dark gameplay": [0, 0, 0]}
    kept, total = collections.Counter(), collections.Counter()
    for video_id, video in videos.items():
        truth = load_truth(corpus, video_id)
        found = [span["start_frame"] for span in video["scene_spans"][1:]]
        expected = truth_cuts(truth)
        dark = any(segment["theme"] in DARK_THEMES for segment in truth["segments"] if segment["kind"] == "gameplay")
        for name in ("all", "with dark gameplay") if dark else ("all",):
            counts[name] = [a + b for a, b in zip(counts[name], (matched_cuts(found, expected), len(found), len(expected)))]
        kept.update(seconds_by_label(truth, [(c["start_frame"], c["end_frame"]) for c in clips[video_id] if c["status"] == "ok"]))
        total.update(seconds_by_label(truth, [(0, truth["n_frames"])]))
        scored = [clip for clip in clips[video_id] if clip["quality_scorer"]]
        assert len(scored) == len(frames[video_id]), "clip rows and scored clips out of step"
        for (frame, reason), clip in zip(frames[video_id], scored):
            label = max(seconds_by_label(truth, [(clip["start_frame"], clip["end_frame"])]).items(), key=lambda item: item[1])[0]
            if reason is not None:
                dropped_sheet.append((f"{label}: {reason}", frame))
            elif label.removeprefix("gameplay:") in DARK_THEMES:
                kept_sheet.append((label, frame))
    mix = "dark themes only" if dark_only else "default theme mix"
    print(f"Offline world: {len(videos)} uploads (seed {seed}, {mix}, {config.offtopic} off-topic)")
    for name, (matched, found, expected) in counts.items():
        print(f"  cuts, {name} videos: {matched} matched within 1 frame, {found} found, {expected} true: "
              f"F1 {f1(matched, found, expected):.3f} (target >= 0.95)")  # fmt: skip
    print("  seconds in kept clips by kind of shot (truth):")
    for label in sorted(total):
        print(f"    {label:<22} {kept[label]:7.1f} / {total[label]:7.1f} s ({kept[label] / total[label]:4.0%})")


def write_sheet(path: pathlib.Path, tiles: list[tuple[str, np.ndarray]], columns: int = 6) -> None:
    from PIL import Image

    if not tiles:
        return
    cells = []
    for label, frame in tiles:
        cell = np.zeros((frame.shape[0] + 12, frame.shape[1], 3), np.uint8)
        cell[: frame.shape[0]] = frame
        draw_text(cell, label[:52], (2, frame.shape[0] + 6), 8, color=(240, 240, 240), anchor="lm", shadow=None)
        cells.append(cell)
    cells += [np.zeros_like(cells[0])] * (-len(cells) % columns)
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows)).resize((columns * 320, len(rows) * 204), Image.NEAREST).save(path)
    print(f"wrote {path} ({len(tiles)} clips)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world-videos", type=int, default=16)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--work", type=pathlib.Path, help="working folder (default: a temporary one); a world corpus there is reused")
    parser.add_argument("--sheets", type=pathlib.Path, help="write contact sheets of kept dark clips and of dropped clips here")
    parser.add_argument("--dark-only", action="store_true", help="world gameplay in the dark themes only")
    parser.add_argument("--skip-smb", action="store_true")
    options = parser.parse_args()
    work = options.work or pathlib.Path(tempfile.mkdtemp(prefix="dark_footage_"))
    for stale in ("smb_out", "world_out"):
        if (work / stale).exists():
            raise SystemExit(f"{work / stale} exists: give a fresh --work or remove it")
    smb_dropped, kept_sheet, dropped_sheet = [], [], []
    if not options.skip_smb:
        smb(work, smb_dropped)
    world(work, options.world_videos, options.seed, options.dark_only, kept_sheet, dropped_sheet)
    if options.sheets:
        write_sheet(options.sheets / "world_dark_kept.png", kept_sheet)
        write_sheet(options.sheets / "world_dropped.png", dropped_sheet)
        write_sheet(options.sheets / "smb_dropped.png", smb_dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
