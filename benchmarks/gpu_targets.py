"""Issue 12's GPU targets in one call: dynamics MFU with a kernel-class profile, generation frames/s, tokenizer PSNR.

    python benchmarks/gpu_targets.py SHARDS --out OUT                # one H100/H200, under 10 minutes
    python benchmarks/gpu_targets.py SHARDS --out OUT --tiny --cpu   # tiny shapes on CPU, seconds: checks the script

SHARDS is a folder from benchmarks/make_gpu_shards.py (train/*.tar, heldout/smb/*.tar).
1. Dynamics training at ~400M (models_gpu.training_config: 24 layers, d1024), compiled, bf16,
   at the largest of --dynamics-batches that fits: MFU, then a torch.profiler trace of a
   few steps summed by kernel class (matmul, attention, norm/elementwise, transposes and
   copies, embedding/loss, optimizer, other). Target MFU >= 40%.
2. Generation with the small dynamics model at batch 1, 25 MaskGIT steps a frame, KV cache
   and CUDA graph (models_gpu.measure_generation). Target >= 20 frames/s.
3. The small tokenizer trained for --tokenizer-minutes (probe, compile and calibration
   included; tokenizer_gpu.train_for) with the recipe of jobs/configs/train_tokenizer_small.toml
   (window frames, batch, lr, warmup), then PSNR on training clips and held-out SMB levels
   (tokenizer_gpu.evaluate). Targets >= 31 dB train, >= 29 dB held-out SMB within 8 minutes.

Writes OUT/report.json (rewritten after each part, so a cut-off run keeps what it measured),
OUT/profile_summary.txt, OUT/recon_*.png and OUT/tokenizer_metrics.jsonl. Needs torch,
numpy, pyarrow and opencv (the shards' PNG frames); no Ray.
"""

import argparse
import dataclasses
import json
import pathlib
import platform
import shutil
import sys
import time
import tomllib

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import models_gpu, tokenizer_gpu  # noqa: E402
from schemas.shard_io import list_shards  # noqa: E402
from train.checkpoint import latest_checkpoint  # noqa: E402
from train.components import load_trained  # noqa: E402

TOKENIZER_TRAIN_CONFIG = ROOT / "jobs" / "configs" / "train_tokenizer_small.toml"
TARGETS = {"dynamics_mfu": 0.40, "generation_frames_per_s": 20.0, "tokenizer_train_psnr_db": 31.0,
           "tokenizer_heldout_smb_psnr_db": 29.0}
# first match wins, on CUDA kernel names (cuBLAS/CUTLASS, flash attention, Inductor's triton_*)
# or, on a CPU, on aten op names
KERNEL_CLASSES = (
    ("embedding/loss", ("embedding", "nll_loss", "cross_entropy", "log_softmax", "index_put", "scatter", "gather")),
    ("attention", ("flash", "fmha", "attention", "sdpa", "scaled_dot_product")),
    ("matmul", ("gemm", "cutlass", "nvjet", "xmma", "cublas", "aten::mm", "aten::addmm", "aten::bmm", "matmul")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("transposes/copies", ("clone", "transpose", "permute", "copy", "contiguous", "memcpy", "aten::cat")),
    ("norm/elementwise", ("triton", "norm", "elementwise", "reduce", "gelu", "mul", "add", "rsqrt", "where", "aten::")),
)


def kernel_class(name: str) -> str:
    lowered = name.lower()
    for label, patterns in KERNEL_CLASSES:
        if any(pattern in lowered for pattern in patterns):
            return label
    return "other"


def profile_summary(step, device: torch.device, steps: int) -> tuple[dict, str]:
    """Profile `steps` calls of step(): time per kernel class per step and the top kernels, as data and text."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    models_gpu.synchronize(device)
    start = time.perf_counter()
    with torch.profiler.profile(activities=activities) as profile:
        for _ in range(steps):
            step()
        models_gpu.synchronize(device)
    wall_ms = (time.perf_counter() - start) * 1e3 / steps
    events = profile.key_averages()
    device_times = [(event.key, getattr(event, "self_device_time_total", 0) / 1e3) for event in events]
    on_device = any(ms > 0 for _, ms in device_times)
    if not on_device:  # CPU: self time of aten ops (the other events are ranges around them)
        device_times = [(event.key, event.self_cpu_time_total / 1e3) for event in events if event.key.startswith("aten::")]
    kernels = sorted(((name, ms / steps) for name, ms in device_times if ms > 0), key=lambda item: -item[1])
    total = sum(ms for _, ms in kernels)
    classes: dict[str, float] = {}
    for name, ms in kernels:
        classes[kernel_class(name)] = classes.get(kernel_class(name), 0.0) + ms
    summary = {"timeline": "device kernels" if on_device else "cpu aten ops", "wall_ms_per_step": round(wall_ms, 2),
               "busy_ms_per_step": round(total, 2),
               "classes_ms_per_step": {label: round(ms, 3) for label, ms in sorted(classes.items(), key=lambda i: -i[1])},
               "top_kernels": [{"name": name[:160], "class": kernel_class(name), "ms_per_step": round(ms, 3)}
                               for name, ms in kernels[:25]]}
    lines = [f"profile of {steps} training steps ({summary['timeline']}): {wall_ms:.1f} ms wall per step, "
             f"{total:.1f} ms busy ({100 * total / max(wall_ms, 1e-9):.0f}%)", "", f"{'class':20s} {'ms/step':>9s} {'share':>6s}"]
    lines += [f"{label:20s} {ms:9.2f} {100 * ms / max(total, 1e-9):5.1f}%" for label, ms in summary["classes_ms_per_step"].items()]
    lines += ["", f"{'ms/step':>9s}  {'class':18s} kernel"]
    lines += [f"{row['ms_per_step']:9.3f}  {row['class']:18s} {row['name'][:110]}" for row in summary["top_kernels"]]
    return summary, "\n".join(lines)


def measure_dynamics(options, device: torch.device, out: pathlib.Path) -> dict:
    config = models_gpu.training_config(options.tiny)
    batches = [2] if options.tiny else [int(b) for b in options.dynamics_batches.split(",")]
    scope = None if options.compile_scope == "none" else options.compile_scope
    try:
        result = models_gpu.largest_fitting_batch(config, batches, device, compile_scope=scope,
                                                  seconds=options.dynamics_seconds, smoke=options.tiny)
    except Exception as error:  # a whole-model compile failure costs the scope, not the measurement
        if scope != "model":
            raise
        print(f"  compile scope {scope} failed ({type(error).__name__}: {str(error)[:200]}); per block", flush=True)
        scope = "blocks"
        result = models_gpu.largest_fitting_batch(config, batches, device, compile_scope=scope,
                                                  seconds=options.dynamics_seconds, smoke=options.tiny)
    summary, text = profile_summary(result["step"], device, steps=2 if options.tiny else 3)
    (out / "profile_summary.txt").write_text(text + "\n")
    print(text, flush=True)
    return {"parameters": result["parameters"], "batch": result["batch"], "compile_scope": scope or "none (eager)",
            "tokens_per_s": round(result["tokens/s"]), "step_s": round(result["step_s"], 4),
            "mfu": None if result["mfu"] is None else round(result["mfu"], 4), "warmup_s": round(result["warmup_s"], 1),
            "profile": summary}


def measure_generation(options, device: torch.device) -> dict:
    steps, context_frames, new_frames = (2, 2, 1) if options.tiny else (25, 4, 8)
    mode = "graph" if device.type == "cuda" else "cache"
    result = models_gpu.measure_generation(models_gpu.generation_config(options.tiny), mode, device,
                                           options.generation_seconds, steps, context_frames, new_frames)
    return {"frames_per_s": round(result["frames/s"], 2), "mode": mode, "maskgit_steps": steps, "batch": 1,
            "context_frames": context_frames, "new_frames": new_frames}


def tokenizer_plan(tiny: bool) -> tokenizer_gpu.Plan:
    """The smoke plan, or the small model with the recipe of train_tokenizer_small.toml."""
    if tiny:
        return dataclasses.replace(tokenizer_gpu.plan_for(argparse.Namespace(smoke=True)), eval_clips=1)
    train = tomllib.loads(TOKENIZER_TRAIN_CONFIG.read_text())["train"]
    data, optim = train["data"], train["optim"]
    return tokenizer_gpu.Plan("small", data["window_frames"], data["batch_size"], calibration_steps=30,
                              warmup_steps=optim["warmup_steps"], lr=optim["lr"], compile=True, mixed_precision="bf16",
                              loader_processes=data.get("loader_processes", 2), eval_clips=None)


def measure_tokenizer(options, device: torch.device, out: pathlib.Path) -> dict:
    plan = tokenizer_plan(options.tiny)
    work = out / "tokenizer_run"
    training = tokenizer_gpu.train_for(plan, options.shards, work, options.tokenizer_minutes * 60, device)
    model = load_trained(latest_checkpoint(work / "checkpoints"), "tokenizer").to(device)
    groups = {"train": list_shards([str(options.shards / "train")])[:4],
              "heldout/smb": list_shards([str(options.shards / "heldout" / "smb")])}
    scores = {group: tokenizer_gpu.evaluate(model, group, shards, plan, device, out) for group, shards in groups.items()}
    shutil.copy(work / "logs" / "metrics.jsonl", out / "tokenizer_metrics.jsonl")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)  # large, and not a figure
    return {"model": plan.model, "window_frames": plan.window_frames, "lr": plan.lr, "warmup_steps": plan.warmup_steps,
            "training": training, "eval": scores}


def verdicts(report: dict) -> dict:
    """Each target: met, not met, or not measured."""
    figures = {"dynamics_mfu": report.get("dynamics", {}).get("mfu"),
               "generation_frames_per_s": report.get("generation", {}).get("frames_per_s"),
               "tokenizer_train_psnr_db": report.get("tokenizer", {}).get("eval", {}).get("train", {}).get("psnr_db"),
               "tokenizer_heldout_smb_psnr_db":
                   report.get("tokenizer", {}).get("eval", {}).get("heldout/smb", {}).get("psnr_db")}
    return {name: {"value": value, "target": TARGETS[name],
                   "met": None if value is None or report["tiny"] else value >= TARGETS[name]}
            for name, value in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", type=pathlib.Path, help="folder with train/ and heldout/smb/ shards")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="report.json, profile_summary.txt, PNGs")
    parser.add_argument("--tiny", action="store_true", help="tiny models and shapes (a smoke run)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    parser.add_argument("--parts", default="dynamics,generation,tokenizer", help="comma-separated parts to run")
    parser.add_argument("--dynamics-batches", default="8,4", help="16-frame windows per step, largest first")
    parser.add_argument("--compile-scope", choices=["blocks", "model", "none"],
                        help="what the dynamics run compiles (default: model; tiny: none, eager)")
    parser.add_argument("--dynamics-seconds", type=float, default=15.0, help="timed seconds after warm-up")
    parser.add_argument("--generation-seconds", type=float, default=10.0, help="timed seconds after warm-up")
    parser.add_argument("--tokenizer-minutes", type=float, help="training budget, compile included (8; tiny: 1/6)")
    options = parser.parse_args(argv)
    if options.tiny:
        options.dynamics_seconds, options.generation_seconds = 0.1, 0.1
    if options.compile_scope is None:
        options.compile_scope = "none" if options.tiny else "model"
    if options.tokenizer_minutes is None:
        options.tokenizer_minutes = 1 / 6 if options.tiny else 8.0
    device = torch.device("cuda" if torch.cuda.is_available() and not options.cpu else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_num_threads(1)  # a smoke run: one thread costs least CPU time on a shared machine
    options.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = {"command": " ".join([sys.executable, *sys.argv]), "tiny": options.tiny, "torch": torch.__version__,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "seconds": {}, "cpu_seconds": {}, "failures": {}}
    parts = {"dynamics": lambda: measure_dynamics(options, device, options.out),
             "generation": lambda: measure_generation(options, device),
             "tokenizer": lambda: measure_tokenizer(options, device, options.out)}
    for name in options.parts.split(","):
        part_start, part_cpu = time.perf_counter(), time.process_time()
        print(f"{name} ...", flush=True)
        try:
            report[name] = parts[name]()
        except Exception as error:  # one failed part must not lose the others' figures
            report["failures"][name] = f"{type(error).__name__}: {error}"[:500]
            print(f"  {name} failed: {report['failures'][name]}", flush=True)
        report["seconds"][name] = round(time.perf_counter() - part_start, 1)
        report["cpu_seconds"][name] = round(time.process_time() - part_cpu, 1)
        report["targets"] = verdicts(report)
        (options.out / "report.json").write_text(json.dumps(report, indent=1))
    report["seconds"]["total"] = round(time.perf_counter() - started, 1)
    (options.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"\n{report['device']}, torch {report['torch']}, {report['seconds']['total']:.0f} s in all")
    for name, verdict in report["targets"].items():
        state = {None: "not measured" if verdict["value"] is None else "(tiny)", True: "met", False: "NOT met"}[verdict["met"]]
        print(f"  {name:32s} {verdict['value']!s:>10s}  target {verdict['target']:<6}  {state}")
    print(f"report: {options.out / 'report.json'}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
