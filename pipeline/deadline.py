"""A hard wall-clock limit on a block of network code, in whatever thread it runs.

Socket timeouts bound each wait for a byte, not a whole transfer: a server that sends one
byte a second never trips them, and yt-dlp reads a block at a time, so its progress hooks may
not run for minutes. `deadline(seconds)` starts a watchdog thread that, once the time is up,
raises DeadlineExceeded in the guarded thread (CPython's PyThreadState_SetAsyncExc). The
exception lands at the next Python bytecode that thread runs: within one drip of a dripping
server (every socket read passes through Python's socket.SocketIO), within the socket
timeout of a silent one. It derives from BaseException so that `except Exception` in library
code does not swallow it (yt-dlp's handlers re-raise BaseException); catch it right around
the block. It is sent once, and withdrawn if the block ends before it lands, so it never
reaches code after the block.
"""

import contextlib
import ctypes
import threading
from collections.abc import Iterator


class DeadlineExceeded(BaseException):
    """The guarded block ran past its deadline."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DeadlineExceeded in this thread if the block runs longer than `seconds`."""
    target = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()
    sent = False

    def watch() -> None:
        nonlocal sent
        if finished.wait(seconds):
            return
        with lock:
            if not finished.is_set():
                _raise_in(target, DeadlineExceeded)
                sent = True

    watchdog = threading.Thread(target=watch, name="deadline", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        with lock:
            finished.set()
            if sent:
                _raise_in(target, None)  # withdraw it if it has not landed yet
        watchdog.join()


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> None:
    """Schedule `exception` in a thread, or (None: a NULL pointer) clear the one scheduled."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None)
