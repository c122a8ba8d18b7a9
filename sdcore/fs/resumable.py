"""Resumable writes, for every backend: where the partial file lies and how its kept bytes are checked."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable

import blake3

KEPT_BLOCK = 4 << 20  # a resumed write checks the bytes kept by an earlier run in blocks of this size


def partial_path(path: str) -> str:
    """Where a resumable write to `path` keeps the bytes that arrived until it is finished."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.sdpart")


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
