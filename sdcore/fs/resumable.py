"""Resumable writes, for every backend: where the partial file lies and how its kept bytes are checked."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterable

import blake3

KEPT_BLOCK = 4 << 20  # a resumed write checks the bytes kept by an earlier run in blocks of this size


def partial_path(path: str) -> str:
    """Where a resumable write to `path` keeps the bytes that arrived until it is finished."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.sdpart")


def open_kept(path: str, dir_fd: int | None = None) -> int | None:
    """The file an earlier run left at `path` (in the open folder `dir_fd` if given), open to be carried on;
    None when there is none.

    Only a regular file of this user with no other name is carried on: a link planted there (symbolic or hard)
    would have the copy written into the file it names. Anything else there is unlinked (the link, never its file).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        os.unlink(path, dir_fd=dir_fd)
        return None
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_nlink == 1:
        return fd
    os.close(fd)
    os.unlink(path, dir_fd=dir_fd)
    return None


def keep_matching(fd: int, block: int, digests: list[bytes]) -> int:
    """Cut the file open at `fd` after its leading blocks whose BLAKE3 match `digests`, in order; returns its size."""
    kept = 0
    for digest in digests:
        data = os.pread(fd, block, kept)
        if not data or blake3.blake3(data).digest() != digest:
            break
        kept += len(data)
    if kept < os.fstat(fd).st_size:
        os.ftruncate(fd, kept)
    return kept


async def block_digests(chunks: AsyncIterable[bytes], length: int) -> list[bytes]:
    """BLAKE3 of each KEPT_BLOCK of the first `length` bytes of `chunks` (the last block may be shorter)."""
    digests: list[bytes] = []
    hasher, filled, seen = blake3.blake3(), 0, 0
    try:
        async for chunk in chunks:
            view = memoryview(chunk)[: length - seen]
            seen += len(view)
            while view:
                take = view[: KEPT_BLOCK - filled]
                hasher.update(take)
                filled += len(take)
                view = view[len(take) :]
                if filled == KEPT_BLOCK:
                    digests.append(hasher.digest())
                    hasher, filled = blake3.blake3(), 0
            if seen >= length:
                break
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()  # a read handle there is closed now, not when the generator is collected
    if filled:
        digests.append(hasher.digest())
    return digests
