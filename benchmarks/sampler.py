"""CPU cost of generating frames past the dynamics model's window (models/sampler.py).

    python benchmarks/sampler.py                       # tiny model, 32 frames, ~4 CPU-minutes
    python benchmarks/sampler.py --model small --frames 24

From one context frame, generates --frames frames (batch 1, 25 MaskGIT steps at temperature
2) and times each frame in CPU seconds of this process. Until the window (max_frames) is
full, a frame costs its 25 single-frame steps against the KV cache plus one pass to write
its keys and values; once full, the oldest frame drops out every frame, every temporal
position shifts, and the cache is rebuilt from the window (one pass over max_frames - 1
frames). The peer in the same run is full recomputation (no cache): every step runs the
whole window. Prints CPU s per frame for both, filling and sliding, and their ratios.
"""

import argparse
import pathlib
import resource
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.config import load_model_configs  # noqa: E402
from models.dynamics import DynamicsModel  # noqa: E402
from models.sampler import FramePredictor, sample_frame  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@torch.no_grad()
def frame_costs(model: DynamicsModel, frames: int, use_cache: bool, steps: int, first_frame: int = 1) -> list[float]:
    """CPU seconds of generating frames first_frame..frames (frame 0 is the context); the
    frames before first_frame are filled with random tokens without sampling."""
    config = model.config
    generator = torch.Generator().manual_seed(0)
    shape = (1, first_frame, config.token_height, config.token_width)
    context = torch.randint(0, config.num_codes, shape, generator=generator)
    actions = torch.randint(0, config.num_actions, (1, first_frame - 1), generator=generator)
    predictor = FramePredictor(model, context, actions, use_cache)
    costs = []
    for _ in range(first_frame, frames + 1):
        action = torch.randint(0, config.num_actions, (1,), generator=generator)
        start = cpu_seconds()
        frame = sample_frame(predictor, action, steps, 2.0, generator)
        predictor.commit(frame, action)
        costs.append(cpu_seconds() - start)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="size in models/configs/ (tiny, small)")
    parser.add_argument("--frames", type=int, default=32, help="frames generated after the context frame")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a shared machine)")
    parser.add_argument("--uncached-frames", type=int, default=6,
                        help="frames timed without the cache on each side of the window filling up")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    model = DynamicsModel(load_model_configs(options.model).dynamics).eval()
    window = model.config.max_frames
    if options.frames <= window:
        parser.error(f"--frames must exceed the window ({window}) to measure sliding")
    # generating frame k, the context holds frames max(0, k-15)..k-1: committing frame
    # window-1 overflows the window, so from there on every frame pays a cache rebuild
    full = window - 1
    cached = frame_costs(model, options.frames, True, options.steps)  # frames 1..frames
    filling, sliding = cached[1:full - 1], cached[full - 1:]  # frame 1 also pays warm-up: left out
    around = options.uncached_frames
    uncached = frame_costs(model, full + around - 1, False, options.steps, first_frame=full - around)
    uncached_filling, uncached_sliding = uncached[:around], uncached[around:]
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    config = model.config
    print(f"sampler: {options.model} dynamics ({config.token_height}x{config.token_width} tokens, max_frames {window}),"
          f" batch 1, {options.steps} steps, {torch.get_num_threads()} thread(s), CPU seconds per frame")
    print(f"    {'generation':<34}{'frames':>7}{'CPU s/frame':>13}")
    rows = [("KV cache, window filling", f"2-{full - 1}", mean(filling)),
            ("KV cache, window sliding", f"{full}-{options.frames}", mean(sliding)),
            ("recompute, window filling", f"{full - around}-{full - 1}", mean(uncached_filling)),
            ("recompute, window sliding", f"{full}-{full + around - 1}", mean(uncached_sliding))]
    for name, span, value in rows:
        print(f"    {name:<34}{span:>7}{value:>13.3f}")
    print(f"    sliding / filling with the cache: {mean(sliding) / mean(filling):.2f}x; "
          f"recompute / cache while sliding: {mean(uncached_sliding) / mean(sliding):.2f}x")


if __name__ == "__main__":
    main()
