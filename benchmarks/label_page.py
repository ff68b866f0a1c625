"""What one key press of the labelling page (jobs/quality_label.py) costs the server: the label
row validated and the whole labels file rewritten atomically and fsynced, as the file grows.

    .venv/bin/python benchmarks/label_page.py

1,000 clips an hour is one label per 3.6 s; this shows how far below that the server's part
stays (the page itself shows the next clip from its preloaded images without waiting).
"""

import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.quality_label import ClipToLabel, LabelSession  # noqa: E402
from schemas import ids  # noqa: E402
from schemas.labels import label_row, write_labels  # noqa: E402


def main() -> int:
    clips = [ClipToLabel(ids.clip_id(f"video-{n // 100}", n % 100 * 160, n % 100 * 160 + 160), f"video-{n // 100}",
                         "unused.tar", 0, 160) for n in range(10_100)]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for existing in (0, 1_000, 10_000):
            path = str(pathlib.Path(folder) / f"labels-{existing}.parquet")
            if existing:
                write_labels(path, [label_row(clip.clip_id, 1 + n % 5, "bench", clip.video_id) for n, clip in enumerate(clips[:existing])])
            session = LabelSession(clips, path, "bench")
            wall, cpu = [], []
            for n, clip in enumerate(clips[existing : existing + 50]):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                session.label(clip.clip_id, 1 + n % 5)
                wall.append(time.perf_counter() - start_wall)
                cpu.append(time.process_time() - start_cpu)
            print(f"{existing:>6} labels in the file: a label costs {statistics.median(cpu) * 1e3:.1f} CPU-ms, "
                  f"{statistics.median(wall) * 1e3:.1f} ms wall (median of 50, fsync included); "
                  f"{3.6 / statistics.median(wall):,.0f}x faster than 1,000 clips an hour needs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
