"""`genie quality labels-from-world`: a labels file for the clips of an ingest run, from the
offline world's ground truth instead of a person.

    genie quality labels-from-world --run out/ingest --world out/world --out labels.parquet

The world knows each shot's quality (world/timeline.py: clean gameplay played well 5, by a
random agent 4, letterboxed 3, under a face-cam 2, anything else 1). A clip is matched
through the lineage: its video id finds the upload's sidecar (truth/<id>.json, read from the
world's own listing, never a path built from the manifest), its source frames find the
segments it overlaps, and its label is the quality of the segment covering most of it. Clips
of videos the world did not make (e.g. the real footage) get no label.
"""

import argparse
import json
import pathlib
import sys

import pyarrow.parquet as pq

from schemas.labels import label_row, write_labels
from schemas.manifest import RUN_CLIPS_FILE

LABELLER = "world"


def world_truth(world_dir: str | pathlib.Path) -> dict[str, list[dict]]:
    """Each upload's segments by video id, from the corpus's truth/ folder."""
    segments = {}
    for path in sorted(pathlib.Path(world_dir, "truth").glob("*.json")):
        truth = json.loads(path.read_text())
        segments[truth["id"]] = truth["segments"]
    return segments


def clip_quality(segments: list[dict], start_frame: int, end_frame: int) -> int | None:
    """The quality of the segment covering most of [start_frame, end_frame); None if none does."""
    overlaps = [(min(end_frame, s["end_frame"]) - max(start_frame, s["start_frame"]), s["quality"]) for s in segments]
    overlap, quality = max(overlaps, default=(0, None))
    return quality if overlap > 0 else None


def labels_from_world(run_dir: str | pathlib.Path, world_dir: str | pathlib.Path, kept_only: bool = True) -> list[dict]:
    """Label rows for the run's clips (kept ones only, unless kept_only is False)."""
    truth = world_truth(world_dir)
    clips = pq.read_table(pathlib.Path(run_dir) / RUN_CLIPS_FILE,
                          columns=["clip_id", "video_id", "start_frame", "end_frame", "status"]).to_pylist()  # fmt: skip
    rows = []
    for clip in clips:
        if (kept_only and clip["status"] != "ok") or clip["video_id"] not in truth:
            continue
        quality = clip_quality(truth[clip["video_id"]], clip["start_frame"], clip["end_frame"])
        if quality is not None:
            rows.append(label_row(clip["clip_id"], quality, LABELLER, video_id=clip["video_id"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie quality labels-from-world", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, action="append", help="an ingest run's output folder (repeatable)")
    parser.add_argument("--world", required=True, help="the offline world's corpus folder (with truth/)")
    parser.add_argument("--out", required=True, help="the labels Parquet file to write")
    parser.add_argument("--all-clips", action="store_true", help="label dropped clips too (default: kept clips only)")
    options = parser.parse_args(argv)
    rows = [row for run in options.run for row in labels_from_world(run, options.world, not options.all_clips)]
    table = write_labels(options.out, rows)
    counts = {score: table.column("score").to_pylist().count(score) for score in range(1, 6)}
    print(json.dumps({"labels": table.num_rows, "by_score": counts}), file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
