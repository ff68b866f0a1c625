"""Reading and writing release shards: the one place release code touches tar bytes.

A release shard is a plain USTAR tar in WebDataset's layout (members `<key>.<field>`, a
sample's fields adjacent, in sorted order) whose headers carry nothing but name and size
(mtime 0, uid/gid 0, no owner names, mode 0444), so equal samples in equal order give equal
bytes on any machine. Shards are written under a temporary name, fsynced, and renamed.
"""

import hashlib
import io
import os
import pathlib
import tarfile
from collections.abc import Iterator

from train.shards import resolve

BLOCK = tarfile.BLOCKSIZE
MAX_MEMBER_BYTES = 256 * 1024**2
TEMPORARY_PREFIX = ".tmp-"


class ShardFormatError(ValueError):
    """A shard's bytes are not a tar in the expected layout."""


def open_input(location: str):
    """A random-access binary file for a local path or a pyarrow/fsspec URI."""
    filesystem, path = resolve(location)
    return filesystem.open_input_file(path)


def sample_key(member_name: str) -> tuple[str, str]:
    """(key, field) of a member name: the key is everything before the first dot of the file name."""
    folder, _, base = member_name.rpartition("/")
    stem, dot, field = base.partition(".")
    if not stem or not dot or not field:
        raise ShardFormatError(f"member {member_name!r} is not <key>.<field>")
    return (f"{folder}/{stem}" if folder else stem), field


def member_bytes(size: int) -> int:
    """Bytes a member of `size` takes in a tar: its header plus its data padded to blocks."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def read_sample_at(file, offset: int) -> dict:
    """The sample whose first header is at `offset` of an open shard: {'__key__', field: bytes}.

    Reads headers one by one (seeking, never scanning the shard); the sample ends at the
    first member of another key, the end-of-archive block or the end of the file.
    """
    sample: dict = {}
    position = offset
    while True:
        file.seek(position)
        header = file.read(BLOCK)
        if len(header) < BLOCK or header == bytes(BLOCK):
            break
        try:
            info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
        except tarfile.TarError as error:
            if not sample:
                raise ShardFormatError(f"no tar header at offset {offset}: {error}") from None
            break
        key, field = sample_key(info.name)
        if sample and key != sample["__key__"]:
            break
        if not info.isfile() or info.size > MAX_MEMBER_BYTES:
            raise ShardFormatError(f"member {info.name!r} at offset {position} is not a file of at most {MAX_MEMBER_BYTES} bytes")
        if field in sample:
            raise ShardFormatError(f"sample {key!r} has field {field!r} twice")
        sample.setdefault("__key__", key)
        data = file.read(info.size)
        if len(data) != info.size:
            raise ShardFormatError(f"member {info.name!r} is truncated")
        sample[field] = data
        position += member_bytes(info.size)
    if not sample:
        raise ShardFormatError(f"no sample at offset {offset}")
    return sample


def iter_samples(file) -> Iterator[tuple[dict, int, int]]:
    """(sample, offset, size in bytes) for each sample of an open shard, in order.

    Raises ShardFormatError on anything that is not a regular `<key>.<field>` member, a
    field repeated in a sample, or a key that comes back after another key.
    """
    sample: dict = {}
    seen: set[str] = set()
    start = end = 0
    try:
        with tarfile.open(fileobj=file, mode="r|") as archive:
            for member in archive:
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise ShardFormatError(f"member {member.name!r} is not a file of at most {MAX_MEMBER_BYTES} bytes")
                key, field = sample_key(member.name)
                if sample and key != sample["__key__"]:
                    yield sample, start, end - start
                    sample = {}
                if not sample:
                    if key in seen:
                        raise ShardFormatError(f"sample {key!r} appears twice")
                    seen.add(key)
                    sample, start = {"__key__": key}, member.offset
                if field in sample:
                    raise ShardFormatError(f"sample {key!r} has field {field!r} twice")
                sample[field] = archive.extractfile(member).read()
                end = member.offset_data + -(-member.size // BLOCK) * BLOCK
    except (tarfile.TarError, EOFError) as error:
        raise ShardFormatError(f"not a readable tar: {error}") from None
    if sample:
        yield sample, start, end - start


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, file) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.bytes = 0

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
    """Writes samples into one shard at `path` (local or a mounted shared filesystem).

    `write(sample)` returns the sample's (offset, size); `close()` ends the archive, fsyncs,
    renames the temporary into place and returns (bytes, sha256). Leaving a `with` block by an
    exception removes the temporary instead.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = self.path.with_name(f"{TEMPORARY_PREFIX}{self.path.name}-{os.getpid()}")
        self._file = open(self._temporary, "wb")
        self._hashing = _HashingFile(self._file)
        self._tar = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.USTAR_FORMAT)
        self.samples = 0

    def write(self, sample: dict) -> tuple[int, int]:
        start = self._tar.offset
        key = sample["__key__"]
        for field in sorted(name for name in sample if not name.startswith("__")):
            data = sample[field]
            member = tarfile.TarInfo(f"{key}.{field}")
            member.size, member.mode, member.mtime = len(data), 0o444, 0
            self._tar.addfile(member, io.BytesIO(data))
        self.samples += 1
        return start, self._tar.offset - start

    def close(self) -> tuple[int, str]:
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.path)
        return self._hashing.bytes, self._hashing.sha256.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)

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


def remove_temporaries(folder: str | os.PathLike) -> None:
    """Delete what a killed build left under temporary names."""
    for path in pathlib.Path(folder).glob(f"**/{TEMPORARY_PREFIX}*"):
        path.unlink(missing_ok=True)
