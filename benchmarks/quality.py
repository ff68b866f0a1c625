"""The learned quality filter's figures, by one command:

    .venv/bin/python benchmarks/quality.py                 # corpus, clips, labels, training, figures
    .venv/bin/python benchmarks/quality.py --skip-train    # figures of the models already trained

1. An offline-world corpus (on- and off-topic uploads; clean, face-cam and letterboxed
   gameplay) is cut into clips by the ingest stages in one process (heuristic scorer only),
   and labelled from the world's sidecars (`genie quality labels-from-world`).
2. `genie quality train --config jobs/configs/quality_cnn.toml` trains the offline CNN option,
   in a child process whose CPU time is measured, once per split seed (`--train-seeds`,
   default 0 1 2: the config's [train] seed, which draws the held-out test videos and the
   cross-validation folds), so that the figures show how much rests on the draw.
3. On the held-out videos' clips, with good = quality 4 and 5: precision and recall of what the
   model keeps, ROC AUC, and how many face-cam (2) and letterboxed (3) clips it keeps.
4. The real footage in ../shared/corpus/smb (never trained on) through the same stages with
   scorer "heuristic+learned": the share of clips kept, by the model and in all.
5. Scoring throughput on one CPU thread: clips per CPU-second (frame picking and resizing
   included), i.e. per core.
"""

import argparse
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMB = ROOT.parent / "shared" / "corpus" / "smb"
PYTHON = sys.executable


def process_folder(videos: list[pathlib.Path], output: pathlib.Path, quality) -> list[dict]:
    """The ingest stages (probe, decode, cut, score, shards, lineage) on local files, one process."""
    from pipeline import lineage
    from pipeline.process_video import ProcessVideo, SplitConfig
    from pipeline.shards import ShardConfig
    from schemas.manifest import VIDEO_SCHEMA

    stage = ProcessVideo(SplitConfig(), quality, ShardConfig(), output, "bench")
    rows = []
    for path in videos:
        row = {name: None for name in VIDEO_SCHEMA.names}
        row.update(video_id=path.stem, url=f"http://bench/{path.name}", queries=["bench"], status="ok", stage="download",
                   path=str(path))  # fmt: skip
        rows.append(stage.process(row))
    lineage.consolidate(output)
    return rows


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def held_out_figures(run: pathlib.Path, labels_path: pathlib.Path, model_dir: pathlib.Path, test_videos: set[str]) -> dict:
    """Score every labelled clip of the held-out videos as ingest would; the figures."""
    import numpy as np

    from pipeline.quality import LearnedConfig, LearnedScorer
    from schemas.labels import read_labels
    from schemas.shard import decode_sample
    from schemas.shard_io import iter_samples
    from train.quality_threshold import precision_recall, roc_auc

    labels = read_labels(str(labels_path)).to_pylist()
    score_of = {row["clip_id"]: row["score"] for row in labels if row["video_id"] in test_videos}
    scorer = LearnedScorer(LearnedConfig(model_dir=str(model_dir), device="cpu"))
    qualities, probabilities = [], []
    for shard in sorted((run / "shards").glob("*.tar")):
        for sample in iter_samples(str(shard)):
            if sample["__key__"] in score_of:
                frames, meta = decode_sample(sample)
                (verdict,) = scorer([frames])
                qualities.append(score_of[meta["clip_id"]])
                probabilities.append(verdict.score)
    qualities, probabilities = np.array(qualities), np.array(probabilities)
    good = (qualities >= 4).astype(int)
    kept = probabilities >= scorer.threshold
    precision, recall = precision_recall(good, probabilities, scorer.threshold)
    return {
        "clips": len(qualities), "videos": len(test_videos), "threshold": round(scorer.threshold, 4),
        "precision": round(precision, 4), "recall": round(recall, 4), "roc_auc": round(roc_auc(good, probabilities), 4),
        "kept_by_quality": {int(q): f"{int(kept[qualities == q].sum())}/{int((qualities == q).sum())}" for q in range(1, 6)},
    }  # fmt: skip


def smb_figures(work: pathlib.Path, model_dir: pathlib.Path) -> dict:
    """SMB through heuristic + learned scorers: clips kept by each."""
    import shutil

    import pyarrow.parquet as pq

    from pipeline.quality import LearnedConfig, QualityConfig

    output = work / "smb_run"
    shutil.rmtree(output, ignore_errors=True)
    quality = QualityConfig(scorer="heuristic+learned", learned=LearnedConfig(model_dir=str(model_dir), device="cpu"))
    process_folder(sorted(SMB.glob("smb_*.mp4")), output, quality)
    clips = pq.read_table(output / "manifest" / "clips.parquet").to_pylist()
    cut = [clip for clip in clips if clip["stage"] != "split" or clip["status"] == "ok"]  # full clips (not too short)
    by_heuristic = [clip for clip in cut if clip["reason"] and not clip["reason"].startswith("learned")]
    judged = [clip for clip in cut if clip not in by_heuristic]
    kept = [clip for clip in judged if clip["status"] == "ok"]
    return {
        "clips": len(cut), "dropped_by_heuristic": len(by_heuristic), "judged_by_model": len(judged),
        "kept_by_model": f"{len(kept)}/{len(judged)} = {len(kept) / max(1, len(judged)):.3f}",
        "kept_in_all": f"{len(kept)}/{len(cut)} = {len(kept) / max(1, len(cut)):.3f}",
        "dropped": sorted(f"{clip['video_id']}@{clip['start_s']:.0f}s p={clip['quality_score']:.2f}" for clip in judged
                          if clip["status"] != "ok"),
    }  # fmt: skip


def throughput(run: pathlib.Path, model_dir: pathlib.Path, clips: int, batch_size: int) -> dict:
    """Clips scored per CPU-second on one thread, from full decoded clips, `batch_size` a pass."""
    import torch

    from pipeline.quality import LearnedConfig, LearnedScorer
    from schemas.shard import decode_sample
    from schemas.shard_io import iter_samples

    torch.set_num_threads(1)
    frames = []
    for shard in sorted((run / "shards").glob("*.tar")):
        frames.extend(decode_sample(sample)[0] for sample in iter_samples(str(shard)))
        if len(frames) >= clips:
            break
    frames = frames[:clips]
    scorer = LearnedScorer(LearnedConfig(model_dir=str(model_dir), device="cpu", batch_size=batch_size))
    scorer(frames[:4])  # warm-up
    started = time.process_time()
    scorer(frames)
    cpu = time.process_time() - started
    return {"clips": len(frames), "cpu_s": round(cpu, 2), "clips_per_cpu_s": round(len(frames) / cpu, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=pathlib.Path, default=ROOT / "out" / "bench_quality")
    parser.add_argument("--world-videos", type=int, default=144)
    parser.add_argument("--world-offtopic", type=int, default=20)
    parser.add_argument("--world-min-s", type=float, default=30.0)
    parser.add_argument("--world-max-s", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--config", default=str(ROOT / "jobs" / "configs" / "quality_cnn.toml"))
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="a model per split seed ([train] seed); the first one's throughput is measured")
    parser.add_argument("--skip-train", action="store_true", help="reuse the models in --work")
    parser.add_argument("--throughput-clips", type=int, default=128)
    options = parser.parse_args()
    from pipeline.quality import QualityConfig
    from world.corpus import CorpusConfig, generate_corpus

    work = options.work
    world = work / "world"
    if not (world / "catalog.json").is_file():
        config = CorpusConfig(seed=options.seed, videos=options.world_videos, offtopic=options.world_offtopic,
                              min_duration_s=options.world_min_s, max_duration_s=options.world_max_s)  # fmt: skip
        generate_corpus(config, world)
    run, labels = work / "world_run", work / "labels.parquet"
    if not (run / "manifest" / "clips.parquet").is_file():
        started = time.monotonic()
        process_folder(sorted((world / "videos").glob("*.mp4")), run, QualityConfig())
        print(f"world clips cut in {time.monotonic() - started:.0f} s", file=sys.stderr)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not labels.is_file():
        subprocess.run([PYTHON, "-m", "jobs.cli", "quality", "labels-from-world", "--run", str(run), "--world", str(world),
                        "--out", str(labels)], check=True, cwd=ROOT, env=env)  # fmt: skip
    report = {}
    for seed in options.train_seeds:
        folder = work / f"seed_{seed}"
        model_dir = folder / "model"
        if not options.skip_train:
            folder.mkdir(parents=True, exist_ok=True)
            config = re.sub(r"^seed = .*$", f"seed = {seed}", pathlib.Path(options.config).read_text(), count=1, flags=re.M)
            (folder / "config.toml").write_text(config)
            before, started = cpu_of_children(), time.monotonic()
            subprocess.run([PYTHON, "-m", "jobs.cli", "quality", "train", "--config", str(folder / "config.toml"), "--labels",
                            str(labels), "--run", str(run), "--out", str(model_dir)], check=True, cwd=ROOT, env=env)  # fmt: skip
            training = {"cpu_s": round(cpu_of_children() - before, 1), "wall_s": round(time.monotonic() - started, 1)}
            (folder / "training.json").write_text(json.dumps(training))
        info = json.loads((model_dir / "config.json").read_text())
        report[f"split seed {seed}"] = {
            "training (CPU, one command)": json.loads((folder / "training.json").read_text()),
            "model": {"id": info["model_id"], "train_clips": info["train"]["clips"], "validation": info["validation"]},
            "held-out world videos (good = 4-5)": held_out_figures(run, labels, model_dir, set(info["test_videos"])),
            "smb (real footage, never trained on)": smb_figures(folder, model_dir),
        }
        print(json.dumps({seed: report[f"split seed {seed}"]}), file=sys.stderr)
    model_dir = work / f"seed_{options.train_seeds[0]}" / "model"
    sizes = (1, 32)
    report["scoring throughput (1 CPU thread)"] = {size: throughput(run, model_dir, options.throughput_clips, size) for size in sizes}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
