"""Loader throughput: 16-frame 160x90 windows per second per CPU core, from clip shards.

    .venv/bin/python benchmarks/loader.py [--epochs 3] [--no-ray]

Builds shards of 16 s clips from ../shared/corpus/smb (benchmarks/make_gpu_shards.py), then
feeds the same windows (T=16, batches of 8) four ways and divides windows by CPU seconds
(user + sys of every process involved, read from /proc, so loader children and Ray's own
processes count):
  decode only         schemas.shard.decode_sample on every clip: the floor of any loader
  per-worker, 0 proc  train.windows.window_loader in the training process (what training uses)
  per-worker, 2 proc  the same with two DataLoader processes (batches cross a process boundary)
  Ray Data            read_webdataset -> map_batches(cut windows) -> iter_torch_batches, the
                      streaming alternative (Ray's idle daemons count too: they run for it)
Then the demand side: windows/s the small tokenizer's trainer consumes on one H100, from
models/flops.py's FLOPs per window at an assumed MFU (not measured here: no GPU).
"""

import argparse
import itertools
import os
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_gpu_shards import SMB_DIR, clip_samples, decode, source_fps, write_shards  # noqa: E402
from schemas import shard as clip_spec  # noqa: E402
from schemas.shard_io import iter_samples, list_shards  # noqa: E402
from train.hardware import find_gpu  # noqa: E402
from train.windows import ClipWindows, DataConfig, window_loader  # noqa: E402

T, BATCH = 16, 8
H100_BF16_PEAK = find_gpu("H100").peak_bf16_flops


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and all its live descendants, plus the reaped children of each."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def make_shards(folder: pathlib.Path) -> list[str]:
    samples = []
    for path in sorted(SMB_DIR.glob("smb_*.mp4")):
        samples += clip_samples(decode(path), f"smb:{path.stem}", 0.0, source_fps(path))
    write_shards(samples, folder, "smb", clips_per_shard=4)
    return list_shards([str(folder)])


def measure(run) -> tuple[int, float]:
    """(windows, CPU seconds) of run() -> windows."""
    before = tree_cpu_seconds()
    windows = run()
    return windows, tree_cpu_seconds() - before


def decode_only(shards: list[str], epochs: int) -> int:
    windows = 0
    for _ in range(epochs):
        for shard in shards:
            for sample in iter_samples(shard):
                frames, _ = clip_spec.decode_sample(sample)
                windows += len(frames) // T
    return windows


def per_worker(shards: list[str], batches: int, processes: int) -> int:
    config = DataConfig(window_frames=T, batch_size=BATCH, shuffle_block_clips=16, loader_processes=processes)
    loader = iter(window_loader(config, ClipWindows(), shards, rank=0))
    windows = sum(len(batch["frames"]) for batch in itertools.islice(loader, batches))
    del loader  # joins the DataLoader processes, so their CPU time is counted
    return windows


def cut_windows(batch: dict) -> dict:
    """Ray Data UDF: a batch of raw samples -> a batch of 16-frame windows."""
    rng = np.random.default_rng()
    windows = []
    for key, frames_png, meta in zip(batch["__key__"], batch[clip_spec.FRAMES_FIELD], batch[clip_spec.META_FIELD]):
        frames, _ = clip_spec.decode_sample({"__key__": key, clip_spec.FRAMES_FIELD: frames_png, clip_spec.META_FIELD: meta})
        count = len(frames) // T
        offset = int(rng.integers(0, len(frames) - count * T + 1))
        windows += [frames[offset + k * T : offset + (k + 1) * T] for k in range(count)]
    return {"frames": np.stack(windows) if windows else np.zeros((0, T, 90, 160, 3), np.uint8)}


def ray_data(shards: list[str], epochs: int) -> int:
    import ray.data

    dataset = ray.data.read_webdataset(shards * epochs, decoder=None, override_num_blocks=len(shards) * epochs)
    dataset = dataset.map_batches(cut_windows, batch_size=4, batch_format="numpy")
    return sum(len(batch["frames"]) for batch in dataset.iter_torch_batches(batch_size=BATCH, local_shuffle_buffer_size=64))


def consumption_estimate() -> float:
    """FLOPs of one training window (T=16) of the small tokenizer, from models/flops.py."""
    import torch

    from models.config import load_model_configs
    from models.flops import training_flops_per_step
    from models.tokenizer import VideoTokenizer

    with torch.device("meta"):
        model = VideoTokenizer(load_model_configs("small").tokenizer)
    return training_flops_per_step(model, (1, T, 3, 90, 160))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="passes over the shards per measurement")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Data measurement")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        shards = make_shards(pathlib.Path(scratch))
        per_epoch = decode_only(shards, 1)
        batches = per_epoch * options.epochs // BATCH
        print(f"{len(shards)} shards, {per_epoch} windows of {T} frames per pass, {options.epochs} passes each\n")
        rows = [("decode only", measure(lambda: decode_only(shards, options.epochs))),
                ("per-worker, 0 proc", measure(lambda: per_worker(shards, batches, 0))),
                ("per-worker, 2 proc", measure(lambda: per_worker(shards, batches, 2)))]
        if not options.no_ray:
            import ray

            ray.init(address="local", num_cpus=2, object_store_memory=300 * 1024**2, include_dashboard=False,
                     log_to_driver=False)
            ray_data(shards, 1)  # warm: worker processes started, modules imported
            rows.append(("Ray Data", measure(lambda: ray_data(shards, options.epochs))))
            ray.shutdown()
    print(f"{'loader':20s} {'windows':>8s} {'CPU s':>8s} {'windows/s/core':>15s}")
    for name, (windows, seconds) in rows:
        print(f"{name:20s} {windows:8d} {seconds:8.2f} {windows / seconds:15.1f}")

    flops = consumption_estimate()
    ours = rows[1][1][0] / rows[1][1][1]
    print(f"\nsmall tokenizer: {flops / 1e12:.2f} TFLOP per 16-frame window (forward + backward)")
    for mfu in (0.3, 0.45):
        demand = mfu * H100_BF16_PEAK / flops
        print(f"  at {mfu:.0%} MFU one H100 consumes {demand:5.1f} windows/s; one loader core gives "
              f"{ours / demand:4.1f}x that; 4x needs {4 * demand / ours:4.1f} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
