"""Probing a video's stream facts: pipeline/mp4.py vs PyAV (in process) vs starting ffprobe.

    .venv/bin/python benchmarks/probe.py                       # mp4.py and ffprobe
    pip install --target /tmp/pyav av==18.1.0                  # PyAV is not a dependency:
    PYTHONPATH=/tmp/pyav .venv/bin/python benchmarks/probe.py  # measure it beside the others

CPU milliseconds per file (process CPU for the in-process readers, RUSAGE_CHILDREN for
ffprobe) on the SMB clips and on a 36-minute file made from one of them by stream copy (its
sample tables are 100x larger), plus PyAV's one-time import. The question it answers
(issue 8): does a maintained in-process demuxer cost no more than the ~50 ms per video the
hand-written reader saves over ffprobe?
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMB = ROOT.parent / "shared" / "corpus" / "smb"
sys.path.insert(0, str(ROOT))

from pipeline.mp4 import read_mp4_info  # noqa: E402
from pipeline.probe import ffprobe  # noqa: E402


own_cpu = time.process_time


def children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def per_file_ms(read, files: list[pathlib.Path], clock=own_cpu, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        for path in files:
            read(path)
        best = min(best, (clock() - start) / len(files) * 1e3)
    return best


def main() -> int:
    files = sorted(SMB.glob("smb_*.mp4"))
    with tempfile.TemporaryDirectory() as folder:
        long_file = pathlib.Path(folder) / "long.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "100", "-i", str(files[0]), "-c", "copy", str(long_file)],
                       check=True)  # fmt: skip
        readers = {"mp4.py": (read_mp4_info, own_cpu), "ffprobe": (lambda path: ffprobe(str(path)), children_cpu)}
        try:
            start = own_cpu()
            import av

            print(f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}): import {own_cpu() - start:.2f} CPU-s once per process")

            def pyav(path):
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    return stream.width, stream.height, stream.average_rate, stream.duration, stream.sample_aspect_ratio

            readers["PyAV"] = (pyav, own_cpu)
        except ImportError:
            print("PyAV not importable: measuring mp4.py and ffprobe only")
        for name, (read, clock) in readers.items():
            short = per_file_ms(read, files, clock)
            long = per_file_ms(read, [long_file], clock)
            print(f"{name:<8} {short:7.2f} ms per SMB clip ({len(files)} files)   {long:7.2f} ms for the 36-min file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
