"""The Job base class, the registry of job kinds, and the context a running job reports through."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from typing import TYPE_CHECKING, Any, ClassVar

import msgpack

from sdcore.events import JobProgress
from sdcore.sdpath import DeviceId

if TYPE_CHECKING:
    from sdcore.fs.base import FileSystem
    from sdcore.library.library import Library

JOB_KINDS: dict[str, type[Job]] = {}
RATE_WINDOW = 1.0  # seconds a job's rate is measured over
# Modules that define job kinds, imported when a stored job of an unknown kind is to be rebuilt.
JOB_MODULES = ("sdcore.index.indexer", "sdcore.ops", "sdcore.net", "sdcore.sync.service")


def job_class(kind: str) -> type[Job] | None:
    """The class of a job kind, importing the modules that define jobs if need be."""
    if kind not in JOB_KINDS:
        import importlib

        for module in JOB_MODULES:
            importlib.import_module(module)
    return JOB_KINDS.get(kind)


class Job:
    """A unit of long work: a dataclass of its state plus `async run(ctx)`.

    Everything in the dataclass is saved (msgpack) at each `ctx.checkpoint()`; after a crash or a
    pause the job is rebuilt from that state and `run` is called again, so `run` must carry on
    from whatever its state says is done.
    """

    kind: ClassVar[str] = "job"
    undoable: ClassVar[bool] = False
    """Whether what it did goes into the library's undo history when it finishes (sdcore.ops.undo.job_finished)."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            JOB_KINDS[cls.kind] = cls

    async def run(self, ctx: JobContext) -> Any:
        raise NotImplementedError

    def location_id(self) -> int | None:
        """The location this job works on, if any (to resume it when the location opens)."""
        return None

    def describe(self) -> str:
        return self.kind

    def used_paths(self) -> list[str]:
        """The files and folders this job reads or writes, as canonical SdPath text (eject refuses a volume a
        running job uses); an index job's location is known by `location_id`."""
        return []

    async def cleanup(self, ctx: JobContext) -> None:
        """Called once when the job is canceled (remove temporary files, ...)."""


class JobPaused(Exception):
    """Raised at a checkpoint when the job was asked to pause."""


class JobCanceled(Exception):
    """Raised at a checkpoint when the job was asked to cancel."""


def pack_state(job: Job) -> bytes:
    return msgpack.packb(dataclasses.asdict(job), unicode_errors="surrogateescape")  # type: ignore[call-overload,no-any-return]


def unpack_state(kind: str, data: bytes) -> Job:
    cls = job_class(kind)
    assert cls is not None, kind
    return cls(**msgpack.unpackb(data, unicode_errors="surrogateescape", strict_map_key=False))


class JobContext:
    """What a running job sees: its library, progress reporting, and checkpoints."""

    def __init__(self, job_id: str, job: Job, library: Library, persistent: bool = True) -> None:
        self.job_id = job_id
        self.persistent = persistent
        self.job = job
        self.library = library
        self.pause_requested = False
        self.closing = False  # the core is shutting down: work in threads stops too, the job is interrupted
        self.cancel_requested = False
        self.done = 0
        self.total = 0
        self.unit = "items"
        self.message = ""
        self._rate_base: tuple[float, int] | None = None  # (when, done) the rate is measured from
        self.rate = 0.0

    @property
    def device_id(self) -> DeviceId:
        """The device the job runs on."""
        return self.library.context.device_id

    def fs_for(self, device_id: DeviceId) -> FileSystem:
        """The filesystem of a device the job works on (this one's or a paired one's)."""
        return self.library.context.fs_for(device_id)

    @property
    def should_stop(self) -> bool:
        return self.pause_requested or self.cancel_requested or self.closing

    def progress(self, done: int, total: int | None = None, message: str | None = None, unit: str | None = None) -> None:
        """Report progress (coalesced on the bus, so call it as often as you like)."""
        self._measure_rate(done)
        self.done = done
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        if unit is not None:
            self.unit = unit
        if self.persistent:
            self.library.context.bus.publish(
                JobProgress(self.job_id, self.job.kind, done, self.total, self.message, self.unit, self.rate)
            )

    def _measure_rate(self, done: int) -> None:
        """Units a second over the last second or so of this run (a resumed job's earlier work is not in it)."""
        now = time.monotonic()
        if self._rate_base is None:
            self._rate_base = (now, done)
            return
        since, base = self._rate_base
        if now - since >= RATE_WINDOW / 2:
            self.rate = max(done - base, 0) / (now - since)
        if now - since >= RATE_WINDOW:
            self._rate_base = (now, done)

    def save(self, conn: sqlite3.Connection) -> None:
        """Persist the job's state and progress inside the caller's write transaction."""
        if not self.persistent:
            return
        conn.execute(
            "UPDATE jobs SET checkpoint = ?, done = ?, total = ?, unit = ?, message = ?, updated = ? WHERE id = ?",
            (pack_state(self.job), self.done, self.total, self.unit, self.message, time.time(), self.job_id),
        )

    async def checkpoint(self) -> None:
        """Persist state; this is where a pause or cancel takes effect."""
        if self.cancel_requested:
            raise JobCanceled()
        await asyncio.to_thread(self._save_now)
        if self.pause_requested:
            raise JobPaused()

    def _save_now(self) -> None:
        with self.library.write() as conn:
            self.save(conn)

    def stop_point(self) -> None:
        """Raise at once if a pause or cancel was asked (call after `save` in your own transaction)."""
        if self.cancel_requested:
            raise JobCanceled()
        if self.pause_requested:
            raise JobPaused()
