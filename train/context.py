"""What the per-worker training loop needs from whatever runs it, without importing Ray.

The loop (train/loop.py) calls only this interface: its rank and world size, a directory to
log into, the checkpoint to resume from, `report` (metrics plus, at checkpoint steps, a
directory of checkpoint files) and a progress bar. jobs/train.py fills it with Ray Train
(`ray.train.get_context`, `get_checkpoint`, `report`, a driver-side progress bar);
`LocalContext` below fills it for a plain single-process script, such as the GPU
benchmark on a machine without Ray.
"""

import contextlib
import pathlib
import shutil
from collections.abc import Iterator
from typing import ContextManager, Protocol

import torch

CHECKPOINT_PREFIX = "checkpoint_"


class WorkerContext(Protocol):
    world_rank: int
    world_size: int
    node: str  # the node this worker runs on (Ray node id, or host name)
    device: torch.device  # where this worker computes
    log_dir: pathlib.Path  # metrics, TensorBoard events and sample images (rank 0 writes)

    def restored_checkpoint(self) -> ContextManager[pathlib.Path | None]:
        """The latest checkpoint of this run as a local directory, or None for a fresh start."""

    def report(self, metrics: dict, checkpoint_dir: pathlib.Path | None) -> None:
        """Hand over metrics and, when given, this worker's checkpoint files. Every rank calls it
        at the same steps (with Ray it is a barrier)."""

    def progress(self, step: int, total: int, metrics: dict) -> None:
        """Advance the progress bar to `step` (called by rank 0 only)."""


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:09d}"


class LocalContext:
    """One process, checkpoints in a local folder (the last `keep` of them)."""

    world_rank = 0
    world_size = 1

    def __init__(self, log_dir: pathlib.Path, checkpoint_root: pathlib.Path, keep: int = 2, show_progress: bool = True):
        import socket

        self.node = socket.gethostname()
        self.device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        self.log_dir = pathlib.Path(log_dir)
        self.checkpoint_root = pathlib.Path(checkpoint_root)
        self.keep = keep
        self.show_progress = show_progress
        self._bar = None

    @contextlib.contextmanager
    def restored_checkpoint(self) -> Iterator[pathlib.Path | None]:
        found = sorted(self.checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*[0-9]")) if self.checkpoint_root.is_dir() else []
        yield found[-1] if found else None

    def report(self, metrics: dict, checkpoint_dir: pathlib.Path | None) -> None:
        if checkpoint_dir is None:
            return
        self.checkpoint_root.mkdir(parents=True, exist_ok=True)
        final = self.checkpoint_root / checkpoint_name(int(metrics["step"]))
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(checkpoint_dir, partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in sorted(self.checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*[0-9]"))[: -self.keep]:
            shutil.rmtree(old)

    def progress(self, step: int, total: int, metrics: dict) -> None:
        if not self.show_progress:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=step, unit="step")
        self._bar.n = step
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=True)
        if step >= total:
            self._bar.close()
