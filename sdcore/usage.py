"""Disk usage: what each child of a folder holds, summed below it (what ncdu shows), by walking where the index
has no totals. Symlinks are counted as themselves, never followed.

Two measures, as `du` has: the disk's blocks a file takes (st_blocks × 512, the default: a sparse file or /proc/kcore
takes little or nothing, a folder its own blocks too) and its apparent size (st_size, `du --apparent-size`). A file of
several hard links is counted once in a whole view, where it is first met."""

from __future__ import annotations

import asyncio
import os
import stat as statmod
import threading

from sdcore.errors import SdError
from sdcore.fs.base import FileSystem

Seen = set[tuple[int, int]]
"""(device, inode) of the files of several links counted so far in one view."""


def held(st: os.stat_result, apparent: bool, seen: Seen) -> int | None:
    """What a stat'ed entry adds: its blocks (or apparent size); None when it is a hard link already counted."""
    if st.st_nlink > 1 and not statmod.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return None
        seen.add(key)
    return st.st_size if apparent else st.st_blocks * 512


def walk_total(path: str, stop: threading.Event, apparent: bool = False, seen: Seen | None = None) -> tuple[int, int]:
    """(bytes, files) below a folder of this machine, the folder's own blocks included (as `du -s` counts it); stops
    early (with what it counted) once `stop` is set."""
    seen = set() if seen is None else seen
    size = files = 0
    try:
        size = 0 if apparent else os.lstat(path).st_blocks * 512
    except OSError:
        pass
    stack = [path]
    while stack and not stop.is_set():
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue  # unreadable: counted as empty, as du would say
        with it:
            try:
                for dirent in it:
                    try:
                        st = dirent.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if dirent.is_dir(follow_symlinks=False):
                        stack.append(dirent.path)
                        if not apparent:
                            size += st.st_blocks * 512
                        continue
                    adds = held(st, apparent, seen)
                    if adds is not None:
                        size += adds
                        files += 1
            except OSError:
                continue  # it opened but cannot be read on (a kernel's folder, a disk pulled out): what was read counts
    return size, files


def files_held(paths: list[str], apparent: bool, seen: Seen) -> list[int | None]:
    """What each file of this machine adds (None: gone, or a hard link already counted)."""
    found: list[int | None] = []
    for path in paths:
        try:
            found.append(held(os.lstat(path), apparent, seen))
        except OSError:
            found.append(None)
    return found


async def total(fs: FileSystem | None, path: str, apparent: bool = True, seen: Seen | None = None) -> tuple[int, int]:
    """(bytes, files) below a folder: walked in a thread here (`fs` None), through `fs` on another device (apparent
    sizes only: a filesystem's listing has no blocks). Cancelling stops the walk."""
    if fs is None:
        stop = threading.Event()
        try:
            return await asyncio.shield(asyncio.to_thread(walk_total, path, stop, apparent, seen))
        except asyncio.CancelledError:
            stop.set()
            raise
    size = files = 0
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            async for batch in fs.list_dir(folder):
                for info in batch:
                    if info.is_dir:
                        stack.append(os.path.join(folder, info.name))
                    else:
                        size += info.size
                        files += 1
        except (OSError, SdError):
            continue  # unreadable, or gone meanwhile
    return size, files

