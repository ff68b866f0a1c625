"""What the per-worker training loop needs from whatever runs it, without importing Ray.

The loop (train/loop.py) calls only this interface: its rank and world size, a directory to
log into, the checkpoint to resume from, `report` (metrics plus, at checkpoint steps, a
directory of checkpoint files) and a progress bar. jobs/train.py fills it with Ray Train
(`ray.train.get_context`, `get_checkpoint`, `report`, a driver-side progress bar);
`LocalContext` below fills it without Ray: a plain process, such as the GPU benchmark, or
the processes of a torch.distributed group started some other way (torchrun, a test's
spawn), which then share one local checkpoint folder.
"""

import contextlib
import pathlib
import shutil
from collections.abc import Iterator
from typing import ContextManager, Protocol

import torch
import torch.distributed as dist

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
    """Checkpoints in a local folder (the last `keep` of them), for one process or every rank of
    an initialised torch.distributed group on one machine."""

    def __init__(self, log_dir: pathlib.Path, checkpoint_root: pathlib.Path, keep: int = 2, show_progress: bool = True):
        import socket

        distributed = dist.is_available() and dist.is_initialized()
        self.world_rank = dist.get_rank() if distributed else 0
        self.world_size = dist.get_world_size() if distributed else 1
        self.node = socket.gethostname()
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.world_rank % torch.cuda.device_count())
        else:
            self.device = torch.device("cpu")
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
        """Every rank copies its files into one `.partial` folder; rank 0 then renames it."""
        if checkpoint_dir is None:
            return
        final = self.checkpoint_root / checkpoint_name(int(metrics["step"]))
        partial = final.with_name(final.name + ".partial")
        if self.world_rank == 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        self._barrier()
        shutil.copytree(checkpoint_dir, partial, dirs_exist_ok=True)  # file names differ between ranks
        self._barrier()
        if self.world_rank == 0:
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
            for old in sorted(self.checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*[0-9]"))[: -self.keep]:
                shutil.rmtree(old)
        self._barrier()

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

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
