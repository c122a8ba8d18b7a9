"""A resumable write on this machine's files: cut short, it keeps what arrived; carried on, it trusts none of it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.fs.local import LocalFS
from sdcore.fs.resumable import KEPT_BLOCK, partial_path

MiB = 1 << 20


def reader(data: bytes, starts: list[int], stop_at: int | None = None):  # type: ignore[no-untyped-def]
    async def source(offset: int) -> AsyncIterator[bytes]:
        starts.append(offset)
        for at in range(offset, len(data), MiB):
            if stop_at is not None and at >= stop_at:
                raise ConnectionError("the link dropped")
            yield data[at : at + MiB]

    return source


@pytest.mark.parametrize("damaged", [False, True])
async def test_a_write_cut_short_carries_on_after_the_bytes_that_still_match(
    tmp_path: Path, damaged: bool
) -> None:
    fs, data = LocalFS(), os.urandom(10 * MiB)
    target = str(tmp_path / "video.mkv")
    starts: list[int] = []
    with pytest.raises(ConnectionError):
        await fs.write_resumable(
            target, reader(data, starts, stop_at=9 * MiB), mtime=1_500_000_000.0, mode=0o640
        )
    partial = Path(partial_path(target))
    assert partial.stat().st_size == 9 * MiB and not os.path.exists(target)
    if damaged:  # a byte of the second block is not what was sent
        with partial.open("r+b") as f:
            f.seek(KEPT_BLOCK + 5)
            f.write(bytes([data[KEPT_BLOCK + 5] ^ 0xFF]))

    async def whole() -> AsyncIterator[bytes]:
        yield data

    size = await fs.write_resumable(
        target, reader(data, starts), mtime=1_500_000_000.0, mode=0o640, reread=whole
    )
    assert size == len(data) and Path(target).read_bytes() == data
    assert starts == [0, KEPT_BLOCK if damaged else 9 * MiB]  # what matches is kept, from the damaged block on sent again
    assert os.stat(target).st_mtime == 1_500_000_000.0 and os.stat(target).st_mode & 0o777 == 0o640
    assert not partial.exists()
    await fs.discard_resumable(target)  # nothing left to discard: no error
