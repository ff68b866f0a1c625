"""GPU benchmark of the Genie models: dynamics training throughput and MFU, generation frames/s.

    python benchmarks/models_gpu.py              # on one GPU, about 3 minutes
    python benchmarks/models_gpu.py --smoke      # CPU, tiny shapes, seconds (tests run this)

1. Dynamics training at ~400M parameters (24 layers, d1024, 16 heads x 64, MLP 4d) on
   T=16 frames of 23x40 tokens in bf16 autocast with fused AdamW: tokens/s and MFU, eager
   and compiled (torch.compile with fullgraph: each ST block, or with --compile-scope model
   the whole model), at the largest of --batches that fits. FLOPs from models/flops.py;
   peak dense bf16 FLOP/s from train/hardware.py's table, keyed by the device name.
2. Generation with the small config (12 layers, d512) in bf16, 25 MaskGIT steps a frame,
   batch 1, after a 4-frame context: frames/s recomputing the context every step, with the
   KV cache, and with the KV cache and each single-frame model call replayed as a CUDA graph.

Plain PyTorch (no Ray); needs torch and numpy. Time-boxed by --seconds: every
measurement gets an equal slice after its warm-up (compilation is reported separately).
"""

import argparse
import dataclasses
import gc
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.config import DynamicsConfig, TransformerConfig, load_model_configs  # noqa: E402
from models.dynamics import DynamicsModel  # noqa: E402
from models.flops import training_flops_per_step  # noqa: E402
from models.sampler import FramePredictor, play  # noqa: E402
from train.hardware import peak_flops  # noqa: E402

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device: torch.device, warmup: int, seconds: float, min_runs: int = 3) -> tuple[float, float]:
    """Run `warmup` times, then repeatedly for `seconds` (at least min_runs) -> (warm-up s, s per run)."""
    start = time.perf_counter()
    for _ in range(warmup):
        run()
    synchronize(device)
    warmup_seconds = time.perf_counter() - start
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        run()
        runs += 1
        synchronize(device)
    return warmup_seconds, (time.perf_counter() - start) / runs


# ---------------------------------------------------------------------------------------
# 1. dynamics training


def training_config(smoke: bool) -> DynamicsConfig:
    if smoke:
        transformer = TransformerConfig(num_layers=2, model_dim=64, num_heads=2, head_dim=32)
        return DynamicsConfig(transformer=transformer, num_codes=64, token_height=4, token_width=6, max_frames=3)
    transformer = TransformerConfig(num_layers=24, model_dim=1024, num_heads=16, head_dim=64, mlp_ratio=4.0)
    return DynamicsConfig(transformer=transformer)


def measure_training(config: DynamicsConfig, batch: int, compile_scope: str | None, device: torch.device,
                     seconds: float, smoke: bool) -> dict:
    torch.manual_seed(0)
    with device:
        model = DynamicsModel(config)
    backend = "eager" if smoke else "inductor"
    if compile_scope == "blocks":
        for block in model.blocks:  # one graph per block, shared by all blocks; no graph breaks allowed
            block.compile(fullgraph=True, backend=backend)
    elif compile_scope == "model":  # embeddings, masking and loss in the same graph
        model.compile(fullgraph=True, backend=backend)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    shape = (batch, config.max_frames, config.token_height, config.token_width)
    tokens = torch.randint(0, config.num_codes, shape, device=device)
    actions = torch.randint(0, config.num_actions, (batch, config.max_frames - 1), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(tokens, actions).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    warmup, per_step = timed(step, device, warmup=3, seconds=seconds)
    flops = training_flops_per_step(model, shape)
    peak = peak_flops(device)
    parameters = sum(p.numel() for p in model.parameters())
    return {"tokens/s": batch * config.max_frames * config.token_height * config.token_width / per_step,
            "mfu": None if peak is None else flops / per_step / peak, "warmup_s": warmup,
            "batch": batch, "parameters": parameters, "step_s": per_step, "step": step}


def largest_fitting_batch(config: DynamicsConfig, candidates: list[int], device: torch.device, **kwargs) -> dict:
    """The training measurement at the largest candidate batch that fits in memory."""
    for batch in candidates:
        try:
            return measure_training(config, batch, device=device, **kwargs)
        except torch.cuda.OutOfMemoryError:
            pass
        gc.collect()  # outside the except block, so the failed attempt's frames are gone
        torch.cuda.empty_cache()
        print(f"  batch {batch} does not fit; trying a smaller one", flush=True)
    raise RuntimeError("not even the smallest batch fits")


# ---------------------------------------------------------------------------------------
# 2. generation


class GraphedFramePredictor(FramePredictor):
    """A KV-cache predictor whose single-frame model call is captured once as a CUDA graph.

    The graph reads the frame and action from static buffers and the cache position from
    its tensor, so one capture serves every step and every frame of the window.
    """

    def __init__(self, dynamics, tokens, actions):
        super().__init__(dynamics, tokens, actions, use_cache=True)
        B, h, w = tokens.shape[0], dynamics.config.token_height, dynamics.config.token_width
        self.static_frame = torch.zeros(B, 1, h, w, dtype=torch.long, device=tokens.device)
        self.static_action = torch.zeros(B, 1, dtype=torch.long, device=tokens.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up writes only the slot being generated, as a step does
            for _ in range(2):
                dynamics.logits(self.static_frame, self.static_action, self.cache)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_logits = dynamics.logits(self.static_frame, self.static_action, self.cache)

    def cached_frame_logits(self, frame, action):
        self.static_frame.copy_(frame)
        self.static_action.copy_(action)
        self.graph.replay()
        return self.static_logits


def generation_config(smoke: bool) -> DynamicsConfig:
    """The small dynamics model, or in smoke mode the tiny one on a 4x6 token grid."""
    if smoke:
        return dataclasses.replace(load_model_configs("tiny").dynamics, token_height=4, token_width=6)
    return load_model_configs("small").dynamics


def measure_generation(config: DynamicsConfig, mode: str, device: torch.device, seconds: float,
                       steps: int, context_frames: int, new_frames: int) -> dict:
    torch.manual_seed(0)
    with device:
        model = DynamicsModel(config).eval()
    if device.type == "cuda":
        model.to(torch.bfloat16)
    shape = (1, context_frames, config.token_height, config.token_width)
    tokens = torch.randint(0, config.num_codes, shape, device=device)
    actions = torch.randint(0, config.num_actions, (1, context_frames - 1 + new_frames), device=device)
    generator = torch.Generator(device).manual_seed(0)
    context_actions, new_actions = actions[:, :context_frames - 1], actions[:, context_frames - 1:]

    def new_predictor() -> FramePredictor:
        if mode == "graph":
            return GraphedFramePredictor(model, tokens, context_actions)
        return FramePredictor(model, tokens, context_actions, use_cache=mode == "cache")

    # loading the context (and capturing the graph) is set-up; the frame-by-frame loop is timed
    times, start = [], time.perf_counter()
    with torch.no_grad():
        while len(times) < 3 or sum(times[1:]) < seconds:  # the first run is a warm-up
            predictor = new_predictor()
            synchronize(device)
            begin = time.perf_counter()
            play(predictor, new_actions, steps=steps, temperature=2.0, generator=generator)
            synchronize(device)
            times.append(time.perf_counter() - begin)
    return {"frames/s": new_frames * (len(times) - 1) / sum(times[1:]), "elapsed_s": time.perf_counter() - start}


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=90.0, help="total timed seconds, split over 6 measurements")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, a few steps: checks the script runs")
    parser.add_argument("--batches", default="4,2,1",
                        help="training batches (windows of 16 frames) to try, largest first; the first that fits is used")
    parser.add_argument("--compile-scope", choices=["blocks", "model"], default="blocks",
                        help="what the compiled training run compiles")
    options = parser.parse_args(argv)
    smoke = options.smoke
    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    slice_seconds = 0.1 if smoke else options.seconds / 6
    rows = []

    train_config = training_config(smoke)
    batches = [2] if smoke else [int(b) for b in options.batches.split(",")]
    for compile_scope in (None, options.compile_scope):
        name = f"dynamics train {'compiled (' + compile_scope + ')' if compile_scope else 'eager'}"
        print(f"{name} ...", flush=True)
        try:
            result = largest_fitting_batch(train_config, batches, device, compile_scope=compile_scope,
                                           seconds=slice_seconds, smoke=smoke)
            batches = [result["batch"]]  # the compiled run uses the eager run's batch
            mfu = "n/a (no peak for this device)" if result["mfu"] is None else f"MFU {100 * result['mfu']:.1f}%"
            rows.append((name, f"{result['tokens/s'] / 1e3:,.1f}k tokens/s",
                         f"{mfu}; {result['parameters'] / 1e6:.0f}M params, batch {result['batch']}x"
                         f"{train_config.max_frames}x{train_config.token_height}x{train_config.token_width}, "
                         f"warm-up {result['warmup_s']:.0f}s"))
        except Exception as error:  # one failed measurement must not lose the others
            rows.append((name, "failed", f"{type(error).__name__}: {error}"[:200]))

    steps, context_frames, new_frames = (4, 2, 2) if smoke else (25, 4, 8)
    for mode, label in (("recompute", "no cache"), ("cache", "KV cache"), ("graph", "KV cache + CUDA graph")):
        name = f"generation {'tiny' if smoke else 'small'}, {label}"
        if mode == "graph" and device.type != "cuda":
            rows.append((name, "skipped", "needs CUDA"))
            continue
        print(f"{name} ...", flush=True)
        try:
            result = measure_generation(generation_config(smoke), mode, device, slice_seconds, steps, context_frames,
                                        new_frames)
            rows.append((name, f"{result['frames/s']:.2f} frames/s",
                         f"{steps} MaskGIT steps, batch 1, {context_frames}-frame context, {new_frames} new frames"))
        except Exception as error:
            rows.append((name, "failed", f"{type(error).__name__}: {error}"[:200]))

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)"
    print(f"\nGenie models benchmark on {device_name}, torch {torch.__version__}")
    width = max(len(row[0]) for row in rows)
    print(f"{'measurement':<{width}}  {'result':>22}  details")
    for name, value, details in rows:
        print(f"{name:<{width}}  {value:>22}  {details}")
    return 1 if any(row[1] == "failed" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
