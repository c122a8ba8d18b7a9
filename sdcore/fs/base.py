"""The filesystem interface every backend (LocalFS, RemoteFS) implements, and the records it returns."""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from sdcore.errors import SdError
from sdcore.sdpath import display

CHUNK = 1 << 20  # bytes per read/write chunk
MAX_LISTED = 2_000_000
"""Entries of one folder taken from another device: a hostile one could list names without end, until this device
runs out of memory (a real folder of two million entries is rare enough to be told to list it there)."""


def too_many_listed(path: str) -> str:
    """What is said when another device lists more than MAX_LISTED entries in one folder."""
    return (f"the other device listed more than {MAX_LISTED:,} entries in {display(path)}: the rest is not taken "
            "(list it there, e.g. `sd ls` on that device)")  # fmt: skip

Source = Callable[[int], AsyncIterable[bytes]]
"""A file's bytes from an offset: what a resumable write asks for the bytes it still lacks."""
Reread = Callable[[], AsyncIterable[bytes]]
"""A file's bytes from its first: what a resumed write hashes to check the bytes an earlier run left."""


class FsError(SdError):
    """A filesystem call failed; the message names the path and the reason."""


class AccessDenied(FsError):
    """The filesystem refused this user access to the path (permission denied)."""


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """One directory entry as `list_dir` and `stat` report it (never follows symlinks)."""

    name: str
    kind: str  # "file" | "dir" | "symlink" | "fifo" | "socket" | "device" | "other"
    size: int
    mtime: float
    inode: int
    mode: int
    link_target: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def hidden(self) -> bool:
        return self.name.startswith(".")


def kind_of_mode(mode: int) -> str:
    if statmod.S_ISREG(mode):
        return "file"
    if statmod.S_ISDIR(mode):
        return "dir"
    if statmod.S_ISLNK(mode):
        return "symlink"
    if statmod.S_ISFIFO(mode):
        return "fifo"
    if statmod.S_ISSOCK(mode):
        return "socket"
    if statmod.S_ISCHR(mode) or statmod.S_ISBLK(mode):
        return "device"
    return "other"


NewFile = tuple[str, bytes, float | None, int | None]
"""A small new file for FileSystem.write_new_files: its path, bytes, mtime and mode."""


class FileSystem(Protocol):
    """What the core needs of a device's files. Paths are absolute POSIX str (fsdecoded)."""

    def list_dir(self, path: str, batch_size: int = 1000) -> AsyncIterator[list[EntryInfo]]:
        """Stream the entries of a directory in batches (order unspecified)."""
        ...

    async def stat(self, path: str) -> EntryInfo:
        """The entry at `path` (not following a final symlink). Raises NotFound if it is gone."""
        ...

    def open_read(self, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream a file's bytes from `offset` in chunks."""
        ...

    async def write_atomic(
        self, path: str, chunks: AsyncIterable[bytes], *, mtime: float | None = None, mode: int | None = None
    ) -> int:
        """Write to a temporary name beside `path`, fsync, rename into place; returns bytes written."""
        ...

    async def write_new_files(self, files: list[NewFile]) -> list[int | SdError] | None:
        """Write several whole new files at once (path, bytes, mtime, mode), each synced to disk before it is linked
        at its path, never replacing a file there: each one's size, or the error that kept it out (AlreadyExists when
        its name was taken). None when this device cannot (a peer too old): write them one by one instead."""
        ...

    async def write_resumable(
        self, path: str, source: Source, *, mtime: float | None = None, mode: int | None = None,
        reread: Reread | None = None,
    ) -> int:
        """Like write_atomic, but a write cut short (a pause, a kill, a lost connection) keeps its partial file,
        and the next call asks `source(offset)` only for the bytes still missing. Returns the size.

        The kept bytes are not trusted: `reread()` (the source again from its first byte) is hashed block by
        block and the partial file is kept only up to its first block that differs. Without `reread` the
        write starts from the first byte.
        """
        ...

    async def discard_resumable(self, path: str) -> None:
        """Delete what a resumable write to `path` left (the next one starts from the first byte)."""
        ...

    async def mkdir(self, path: str, parents: bool = False) -> None: ...

    async def rename(self, src: str, dst: str) -> None:
        """Rename within this filesystem; refuses to replace an existing `dst`."""
        ...

    async def trash(self, path: str) -> str:
        """Move to the freedesktop.org trash; returns the trashed file's path."""
        ...

    async def restore(self, key: str) -> str:
        """Put back what this filesystem's trash holds under `key` (its path in the trash, as `trash` returned
        it, or its original path); refuses to replace anything; returns where it went."""
        ...

    async def delete(self, path: str) -> None:
        """Delete permanently (a directory with its contents)."""
        ...

    async def cas_id(self, path: str) -> str | None:
        """The sampled content id (None for an empty file)."""
        ...

    async def full_hash(self, path: str) -> str:
        """The BLAKE3 of the whole file, as hex."""
        ...


def why_not_a_folder(path: str) -> str:
    """Why a local `path` is no folder, for people (os.path.lexists is False for a missing and a denied path alike)."""
    try:
        os.lstat(path)
    except PermissionError:
        return "cannot be reached (permission denied)"
    except OSError:
        return "does not exist"
    return "is not a directory"
