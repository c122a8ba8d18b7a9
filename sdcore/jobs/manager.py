"""The job manager of a library: starts, pauses, resumes and cancels jobs, and keeps them in the database."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from sdcore.errors import NotFound, SdError
from sdcore.events import JobStateChanged
from sdcore.jobs.job import Job, JobCanceled, JobContext, JobPaused, job_class, pack_state, unpack_state
from sdcore.jobs.results import decode_result
from sdcore.library.damage import DiskFull, LibraryDamaged
from sdcore.log import unexpected

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
RESUMABLE = ("paused", "interrupted", "failed")
FINISHED = ("completed", "canceled")


@dataclass(frozen=True)
class JobRecord:
    """A job as the database knows it."""

    id: str
    kind: str
    state: str
    done: int
    total: int
    unit: str
    message: str
    error: str | None
    location_id: int | None
    created: float
    updated: float
    stored_result: Any = None  # what a finished job returned, as the jobs table stores it (msgpack)

    @property
    def result(self) -> Any:
        """The typed result of a finished job (TransferResult, DeleteResult, PathResult, IndexResult); other kinds'
        results as stored."""
        return decode_result(self.kind, self.stored_result)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class JobManager:
    """Runs a library's jobs as asyncio tasks; their rows in `jobs` survive the process."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._running: dict[str, tuple[asyncio.Task[Any], JobContext]] = {}
        self._unstored: dict[str, tuple[str, str]] = {}  # job id -> (state, error) a damaged library refused to store
        # jobs a process cut off are marked interrupted when this one takes the library's lock (Library.hold_lock)

    async def start(self, job: Job) -> str:
        """Persist a new job and start it; returns its id."""
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self.library.write() as db:
            db.execute(
                "INSERT INTO jobs (id, name, state, checkpoint, location_id, created, updated, message)"
                " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, job.kind, pack_state(job), job.location_id(), now, now, job.describe()),
            )
        self._launch(job_id, job)
        return job_id

    def _launch(self, job_id: str, job: Job, record: JobRecord | None = None) -> None:
        ctx = JobContext(job_id, job, self.library)
        if record is not None:  # resumed: its progress so far stands until it reports anew
            ctx.done, ctx.total, ctx.unit, ctx.message = record.done, record.total, record.unit, record.message
        task = asyncio.get_running_loop().create_task(self._run(ctx), name=f"job-{job.kind}-{job_id}")
        self._running[job_id] = (task, ctx)

    async def _run(self, ctx: JobContext) -> None:
        try:
            self._set_state(ctx, "running")
            result = await ctx.job.run(ctx)
        except JobPaused:
            self._set_state(ctx, "paused")
        except JobCanceled:
            try:
                await ctx.job.cleanup(ctx)
            finally:
                self._set_state(ctx, "canceled")
        except asyncio.CancelledError:  # the core is shutting down: resumable next time
            self._set_state(ctx, "interrupted")
            raise
        except DiskFull as exc:  # resumable once space is freed, from its last checkpoint (the failed batch rolled back)
            self._set_state(ctx, "paused", str(exc), save=False)
        except SdError as exc:
            self._set_state(ctx, "failed", str(exc))
        except Exception as exc:  # logged with its traceback; the job's error is a sentence naming the log
            self._set_state(ctx, "failed", unexpected(exc, ctx.job.describe()))
        else:
            await self._remember_for_undo(ctx, result)
            self._set_state(ctx, "completed", result=result)
        finally:
            self._running.pop(ctx.job_id, None)

    async def _remember_for_undo(self, ctx: JobContext, result: Any) -> None:
        """A finished rename, move or trash goes into the library's undo history (before anyone hears it is done)."""
        if not ctx.job.undoable:
            return  # nor is sdcore.ops loaded for the others (an index)
        from sdcore.ops import undo

        try:
            await undo.job_finished(self.library, ctx.job, result, ctx.job_id)
        except Exception:  # noqa: BLE001 - the job did its work; only its undo is lost
            log.warning("job %s: could not record it for undo", ctx.job_id, exc_info=True)

    def _set_state(
        self, ctx: JobContext, state: str, error: str | None = None, result: Any = None, save: bool = True
    ) -> None:
        try:
            with self.library.write() as db:
                if save and state in ("paused", "failed", "completed"):  # interrupted anywhere: its last checkpoint stands
                    ctx.save(db)
                db.execute(
                    "UPDATE jobs SET state = ?, error = ?, result = ?, updated = ? WHERE id = ?",
                    (state, error, msgpack.packb(result, unicode_errors="surrogateescape"), time.time(), ctx.job_id),
                )
        except LibraryDamaged as exc:
            if state == "running":
                raise  # the job fails before it begins (and that is said below)
            # the job ends failed with the damage as its error, known from memory: whoever waits for it or follows
            # its events (even after it ended) reads why, not a job left "running" for ever
            state, error = "failed", str(exc)
            self._unstored[ctx.job_id] = (state, error)
        self.library.context.bus.publish(JobStateChanged(ctx.job_id, ctx.job.kind, state, error))

    async def wait(self, job_id: str) -> JobRecord:
        """Wait until the job stops running (finished, paused, failed or canceled)."""
        running = self._running.get(job_id)
        if running is not None:
            try:
                await asyncio.shield(running[0])
            except asyncio.CancelledError:
                if not running[0].done():
                    raise
        return self.get(job_id)

    def pause(self, job_id: str) -> None:
        self._context(job_id).pause_requested = True

    def cancel(self, job_id: str) -> None:
        if job_id in self._running:
            self._running[job_id][1].cancel_requested = True
            return
        record = self.get(job_id)
        if record.state in FINISHED:
            raise SdError(f"job {job_id} has {record.state} already")
        row = self.library.read().execute("SELECT checkpoint FROM jobs WHERE id = ?", (job_id,)).fetchone()
        # A stopped job still cleans up what it left (partial files, a paused search index): `wait` for it.
        ctx = JobContext(job_id, unpack_state(record.kind, row[0]), self.library)
        task = asyncio.get_running_loop().create_task(self._clean_up_stopped(ctx), name=f"cancel-{job_id}")
        self._running[job_id] = (task, ctx)

    async def _clean_up_stopped(self, ctx: JobContext) -> None:
        try:
            await ctx.job.cleanup(ctx)
        finally:
            self._set_state(ctx, "canceled")
            self._running.pop(ctx.job_id, None)

    async def resume(self, job_id: str) -> None:
        """Start a paused, interrupted or failed job again from its last checkpoint."""
        if job_id in self._running:
            return
        record = self.get(job_id)
        if record.state not in RESUMABLE:
            raise SdError(f"job {job_id} is {record.state}; only a paused, interrupted or failed job can resume")
        self._launch(job_id, self.stored(job_id), record)

    async def resume_interrupted(self, location_id: int | None = None) -> list[str]:
        """Resume every job a crash cut off (of one location, or all)."""
        ids = [
            r.id
            for r in self.list(states=("interrupted",))
            if location_id is None or r.location_id == location_id
        ]
        for job_id in ids:
            await self.resume(job_id)
        return ids

    def stored(self, job_id: str) -> Job:
        """A job as its last checkpoint left it (to resume it, or to tell what it was doing)."""
        record = self.get(job_id)
        if job_class(record.kind) is None:
            raise SdError(f"job {record.id} is of a kind this version does not know ({record.kind})")
        row = self.library.read().execute("SELECT checkpoint FROM jobs WHERE id = ?", (record.id,)).fetchone()
        return unpack_state(record.kind, row[0])

    def job(self, job_id: str) -> Job:
        """The live state of a running job (for tests and the UI)."""
        return self._context(job_id).job

    def state_of(self, job_id: str) -> Job:
        """A job as it was last checkpointed (the live one while it runs): what it works on, from where to where."""
        running = self._running.get(job_id)
        if running is not None:
            return running[1].job
        record = self.get(job_id)
        row = self.library.read().execute("SELECT checkpoint FROM jobs WHERE id = ?", (record.id,)).fetchone()
        if job_class(record.kind) is None or row is None or row[0] is None:
            raise SdError(f"job {job_id} is of a kind this version does not know ({record.kind})")
        return unpack_state(record.kind, row[0])

    def is_running(self, job_id: str) -> bool:
        return job_id in self._running

    def get(self, job_id: str) -> JobRecord:
        rows = self._select("WHERE id = ? OR id LIKE ? ORDER BY id LIMIT 2", (job_id, job_id + "%"))
        if not rows:
            raise NotFound(f"no job {job_id!r}; `sd job list` shows the jobs")
        exact = [r for r in rows if r.id == job_id]
        if not exact and len(rows) > 1:
            raise SdError(f"{job_id!r} names more than one job; give more of its id")
        return exact[0] if exact else rows[0]

    def list(self, states: tuple[str, ...] | None = None, limit: int = 200) -> builtins.list[JobRecord]:
        if states:
            marks = ",".join("?" * len(states))
            return self._select(f"WHERE state IN ({marks}) ORDER BY created DESC LIMIT ?", (*states, limit))
        return self._select("ORDER BY created DESC LIMIT ?", (limit,))

    def _select(self, where: str, params: tuple) -> builtins.list[JobRecord]:
        rows = self.library.read().execute(
            "SELECT id, name, state, done, total, unit, message, error, location_id, created, updated, result "
            f"FROM jobs {where}",
            params,
        )
        records = [
            JobRecord(*r[:11], msgpack.unpackb(r[11], unicode_errors="surrogateescape") if r[11] else None)  # type: ignore[call-arg]
            for r in rows
        ]
        return [self._live(r) for r in records]

    def _live(self, record: JobRecord) -> JobRecord:
        """A running job's progress as it reports it (the table has it as of its last checkpoint: a copy of one
        big file checkpoints only when the file is done)."""
        if record.id in self._unstored:
            state, error = self._unstored[record.id]
            return dataclasses.replace(record, state=state, error=error)
        running = self._running.get(record.id)
        if running is None or record.state != "running":
            return record
        ctx = running[1]
        return dataclasses.replace(record, done=ctx.done, total=ctx.total, unit=ctx.unit, message=ctx.message)

    def _context(self, job_id: str) -> JobContext:
        running = self._running.get(job_id)
        if running is None:
            state = self.get(job_id).state
            raise SdError(f"job {job_id} is not running (it is {state})")
        return running[1]

    async def close(self) -> None:
        """Stop every running job at once; each is left resumable (interrupted)."""
        tasks = []
        for task, ctx in self._running.values():
            ctx.closing = True
            task.cancel()
            tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
