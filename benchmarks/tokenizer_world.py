"""Tokenizer recipes on the offline world at a CPU budget, scored as `genie eval` scores them.

    python benchmarks/tokenizer_world.py [--cpu-seconds 800] [--variants a,b,...] [--seeds 0] [--jobs 2]
    python benchmarks/tokenizer_world.py --steps 1000 ...           # a step budget instead (the job's max_steps)
    python benchmarks/tokenizer_world.py --list                      # the variants and what each changes
    python benchmarks/tokenizer_world.py --checkpoint RUN_OR_CHECKPOINT  # score a trained tokenizer

The data is `genie run`'s split of the offline world (--split, default out/run/split.json,
which `genie run` writes: {"train": [shards], "held_out": [shards]}). A variant is trained from scratch in one process
with one thread for --cpu-seconds of that process's CPU time (time.process_time; frame
sampling included), with the project's model, AdamW, warmup + cosine (fitted to the budget
from the step cost of the first steps) and grad clip. A step draws `frames` single frames
from random training clips: one process standing in for `genie run`'s 2 DDP workers of
frames/2 frames each (the same gradient and step count; the real job spends the same CPU-s
on 2 cores, plus a little for the all-reduce).

Score: what `genie eval` reports as tokenizer PSNR, by the same code: jobs/eval.py's
read_windows (32 held-out 5-frame windows cut at frames 0, 5, 10, ... of each clip, taken
from the held-out videos in turn), evals/rollouts.reconstruct (decode(encode(window))) and
evals/images.psnr per frame, averaged per window and then over windows; plus the codes the
held-out windows use.
"""

import argparse
import dataclasses
import json
import pathlib
import platform
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.images import psnr  # noqa: E402
from evals.rollouts import reconstruct  # noqa: E402
from jobs.eval import EvalConfig, read_windows  # noqa: E402
from models.config import load_model_configs  # noqa: E402
from models.tokenizer import VideoTokenizer  # noqa: E402
from schemas import shard as clip_spec  # noqa: E402
from schemas.shard_io import iter_samples, list_shards  # noqa: E402
from train.components import video_from_frames  # noqa: E402
from benchmarks.tokenizer_ablation import run_in_processes, train_for  # noqa: E402
from train.optimizer import OptimConfig  # noqa: E402

EVAL_WINDOW_FRAMES = 5  # run_local.toml [eval]
EVAL_MAX_WINDOWS = 32


@dataclasses.dataclass(frozen=True)
class Variant:
    """A model config (name or TOML path) with tokenizer settings changed, and a training recipe."""

    model: str = "tiny"
    changes: tuple[tuple[str, object], ...] = ()  # ("quantizer.code_dim", 8), ("encoder.model_dim", 96), ...
    frames: int = 8  # single frames per step, both DDP workers together
    lr: float = 1e-3
    warmup: int = 20

    def tokenizer_config(self):
        config = load_model_configs(self.model).tokenizer
        for key, value in self.changes:
            config = _replace(config, key.split("."), value)
        return config


def _replace(config, path: list[str], value):
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    return dataclasses.replace(config, **{path[0]: _replace(getattr(config, path[0]), path[1:], value)})


def _both(**changes) -> tuple[tuple[str, object], ...]:
    """The same transformer change in the encoder and the decoder."""
    return tuple((f"{side}.{key}", value) for side in ("encoder", "decoder") for key, value in changes.items())


VARIANTS: dict[str, Variant] = {
    "tiny 2x1x5 lr3e-3": Variant(frames=10, lr=3e-3, warmup=50),  # the measured run's recipe, as single frames
    "tiny 8 lr1e-3": Variant(),
    "tiny 4 lr1e-3": Variant(frames=4),
    "tiny 8 cd8": Variant(changes=(("quantizer.code_dim", 8),)),
    "tiny 8 cd16": Variant(changes=(("quantizer.code_dim", 16),)),
    "tiny 8 unit": Variant(changes=(("quantizer.l2_normalize", True),)),
    "tiny 8 cd8 unit": Variant(changes=(("quantizer.code_dim", 8), ("quantizer.l2_normalize", True))),
    "tiny 8 pat200": Variant(changes=(("quantizer.dead_code_patience", 200),)),
    "tiny 8 commit1": Variant(changes=(("quantizer.commitment_weight", 1.0),)),
    "tiny 8 lr2e-3": Variant(lr=2e-3),
    "d96 8": Variant(changes=_both(model_dim=96)),
    "d128h2 8": Variant(changes=_both(model_dim=128, num_heads=2)),
    "L3 8": Variant(changes=_both(num_layers=3)),
    "dec L4 8": Variant(changes=(("decoder.num_layers", 4),)),
    "mlp8 8": Variant(changes=_both(mlp_ratio=8.0)),
    "tiny 8 err": Variant(changes=(("quantizer.reset_draw", "error"),)),
    "tiny 8 cd8 err": Variant(changes=(("quantizer.code_dim", 8), ("quantizer.reset_draw", "error"))),
    "tiny 8 cd8 unit err": Variant(changes=(("quantizer.code_dim", 8), ("quantizer.l2_normalize", True),
                                            ("quantizer.reset_draw", "error"))),
    "tiny 4 err": Variant(frames=4, changes=(("quantizer.reset_draw", "error"),)),
    "tiny 4 lr2e-3 err": Variant(frames=4, lr=2e-3, changes=(("quantizer.reset_draw", "error"),)),
    "tiny 8 ema": Variant(changes=(("quantizer.ema_decay", 0.99),)),
    "tiny 8 ema err": Variant(changes=(("quantizer.ema_decay", 0.99), ("quantizer.reset_draw", "error"))),
    "tiny 8 ema.9 err": Variant(changes=(("quantizer.ema_decay", 0.9), ("quantizer.reset_draw", "error"))),
    "ema err lr2e-3": Variant(lr=2e-3, changes=(("quantizer.ema_decay", 0.99), ("quantizer.reset_draw", "error"))),
    "ema err lr3e-3": Variant(lr=3e-3, changes=(("quantizer.ema_decay", 0.99), ("quantizer.reset_draw", "error"))),
    "ema err 4 lr2e-3": Variant(frames=4, lr=2e-3,
                                changes=(("quantizer.ema_decay", 0.99), ("quantizer.reset_draw", "error"))),
    # the EMA codebook with error reset, plus a warm-up of 100 steps unquantised ended by a
    # k-means codebook (models/configs/local.toml without ema_all_ranks, a no-op in one process)
    "local bypass100 km": Variant(changes=(("quantizer.ema_decay", 0.99), ("quantizer.reset_draw", "error"),
                                           ("quantizer.bypass_steps", 100), ("quantizer.kmeans_init_iters", 10))),
}


def clip_frames(shards: list[str]) -> list[np.ndarray]:
    """Every clip of the shards as (n, 90, 160, 3) uint8 frames."""
    clips = []
    for shard in list_shards(shards):
        for sample in iter_samples(shard):
            clips.append(clip_spec.decode_sample(sample)[0])
    return clips


def held_out_windows(shards: list[str]) -> np.ndarray:
    """(N, 5, 90, 160, 3) uint8: the windows `genie eval` scores (jobs/eval.py read_windows)."""
    config = EvalConfig(tokenizer_checkpoint="-", lam_checkpoint="-", dynamics_checkpoint="-", clips=tuple(shards),
                        output_dir="-", window_frames=EVAL_WINDOW_FRAMES, max_windows=EVAL_MAX_WINDOWS)
    return read_windows(config).frames


@torch.no_grad()
def score(model: VideoTokenizer, windows: np.ndarray, batch_size: int = 8) -> dict:
    """genie eval's tokenizer PSNR (mean over windows of the mean over frames) and the codes used."""
    model.eval()
    table, used = [], torch.zeros(model.config.quantizer.num_codes, dtype=torch.bool)
    for first in range(0, len(windows), batch_size):
        video = video_from_frames(torch.from_numpy(windows[first:first + batch_size]), torch.device("cpu"))
        table.append(psnr(reconstruct(model, video), video))
        used[model.encode(video).flatten()] = True
    model.train()
    return {"psnr": float(torch.cat(table).mean(1).mean()), "codes_used": int(used.sum())}


def sample_frames(clips: list[np.ndarray], count: int, generator: np.random.Generator) -> torch.Tensor:
    """(count, 1, C, H, W): single frames of random training clips."""
    frames = []
    for _ in range(count):
        clip = clips[generator.integers(len(clips))]
        frames.append(clip[generator.integers(len(clip))][None])
    return video_from_frames(torch.from_numpy(np.stack(frames)), torch.device("cpu"))


def run(name: str, variant: Variant, seed: int, cpu_seconds: float, split: dict, steps: int | None = None) -> dict:
    """Train one variant for cpu_seconds of this process's CPU time (or `steps` steps), then
    score it on the held-out windows."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    clips = clip_frames(split["train"])
    windows = held_out_windows(split["held_out"])
    generator = np.random.default_rng(seed)
    model = VideoTokenizer(variant.tokenizer_config())
    optim = OptimConfig(lr=variant.lr, warmup_steps=variant.warmup, max_steps=10**6)
    step, train_cpu, metrics = train_for(model, optim, lambda: sample_frames(clips, variant.frames, generator),
                                         cpu_seconds, steps)
    train_psnr, codes = [m["psnr"] for m in metrics], [m["codes_used"] for m in metrics]
    heldout = score(model, windows)
    return {"name": name, "seed": seed, "variant": _jsonable(variant), "cpu_budget_s": cpu_seconds,
            "step_budget": steps, "steps": step,
            "frames_seen": step * variant.frames, "train_cpu_s": round(train_cpu, 1),
            "cpu_s_per_step": round(train_cpu / max(step, 1), 3),
            "train_psnr_last50": round(float(np.mean(train_psnr[-50:])), 2),
            "batch_codes_last50": round(float(np.mean(codes[-50:])), 1),
            "heldout_psnr": round(heldout["psnr"], 2), "heldout_codes_used": heldout["codes_used"]}


def _jsonable(variant: Variant) -> dict:
    return dataclasses.asdict(variant) | {"changes": [list(change) for change in variant.changes]}


def score_checkpoint(path: str, split: dict) -> dict:
    from train.checkpoint import latest_checkpoint
    from train.components import load_trained

    torch.set_num_threads(1)
    model = load_trained(latest_checkpoint(path), "tokenizer")
    return score(model, held_out_windows(split["held_out"]))


def print_table(results: list[dict]) -> None:
    print(f"{'variant':22s} {'seeds':>5s} {'steps':>6s} {'CPU-s':>6s} {'s/step':>6s} {'train dB':>8s} "
          f"{'held-out dB':>11s} {'codes':>5s}")
    by_name: dict[str, list[dict]] = {}
    for result in results:
        by_name.setdefault(result["name"], []).append(result)
    for name, rows in by_name.items():
        mean = {key: np.mean([r[key] for r in rows]) for key in
                ("steps", "train_cpu_s", "cpu_s_per_step", "train_psnr_last50", "heldout_psnr", "heldout_codes_used")}
        print(f"{name:22s} {len(rows):5d} {mean['steps']:6.0f} {mean['train_cpu_s']:6.0f} {mean['cpu_s_per_step']:6.3f} "
              f"{mean['train_psnr_last50']:8.2f} {mean['heldout_psnr']:11.2f} {mean['heldout_codes_used']:5.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-seconds", type=float, default=800.0, help="training CPU time per run")
    parser.add_argument("--steps", type=int, help="train for this many steps instead of --cpu-seconds")
    parser.add_argument("--variants", help="comma-separated names (default: all; see --list)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each variant runs once per seed")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one thread each)")
    parser.add_argument("--split", type=pathlib.Path, default=pathlib.Path("out/run/split.json"),
                        help="genie run's split.json (its output folder's; the shards it names must exist)")
    parser.add_argument("--results", type=pathlib.Path, default=pathlib.Path("out/tokenizer_world.jsonl"),
                        help="one JSON line per run; runs already there are not repeated")
    parser.add_argument("--checkpoint", help="score this tokenizer run or checkpoint instead of training")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    options = parser.parse_args(argv)
    if options.list:
        for name, variant in VARIANTS.items():
            print(f"{name:22s} {_jsonable(variant)}")
        return 0
    split = json.loads(options.split.read_text())
    if options.checkpoint:
        print(json.dumps(score_checkpoint(options.checkpoint, split)))
        return 0
    names = options.variants.split(",") if options.variants else list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; see --list")
    seeds = [int(seed) for seed in options.seeds.split(",")]
    options.results.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in open(options.results)] if options.results.exists() else []
    done = [r for r in done if r["cpu_budget_s"] == options.cpu_seconds and r.get("step_budget") == options.steps
            and r["name"] in VARIANTS
            and _jsonable(VARIANTS[r["name"]]) == r["variant"]]
    have = {(r["name"], r["seed"]) for r in done}
    todo = [(name, seed) for seed in seeds for name in names if (name, seed) not in have]
    done += run_in_processes(options.jobs, options.results,
                             [(run, name, VARIANTS[name], seed, options.cpu_seconds, split, options.steps)
                              for name, seed in todo])
    chosen = [r for r in done if r["name"] in names and r["seed"] in seeds]
    budget = f"{options.steps} steps" if options.steps else f"{options.cpu_seconds:.0f} training CPU-s"
    print(f"\n{platform.machine()}, torch {torch.__version__}, 1 thread per run, {budget} per run; "
          f"held out: {len(split['held_out'])} videos, {EVAL_MAX_WINDOWS} windows of {EVAL_WINDOW_FRAMES}")
    print_table(sorted(chosen, key=lambda r: names.index(r["name"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
