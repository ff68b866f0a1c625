"""Training state on disk: sharded, resumable on any number of workers, never unpickled.

A checkpoint is a directory, a local or shared folder or an fsspec URI (s3://, gs://, ...):

    meta.json          component, step, the model's config as plain JSON (so a resume or an
                       inference job rebuilds the same architecture), the training config,
                       the data position, the learning-rate schedule's state, versions
    .metadata          torch.distributed.checkpoint's index of every tensor's shards
    __<r>_0.distcp     rank r's shards of the model and optimizer state (each rank writes
                       its own part, in parallel: nothing is gathered on one rank)
    rank<r>.pt         rank r's own state: torch RNG (CPU and CUDA), data stream positions

Model and optimizer go through torch.distributed.checkpoint (DCP) with state dicts keyed by
parameter name, so a checkpoint written by N workers under FSDP loads into M workers, into
DDP, or into one plain process (resharding on load): `restore_training_state` for a resume,
`load_model_weights` for inference (`genie tokenize`, `genie play`), which consolidates the
shards in one process without torch.distributed.

DCP's index file is a pickle, and it stores non-tensor values (optimizer hyper-parameters)
as torch.save bytes read back with weights_only=False. Loading here does neither: the index
is read by an unpickler that only builds DCP's own metadata classes, and values load with
weights_only=True, so a checkpoint from elsewhere cannot run code.
"""

import io
import json
import pathlib
import pickle
import warnings

import fsspec
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader, FsspecWriter  # DCP's fsspec storage
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import StorageMeta
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from schemas.errors import GenieError

CHECKPOINT_FORMAT = 2
META_FILE = "meta.json"
DCP_INDEX_FILE = ".metadata"


class CheckpointError(GenieError, ValueError):
    """A checkpoint directory is missing a file or does not fit what loads it."""


def rank_file(rank: int) -> str:
    return f"rank{rank}.pt"


def is_uri(location: str | pathlib.Path) -> bool:
    return "://" in str(location)


def save_checkpoint(directory: str | pathlib.Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, meta: dict, rank: int, rank_state: dict) -> None:
    """Write this rank's part of the checkpoint. Every rank must call it (DCP plans the save together).

    rank_state: plain data (ints, lists) this rank needs back on resume, kept beside its RNG.
    """
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    writer = FsspecWriter(str(directory)) if is_uri(directory) else FileSystemWriter(directory)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to save in a single process")
        dcp.save(state, storage_writer=writer)
    if rank == 0:
        full_meta = {"format": CHECKPOINT_FORMAT, "torch_version": torch.__version__,
                     "scheduler": scheduler.state_dict(), **meta}
        _write_bytes(directory, META_FILE, json.dumps(full_meta, indent=2, sort_keys=True).encode())
    own = {"torch_rng": torch.get_rng_state(), **rank_state}
    if torch.cuda.is_available():
        own["cuda_rng"] = torch.cuda.get_rng_state_all()
    buffer = io.BytesIO()
    torch.save(own, buffer)
    _write_bytes(directory, rank_file(rank), buffer.getvalue())


def latest_checkpoint(path: str | pathlib.Path) -> str | pathlib.Path:
    """A checkpoint directory itself, or the newest checkpoint_* directory inside a run folder."""
    filesystem, root = fsspec.core.url_to_fs(str(path))
    if filesystem.isfile(f"{root}/{META_FILE}"):
        return path
    found = []
    if filesystem.isdir(root):
        found = sorted(entry for entry in filesystem.ls(root, detail=False)
                       if entry.rstrip("/").rsplit("/", 1)[-1].startswith("checkpoint_")
                       and filesystem.isfile(f"{entry}/{META_FILE}"))
    if not found:
        raise CheckpointError(f"{path} is neither a checkpoint nor a run folder holding one")
    name = found[-1].rstrip("/").rsplit("/", 1)[-1]
    return f"{str(path).rstrip('/')}/{name}" if is_uri(path) else pathlib.Path(path) / name


def load_meta(directory: str | pathlib.Path) -> dict:
    """The checkpoint's meta.json."""
    try:
        meta = json.loads(_read_bytes(directory, META_FILE))
    except FileNotFoundError:
        raise CheckpointError(f"{directory} is not a checkpoint: no {META_FILE}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{directory}: checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT} "
                              "(format 1 checkpoints held full state dicts in model.pt; retrain or convert them)")
    return meta


def restore_training_state(directory: str | pathlib.Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Load model, optimizer and schedule into this worker's (possibly sharded) objects.

    Every rank must call it. Each reads only the shards it holds now, whatever the number of
    workers that wrote the checkpoint.
    """
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    _load(directory, state)
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    scheduler.load_state_dict(load_meta(directory)["scheduler"])


def load_model_weights(directory: str | pathlib.Path, model: nn.Module) -> None:
    """Load the checkpoint's model weights into a plain model in this process (shards consolidated)."""
    state = {"model": model.state_dict()}
    _load(directory, state)
    model.load_state_dict(state["model"])


def restore_rank_state(directory: str | pathlib.Path, rank: int) -> dict | None:
    """Set this rank's RNG from the checkpoint and return the rest of its state; None if it has none."""
    try:
        data = _read_bytes(directory, rank_file(rank))
    except FileNotFoundError:
        return None
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    torch.set_rng_state(state.pop("torch_rng"))
    cuda_rng = state.pop("cuda_rng", None)
    if cuda_rng is not None and torch.cuda.is_available() and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    return state


def optimizer_digest(optimizer: torch.optim.Optimizer) -> float:
    """A number that changes with any value of the optimizer's state, from each rank's own shards.

    The sum of |x| over every floating tensor of the state, in float64: each rank sums what
    it holds (a DTensor's local shard, counted once per replica group) and the sums are added
    over ranks, so no state is gathered. Every rank must call it.
    """
    total = torch.zeros((), dtype=torch.float64)
    for per_parameter in optimizer.state.values():
        for value in per_parameter.values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                total += _local_abs_sum(value)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        device = torch.device("cuda", torch.cuda.current_device()) if torch.distributed.get_backend() == "nccl" else "cpu"
        total = total.to(device)
        torch.distributed.all_reduce(total)
    return float(total)


def state_digest(state: dict) -> float:
    """The sum of |x| over every floating tensor in a (nested) plain state dict, in float64."""
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


def _local_abs_sum(value: torch.Tensor) -> torch.Tensor:
    """This rank's share of sum(|value|): a DTensor's local shard divided by its replica count."""
    from torch.distributed.tensor import DTensor, Replicate

    if isinstance(value, DTensor):
        replicas = 1
        for size, placement in zip(value.device_mesh.shape, value.placements):
            if isinstance(placement, Replicate):
                replicas *= size
        return value.to_local().detach().double().abs().sum().cpu() / replicas
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return value.detach().double().abs().sum().cpu() / world  # a plain tensor: the same on every rank


# --- reading DCP checkpoints without unpickling arbitrary objects ---

_METADATA_CLASSES = {
    ("torch.distributed.checkpoint.metadata", name) for name in (
        "Metadata", "MetadataIndex", "ChunkStorageMetadata", "TensorProperties", "TensorStorageMetadata",
        "BytesStorageMetadata", "StorageMeta", "_MEM_FORMAT_ENCODING")
} | {("torch.distributed.checkpoint.filesystem", "_StorageInfo"), ("torch", "Size"),
     ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"),
     ("pathlib", "WindowsPath"), ("pathlib", "PureWindowsPath"), ("collections", "OrderedDict")}


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP's metadata classes, torch dtypes and sizes, and refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _METADATA_CLASSES:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise CheckpointError(f"checkpoint index refers to {module}.{name}, which a checkpoint never needs")


class _SafeIndex:
    """A DCP reader whose index is read by _MetadataUnpickler (mixed into DCP's readers)."""

    def read_metadata(self, *args, **kwargs):
        with self.fs.create_stream(self.fs.concat_path(self.path, DCP_INDEX_FILE), "rb") as stream:
            metadata = _MetadataUnpickler(stream).load()
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class _SafeFileSystemReader(_SafeIndex, FileSystemReader):
    pass


class _SafeFsspecReader(_SafeIndex, FsspecReader):
    pass


class _WeightsOnlyPlanner(DefaultLoadPlanner):
    """DCP's default load planner, reading non-tensor values with torch.load(weights_only=True)."""

    def load_bytes(self, read_item, value: io.BytesIO) -> None:
        loaded = torch.load(value, weights_only=True)
        if self.flatten_state_dict:
            from torch.distributed.checkpoint._nested_dict import set_element

            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
        else:
            self.state_dict[read_item.dest_index.fqn] = loaded


def _load(directory: str | pathlib.Path, state: dict) -> None:
    """dcp.load into `state`, refusing an index that needs any class but DCP's own (checked first,
    here, so the error is ours and not wrapped in DCP's per-rank exception)."""
    try:
        _MetadataUnpickler(io.BytesIO(_read_bytes(directory, DCP_INDEX_FILE))).load()
    except FileNotFoundError:
        raise CheckpointError(f"{directory} has no {DCP_INDEX_FILE}: not a sharded checkpoint") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{directory}: unreadable {DCP_INDEX_FILE}: {error}") from None
    reader = _SafeFsspecReader(str(directory)) if is_uri(directory) else _SafeFileSystemReader(directory)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to load in a single process")
        dcp.load(state, storage_reader=reader, planner=_WeightsOnlyPlanner())


def _write_bytes(directory: str | pathlib.Path, name: str, data: bytes) -> None:
    filesystem, root = fsspec.core.url_to_fs(str(directory))
    filesystem.makedirs(root, exist_ok=True)
    with filesystem.open(f"{root}/{name}", "wb") as handle:
        handle.write(data)


def _read_bytes(directory: str | pathlib.Path, name: str) -> bytes:
    filesystem, root = fsspec.core.url_to_fs(str(directory))
    with filesystem.open(f"{root}/{name}", "rb") as handle:
        return handle.read()
