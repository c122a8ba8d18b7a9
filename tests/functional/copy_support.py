"""What the tests of resumable copies share: a user who pauses a copy part of the way through its first file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sdcore import ops
from sdcore.fs.base import FileSystem
from sdcore.library.library import Library
from sdcore.ops import engine
from sdcore.sdpath import SdPath


class PausedCopy:
    """Copies of `library` whose first read of a source pauses the job once it has sent `after` bytes (0: after its
    first chunk); `offsets` tells where each read of a source began (the resumed run's too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, library: Library, after: int = 0) -> None:
        self.library, self.after = library, after
        self.offsets: list[int] = []
        self.job_id = ""
        self._read = engine._read
        monkeypatch.setattr(engine, "_read", self._pausing_read)

    async def start(self, sources: list[SdPath], destination: SdPath) -> str:
        """Copy, and wait until the copy has paused; its job id."""
        self.job_id = await ops.copy(self.library, sources, destination)
        assert (await self.library.jobs.wait(self.job_id)).state == "paused"
        return self.job_id

    async def _pausing_read(self, fs: FileSystem, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        self.offsets.append(offset)
        sent = 0
        async for chunk in self._read(fs, path, offset):
            yield chunk
            sent += len(chunk)
            if len(self.offsets) == 1 and sent >= self.after:
                self.library.jobs.pause(self.job_id)
