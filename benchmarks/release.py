"""Release build and verify throughput (clip-hours per CPU-second) and peak memory.

    .venv/bin/python benchmarks/release.py --work /tmp/release_bench               # 10,000 clips
    .venv/bin/python benchmarks/release.py --work /tmp/release_bench --clips 2500  # memory vs size

1. Makes an ingest run of `--clips` clips in ingest's own layout (per-video shards written by
   pipeline/shards.py, lineage by pipeline/lineage.py), five clips per "upload". Frames are
   offline-world gameplay rendered straight at 160x90 and 10 FPS (the renderer's native
   view; every third step of a 30 FPS game), so they look like what ingest keeps, without
   encoding and decoding 44 hours of MP4: `--distinct` clips are rendered and PNG-encoded,
   and every clip of the run is one of them under its own id, video and span.
2. Runs, each as its own process measured by wait4 (user + sys CPU, peak RSS):
   `genie release` (local mode: one process, shard checks decode every frame), `genie
   verify` (every frame decoded) and `genie verify --quick` (PNG headers), and two peers
   on the same shards: `sha256sum` of every shard (the floor of a checksum check) and a
   decode-only pass (tar read + PNG decode of every sample, the floor of a full check).
3. Prints the figures as JSON, and the CPU a 30,000-hour release would cost at these rates.
"""

import argparse
import datetime as dt
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
CLIPS_PER_VIDEO = 5
GAME_FPS = 30
TARGET_HOURS = 30_000


def render_clips(count: int, seed: int) -> list[tuple[bytes, int]]:
    """`count` distinct offline-world gameplay clips as (PNG strip, frames), up to 16 s each."""
    from schemas import ids, shard
    from world.game import Game
    from world.level import generate_level
    from world.render import VIEW, LevelRenderer
    from world.themes import THEME_NAMES, get_theme
    from world.timeline import play

    clips = []
    rng = np.random.default_rng(seed)
    while len(clips) < count:
        level_seed = int(rng.integers(2**31))
        actions = play(level_seed, "scripted", level_seed, shard.MAX_CLIP_FRAMES * 3, GAME_FPS)
        level = generate_level(level_seed)
        renderer = LevelRenderer(level, get_theme(THEME_NAMES[len(clips) % len(THEME_NAMES)]), VIEW)
        game = Game(level, GAME_FPS)
        frames = []
        for step, action in enumerate(actions):
            if step % 3 == 0:
                frames.append(renderer.render(game).copy())
            game.step(action)
        if len(frames) < 32:
            continue
        meta = {"clip_id": ids.clip_id("x", 0, 1), "video_id": "x", "scene_index": 0, "start_frame": 0, "end_frame": 1,
                "start_s": 0.0, "end_s": 1.0, "n_frames": len(frames), "fps": 10, "width": 160, "height": 90,
                "quality_score": 1.0, "pipeline_version": "bench"}  # fmt: skip
        clips.append((shard.encode_sample(np.stack(frames), meta)["frames.png"], len(frames)))
    return clips


def make_run(run: pathlib.Path, clips: int, distinct: int, seed: int) -> float:
    """An ingest run of `clips` clips in ingest's layout; its clip hours."""
    from pipeline import lineage
    from pipeline.shards import ShardConfig, VideoShardWriter
    from schemas import ids

    rendered = render_clips(distinct, seed)
    stamp = dt.datetime.now(dt.timezone.utc)
    hours = 0.0
    for number in range(-(-clips // CLIPS_PER_VIDEO)):
        video_id = f"bench-{number:06d}"
        writer = VideoShardWriter(run / "shards", video_id, ShardConfig())
        rows, start = [], 0
        for index in range(min(CLIPS_PER_VIDEO, clips - number * CLIPS_PER_VIDEO)):
            png, n_frames = rendered[(number * CLIPS_PER_VIDEO + index) % len(rendered)]
            end = start + n_frames * 3
            meta = {"spec_version": "1", "clip_id": ids.clip_id(video_id, start, end), "video_id": video_id,
                    "scene_index": index, "start_frame": start, "end_frame": end, "start_s": start / GAME_FPS,
                    "end_s": end / GAME_FPS, "n_frames": n_frames, "fps": 10, "width": 160, "height": 90,
                    "quality_score": 1.0, "pipeline_version": "bench"}  # fmt: skip
            writer.write({"__key__": meta["clip_id"], "frames.png": png, "json": json.dumps(meta, sort_keys=True).encode()},
                         start, end)  # fmt: skip
            rows.append({**meta, "quality_scorer": "heuristic", "status": "ok", "stage": None, "reason": None,
                         "created_at": stamp})  # fmt: skip
            hours += n_frames / 10 / 3600
            start = end
        placements = writer.commit()
        rows = [{**row, "shard": placements[row["clip_id"]].shard, "shard_index": placements[row["clip_id"]].index,
                 "shard_offset": placements[row["clip_id"]].offset} for row in rows]  # fmt: skip
        video = {"video_id": video_id, "url": f"http://127.0.0.1:8765/watch/{video_id}", "title": f"Bench upload {number}",
                 "description": "offline-world gameplay", "uploader": f"uploader-{number % 97}", "license": "CC-BY-4.0",
                 "duration_s": start / GAME_FPS, "queries": ["platformer"], "status": "ok", "stage": None, "reason": None,
                 "download_attempts": 1, "content_sha256": f"{number:064x}", "file_bytes": 1, "width": 640, "height": 360,
                 "fps": float(GAME_FPS), "n_frames": start, "scene_spans": [], "n_clips": len(rows),
                 "pipeline_version": "bench", "created_at": stamp, "updated_at": stamp}  # fmt: skip
        lineage.write_parts(run, video, rows)
    lineage.consolidate(run)
    return hours


# Runs a command and prints its rusage as JSON. A fresh, small Python does the fork: a child's
# peak RSS starts at its parent's at fork time, which this script's (pyarrow loaded) would inflate.
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.monotonic()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(process.pid, 0)
error = process.stderr.read().decode()[-2000:]
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mib": usage.ru_maxrss / 1024, "wall_s": time.monotonic() - started, "error": error}))
"""


def measure(command: list[str]) -> dict:
    """Run `command`; its CPU seconds (user + sys), peak RSS and wall time, via wait4."""
    result = json.loads(subprocess.run([PYTHON, "-S", "-c", LAUNCHER, *command], capture_output=True, check=True).stdout)
    if result.pop("rc") != 0:
        raise RuntimeError(f"{command} failed: {result['error']}")
    result.pop("error")
    return result


DECODE_ONLY = """
import sys, tarfile, cv2, numpy as np
for path in sys.argv[1:]:
    with tarfile.open(path) as archive:
        for member in archive:
            if member.name.endswith('.frames.png'):
                data = archive.extractfile(member).read()
                cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=pathlib.Path, required=True, help="scratch folder (kept: the run is reused)")
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=300, help="distinct rendered clips the run's clips reuse")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    run = options.work / f"run-{options.clips}"
    if not (run / "manifest" / "clips.parquet").is_file():
        shutil.rmtree(run, ignore_errors=True)
        started = time.process_time()
        make_run(run, options.clips, options.distinct, options.seed)
        print(f"made {run} in {time.process_time() - started:.0f} CPU-s", file=sys.stderr)
    import pyarrow.parquet as pq

    clips = pq.read_table(run / "manifest" / "clips.parquet", columns=["n_frames"])["n_frames"].to_numpy()
    hours = float(clips.sum()) / 10 / 3600
    release = options.work / f"release-{options.clips}"
    shutil.rmtree(release, ignore_errors=True)
    env_python = [PYTHON, "-m"]
    figures = {"clips": int(len(clips)), "clip_hours": hours,
               "shard_bytes": sum(path.stat().st_size for path in (run / "shards").glob("*.tar"))}  # fmt: skip
    figures["release"] = measure([*env_python, "jobs.release", "--from", str(run), "--out", str(release), "--version", "bench",
                                  "--ray", "local", "--no-progress"])  # fmt: skip
    figures["verify"] = measure([*env_python, "jobs.verify", str(release), "--ray", "local", "--no-progress"])
    figures["verify_quick"] = measure([*env_python, "jobs.verify", str(release), "--quick", "--ray", "local", "--no-progress"])
    shards = sorted(str(path) for path in release.glob("*/*.tar"))
    figures["peer_sha256sum"] = measure(["sha256sum", *shards])
    figures["peer_decode_only"] = measure([PYTHON, "-c", DECODE_ONLY, *shards])
    for name in ("release", "verify", "verify_quick", "peer_sha256sum", "peer_decode_only"):
        entry = figures[name]
        entry["clip_hours_per_cpu_s"] = hours / entry["cpu_s"]
        entry["cpu_hours_for_30k_clip_hours"] = TARGET_HOURS / entry["clip_hours_per_cpu_s"] / 3600
    figures["ratios"] = {
        "release_vs_decode_only": figures["release"]["cpu_s"] / figures["peer_decode_only"]["cpu_s"],
        "verify_vs_decode_only": figures["verify"]["cpu_s"] / figures["peer_decode_only"]["cpu_s"],
        "verify_quick_vs_sha256sum": figures["verify_quick"]["cpu_s"] / figures["peer_sha256sum"]["cpu_s"],
    }
    figures["bytes_per_clip_hour"] = figures["shard_bytes"] / hours
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
