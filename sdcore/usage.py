"""Disk usage: what each child of a folder holds, summed below it (what ncdu shows), by walking where the index
has no totals. Symlinks are counted as themselves, never followed."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator

from sdcore.errors import SdError
from sdcore.fs.base import FileSystem


def walk_total(path: str, stop: threading.Event) -> tuple[int, int]:
    """(bytes, files) below a folder of this machine; stops early (with what it counted) once `stop` is set."""
    size = files = 0
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
                    else:
                        size += st.st_size
                        files += 1
            except OSError:
                continue  # it opened but cannot be read on (a kernel's folder, a disk pulled out): what was read counts
    return size, files


async def total(fs: FileSystem | None, path: str) -> tuple[int, int]:
    """(bytes, files) below a folder: walked in a thread here (`fs` None), through `fs` on another device. Cancelling
    stops the walk."""
    if fs is None:
        stop = threading.Event()
        try:
            return await asyncio.shield(asyncio.to_thread(walk_total, path, stop))
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


async def totals(fs: FileSystem | None, folders: list[str]) -> AsyncIterator[tuple[str, int, int]]:
    """(folder, bytes, files) for each folder, as each walk ends."""
    for folder in folders:
        size, files = await total(fs, folder)
        yield folder, size, files
