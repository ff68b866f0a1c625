"""Shard I/O: the one reader and writer of the WebDataset tar layout, with every size limit, and
the one atomic file write of the project.

The layout (schemas/shard.py and schemas/token_shard.py say what a sample holds): a plain,
uncompressed tar whose members are `<key>.<field>`, a sample's fields adjacent. The writer
makes byte-deterministic tars (USTAR headers, fixed mtime, owner and mode, fields in sorted
order), so equal samples give equal bytes. The reader accepts any WebDataset tar (USTAR, GNU
or PAX headers) within these limits, each checked before the bytes it governs are read:

    MAX_MEMBER_BYTES   one field of one sample
    MAX_SAMPLE_BYTES   every field of one sample, MAX_SAMPLE_FIELDS fields at most
    MAX_HEADER_BYTES   a PAX or GNU long-name header's payload
    MAX_JSON_BYTES     a JSON field, nested MAX_JSON_DEPTH deep at most

and the field decoders check what a field's own header claims before decoding it: a PNG's
IHDR size and format against the size the spec expects, an .npy header's dtype and shape
against the shape the metadata gives. So decoding any sample costs a bounded amount of memory
(well under 64 MiB) whatever its headers claim. Compressed tars are refused (a small file
could hold gigabytes). Anything bad is a ShardError, the module's one error type; the
property tests (tests/test_shard_io_properties.py) hold it to that.

Atomic writes: AtomicFile writes a local file under a `.tmp-` name beside its final path and,
on commit, fsyncs the file, renames it into place and fsyncs the folder, so after a crash the
path holds the old file or the whole new one, never a torn one. `write_atomic` and
`atomic_output` (which also takes a pyarrow / fsspec URI) are its two short forms.

Locations: a folder of `*.tar` shards (hidden ones, such as a writer's `.tmp-*`, skipped), one
`.tar`, or either as a URI pyarrow.fs understands (`file://`, `s3://`, `gs://`, `hdfs://`) or,
failing that, fsspec (`memory://`, `gcs://`, ...).
"""

import contextlib
import errno
import io
import json
import os
import pathlib
import posixpath
import re
import secrets
import struct
import tarfile
from collections.abc import Callable, Iterator, Mapping

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from schemas.errors import GenieError
from schemas.ids import clip_id_problem
from schemas.validation import RowRule, SchemaError, validate_row

SHARD_SUFFIX = ".tar"
TEMPORARY_PREFIX = ".tmp-"
MAX_MEMBER_BYTES = 16 * 2**20
MAX_SAMPLE_BYTES = 32 * 2**20
MAX_SAMPLE_FIELDS = 16
MAX_HEADER_BYTES = 64 * 2**10
MAX_JSON_BYTES = 64 * 2**10
MAX_JSON_DEPTH = 8

_BLOCK = 512
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_SKIPPED_TYPES = (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)
# WebDataset's rule: the key is the path up to the first dot of the file name.
_KEY_FIELD = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
_WRITE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_WRITE_FIELD = re.compile(r"[a-z0-9][a-z0-9_]{0,15}(\.[a-z0-9_]{1,15}){0,2}")
_PAX_RECORD = re.compile(rb"(\d{1,10}) ")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ShardError(SchemaError, GenieError):
    """A shard location, a shard, or a sample in one breaks the layout, the spec or a limit."""


# --- atomic files ---------------------------------------------------------------------------


class AtomicFile:
    """A local file written through `.file` under a temporary name beside `path`.

    `commit()` makes it durable (fsync of the file, rename, fsync of the folder) and puts it in
    place at `path` (or the path given to commit); `discard()` removes it. As a context
    manager it commits on success and discards on an exception.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.path.with_name(f"{TEMPORARY_PREFIX}{self.path.name}-{os.getpid()}-{secrets.token_hex(4)}")
        self.file = open(self.temporary, "xb")

    def commit(self, path: str | os.PathLike | None = None) -> pathlib.Path:
        target = self.path if path is None else pathlib.Path(path)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temporary, target)
        fsync_folder(target.parent)
        return target

    def discard(self) -> None:
        self.file.close()
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (see AtomicFile)."""
    with AtomicFile(path) as atomic:
        atomic.file.write(data)


@contextlib.contextmanager
def atomic_output(location: str) -> Iterator[io.RawIOBase]:
    """A binary stream whose bytes appear at `location` (a path or URI) only once it closes
    without an exception: an AtomicFile locally, elsewhere a hidden partial object moved into
    place (an object store's rename; no fsync exists there)."""
    filesystem, path = resolve(location)
    if isinstance(filesystem, pafs.LocalFileSystem):
        with AtomicFile(path) as atomic:
            yield atomic.file
        return
    folder = posixpath.dirname(path)
    partial = f"{folder}/{TEMPORARY_PREFIX}{posixpath.basename(path)}-{secrets.token_hex(4)}"
    filesystem.create_dir(folder, recursive=True)
    try:
        with filesystem.open_output_stream(partial) as stream:
            yield stream
        filesystem.move(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(partial)
        raise


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where folders cannot be synced)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


# --- locations ------------------------------------------------------------------------------


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


# --- the tar layout -------------------------------------------------------------------------


class ShardWriter:
    """Writes samples ({'__key__': key, field: bytes, ...}) to a binary stream as a plain tar.

    Keys are [A-Za-z0-9_-]{1,64} (no dot, no slash: nothing from outside steers a member name),
    fields like `json` or `frames.png`; `close()` ends the archive (the stream stays open).
    """

    def __init__(self, stream) -> None:
        self._archive = tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT)

    @property
    def offset(self) -> int:
        """Bytes written so far: where the next sample's first header will be."""
        return self._archive.offset

    def write(self, sample: Mapping) -> int:
        """Append one sample; the byte offset of its first header."""
        key = sample.get("__key__")
        if not isinstance(key, str) or not _WRITE_KEY.fullmatch(key):
            raise ShardError(f"sample key {key!r} is not [A-Za-z0-9_-]{{1,64}}")
        fields = sorted(name for name in sample if not name.startswith("_"))
        if not 1 <= len(fields) <= MAX_SAMPLE_FIELDS:
            raise ShardError(f"sample {key!r} has {len(fields)} fields (1..{MAX_SAMPLE_FIELDS} allowed)")
        total = 0
        for field in fields:
            value = sample[field]
            if not _WRITE_FIELD.fullmatch(field) or not isinstance(value, bytes):
                raise ShardError(f"sample {key!r}: field {field!r} must be a lower-case name holding bytes")
            total += len(value)
            if len(value) > MAX_MEMBER_BYTES or total > MAX_SAMPLE_BYTES:
                raise ShardError(f"sample {key!r}: field {field!r} takes it over the size limits")
        offset = self._archive.offset
        for field in fields:
            member = tarfile.TarInfo(f"{key}.{field}")
            member.size, member.mode, member.mtime = len(sample[field]), 0o444, 0
            self._archive.addfile(member, io.BytesIO(sample[field]))
        return offset

    def close(self) -> None:
        self._archive.close()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def iter_samples(shard: str) -> Iterator[dict]:
    """The samples of the shard at a path or URI, in order, each {'__key__', '__url__', field:
    bytes, ...}. ShardError for anything unreadable or over a limit; samples already yielded
    stay valid."""
    filesystem, path = resolve(shard)
    try:
        with filesystem.open_input_stream(path) as stream:
            yield from read_samples(stream, shard)
    except ShardError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise ShardError(f"{shard}: cannot read: {error}") from None


def read_samples(stream, name: str) -> Iterator[dict]:
    """The samples of a plain tar read from a binary stream (`name` goes into errors and
    `__url__`). Members that are not `<key>.<field>` files are skipped."""
    sample: dict = {}
    sample_bytes = 0
    for member, read_data in _members(stream, name):
        match = _KEY_FIELD.match(member)
        if match is None or match.group(2).startswith("_"):
            read_data()
            continue
        key, field = match.groups()
        if sample and sample["__key__"] != key:
            yield sample  # whole: the next member's header has been read, not its data
            sample = {}
        data = read_data()
        if not sample:
            sample, sample_bytes = {"__key__": key, "__url__": name}, 0
        if field in sample:
            raise ShardError(f"{name}: sample {key!r} has field {field!r} twice")
        sample_bytes += len(data)
        if sample_bytes > MAX_SAMPLE_BYTES or len(sample) - 2 >= MAX_SAMPLE_FIELDS:
            raise ShardError(f"{name}: sample {key!r} is over {MAX_SAMPLE_BYTES} bytes or {MAX_SAMPLE_FIELDS} fields")
        sample[field] = data
    if sample:
        yield sample


def _members(stream, name: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(member name, a call that reads its data) of every regular file of a tar stream, every
    size checked first; the call must be made before the next member is asked for."""
    long_name: str | None = None
    pax: dict[str, str] = {}
    first = True
    while True:
        block = _read(stream, _BLOCK, name, partial=True)
        kinds = [kind for magic, kind in _COMPRESSED.items() if first and block.startswith(magic)]
        if kinds:
            raise ShardError(f"{name}: a {kinds[0]}-compressed tar; shards are plain tars")
        if 0 < len(block) < _BLOCK:
            raise ShardError(f"{name}: truncated inside a tar header")
        first = False
        if not block.strip(b"\0"):
            return  # end of archive (a zero block, or the stream's end at a block boundary)
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError) as error:
            raise ShardError(f"{name}: not a tar header ({error})") from None
        size = info.size
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            if not 0 <= size <= MAX_HEADER_BYTES:
                raise ShardError(f"{name}: a {size}-byte extended header (limit {MAX_HEADER_BYTES})")
            payload = _read(stream, _padded(size), name)[:size]
            if info.type == tarfile.XHDTYPE:
                pax = _pax_records(payload, name)
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        member = pax.get("path") or long_name or info.name
        if "size" in pax:
            size = _pax_size(pax["size"], name)
        long_name, pax = None, {}
        if not 0 <= size <= MAX_MEMBER_BYTES:
            raise ShardError(f"{name}: member {member!r} is {size} bytes (limit {MAX_MEMBER_BYTES})")
        if info.type in _FILE_TYPES:
            yield member, lambda size=size: _read(stream, _padded(size), name)[:size]
        elif info.type in _SKIPPED_TYPES:
            _read(stream, _padded(size), name)
        else:
            raise ShardError(f"{name}: member {member!r} has unsupported tar type {info.type!r}")


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _read(stream, size: int, name: str, partial: bool = False) -> bytes:
    """Exactly `size` bytes (size is always within a limit); with `partial`, what there is."""
    parts, missing = [], size
    while missing:
        part = stream.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    data = b"".join(parts)
    if missing and not partial:
        raise ShardError(f"{name}: truncated ({len(data)} of {size} bytes at the end)")
    return data


def _pax_records(payload: bytes, name: str) -> dict[str, str]:
    """A PAX header's `LENGTH key=value\\n` records."""
    records, position = {}, 0
    while position < len(payload) and payload[position] != 0:
        match = _PAX_RECORD.match(payload, position)
        length = int(match.group(1)) if match else 0
        record = payload[match.end() : position + length] if match else b""
        if not match or position + length > len(payload) or not record.endswith(b"\n") or b"=" not in record:
            raise ShardError(f"{name}: a malformed PAX header")
        key, value = record[:-1].split(b"=", 1)
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def _pax_size(text: str, name: str) -> int:
    if not re.fullmatch(r"\d{1,19}", text):
        raise ShardError(f"{name}: PAX size {text[:40]!r} is not a number")
    return int(text)


# --- bounded field decoders -----------------------------------------------------------------


def read_json(raw: bytes, field: str) -> dict:
    """A JSON object of at most MAX_JSON_BYTES bytes nested at most MAX_JSON_DEPTH deep."""
    if not isinstance(raw, bytes) or len(raw) > MAX_JSON_BYTES:
        raise ShardError(f"field {field!r} is not a JSON document of at most {MAX_JSON_BYTES} bytes")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _json_depth(raw) > MAX_JSON_DEPTH:
        raise ShardError(f"field {field!r} is nested deeper than {MAX_JSON_DEPTH}")
    try:
        row = json.loads(raw)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ShardError(f"field {field!r} is not JSON: {error}") from None
    if not isinstance(row, dict):
        raise ShardError(f"field {field!r} is not a JSON object")
    return row


def spec_rule(version: str) -> RowRule:
    """The rule every sample's metadata obeys: the reader's spec version, a valid clip id."""

    def rule(row: Mapping) -> str | None:
        if row["spec_version"] != version:
            return f"field 'spec_version': {row['spec_version']!r}, this reader knows {version!r}"
        problem = clip_id_problem(row["clip_id"])
        return f"field 'clip_id': {problem}" if problem else None

    return rule


def read_meta(raw: bytes, schema: pa.Schema, field: str, rules: tuple[RowRule, ...] = ()) -> dict:
    """A sample's JSON metadata, validated against `schema` and `rules`."""
    row = read_json(raw, field)
    try:
        validate_row(row, schema, rules=rules)
    except SchemaError as error:
        raise ShardError(str(error)) from None
    return row


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects, brackets inside strings ignored."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def png_size(raw: bytes, field: str) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR, which must say 8-bit RGB, not interlaced."""
    if not isinstance(raw, bytes) or len(raw) < 33 or raw[:8] != _PNG_SIGNATURE or raw[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise ShardError(f"field {field!r} is not a PNG")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", raw[16:29])
    if (depth, colour, interlace) != (8, 2, 0):
        raise ShardError(f"field {field!r}: PNG is not 8-bit RGB without interlacing (depth {depth}, colour type {colour})")
    return width, height


def decode_png(raw: bytes, width: int, height: int, field: str) -> np.ndarray:
    """A (height, width, 3) uint8 RGB image from a PNG whose IHDR says exactly that size;
    the size is checked before anything is decoded."""
    size = png_size(raw, field)
    if size != (width, height):
        raise ShardError(f"field {field!r}: PNG is {size[0]}x{size[1]}, the spec says {width}x{height}")
    try:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise ShardError(f"field {field!r}: PNG does not decode: {str(error).strip()[:200]}") from None
    if image is None or image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise ShardError(f"field {field!r}: PNG does not decode to {height}x{width} RGB")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


def read_npy(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], field: str) -> np.ndarray:
    """An .npy array that must be C-ordered `dtype` of exactly `shape`; its header is checked
    before any array memory exists, and nothing is ever unpickled."""
    buffer = io.BytesIO(raw if isinstance(raw, bytes) else b"")
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        read_header = readers.get(np.lib.format.read_magic(buffer))
        if read_header is None:
            raise ValueError("not .npy format version 1.0 or 2.0")
        found_shape, fortran_order, found_dtype = read_header(buffer, max_header_size=1024)
    except Exception as error:  # noqa: BLE001 - numpy's header parser documents no error set; any is a bad header
        raise ShardError(f"field {field!r} is not a plain .npy array: {error}") from None
    expected = np.dtype(dtype)
    if found_dtype != expected or fortran_order or tuple(found_shape) != tuple(shape):
        raise ShardError(f"field {field!r}: expected {expected} {tuple(shape)}, got {found_dtype} {tuple(found_shape)}"
                         f"{' in Fortran order' if fortran_order else ''}")
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - buffer.tell() != count * expected.itemsize:
        raise ShardError(f"field {field!r}: {len(raw) - buffer.tell()} data bytes for {count} {expected} values")
    return np.frombuffer(raw, expected, count, offset=buffer.tell()).reshape(shape).copy()
