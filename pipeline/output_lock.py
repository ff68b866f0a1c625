"""One job per output folder: an exclusive lock on `<output_dir>/.lock`, held for the whole run.

A second job on the same folder would delete the first one's in-flight temporaries when it
cleans up at start, so it must fail at once, and say who holds the folder. The lock is an
flock (the kernel drops it when the holding process dies, however it dies), and the file
records the holder (host, pid, start time) for the message. A lock file left by a dead
process is not held, so the next job simply takes it over. On a cluster only the driver
holds it; `output_dir` on NFS works when the mount supports locks (Linux maps flock to
NFS byte-range locks).
"""

import datetime as dt
import fcntl
import json
import os
import pathlib
import socket

LOCK_FILE = ".lock"


class OutputLocked(RuntimeError):
    """Another live job holds the output folder."""


class OutputLock:
    """`with OutputLock(output_dir):` holds the folder for the block; OutputLocked if taken."""

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.path = pathlib.Path(output_dir) / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode(errors="replace").strip() or "an unknown process"
            os.close(descriptor)
            raise OutputLocked(f"{self.path.parent} is in use by another ingest job ({holder}); "
                               "one job per output_dir at a time") from None  # fmt: skip
        holder = {"host": socket.gethostname(), "pid": os.getpid(),
                  "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode(), 0)
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.ftruncate(self._descriptor, 0)
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
