"""Training state on disk: everything a resume needs, in files that load with weights_only=True.

A checkpoint is a directory (Ray Train merges every rank's files into one):

    meta.json          component, step, the model's config as plain JSON (so a resume or an
                       inference job rebuilds the same architecture), the training config,
                       the data position, versions
    model.pt           the full model state dict (rank 0; gathered from shards under FSDP)
    optimizer.pt       the full optimizer state dict, keyed by parameter name (rank 0)
    scheduler.pt       the learning-rate schedule's state (rank 0)
    rank<r>.pt         each rank's own state: torch RNG (CPU and CUDA), data stream positions

Full (unsharded) state dicts are gathered on rank 0's CPU: simple, portable between world
sizes and strategies, and readable without torch.distributed.checkpoint, whose metadata file
is a pickle. The cost is rank-0 host memory of about 12 bytes per parameter.
"""

import json
import pathlib

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

CHECKPOINT_FORMAT = 1
META_FILE = "meta.json"
MODEL_FILE = "model.pt"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)


class CheckpointError(ValueError):
    """A checkpoint directory is missing a file or does not fit what loads it."""


def rank_file(rank: int) -> str:
    return f"rank{rank}.pt"


def save_checkpoint(directory: pathlib.Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, meta: dict, rank: int, rank_state: dict) -> None:
    """Write this rank's part of the checkpoint. Every rank must call it (FSDP gathers).

    rank_state: plain data (ints, lists) this rank needs back on resume, kept beside its RNG.
    """
    model_state = get_model_state_dict(model, options=_GATHER)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=_GATHER)
    directory.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        torch.save(model_state, directory / MODEL_FILE)
        torch.save(optimizer_state, directory / OPTIMIZER_FILE)
        torch.save(scheduler.state_dict(), directory / SCHEDULER_FILE)
        full_meta = {"format": CHECKPOINT_FORMAT, "torch_version": torch.__version__, **meta}
        (directory / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True))
    state = {"torch_rng": torch.get_rng_state(), **rank_state}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, directory / rank_file(rank))


def latest_checkpoint(path: str | pathlib.Path) -> pathlib.Path:
    """A checkpoint directory itself, or the newest checkpoint_* directory inside a run folder."""
    path = pathlib.Path(path)
    if (path / META_FILE).is_file():
        return path
    found = sorted(p for p in path.glob("checkpoint_*") if (p / META_FILE).is_file()) if path.is_dir() else []
    if not found:
        raise CheckpointError(f"{path} is neither a checkpoint nor a run folder holding one")
    return found[-1]


def load_meta(directory: pathlib.Path) -> dict:
    """The checkpoint's meta.json."""
    path = pathlib.Path(directory) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: no {META_FILE}")
    meta = json.loads(path.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{directory}: checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    return meta


def load_tensors(directory: pathlib.Path, name: str) -> dict:
    """One of the checkpoint's .pt files, loaded to CPU without unpickling arbitrary objects."""
    path = pathlib.Path(directory) / name
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {name}")
    return torch.load(path, map_location="cpu", weights_only=True)


def restore_optimizer(directory: pathlib.Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load the full optimizer state into the (possibly sharded) model's optimizer."""
    state = load_tensors(directory, OPTIMIZER_FILE)
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def restore_rank_state(directory: pathlib.Path, rank: int) -> dict | None:
    """Set this rank's RNG from the checkpoint and return the rest of its state; None if it has none."""
    if not (pathlib.Path(directory) / rank_file(rank)).is_file():
        return None
    state = load_tensors(directory, rank_file(rank))
    torch.set_rng_state(state.pop("torch_rng"))
    cuda_rng = state.pop("cuda_rng", None)
    if cuda_rng is not None and torch.cuda.is_available() and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    return state


def optimizer_digest(model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
    """A number that changes with any value of the optimizer's state (every rank must call it)."""
    return state_digest(get_optimizer_state_dict(model, optimizer, options=_GATHER))


def state_digest(state: dict) -> float:
    """The sum of |x| over every floating tensor in a (nested) state dict, in float64."""
    total = 0.0
    if isinstance(state, dict):
        for key in sorted(state, key=str):
            total += state_digest(state[key])
    elif isinstance(state, (list, tuple)):
        for item in state:
            total += state_digest(item)
    elif isinstance(state, torch.Tensor) and state.is_floating_point():
        total += state.detach().double().abs().sum().item()
    return total
