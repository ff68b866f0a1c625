"""WebDataset tar shards from a local folder or a filesystem URI, read without unpickling.

A location is a folder of `*.tar` shards (hidden ones, such as a writer's `.tmp-*.tar`, are
skipped), one `.tar` file, or either as a URI that pyarrow.fs understands (`file://`,
`s3://`, `gs://`, `hdfs://`) or, failing that, fsspec (`memory://`, `gcs://`, ...). Samples are grouped the WebDataset way: a tar member
`dir/key.field.ext` belongs to sample `dir/key` as field `field.ext`, and a sample's members
are contiguous. Members are read into bytes and handed to a decoder that knows the sample
spec (schemas/shard.py, schemas/token_shard.py); nothing here interprets them.

The reader is the standard library's `tarfile` rather than the `webdataset` package so the
same code runs on machines without it (the GPU benchmark host has torch and pyarrow only);
tests check it against shards written by `webdataset.TarWriter`.
"""

import posixpath
import re
import tarfile
from collections.abc import Iterator

import pyarrow.fs as pafs

SHARD_SUFFIX = ".tar"
MAX_MEMBER_BYTES = 256 * 1024**2
# WebDataset's rule: the key is the path up to the first dot of the file name.
_KEY_FIELD = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")


class ShardError(ValueError):
    """A shard location or a shard's contents cannot be read."""


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path for a local path or a filesystem URI."""
    if "://" not in location:
        return pafs.LocalFileSystem(), posixpath.abspath(location)
    try:
        return pafs.FileSystem.from_uri(location)
    except (ValueError, NotImplementedError) as arrow_error:  # pyarrow.ArrowInvalid, ArrowNotImplementedError
        try:
            import fsspec
        except ImportError:
            raise ShardError(f"cannot open {location!r}: {arrow_error}") from None
        try:
            filesystem, path = fsspec.core.url_to_fs(location)
        except (ValueError, ImportError) as fsspec_error:
            raise ShardError(f"cannot open {location!r}: {fsspec_error}") from None
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path


def list_shards(locations: list[str] | tuple[str, ...]) -> list[str]:
    """Every shard in the given folders, files or URIs, as URIs or paths, sorted and unique."""
    shards = set()
    for location in locations:
        filesystem, path = resolve(location)
        info = filesystem.get_file_info(path)
        prefix = location[: location.index("://") + 3] if "://" in location else ""
        if info.type == pafs.FileType.File:
            shards.add(location if prefix else path)
        elif info.type == pafs.FileType.Directory:
            found = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
            shards.update(prefix + entry.path for entry in found if entry.type == pafs.FileType.File
                          and entry.path.endswith(SHARD_SUFFIX) and not entry.base_name.startswith("."))
        else:
            raise ShardError(f"shard location {location!r} does not exist")
    if not shards:
        raise ShardError(f"no {SHARD_SUFFIX} shards in {list(locations)}")
    return sorted(shards)


def iter_samples(shard: str) -> Iterator[dict]:
    """The shard's samples in order, each {'__key__', '__url__', field: bytes, ...}.

    Raises ShardError for a shard that is not a readable tar or has an oversized member;
    samples already yielded stay valid.
    """
    filesystem, path = resolve(shard)
    try:
        with filesystem.open_input_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as archive:
            sample: dict = {}
            for member in archive:
                if not member.isfile():
                    continue
                match = _KEY_FIELD.match(member.name)
                if match is None:
                    continue
                key, field = match.groups()
                if member.size > MAX_MEMBER_BYTES:
                    raise ShardError(f"{shard}: member {member.name!r} is {member.size} bytes, over the limit")
                if sample and sample["__key__"] != key:
                    yield sample
                    sample = {}
                if not sample:
                    sample = {"__key__": key, "__url__": shard}
                if field in sample:
                    raise ShardError(f"{shard}: sample {key!r} has field {field!r} twice")
                sample[field] = archive.extractfile(member).read()
            if sample:
                yield sample
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ShardError(f"{shard}: not a readable tar shard: {error}") from None

