"""Closing a descriptor without dropping the SQLite locks of a library open in this process.

POSIX record locks belong to the process and the inode: closing ANY descriptor of a file drops every lock the
process holds on it, SQLite's included. Were this process to read an open library's database.db (or its -wal or
-shm) and close it (`sd cp` of the .sdlibrary folder run by the core, a peer reading it over SFTP, the indexer
hashing it), another process closing the database as its last connection would take it for unused and delete
its WAL: the library's later writes would go to a deleted file. So, as SQLite's own unix VFS does, a descriptor of
such an inode is never closed while the library is open: `close` parks it, and the library's `release` closes it
after its connections are gone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

Inode = tuple[int, int]

MAX_PARKED = 64
"""Descriptors parked on one inode before a peer's further reads of it are refused (each read parks one until the
library closes: without a bound, a peer re-reading database.db could take every descriptor of the process)."""

_lock = threading.Lock()
_holders: dict[Inode, int] = {}  # inode of a database file of an open library -> how many open libraries hold it
_parked: dict[Inode, list[int]] = {}  # descriptors closed by a reader while their inode was held


def hold(files: Iterable[Path]) -> list[Inode]:
    """Register the inodes of `files` (those that exist) as holding SQLite locks of this process; what to
    `release` once the connections on them are closed."""
    held: list[Inode] = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            continue
        held.append((st.st_dev, st.st_ino))
    with _lock:
        for inode in held:
            _holders[inode] = _holders.get(inode, 0) + 1
    return held


def release(held: Iterable[Inode]) -> None:
    """Undo a `hold` (after the library's connections are closed): the descriptors parked on an inode no library
    holds any more are closed now."""
    to_close: list[int] = []
    with _lock:
        for inode in held:
            left = _holders.get(inode, 0) - 1
            if left > 0:
                _holders[inode] = left
                continue
            _holders.pop(inode, None)
            to_close.extend(_parked.pop(inode, ()))
    for fd in to_close:
        os.close(fd)


def close(fd: int, st: os.stat_result | None = None) -> None:
    """Close a descriptor a reader opened: `os.close`, unless it is of a database file of a library open in this
    process, then it is kept open (closing it would drop the library's locks) until that library is released.
    One fstat (none when the caller gives the descriptor's `st`, none while no library is open)."""
    if _holders:
        if st is None:
            try:
                st = os.fstat(fd)
            except OSError:
                st = None
        if st is not None:
            inode = (st.st_dev, st.st_ino)
            with _lock:
                if inode in _holders:
                    _parked.setdefault(inode, []).append(fd)
                    return
    os.close(fd)


def crowded(path: str, follow: bool = True) -> bool:
    """Whether `path` is a database file of a library open here whose parked descriptors reached MAX_PARKED: a
    peer's read of it is refused before it is opened (a stat, and only while a library is open)."""
    if not _holders:
        return False
    try:
        st = os.stat(path, follow_symlinks=follow)
    except OSError:
        return False
    with _lock:
        return len(_parked.get((st.st_dev, st.st_ino), ())) >= MAX_PARKED


def parked() -> int:
    """How many descriptors are parked now (for tests)."""
    with _lock:
        return sum(len(fds) for fds in _parked.values())
