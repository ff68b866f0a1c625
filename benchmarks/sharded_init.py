"""Peak host memory per rank while a dynamics model is initialised for FSDP: whole, or sharded from meta.

    python benchmarks/sharded_init.py                  # ~0.2B parameters, 2 and 4 ranks (CPU, gloo)
    python benchmarks/sharded_init.py --layers 24 --ranks 2

Each measurement is a fresh group of processes (ru_maxrss is a process-lifetime peak). A rank
records its RSS just before building the model and its peak RSS once the model is ready
(sharded, materialised and initialised); the difference is what initialisation cost it.
  whole: what the loop did before: every rank builds the whole fp32 model, then shards it
         (`fully_shard` replaces each full parameter by this rank's shard);
  meta:  train/parallelize.py build_model: built on the meta device, sharded, materialised
         shard by shard and initialised there (each random fill draws one whole parameter).
Expected: whole ~ the full fp32 size per rank; meta ~ 1/N of it plus the largest parameter.
"""

import argparse
import os
import pathlib
import resource
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.config import DynamicsConfig, TransformerConfig  # noqa: E402
from models.dynamics import DynamicsModel  # noqa: E402
from train.parallelize import ParallelConfig, build_model, parallelize  # noqa: E402

GIB = 2**30


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(rank: int, world: int, method: str, layers: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    config = DynamicsConfig(TransformerConfig(num_layers=layers, model_dim=1024, num_heads=16, head_dim=64))
    parallel = ParallelConfig(strategy="fsdp", mixed_precision="fp32")
    dist.barrier()
    before = rss_bytes()
    if method == "whole":
        torch.manual_seed(0)
        model = parallelize(DynamicsModel(config), parallel, torch.device("cpu"))
    else:
        model = build_model(lambda: DynamicsModel(config), parallel, torch.device("cpu"), seed=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    total = sum(p.numel() for p in model.parameters())  # global sizes of the DTensors
    local = sum(p.to_local().numel() for p in model.parameters())
    largest = max(p.numel() for p in model.parameters())
    with open(f"{folder}/rank{rank}.txt", "w") as handle:
        handle.write(f"{peak - before} {total} {local} {largest}\n")
    dist.barrier()
    dist.destroy_process_group()


def measure(method: str, ranks: int, layers: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(ranks, method, layers, folder), nprocs=ranks)
        rows = [list(map(int, open(f"{folder}/rank{rank}.txt").read().split())) for rank in range(ranks)]
    return {"peak": max(row[0] for row in rows), "parameters": rows[0][1], "local": rows[0][2], "largest": rows[0][3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=16, help="ST blocks of width 1024 (16: ~0.2B parameters)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    options = parser.parse_args()
    for ranks in options.ranks:
        for method in ("whole", "meta"):
            result = measure(method, ranks, options.layers)
            fp32 = 4 * result["parameters"]
            print(f"{method:5s} N={ranks}: {result['parameters'] / 1e9:.3f}B parameters ({fp32 / GIB:.2f} GiB fp32), "
                  f"peak RSS growth per rank during init {result['peak'] / GIB:.2f} GiB = {result['peak'] / fp32:.2f} x the "
                  f"fp32 model (1/N = {1 / ranks:.2f}; own shard {4 * result['local'] / GIB:.2f} GiB, largest parameter "
                  f"{4 * result['largest'] / GIB:.3f} GiB)", flush=True)


if __name__ == "__main__":
    main()
