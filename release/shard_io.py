"""What a release needs of shards beyond streaming them (schemas/shard_io.py does that, and
writes them): a sample read at a byte offset (random access: building from ingest shards,
the card's contact sheet), the samples of a shard with their offsets and sizes (verify and
the takedown rewrite), and a release shard written atomically that reports its size and
sha256. Tar bytes are read and written by schemas/shard_io.py only, with its size limits.
"""

import hashlib
import io
import os
import pathlib
from collections.abc import Iterator

from schemas.shard_io import AtomicFile, ShardError, read_samples, resolve
from schemas.shard_io import ShardWriter as TarWriter

__all__ = ["ShardError", "ShardWriter", "file_digest", "iter_samples", "open_input", "read_sample_at"]


def open_input(location: str):
    """A random-access binary file for a local path or a pyarrow/fsspec URI."""
    filesystem, path = resolve(location)
    return filesystem.open_input_file(path)


def read_sample_at(file, offset: int, name: str = "shard") -> dict:
    """The sample whose first tar header is at byte `offset` of an open shard."""
    file.seek(offset)
    sample = next(read_samples(file, f"{name}@{offset}"), None)
    if sample is None:
        raise ShardError(f"{name}: no sample at offset {offset}")
    return sample


class _Counting(io.RawIOBase):
    """A read-only view of a file that counts bytes and remembers the last read's size."""

    def __init__(self, file) -> None:
        self.file, self.position, self.last = file, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.position += len(data)
        self.last = len(data)  # 0 at the end of the file: the sample then ends there
        return data


def iter_samples(file, name: str = "shard") -> Iterator[tuple[dict, int, int]]:
    """(sample, offset, size in bytes) of each sample of an open shard, in order.

    schemas/shard_io.read_samples yields a sample once it has read the header block after it
    (the next sample's first header, or the end-of-archive block), so the sample ends one
    block-read before the position at that moment.
    """
    counting = _Counting(file)
    start = 0
    for sample in read_samples(counting, name):
        end = counting.position - counting.last
        yield sample, start, end - start
        start = end


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, file) -> None:
        self.file, self.sha256, self.bytes = file, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.bytes

    def write(self, data) -> int:
        self.file.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)


class ShardWriter:
    """One release shard at `path`: `write(sample)` returns its (offset, size); `close()` ends the
    archive, commits the file (fsync, rename, fsync of the folder) and returns (bytes, sha256);
    `discard()`, or leaving a `with` block by an exception, removes the temporary."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._atomic = AtomicFile(pathlib.Path(path))
        self._hashing = _Hashing(self._atomic.file)
        self._tar = TarWriter(self._hashing)

    def write(self, sample: dict) -> tuple[int, int]:
        offset = self._tar.write(sample)
        return offset, self._tar.offset - offset

    def close(self) -> tuple[int, str]:
        self._tar.close()
        self._atomic.commit()
        return self._hashing.bytes, self._hashing.sha256.hexdigest()

    def discard(self) -> None:
        self._atomic.discard()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()


def file_digest(file, chunk_bytes: int = 4 * 1024**2) -> tuple[int, str]:
    """(bytes, sha256) of an open binary file, read from its start in chunks."""
    digest = hashlib.sha256()
    total = 0
    while chunk := file.read(chunk_bytes):
        digest.update(chunk)
        total += len(chunk)
    return total, digest.hexdigest()
