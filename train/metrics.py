"""Training metrics: a JSON-lines log, TensorBoard, sample images, throughput and MFU.

Rank 0 writes `metrics.jsonl` (one record per logged step, plus `event` records: `start`
each time the workers start, `resume` and `checkpoint`), TensorBoard events and
`samples/step_<n>.png`. Every rank writes `ranks/rank<r>.jsonl`: where it ran (node, pid)
and when it started or resumed, which is what an operator needs after a node died.
"""

import dataclasses
import json
import os
import pathlib
import time

import cv2
import numpy as np
import torch

from schemas.config import at_least

METRICS_FILE = "metrics.jsonl"


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """How often to log, checkpoint and save sample images."""

    log_every: int = 10  # steps between metric records
    checkpoint_every: int = 500  # steps between checkpoints (and one at the last step)
    sample_every: int = 500  # steps between sample-image PNGs; 0 disables them
    tensorboard: bool = True  # also write TensorBoard events (needs the tensorboard package)

    def __post_init__(self):
        at_least(self, log_every=1, checkpoint_every=1, sample_every=0)


class MetricsLog:
    """Appends metric and event records to metrics.jsonl and, optionally, TensorBoard."""

    def __init__(self, log_dir: pathlib.Path, tensorboard: bool):
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.log_dir / METRICS_FILE, "a", buffering=1)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir / "tensorboard"))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self._jsonl.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(name, value, step)

    def event(self, kind: str, step: int, **fields) -> None:
        self._jsonl.write(json.dumps({"event": kind, "step": step, "time": time.time(), **fields}) + "\n")

    def close(self) -> None:
        self._jsonl.close()
        if self._writer is not None:
            self._writer.close()


def record_rank(log_dir: pathlib.Path, rank: int, **fields) -> None:
    """Append one record to this rank's own log (no two processes share a file)."""
    folder = pathlib.Path(log_dir) / "ranks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"rank{rank}.jsonl", "a") as handle:
        handle.write(json.dumps({"rank": rank, "pid": os.getpid(), "time": time.time(), **fields}) + "\n")


def save_sample_grid(path: pathlib.Path, rows: list[torch.Tensor], max_frames: int = 8) -> None:
    """A PNG with one row per video (T, C, H, W) in [0, 1]: e.g. input frames over reconstructions."""
    strips = []
    for video in rows:
        frames = video[:max_frames].detach().float().clamp(0, 1).cpu()
        strips.append(torch.cat(list(frames), dim=2))  # (C, H, W * T)
    width = max(strip.shape[2] for strip in strips)
    strips = [torch.nn.functional.pad(strip, (0, width - strip.shape[2])) for strip in strips]
    image = (torch.cat(strips, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H*rows, W*T, C)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
