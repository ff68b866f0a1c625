"""The small video tokenizer trained for a time budget on one GPU, then scored on held-out clips.

    python benchmarks/tokenizer_gpu.py SHARDS --out OUT [--minutes 8] [--batch-size N] [--no-compile]
    python benchmarks/tokenizer_gpu.py SHARDS --out OUT --smoke     # tiny model, 2-frame windows: checks the script

SHARDS is a folder from benchmarks/make_gpu_shards.py: train/*.tar to train on and
heldout/<group>/*.tar (smb, world) never trained on. Needs torch, numpy, opencv, pyarrow and
no Ray, no webdataset (shards are read with the stdlib tarfile).

Training is the real per-worker loop (train/loop.py) in one plain process (LocalContext):
bf16 autocast, torch.compile per block, AdamW with warmup and cosine decay. To fit the
schedule to the budget, it first trains a few calibration steps (inside warmup, so the
learning rate does not depend on the final step count), measures the step time, then
resumes the same run from its checkpoint with max_steps set to fill the remaining time.
The batch is the largest of 16/12/8/6/4/2 windows whose step fits in 85% of GPU memory.
Afterwards every held-out clip is cut into 16-frame windows and reconstructed: PSNR (mean
over windows), codebook use and perplexity per group, and a PNG of inputs over
reconstructions per group. Everything lands in OUT/report.json and on stdout.
"""

import argparse
import dataclasses
import gc
import json
import math
import os
import pathlib
import platform
import shutil
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas import shard as clip_spec  # noqa: E402
from schemas.shard_io import iter_samples, list_shards  # noqa: E402
from train.checkpoint import latest_checkpoint  # noqa: E402
from train.components import load_trained, video_from_frames  # noqa: E402
from train.context import LocalContext  # noqa: E402
from train.loop import TrainConfig, train  # noqa: E402
from train.metrics import MetricsConfig, save_sample_grid  # noqa: E402
from train.optimizer import OptimConfig  # noqa: E402
from train.parallelize import ParallelConfig, autocast, parallelize  # noqa: E402
from train.windows import DataConfig  # noqa: E402

BATCH_CANDIDATES = (16, 12, 8, 6, 4, 2)


@dataclasses.dataclass(frozen=True)
class Plan:
    model: str
    window_frames: int
    batch_size: int | None  # None: probe
    calibration_steps: int
    warmup_steps: int
    lr: float
    compile: bool
    mixed_precision: str
    loader_processes: int
    eval_clips: int | None  # per group; None: all


def plan_for(options: argparse.Namespace) -> Plan:
    if options.smoke:
        return Plan("tiny", 2, 1, 2, 8, 1e-3, False, "fp32", 0, 2)
    return Plan("small", 16, options.batch_size, 30, 100, options.lr, not options.no_compile, "bf16",
                max(1, min(4, (os.cpu_count() or 2) - 2)), None)


def probe_batch_size(plan: Plan, device: torch.device) -> int:
    """The largest candidate batch whose training step fits in 85% of the GPU's memory (eager)."""
    if device.type != "cuda":
        return BATCH_CANDIDATES[-1]
    for batch in BATCH_CANDIDATES:
        fits = _step_fits(plan, batch, device)
        gc.collect()  # an OOM's traceback can keep the failed step's tensors in a reference cycle
        torch.cuda.empty_cache()
        if fits:
            return batch
    raise RuntimeError("even a batch of 2 windows does not fit this GPU")


def _step_fits(plan: Plan, batch: int, device: torch.device) -> bool:
    """One forward and backward at this batch size; everything it allocated dies with this frame."""
    from models.config import load_model_configs
    from models.tokenizer import VideoTokenizer

    config = ParallelConfig(mixed_precision=plan.mixed_precision)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        model = parallelize(VideoTokenizer(load_model_configs(plan.model).tokenizer), config, device)
        video = torch.rand(batch, plan.window_frames, 3, 90, 160, device=device)
        with autocast(device, config):
            loss = model(video).loss
        loss.backward()
        torch.cuda.synchronize(device)
    except torch.cuda.OutOfMemoryError:
        return False
    return torch.cuda.max_memory_allocated(device) < 0.85 * torch.cuda.get_device_properties(device).total_memory


def train_config(plan: Plan, shards: pathlib.Path, batch: int, max_steps: int, compile_: bool) -> TrainConfig:
    return TrainConfig(
        model=plan.model,
        data=DataConfig(shards=(str(shards / "train"),), window_frames=plan.window_frames, batch_size=batch,
                        shuffle_block_clips=16, interleave_shards=4, loader_processes=plan.loader_processes),
        optim=OptimConfig(max_steps=max_steps, lr=plan.lr, warmup_steps=plan.warmup_steps),
        parallel=ParallelConfig(compile=compile_, mixed_precision=plan.mixed_precision),
        metrics=MetricsConfig(log_every=10 if plan.model != "tiny" else 2, checkpoint_every=10**9, sample_every=0,
                              tensorboard=False),
    )


def last_record(log_dir: pathlib.Path) -> dict:
    lines = [json.loads(line) for line in open(log_dir / "metrics.jsonl") if '"loss"' in line]
    return lines[-1]


def train_for(plan: Plan, shards: pathlib.Path, out: pathlib.Path, budget_s: float, device: torch.device) -> dict:
    """Calibrate, then resume to fill the budget. Returns what happened."""
    started = time.perf_counter()
    batch = plan.batch_size or probe_batch_size(plan, device)
    context = LocalContext(out / "logs", out / "checkpoints", show_progress=False)
    compile_note = "on" if plan.compile else "off"
    try:
        train("tokenizer", train_config(plan, shards, batch, plan.calibration_steps, plan.compile), context)
    except Exception as error:  # a compiler failure should cost the compile, not the benchmark
        if not plan.compile:
            raise
        compile_note = f"failed, ran eager: {type(error).__name__}: {str(error)[:200]}"
        for path in (out / "checkpoints").glob("*"):
            shutil.rmtree(path)
        (out / "logs" / "metrics.jsonl").unlink(missing_ok=True)
        plan = dataclasses.replace(plan, compile=False)
        train("tokenizer", train_config(plan, shards, batch, plan.calibration_steps, False), context)
    calibration_s = time.perf_counter() - started
    step_s = last_record(out / "logs")["step_time_s"]  # the last interval: compiled, warm
    # the resumed run compiles again (from the warm cache) and reloads: allow 20% of calibration for it
    remaining = budget_s - calibration_s - 0.2 * calibration_s
    max_steps = plan.calibration_steps + max(0, math.floor(remaining / step_s))
    train("tokenizer", train_config(plan, shards, batch, max_steps, plan.compile), context)
    return {"batch_size": batch, "steps": max_steps, "calibration_s": round(calibration_s, 1),
            "train_s": round(time.perf_counter() - started, 1), "compile": compile_note,
            "step_time_s": step_s, "last_metrics": last_record(out / "logs")}


@torch.no_grad()
def evaluate(model, group: str, shards: list[str], plan: Plan, device: torch.device, out: pathlib.Path) -> dict:
    """PSNR over every 16-frame window of the group's clips, codebook use, and a PNG of the first windows."""
    T = plan.window_frames
    psnrs, counts, shown = [], torch.zeros(model.config.quantizer.num_codes, dtype=torch.long), []
    clips = 0
    for shard in shards:
        for sample in iter_samples(shard):
            if plan.eval_clips is not None and clips >= plan.eval_clips:
                break
            frames, _ = clip_spec.decode_sample(sample)
            clips += 1
            video = video_from_frames(torch.from_numpy(frames)[None], device)[0]  # (n, C, H, W)
            windows = torch.stack([video[s : s + T] for s in range(0, len(video) - T + 1, T)])  # (N, T, C, H, W)
            for batch in windows.split(8):
                with autocast(device, ParallelConfig(mixed_precision=plan.mixed_precision)):
                    output = model(batch)
                recon = output.recon.float().clamp(0, 1)
                mse = (recon - batch).pow(2).flatten(1).mean(1)  # (N,)
                psnrs += (-10 * torch.log10(mse.clamp_min(1e-10))).tolist()
                counts += torch.bincount(output.tokens.flatten().cpu(), minlength=len(counts))
                if len(shown) < 4:
                    shown += [batch[0], recon[0]]
    probabilities = counts.float() / counts.sum()
    perplexity = math.exp(-(probabilities * probabilities.clamp_min(1e-12).log()).sum().item())
    save_sample_grid(out / f"recon_{group.replace('/', '_')}.png", shown)
    return {"clips": clips, "windows": len(psnrs), "psnr_db": round(float(np.mean(psnrs)), 2),
            "codes_used": int((counts > 0).sum()), "codebook_size": len(counts), "perplexity": round(perplexity, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", type=pathlib.Path, help="folder with train/ and heldout/<group>/ shards")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="report, logs, checkpoints and PNGs")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget, calibration and compile included")
    parser.add_argument("--batch-size", type=int, help="windows per step (default: the largest that fits)")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (5e-4 diverged on an H200)")
    parser.add_argument("--no-compile", action="store_true", help="train eagerly")
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2-frame windows, seconds on a CPU: checks the script")
    options = parser.parse_args(argv)
    plan = plan_for(options)
    budget_s = 10.0 if options.smoke else options.minutes * 60
    groups = {"train": options.shards / "train"}
    groups |= {f"heldout/{path.name}": path for path in sorted((options.shards / "heldout").iterdir()) if path.is_dir()}
    shards = {group: list_shards([str(path)]) for group, path in groups.items()}
    options.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

    training = train_for(plan, options.shards, options.out, budget_s, device)
    model = load_trained(latest_checkpoint(options.out / "checkpoints"), "tokenizer").to(device)
    scores = {group: evaluate(model, group, group_shards[:4] if group == "train" else group_shards, plan, device, options.out)
              for group, group_shards in shards.items()}
    report = {
        "command": " ".join([sys.executable, *sys.argv]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "model": plan.model, "window_frames": plan.window_frames,
        "training": training, "eval": scores,
    }
    (options.out / "report.json").write_text(json.dumps(report, indent=1))
    metrics = training["last_metrics"]
    print(f"{report['device']}, torch {report['torch']}: {plan.model} tokenizer, batch {training['batch_size']} x "
          f"{plan.window_frames} frames, {training['steps']} steps in {training['train_s']} s (compile {training['compile']})")
    print(f"  last interval: {metrics['step_time_s'] * 1000:.0f} ms/step, {metrics['tokens_per_s']:.0f} tokens/s, "
          f"MFU {metrics.get('mfu', float('nan')):.1%}, data wait {metrics['data_wait_fraction']:.1%}, "
          f"train PSNR {metrics['psnr']:.2f} dB")
    print(f"  {'group':16s} {'clips':>5s} {'windows':>7s} {'PSNR dB':>8s} {'codes used':>11s} {'perplexity':>10s}")
    for group, score in scores.items():
        print(f"  {group:16s} {score['clips']:5d} {score['windows']:7d} {score['psnr_db']:8.2f} "
              f"{score['codes_used']:5d}/{score['codebook_size']:<5d} {score['perplexity']:10.1f}")
    print(f"report: {options.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
