"""Trees read through the FileSystem interface, and the pair of filesystems one transfer goes between."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sdcore.errors import NotFound
from sdcore.fs.base import AccessDenied, EntryInfo, FileSystem
from sdcore.fs.local import LocalFS
from sdcore.sdpath import SdPath, join


@dataclass(frozen=True)
class Pair:
    """The two filesystems of one source's transfer."""

    src_fs: FileSystem
    dst_fs: FileSystem
    local: bool  # both on this machine: files go kernel-side (copy_file_range)
    same_fs: bool  # a move within one filesystem: a rename
    src_device: uuid.UUID
    dst_device: uuid.UUID


def pair_of(fs_for: Callable[[uuid.UUID], FileSystem], src: SdPath, dst: SdPath, moving: bool) -> Pair:
    src_fs, dst_fs = fs_for(src.device_id), fs_for(dst.device_id)
    local = isinstance(src_fs, LocalFS) and isinstance(dst_fs, LocalFS)
    return Pair(src_fs, dst_fs, local, moving and local and _same_device(src, dst), src.device_id, dst.device_id)


def _same_device(src: SdPath, dst: SdPath) -> bool:
    try:
        return os.lstat(src.path).st_dev == os.lstat(os.path.dirname(dst.path)).st_dev
    except OSError:
        return False


def batches(fs: FileSystem, path: str) -> AsyncIterator[list[EntryInfo]]:
    return fs.list_dir(path)


async def stat_or_none(fs: FileSystem, path: str) -> EntryInfo | None:
    try:
        return await fs.stat(path)
    except NotFound:
        return None


async def by_name(fs: FileSystem, path: str) -> dict[str, EntryInfo]:
    """A directory's entries by name ({} when it is not there)."""
    try:
        return {e.name: e async for batch in batches(fs, path) for e in batch}
    except NotFound:
        return {}


async def sorted_listing(fs: FileSystem, path: str) -> list[EntryInfo]:
    """A directory's entries in the order of their names' bytes (the order a transfer's cursor follows)."""
    entries = [e async for batch in batches(fs, path) for e in batch]
    entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


async def walk(fs: FileSystem, path: str) -> AsyncIterator[EntryInfo]:
    """Every entry below a directory (depth first, not following symlinks); a folder this user may not read
    is passed over (a copy reports it when its turn comes)."""
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            async for batch in batches(fs, directory):
                for entry in batch:
                    yield entry
                    if entry.is_dir:
                        stack.append(join(directory, entry.name))
        except (NotFound, AccessDenied):
            continue
