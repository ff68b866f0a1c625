"""Training steps of a multi-billion-parameter dynamics model under FSDP2: step time, MFU, peak memory.

    python benchmarks/fsdp_step_gpu.py                     # every visible GPU, ~4.2B parameters (paper width, 20 layers)
    python benchmarks/fsdp_step_gpu.py --layers 24 --batch 2
    python benchmarks/fsdp_step_gpu.py --smoke             # tiny model, 2 CPU ranks (gloo): checks the script runs

The model is the paper's dynamics block (d5120, 36 heads x 64, MLP 2.2d) with --layers blocks,
built on the meta device and sharded over every GPU (train/parallelize.py build_model: bf16
parameters in compute, fp32 master weights and reduction, every block checkpointed), then
trained with AdamW on random 16-frame token windows (the cost of a step does not depend on
the values). One rank per GPU, NCCL. Prints one JSON line: parameters, step time (median of
--steps after --warmup), tokens/s, MFU (models/flops.py over train/hardware.py's peak), peak
memory per GPU, and the memory plan's estimate for the same job (train/memory_plan.py).
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.config import DynamicsConfig, TransformerConfig  # noqa: E402
from models.dynamics import DynamicsModel  # noqa: E402
from models.flops import training_flops_per_step  # noqa: E402
from train.hardware import peak_flops  # noqa: E402
from train.memory_plan import ClusterSpec, meta_model, plan_memory  # noqa: E402
from train.optimizer import OptimConfig, build_optimizer  # noqa: E402
from train.parallelize import ParallelConfig, build_model  # noqa: E402


def model_config(options) -> DynamicsConfig:
    if options.smoke:
        return DynamicsConfig(TransformerConfig(num_layers=2, model_dim=64, num_heads=2, head_dim=32),
                              token_height=6, token_width=10)
    return DynamicsConfig(TransformerConfig(num_layers=options.layers, model_dim=5120, num_heads=36, head_dim=64,
                                            mlp_ratio=2.2))


def worker(rank: int, world: int, options, folder: str) -> None:
    gpu = torch.cuda.is_available() and not options.smoke
    dist.init_process_group("nccl" if gpu else "gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world)
    device = torch.device("cuda", rank) if gpu else torch.device("cpu")
    if gpu:
        torch.cuda.set_device(device)
    config = model_config(options)
    parallel = ParallelConfig(strategy="fsdp", mixed_precision="bf16", reduce_dtype="fp32",
                              activation_checkpointing=True, compile=options.compile)
    started = time.perf_counter()
    model = build_model(lambda: DynamicsModel(config), parallel, device, seed=0)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-4))
    build_s = time.perf_counter() - started
    shape = (options.batch, 16, config.token_height, config.token_width)
    generator = torch.Generator(device=device).manual_seed(rank)
    times, losses = [], []
    for step in range(options.warmup + options.steps):
        tokens = torch.randint(0, config.num_codes, shape, device=device, generator=generator)
        actions = torch.randint(0, config.num_actions, (options.batch, 15), device=device, generator=generator)
        if gpu:
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        loss = model(tokens, actions).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if gpu:
            torch.cuda.synchronize(device)
        if step >= options.warmup:
            times.append(time.perf_counter() - began)
        losses.append(loss.detach().item())
    if rank == 0:
        step_s = statistics.median(times)
        flops = training_flops_per_step(meta_model(lambda: DynamicsModel(config)), shape)
        peak = peak_flops(device)
        memory = torch.cuda.get_device_properties(device).total_memory / 1e9 if gpu else 64.0
        plan = plan_memory(meta_model(lambda: DynamicsModel(config)), shape,
                           ClusterSpec(nodes=1, gpus_per_node=world, gpu="measured", gpu_memory_gb=memory, reserve_gb=2.0),
                           "fsdp", 0, 1, 1)
        result = {
            "device": torch.cuda.get_device_name(device) if gpu else "cpu (smoke)", "ranks": world,
            "parameters": sum(p.numel() for p in model.parameters()), "batch_per_rank": options.batch,
            "tokens_per_step": world * options.batch * 16 * config.token_height * config.token_width,
            "build_s": round(build_s, 2), "step_s": round(step_s, 4),
            "tokens_per_s": round(world * options.batch * 16 * config.token_height * config.token_width / step_s),
            "mfu": None if peak is None else round(flops / step_s / peak, 4),
            "peak_memory_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if gpu else None,
            "planned_memory_gb": round(plan.total / 1e9, 2), "losses": [round(x, 3) for x in losses],
        }
        print(json.dumps(result), flush=True)
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=20, help="ST blocks of the paper's width (48 = the 10.1B model)")
    parser.add_argument("--batch", type=int, default=1, help="16-frame windows per GPU")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile each block")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on 2 CPU ranks, to check the script")
    options = parser.parse_args()
    world = 2 if options.smoke or not torch.cuda.is_available() else torch.cuda.device_count()
    if not options.smoke and not torch.cuda.is_available():
        sys.exit("no GPU: run with --smoke on CPU")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(world, options, folder), nprocs=world)


if __name__ == "__main__":
    main()
