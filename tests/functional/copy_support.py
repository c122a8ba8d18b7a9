"""What the tests of resumable copies share: a user who pauses a copy part of the way through its first file (a
remote read, or a local copy_file_range)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import ops
from sdcore.fs.base import FileSystem
from sdcore.jobs.manager import JobRecord
from sdcore.library.library import Library
from sdcore.ops import engine, localcopy
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


class PausedBigFile:
    """A local copy of `tmp_path/src` holding disk.img (40 MiB of random bytes), a MiB a copy_file_range call, that
    the user pauses at the 20th call of its first run (halfway through the file); `starts` tells where each run's
    first call began in the source."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, library: Library, tmp_path: Path) -> None:
        self.library = library
        self.src = tmp_path / "src"
        self.src.mkdir()
        (self.src / "disk.img").write_bytes(os.urandom(40 << 20))
        monkeypatch.setattr(localcopy, "RANGE_CHUNK", 1 << 20)
        self._real = os.copy_file_range
        monkeypatch.setattr(os, "copy_file_range", self._copy_range)
        self.starts: list[int] = []
        self.calls = 0
        self.job_id = ""

    def _copy_range(self, sfd: int, dfd: int, count: int) -> int:
        self.calls += 1
        if self.calls == 1:
            self.starts.append(os.lseek(sfd, 0, os.SEEK_CUR))
        if self.calls == 20 and len(self.starts) == 1:
            self.library.jobs.pause(self.job_id)
        return self._real(sfd, dfd, count)

    async def start(self, destination: SdPath) -> JobRecord:
        """Copy src/ into `destination` until the user pauses it: the paused job."""
        self.job_id = await ops.copy(self.library, [SdPath(destination.device_id, str(self.src))], destination)
        paused = await self.library.jobs.wait(self.job_id)
        assert paused.state == "paused"
        return paused

    async def resume(self) -> JobRecord:
        """Resume the copy to its end: the completed job."""
        self.calls = 0
        await self.library.jobs.resume(self.job_id)
        record = await self.library.jobs.wait(self.job_id)
        assert record.state == "completed", record.error
        return record
