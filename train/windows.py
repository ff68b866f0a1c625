"""Shuffled batches of T-frame windows cut from the clips of WebDataset shards.

Why loaders in each training worker rather than Ray Data streaming (benchmarks/loader.py,
benchmarks/RESULTS.md): decoding the PNG strips is nearly the whole cost either way, but
here it runs at ~580 windows/s per core against ~190 through Ray Data (no Arrow tensor
columns, object store or task scheduling in between), one core already feeds ~10x what the
small tokenizer consumes on an H100, and the stream is a pure function of (seed, rank,
epoch, block), so a checkpoint stores its position in a few integers and a resumed run
continues with exactly the batches it would have seen; Ray Data's streaming split has no
resumable position.

The stream of one rank, split over its P DataLoader processes ("streams"):
- the rank owns shards[rank::world_size] (no overlap between ranks); each epoch shuffles
  them with rng(seed, rank, epoch) and stream s reads every P-th one;
- clips are taken round-robin from `interleave_shards` open shards and grouped into blocks
  of `shuffle_block_clips` clips; each clip of n >= T frames gives n // T non-overlapping
  windows at a random offset; a block's windows are shuffled together;
- consecutive windows form batches; the DataLoader yields stream 0's batch, then stream
  1's, and so on, so the i-th batch of the rank is deterministic.
Each batch carries its stream's position after it: (epoch, block, windows of the block
consumed). Resuming from those positions skips earlier epochs outright and, within the
current epoch, reads the consumed blocks' samples without decoding them.
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
from schemas.shard_io import ShardError, iter_samples

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


Position = tuple[int, int, int]  # (epoch, block in epoch, windows of the block consumed)


class WindowStream(IterableDataset):
    """An endless, deterministic stream of window batches for one rank (see module doc)."""

    def __init__(self, config: DataConfig, sample_format: SampleFormat, shards: list[str], rank: int,
                 start_batch: int = 0, positions: list[Position] | None = None):
        if not shards:
            raise ShardError(f"rank {rank} has no shards")
        self.config = config
        self.sample_format = sample_format
        self.shards = list(shards)
        self.rank = rank
        self.start_batch = start_batch
        self.positions = positions
        self.bad_samples = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, processes = (info.id, info.num_workers) if info else (0, 1)
        # The DataLoader asks worker 0 first, so on a resume worker 0 plays the process
        # (the "stream") whose turn batch `start_batch` was.
        stream = (worker + self.start_batch) % processes
        start = self.positions[stream] if self.positions else (0, 0, 0)
        return self._batches(stream, processes, start)

    def _batches(self, stream: int, processes: int, start: Position) -> Iterator[dict[str, torch.Tensor]]:
        pending: list[dict[str, np.ndarray]] = []
        self.bad_samples = 0
        first_epoch, first_block, consumed = start
        for epoch in itertools.count(first_epoch):
            for block_index, block in enumerate(self._blocks(stream, processes, epoch)):
                if epoch == first_epoch and block_index < first_block:
                    continue  # consumed before the resume: read, never decoded
                rng = np.random.default_rng([self.config.seed, self.rank, stream, epoch, block_index])
                spans = self._spans(block, rng)
                skip = consumed if (epoch, block_index) == (first_epoch, first_block) else 0
                for index, window in self._cut(block, spans, skip):
                    pending.append(window)
                    if len(pending) == self.config.batch_size:
                        yield self._collate(pending, stream, (epoch, block_index, index + 1))
                        pending = []

    def _blocks(self, stream: int, processes: int, epoch: int) -> Iterator[list[dict]]:
        """The epoch's clips for this stream, in blocks of shuffle_block_clips (the last may be short)."""
        order = np.random.default_rng([self.config.seed, self.rank, epoch]).permutation(len(self.shards))
        mine = [self.shards[i] for i in order[stream::processes]]
        block: list[dict] = []
        clips = 0
        for sample in self._interleave(mine):
            clips += 1
            block.append(sample)
            if len(block) == self.config.shuffle_block_clips:
                yield block
                block = []
        if block:
            yield block
        if clips == 0:
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
                except Exception as error:  # noqa: BLE001 - one bad shard never stops training
                    log.warning("skipping the rest of a shard: %s", _describe(error))
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
            except Exception as error:  # noqa: BLE001 - one bad sample never stops training
                log.warning("dropping clip %s: %s", sample.get("__key__"), _describe(error))
                self.bad_samples += 1
                continue
            count = n // T
            if count:
                offset = int(rng.integers(0, n - count * T + 1))
                spans.extend((index, offset + k * T) for k in range(count))
        return [spans[i] for i in rng.permutation(len(spans))]

    def _cut(self, block: list[dict], spans: list[tuple[int, int]], skip: int) -> Iterator[tuple[int, dict]]:
        """(span index, window) for spans[skip:]; a clip that fails to decode loses its windows."""
        T = self.config.window_frames
        decoded: dict[int, dict[str, np.ndarray] | None] = {}
        for span_index in range(skip, len(spans)):
            index, start = spans[span_index]
            if index not in decoded:
                decoded[index] = self._decode(block[index])
            arrays = decoded[index]
            if arrays is None:
                continue
            n = max(len(array) for array in arrays.values())
            yield span_index, {name: array[start : start + T - (n - len(array))] for name, array in arrays.items()}

    def _decode(self, sample: dict) -> dict[str, np.ndarray] | None:
        try:
            return self.sample_format.decode(sample)
        except Exception as error:  # noqa: BLE001 - one bad sample never stops training
            log.warning("dropping clip %s: %s", sample.get("__key__"), _describe(error))
            self.bad_samples += 1
            return None

    def _collate(self, windows: list[dict[str, np.ndarray]], stream: int, position: Position) -> dict[str, torch.Tensor]:
        batch = {name: torch.from_numpy(np.stack([w[name] for w in windows])) for name in windows[0]}
        batch["bad_samples"] = torch.tensor(self.bad_samples)
        batch["stream"] = torch.tensor(stream)
        batch["position"] = torch.tensor(position)  # where this stream resumes after this batch
        self.bad_samples = 0
        return batch


def _describe(error: Exception) -> str:
    """A dropped sample's reason; an error other than ShardError is a bug in a decoder, so it is named."""
    return str(error) if isinstance(error, ShardError) else f"{type(error).__name__}: {error}"


def window_loader(config: DataConfig, sample_format: SampleFormat, shards: list[str], rank: int,
                  start_batch: int = 0, positions: list[Position] | None = None, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over this rank's window stream, resuming after `start_batch` batches at `positions`.

    Each batch: the format's arrays stacked to (B, T, ...) tensors (frames uint8, tokens and
    actions int64), 'bad_samples' (clips dropped since the stream's previous batch), 'stream'
    (which loader stream made it) and 'position' (where that stream resumes after it).
    """
    processes = min(config.loader_processes, len(shards))
    if positions is not None and len(positions) != max(1, processes):
        raise ValueError(f"{len(positions)} stream positions for {max(1, processes)} loader streams")
    stream = WindowStream(config, sample_format, shards, rank, start_batch, positions)
    # Its own generator, so creating the loader leaves the training RNG (restored on resume) alone.
    return DataLoader(stream, batch_size=None, num_workers=processes, pin_memory=pin_memory,
                      prefetch_factor=4 if processes else None, generator=torch.Generator().manual_seed(config.seed))


def streams_of(config: DataConfig, shards: list[str]) -> int:
    """How many loader streams a rank with these shards runs (one per DataLoader process)."""
    return max(1, min(config.loader_processes, len(shards)))
