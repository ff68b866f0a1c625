"""How fast does the offline world make uploads? Minutes of 640x360 30 fps H.264 video per
minute of one CPU core.

Generates a corpus (the default mix: gameplay with title/menu/slide/black/face-cam/letterbox
junk, plus off-topic footage) into a temporary folder and divides the video length by the
CPU time (user + sys of this process and its ffmpeg children), so agent planning, numpy
rendering, the pipe and the x264 encode are all counted. Target: >= 10.

    .venv/bin/python benchmarks/render_speed.py [--videos 8] [--record]

--record appends the figures with the machine description to benchmarks/RESULTS.md.
"""

import argparse
import datetime
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from world.corpus import CorpusConfig, generate_corpus  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Upload rendering speed (`benchmarks/render_speed.py`)"


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split(" Copyright")[0]
    return f"{os.cpu_count()}-core {platform.machine()} ({model}), Python {platform.python_version()}, {ffmpeg}"


def record(text: str) -> None:
    """Appends an entry to this benchmark's section of RESULTS.md, creating either if missing."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION not in existing:
        RESULTS.write_text(existing.rstrip("\n") + f"\n\n{SECTION}\n\n{text}\n")
        return
    start = existing.index(SECTION) + len(SECTION)
    following = existing.find("\n## ", start)
    end = len(existing) if following < 0 else following
    RESULTS.write_text(existing[:end].rstrip("\n") + f"\n\n{text}\n" + existing[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", action="store_true", help="append the result to benchmarks/RESULTS.md")
    options = parser.parse_args()
    config = CorpusConfig(seed=options.seed, videos=options.videos, offtopic=max(1, options.videos // 4))
    with tempfile.TemporaryDirectory() as folder:
        cpu_start, wall_start = cpu_seconds(), time.perf_counter()
        catalog = generate_corpus(config, folder)
        cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
        megabytes = sum(path.stat().st_size for path in pathlib.Path(folder, "videos").iterdir()) / 1e6
    video_minutes = sum(entry["duration_s"] for entry in catalog["videos"]) / 60
    rate = video_minutes / (cpu / 60)
    lines = [
        f"{len(catalog['videos'])} uploads ({config.offtopic} off-topic), {video_minutes:.2f} min of "
        f"{config.width}x{config.height} {config.fps} fps H.264 (x264 {config.preset}, crf {config.crf})",
        f"CPU {cpu:.1f} s (wall {wall:.1f} s), {megabytes / video_minutes:.1f} MB per video minute",
        f"rendered: {rate:.1f} min of video per CPU-minute (target >= 10)",
    ]
    print("\n".join(lines))
    if options.record:
        today = datetime.date.today().isoformat()
        record(f"Machine: {machine()}; {today}. Command: `.venv/bin/python benchmarks/render_speed.py "
               f"--videos {options.videos}`.\n\n" + "\n".join(f"    {line}" for line in lines))


if __name__ == "__main__":
    main()
