"""Tokenizer sample efficiency on CPU: the ST-ViViT tokenizer against a spatial-only variant of itself.

    python benchmarks/tokenizer_ablation.py [--cpu-seconds 150] [--variants a,b,...] [--seeds 0] [--jobs 2]
    python benchmarks/tokenizer_ablation.py --list        # the variants and what each changes

Every variant is the tiny tokenizer (models/configs/tiny.toml) trained from scratch for the
same CPU-seconds of its own process (torch.set_num_threads(1); data sampling included, so a
loaded, shared machine changes wall time but hardly the figures), on SMB frames decoded
the way ingest decodes them (ffmpeg, 10 FPS, fitted into 160x90; make_gpu_shards.decode),
12 levels to train on and 4 held out by level (make_gpu_shards.HELDOUT_SMB). The optimiser
and schedule are the project's (train/optimizer.py: AdamW, warmup, cosine decay, clip 1.0);
the cosine is fitted to the CPU budget from the step cost of the first steps.

A variant is the tokenizer with some settings changed: windows per batch x frames per
window, the learning rate and warmup, the codebook (unit vectors or Euclidean, code
dimension, dead-code patience or no reset), the commitment weight, the temporal layers
(`spatial`: no temporal attention, every training frame an independent sample), and
max_frames (the window encode/decode run at). Scoring is the deployed path,
decode(encode(video)), on 16-frame clips: PSNR over every frame of the held-out levels and
of a fixed sample of training frames, and the codes the held-out frames use.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import math
import multiprocessing
import pathlib
import platform
import sys
import time
import tomllib

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.make_gpu_shards import HELDOUT_SMB, SMB_DIR, decode  # noqa: E402
from models.config import load_model_configs  # noqa: E402
from models.tokenizer import VideoTokenizer  # noqa: E402
from train.optimizer import OptimConfig, build_optimizer, build_schedule  # noqa: E402

EVAL_FRAMES = 16  # frames per scored clip
CALIBRATION_STEPS = 8  # step cost measured over steps 3..8, inside warmup


@dataclasses.dataclass(frozen=True)
class Variant:
    """One training recipe. Defaults: the shipped tiny recipe (jobs/configs/train_tokenizer_tiny.toml)."""

    windows: int = 2  # windows per batch
    frames: int = 4  # frames per window
    spatial: bool = False  # no temporal attention; frames are independent samples (windows*frames of them)
    lr: float = 1e-3
    warmup: int = 5
    l2_normalize: bool = False
    code_dim: int = 32
    patience: int = 20  # dead-code patience in steps
    reset: bool = True  # dead-code reset
    commitment: float = 0.25
    max_frames: int = 16  # the tokenizer's window at encode/decode time
    spatial_encoder: bool = False  # no temporal attention in the encoder only (tokens of a frame see that frame)

    def tokenizer_config(self):
        base = load_model_configs("tiny").tokenizer
        quantizer = dataclasses.replace(base.quantizer, l2_normalize=self.l2_normalize, code_dim=self.code_dim,
                                        dead_code_patience=self.patience, reset_dead_codes=self.reset,
                                        commitment_weight=self.commitment)
        encoder = dataclasses.replace(base.encoder, temporal=not (self.spatial or self.spatial_encoder))
        decoder = dataclasses.replace(base.decoder, temporal=not self.spatial)
        return dataclasses.replace(base, encoder=encoder, decoder=decoder, quantizer=quantizer,
                                   max_frames=1 if self.spatial else self.max_frames)


def project_variant() -> Variant:
    """The recipe as shipped now: models/configs/tiny.toml and jobs/configs/train_tokenizer_tiny.toml."""
    train = tomllib.loads((ROOT / "jobs" / "configs" / "train_tokenizer_tiny.toml").read_text())["train"]
    tokenizer = load_model_configs("tiny").tokenizer
    quantizer = tokenizer.quantizer
    spatial = not (tokenizer.encoder.temporal or tokenizer.decoder.temporal)
    return Variant(windows=train["data"]["batch_size"], frames=train["data"]["window_frames"], spatial=spatial,
                   lr=train["optim"]["lr"], warmup=train["optim"]["warmup_steps"], l2_normalize=quantizer.l2_normalize,
                   code_dim=quantizer.code_dim, patience=quantizer.dead_code_patience, reset=quantizer.reset_dead_codes,
                   commitment=quantizer.commitment_weight, max_frames=tokenizer.max_frames,
                   spatial_encoder=not tokenizer.encoder.temporal)


SHIPPED = Variant()  # the recipe before issue 12
BEST = dict(windows=1, frames=4, lr=3e-3, max_frames=4)
VARIANTS: dict[str, Variant] = {
    "project": project_variant(),
    # the two peers at the recipe before issue 12
    "st shipped 2x4": SHIPPED,
    "spatial 8 frames": Variant(spatial=True),
    # frames per step and per window
    "st 1x4": Variant(windows=1),
    "st 1x4 max4": Variant(windows=1, max_frames=4),
    "st 2x4 max4": Variant(max_frames=4),
    "st 1x2 max2": Variant(windows=1, frames=2, max_frames=2),
    "st 1x8 max8": Variant(windows=1, frames=8, max_frames=8),
    "st 4x1": Variant(windows=4, frames=1, max_frames=1),
    "spatial 4 frames": Variant(spatial=True, windows=1),
    "spatial 2 frames": Variant(spatial=True, windows=1, frames=2),
    # learning rate and warmup
    "st best": Variant(**BEST),
    "st best lr1e-3": Variant(**BEST | dict(lr=1e-3)),
    "st best lr6e-3": Variant(**BEST | dict(lr=6e-3)),
    "st best warmup50": Variant(**BEST | dict(warmup=50)),
    "spatial 4 lr3e-3": Variant(spatial=True, windows=1, lr=3e-3),
    # where the temporal layers are
    "st 2x2 max2 lr3e-3": Variant(**BEST | dict(windows=2, frames=2, max_frames=2)),
    "spatial enc st dec": Variant(**BEST | dict(spatial_encoder=True)),
    # codebook
    "st best unit codes": Variant(**BEST | dict(l2_normalize=True)),
    "st best code_dim 8": Variant(**BEST | dict(code_dim=8)),
    "st best code_dim 16": Variant(**BEST | dict(code_dim=16)),
    "st best patience 200": Variant(**BEST | dict(patience=200)),
    "st best no reset": Variant(**BEST | dict(reset=False)),
    # loss weights
    "st best commit 1.0": Variant(**BEST | dict(commitment=1.0)),
    "st best commit 0.05": Variant(**BEST | dict(commitment=0.05)),
}


def smb_frames(cache: pathlib.Path) -> dict[str, np.ndarray]:
    """level -> (n, 90, 160, 3) uint8 frames, decoded once into `cache` (an .npz)."""
    if not cache.exists():
        levels = {path.stem: decode(path) for path in sorted(SMB_DIR.glob("smb_*.mp4"))}
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **levels)
    with np.load(cache) as archive:
        return {level: archive[level] for level in archive.files}


def eval_clips(levels: dict[str, np.ndarray], names: list[str], per_level: int) -> torch.Tensor:
    """(N, 16, 3, 90, 160) float clips, `per_level` evenly spaced in each named level."""
    clips = []
    for name in names:
        frames = levels[name]
        for start in np.linspace(0, len(frames) - EVAL_FRAMES, per_level).astype(int):
            clips.append(frames[start : start + EVAL_FRAMES])
    return torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).float() / 255


@torch.no_grad()
def score(model: VideoTokenizer, clips: torch.Tensor) -> dict:
    """PSNR (mean over frames) of decode(encode(clip)) and the codes used, on clips (N, T, C, H, W)."""
    model.eval()
    frames_psnr, used = [], torch.zeros(model.config.quantizer.num_codes, dtype=torch.bool)
    for clip in clips:
        video = clip[:, None] if model.config.max_frames == 1 else clip[None]  # spatial: frames as a batch
        tokens = model.encode(video)
        recon = model.decode(tokens)
        mse = (recon - video).pow(2).flatten(2).mean(2).flatten()  # one per frame
        frames_psnr += (-10 * torch.log10(mse.clamp_min(1e-10))).tolist()
        used[tokens.flatten()] = True
    model.train()
    return {"psnr": float(np.mean(frames_psnr)), "codes_used": int(used.sum())}


def sample_batch(train_frames: list[np.ndarray], variant: Variant, generator: np.random.Generator) -> torch.Tensor:
    """(B, T, C, H, W): windows of consecutive frames from random training levels, or single frames."""
    B, T = (variant.windows * variant.frames, 1) if variant.spatial else (variant.windows, variant.frames)
    windows = []
    for _ in range(B):
        frames = train_frames[generator.integers(len(train_frames))]
        start = generator.integers(len(frames) - T + 1)
        windows.append(frames[start : start + T])
    return torch.from_numpy(np.stack(windows)).permute(0, 1, 4, 2, 3).float() / 255


def run_in_processes(jobs: int, results: pathlib.Path, calls: list[tuple]) -> list[dict]:
    """Each call (function, *args) in a spawned process, `jobs` at a time; each result is printed
    and appended to `results` (one JSON line) as it finishes. -> the results."""
    finished = []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(*call) for call in calls]
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            print(json.dumps(result), flush=True)
            with open(results, "a") as file:
                file.write(json.dumps(result) + "\n")
            finished.append(result)
    return finished


def train_for(model: torch.nn.Module, optim: OptimConfig, next_batch, cpu_seconds: float,
              steps: int | None = None) -> tuple[int, float, list[dict]]:
    """Train on next_batch() for cpu_seconds of this process's CPU time, the cosine schedule
    fitted to the steps the budget allows (from the step cost of the first steps), grad clip;
    with `steps`, for exactly that many steps (cosine fitted to them) whatever they cost;
    -> (steps, training CPU-s, each step's metrics as floats)."""
    if steps:
        optim, cpu_seconds = dataclasses.replace(optim, max_steps=steps), math.inf
    optimizer = build_optimizer(model, optim)
    schedule = build_schedule(optimizer, optim)
    started = time.process_time()
    step, max_steps, metrics = 0, steps or 10**6, []
    while step < max_steps and time.process_time() - started < cpu_seconds:
        output = model(next_batch())
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        step += 1
        metrics.append({key: float(value) for key, value in output.metrics.items()})
        if step == 2:
            calibration_start = time.process_time()
        if step == CALIBRATION_STEPS and not steps:  # fit the cosine to the steps the budget allows
            step_cost = (time.process_time() - calibration_start) / (CALIBRATION_STEPS - 2)
            max_steps = max(step + 1, math.floor((cpu_seconds - (time.process_time() - started)) / step_cost) + step)
            optim = dataclasses.replace(optim, max_steps=max_steps)
            schedule = build_schedule(optimizer, optim)
            for _ in range(step):
                schedule.step()
    return step, time.process_time() - started, metrics


def run(name: str, variant: Variant, seed: int, cpu_seconds: float, cache: pathlib.Path) -> dict:
    """Train one variant for cpu_seconds of this process's CPU time, then score it."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    levels = smb_frames(cache)
    train_levels = [level for level in levels if level not in HELDOUT_SMB]
    train_frames = [levels[level] for level in train_levels]
    generator = np.random.default_rng(seed)
    model = VideoTokenizer(variant.tokenizer_config())
    optim = OptimConfig(lr=variant.lr, warmup_steps=variant.warmup, max_steps=10**6)
    step, train_cpu, metrics = train_for(model, optim, lambda: sample_batch(train_frames, variant, generator), cpu_seconds)
    psnr = [m["psnr"] for m in metrics]
    heldout = score(model, eval_clips(levels, list(HELDOUT_SMB), per_level=4))
    seen = score(model, eval_clips(levels, train_levels[::3], per_level=2))
    frames_per_step = variant.windows * variant.frames
    return {"name": name, "seed": seed, "variant": dataclasses.asdict(variant), "cpu_budget_s": cpu_seconds, "steps": step,
            "frames_seen": step * frames_per_step, "train_cpu_s": round(train_cpu, 1),
            "train_psnr_last50": round(float(np.mean(psnr[-50:])), 2), "seen_psnr": round(seen["psnr"], 2),
            "heldout_psnr": round(heldout["psnr"], 2), "heldout_codes_used": heldout["codes_used"]}


def print_table(results: list[dict]) -> None:
    by_name: dict[str, list[dict]] = {}
    for result in results:
        by_name.setdefault(result["name"], []).append(result)
    peer = by_name.get("spatial 8 frames")
    peer_psnr = np.mean([r["heldout_psnr"] for r in peer]) if peer else None
    print(f"{'variant':24s} {'seeds':>5s} {'steps':>6s} {'frames':>7s} {'CPU-s':>6s} {'train dB':>8s} "
          f"{'held-out dB':>11s} {'vs spatial 8':>12s} {'codes':>5s}")
    for name, rows in by_name.items():
        heldout = np.mean([r["heldout_psnr"] for r in rows])
        delta = f"{heldout - peer_psnr:+12.2f}" if peer_psnr is not None else f"{'':12s}"
        print(f"{name:24s} {len(rows):5d} {np.mean([r['steps'] for r in rows]):6.0f} "
              f"{np.mean([r['frames_seen'] for r in rows]):7.0f} {np.mean([r['train_cpu_s'] for r in rows]):6.1f} "
              f"{np.mean([r['seen_psnr'] for r in rows]):8.2f} {heldout:11.2f} {delta} "
              f"{np.mean([r['heldout_codes_used'] for r in rows]):5.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-seconds", type=float, default=150.0, help="training CPU time per run")
    parser.add_argument("--variants", help="comma-separated names (default: all; see --list)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each variant runs once per seed")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    parser.add_argument("--results", type=pathlib.Path, default=pathlib.Path("out/tokenizer_ablation.jsonl"),
                        help="one JSON line per run; runs already there are not repeated")
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path("out/smb_frames.npz"))
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    options = parser.parse_args(argv)
    if options.list:
        for name, variant in VARIANTS.items():
            changed = {k: v for k, v in dataclasses.asdict(variant).items() if getattr(SHIPPED, k) != v}
            print(f"{name:24s} {changed}")
        return 0
    names = options.variants.split(",") if options.variants else list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; see --list")
    seeds = [int(seed) for seed in options.seeds.split(",")]
    smb_frames(options.cache)  # decode once, before the workers read it
    options.results.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in open(options.results)] if options.results.exists() else []
    done = [r for r in done if r["cpu_budget_s"] == options.cpu_seconds and VARIANTS.get(r["name"]) == Variant(**r["variant"])]
    have = {(r["name"], r["seed"]) for r in done}
    todo = [(name, seed) for seed in seeds for name in names if (name, seed) not in have]
    done += run_in_processes(options.jobs, options.results, [(run, name, VARIANTS[name], seed, options.cpu_seconds,
                                                               options.cache) for name, seed in todo])
    chosen = [r for r in done if r["name"] in names and r["seed"] in seeds]
    print(f"\n{platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 1 thread per run, "
          f"{options.cpu_seconds:.0f} training CPU-s per run; SMB held out: {', '.join(HELDOUT_SMB)}")
    print_table(sorted(chosen, key=lambda r: names.index(r["name"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
