"""An exclusive lock on a file, held for a `with` block: flock on POSIX, msvcrt.locking
on Windows. The lock file is empty; it only serialises writers.

flock belongs to the open file, not the process: taking the same lock twice in one
process, on two descriptors, waits for ever. So each store has a lock file of its own
(the session cache's `sessions.lock`, the file store's `store.lock`), always taken in
that order.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        acquire(fd)
        yield
    finally:
        os.close(fd)  # closing releases flock and msvcrt locks alike


def acquire(fd: int) -> None:
    """An exclusive lock on the file: flock on POSIX, msvcrt.locking on Windows."""
    try:
        import fcntl
    except ImportError:  # Windows
        _acquire_windows(fd)
        return
    fcntl.flock(fd, fcntl.LOCK_EX)  # type: ignore[attr-defined,unused-ignore]  # not on win32


def _acquire_windows(fd: int) -> None:
    # A lock on the first byte. LK_LOCK gives up with EDEADLOCK after 10 tries a second
    # apart; a writer holds it for one store round trip, so wait on.
    import errno
    import msvcrt

    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined,unused-ignore]
            return
        except OSError as err:
            if err.errno != errno.EDEADLK:
                raise
