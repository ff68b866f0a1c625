"""Near-duplicates end to end: `genie ingest` (the embedded default's scorers, `[dedup]` on) over
the local site serving SMB 1-1, 1-2, a re-upload of 1-1 (re-encoded with x264 crf 28) and two
offline-world uploads; prints each clip's fate and checks the shards hold exactly the kept clips.

    .venv/bin/python benchmarks/dedup_ingest.py [--work /tmp/dedup_ingest]

Needs the learned scorer in the embedded default (its embeddings are what dedup compares);
with the heuristic alone no embeddings exist and nothing is dropped as a duplicate.
"""

import argparse
import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMB = ROOT.parent / "shared" / "corpus" / "smb"
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from jobs.ingest import default_config, run_ingest, with_site  # noqa: E402
from jobs.resources import WorkerResources  # noqa: E402
from pipeline.dedup import DedupConfig  # noqa: E402
from pipeline.download import DownloadConfig  # noqa: E402
from schemas.shard_io import iter_samples, list_shards  # noqa: E402
from world.corpus import CorpusConfig, generate_corpus  # noqa: E402
from world.site import VideoSite  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/dedup_ingest"))
    parser.add_argument("--smb", type=pathlib.Path, default=SMB, help="the real SMB footage (../shared/corpus/smb)")
    options = parser.parse_args()
    shutil.rmtree(options.work, ignore_errors=True)
    smb = options.work / "smb"
    smb.mkdir(parents=True)
    for name in ("smb_1_1.mp4", "smb_1_2.mp4"):
        (smb / name).symlink_to(options.smb / name)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(options.smb / "smb_1_1.mp4"), "-c:v", "libx264", "-crf", "28",
                    "-preset", "veryfast", "-an", str(smb / "smb_9_1.mp4")], check=True)  # fmt: skip
    generate_corpus(CorpusConfig(seed=5, videos=2, offtopic=0, min_duration_s=8, max_duration_s=10), options.work / "corpus")
    out = options.work / "out"
    started = time.time()
    with VideoSite(options.work / "corpus", smb_dir=smb) as site:
        config = with_site(default_config(), site.url)
        config = dataclasses.replace(
            config, output_dir=str(out), progress=False, dedup=DedupConfig(enabled=True),
            search=dataclasses.replace(config.search, queries=("mario", "playthrough")),
            download=DownloadConfig(extractors=("generic",), rate_per_s=50.0),
            ray=dataclasses.replace(config.ray, num_cpus=2, object_store_mb=200,
                                    download=WorkerResources(workers=0, cpus_per_worker=0.0)))  # fmt: skip
        stats = run_ingest(config)
    print(f"scorer {config.quality.scorer}; dedup {config.dedup}; wall {time.time() - started:.0f} s")
    clips = pq.read_table(out / "manifest" / "clips.parquet").to_pylist()
    for clip in sorted(clips, key=lambda row: (row["video_id"], row["start_frame"])):
        print(f"  {clip['video_id']:<14} {clip['clip_id']}  {clip['status']:<8} {clip['reason'] or ''}")
    in_shards = sorted(sample["__key__"] for shard in list_shards([str(out / "shards")]) for sample in iter_samples(shard))
    kept = sorted(clip["clip_id"] for clip in clips if clip["status"] == "ok")
    print(f"shards hold exactly the kept clips: {in_shards == kept}; clip counts {json.dumps(stats['clips'])}")
    return 0 if in_shards == kept else 1


if __name__ == "__main__":
    sys.exit(main())
