"""Shuffled batches of T-frame windows cut from the clips of WebDataset shards.

Why loaders in each training worker and not Ray Data streaming (benchmarks/loader.py has
the figures; README "Training" the summary): decoding PNG strips is the whole cost, and
it is the same code either way, but here the decoded windows (0.7 MB each at T=16) never
cross the object store, the GPU host's own cores are enough (one core feeds several
times what the small tokenizer consumes on an H100), and the stream is a pure function
of (seed, rank, epoch, block), so a checkpoint stores its position as one integer and a
resumed run continues with exactly the batches it would have seen. Ray Data's streaming
split has no resumable position.

The stream, per training worker (rank) and per DataLoader process p of P:
- the rank owns shards[rank::world_size] (no overlap between ranks); each epoch shuffles
  them with rng(seed, rank, epoch) and process p reads every P-th one;
- clips are taken round-robin from `interleave_shards` open shards and grouped into
  blocks of `shuffle_block_clips` clips; each clip of n >= T frames gives n // T
  non-overlapping windows at a random offset; a block's windows are shuffled together;
- consecutive windows form batches; the DataLoader yields process 0's batch, then process
  1's, and so on, so the i-th batch of the rank is deterministic.
Resuming at batch N skips, in each process, its share of the first N batches, reading only
clip metadata for whole blocks that were consumed. A clip that fails to decode is dropped
and counted; if that happens inside the skipped part, a resume is off by its windows.
"""

import dataclasses
import itertools
import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.validation import SchemaError
from train.shards import ShardError, iter_samples

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the shards are and how windows are cut, shuffled and batched."""

    shards: tuple[str, ...] = ()  # folders, .tar files or URIs (pyarrow.fs / fsspec) of the shards
    window_frames: int = 16  # T: frames in one training window
    batch_size: int = 8  # windows in one micro-batch of one worker
    shuffle_block_clips: int = 16  # clips decoded together; their windows are shuffled as one block
    interleave_shards: int = 4  # shards a loader process reads from in turn, to mix sources in a block
    loader_processes: int = 2  # DataLoader processes per training worker (0: decode in the training process)
    seed: int = 0  # seeds shard order, window offsets and block shuffles


class ClipWindows:
    """Clip shards (schemas/shard.py) -> {'frames': (n, 90, 160, 3) uint8}."""

    def count_frames(self, sample: dict) -> int:
        return clip_spec.decode_meta(sample[clip_spec.META_FIELD])["n_frames"]

    def decode(self, sample: dict) -> dict[str, np.ndarray]:
        frames, _ = clip_spec.decode_sample(sample)
        return {"frames": frames}


class TokenWindows:
    """Token shards (schemas/token_shard.py) -> {'tokens': (n, h, w), 'actions': (n-1,)} int64."""

    def count_frames(self, sample: dict) -> int:
        return token_spec.decode_token_meta(sample[token_spec.META_FIELD])["n_frames"]

    def decode(self, sample: dict) -> dict[str, np.ndarray]:
        tokens, actions, _ = token_spec.decode_token_sample(sample)
        return {"tokens": tokens.astype(np.int64), "actions": actions.astype(np.int64)}


SampleFormat = ClipWindows | TokenWindows


def shards_of_rank(shards: list[str], rank: int, world_size: int) -> list[str]:
    """The shards one rank reads: every world_size-th, so no two ranks share a shard."""
    if len(shards) < world_size:
        raise ShardError(f"{len(shards)} shards for {world_size} workers: write at least one shard per worker")
    return shards[rank::world_size]


class WindowStream(IterableDataset):
    """An endless, deterministic stream of window batches for one rank (see module doc)."""

    def __init__(self, config: DataConfig, sample_format: SampleFormat, shards: list[str], rank: int,
                 start_batch: int = 0):
        if not shards:
            raise ShardError(f"rank {rank} has no shards")
        self.config = config
        self.sample_format = sample_format
        self.shards = list(shards)
        self.rank = rank
        self.start_batch = start_batch
        self.bad_samples = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, processes = (info.id, info.num_workers) if info else (0, 1)
        # The DataLoader asks worker 0 first, so on a resume worker 0 plays the process
        # whose turn batch `start_batch` was.
        process = (worker + self.start_batch) % processes
        skip_batches = len(range(process, self.start_batch, processes))
        return self._batches(process, processes, skip_batches * self.config.batch_size)

    def _batches(self, process: int, processes: int, skip_windows: int) -> Iterator[dict[str, torch.Tensor]]:
        pending: list[dict[str, np.ndarray]] = []
        self.bad_samples = 0
        for block_index, block in enumerate(self._blocks(process, processes)):
            rng = np.random.default_rng([self.config.seed, self.rank, process, block_index])
            spans = self._spans(block, rng)
            if skip_windows >= len(spans):
                skip_windows -= len(spans)
                continue
            spans, skip_windows = spans[skip_windows:], 0
            for window in self._cut(block, spans):
                pending.append(window)
                if len(pending) == self.config.batch_size:
                    yield self._collate(pending)
                    pending = []

    def _blocks(self, process: int, processes: int) -> Iterator[list[dict]]:
        block: list[dict] = []
        for epoch in itertools.count():
            order = np.random.default_rng([self.config.seed, self.rank, epoch]).permutation(len(self.shards))
            mine = [self.shards[i] for i in order[process::processes]]
            clips_this_epoch = 0
            for sample in self._interleave(mine):
                clips_this_epoch += 1
                block.append(sample)
                if len(block) == self.config.shuffle_block_clips:
                    yield block
                    block = []
            if clips_this_epoch == 0:
                raise ShardError(f"no readable clips in {mine}")

    def _interleave(self, shards: list[str]) -> Iterator[dict]:
        queue = iter(shards)
        readers = [iter_samples(path) for path in itertools.islice(queue, self.config.interleave_shards)]
        while readers:
            for reader in list(readers):
                try:
                    yield next(reader)
                except StopIteration:
                    readers.remove(reader)
                    readers.extend(iter_samples(path) for path in itertools.islice(queue, 1))
                except ShardError as error:
                    log.warning("skipping the rest of a shard: %s", error)
                    self.bad_samples += 1
                    readers.remove(reader)
                    readers.extend(iter_samples(path) for path in itertools.islice(queue, 1))

    def _spans(self, block: list[dict], rng: np.random.Generator) -> list[tuple[int, int]]:
        """(clip index, first frame) of every window of the block, shuffled."""
        T = self.config.window_frames
        spans = []
        for index, sample in enumerate(block):
            try:
                n = self.sample_format.count_frames(sample)
            except (SchemaError, KeyError) as error:
                log.warning("dropping clip %s: %s", sample.get("__key__"), error)
                self.bad_samples += 1
                continue
            count = n // T
            if count:
                offset = int(rng.integers(0, n - count * T + 1))
                spans.extend((index, offset + k * T) for k in range(count))
        return [spans[i] for i in rng.permutation(len(spans))]

    def _cut(self, block: list[dict], spans: list[tuple[int, int]]) -> Iterator[dict[str, np.ndarray]]:
        T = self.config.window_frames
        decoded: dict[int, dict[str, np.ndarray] | None] = {}
        for index, start in spans:
            if index not in decoded:
                decoded[index] = self._decode(block[index])
            arrays = decoded[index]
            if arrays is None:
                continue
            n = max(len(array) for array in arrays.values())
            yield {name: array[start : start + T - (n - len(array))] for name, array in arrays.items()}

    def _decode(self, sample: dict) -> dict[str, np.ndarray] | None:
        try:
            return self.sample_format.decode(sample)
        except SchemaError as error:
            log.warning("dropping clip %s: %s", sample.get("__key__"), error)
            self.bad_samples += 1
            return None

    def _collate(self, windows: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        batch = {name: torch.from_numpy(np.stack([w[name] for w in windows])) for name in windows[0]}
        batch["bad_samples"] = torch.tensor(self.bad_samples)
        self.bad_samples = 0
        return batch


def window_loader(config: DataConfig, sample_format: SampleFormat, shards: list[str], rank: int,
                  start_batch: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over this rank's window stream, resuming at batch `start_batch`.

    Each batch: the format's arrays stacked to (B, T, ...) tensors (frames uint8, tokens and
    actions int64) plus 'bad_samples', the clips dropped since the process's previous batch.
    """
    processes = min(config.loader_processes, len(shards))
    stream = WindowStream(config, sample_format, shards, rank, start_batch)
    # Its own generator, so creating the loader leaves the training RNG (restored on resume) alone.
    return DataLoader(stream, batch_size=None, num_workers=processes, pin_memory=pin_memory,
                      prefetch_factor=4 if processes else None, generator=torch.Generator().manual_seed(config.seed))
