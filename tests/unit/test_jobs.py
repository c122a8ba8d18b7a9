"""Jobs: a user pauses, resumes and cancels long work, and work cut off by a crash carries on where it stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest

from sdcore.core import Core
from sdcore.errors import NotFound, SdError
from sdcore.events import JobProgress, JobStateChanged
from sdcore.jobs import Job, JobContext
from sdcore.jobs.job import JOB_KINDS, job_class
from sdcore.library import Libraries, Library


@dataclass
class CountJob(Job):
    """Adds 1..target, one number per checkpoint; `starts` records where each run began."""

    kind = "test-count"
    cleanups: ClassVar[list[str]] = []

    target: int = 20
    delay: float = 0.0
    count: int = 0
    total: int = 0
    starts: list[int] = field(default_factory=list)

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        self.starts.append(self.count)
        while self.count < self.target:
            self.count += 1
            self.total += self.count
            ctx.progress(self.count, self.target, f"at {self.count}")
            if self.delay:
                await asyncio.sleep(self.delay)
            await ctx.checkpoint()
        return {"count": self.count, "sum": self.total}

    async def cleanup(self, ctx: JobContext) -> None:
        CountJob.cleanups.append(ctx.job_id)


def expected(target: int) -> dict[str, int]:
    return {"count": target, "sum": target * (target + 1) // 2}


def checkpoint_of(library: Library, job_id: str) -> dict[str, Any]:
    row = library.read().execute("SELECT checkpoint FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return msgpack.unpackb(row[0])


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_a_job_dataclass_with_a_kind_is_registered() -> None:
    assert JOB_KINDS["test-count"] is CountJob
    assert job_class("test-count") is CountJob
    # A fresh process resuming a stored index job has imported nothing of the indexer yet.
    fresh = subprocess.run(
        [sys.executable, "-c", "from sdcore.jobs.job import job_class; print(job_class('index').__module__)"],
        capture_output=True, text=True, timeout=30,
    )
    assert fresh.stdout.strip() == "sdcore.index.indexer", fresh.stderr


async def test_a_job_runs_to_completion_and_keeps_its_result(library: Library) -> None:
    job_id = await library.jobs.start(CountJob(target=30))
    record = await library.jobs.wait(job_id)
    assert (record.state, record.result, record.error) == ("completed", expected(30), None)
    assert (record.done, record.total) == (30, 30)
    assert library.jobs.get(job_id[:6]).id == job_id  # a prefix of the id will do
    assert job_id in [r.id for r in library.jobs.list()]
    assert job_id not in [r.id for r in library.jobs.list(states=("running", "paused"))]


@dataclass
class OneBigFileJob(Job):
    """Reports progress often and checkpoints only at its end, as a copy of one big file does."""

    kind = "test-one-big-file"

    async def run(self, ctx: JobContext) -> None:
        for done in range(1, 2001):
            ctx.progress(done, 2000, "big.bin")
            await asyncio.sleep(0.002)
            if ctx.should_stop:
                await ctx.checkpoint()


async def test_the_jobs_list_shows_the_progress_of_a_job_under_way_not_its_last_checkpoint(library: Library) -> None:
    with library.context.bus.subscribe(JobProgress) as events:
        job_id = await library.jobs.start(OneBigFileJob())
        async for event in events:
            if event.job_id == job_id and event.done >= 50:
                break
    listed = next(r for r in library.jobs.list() if r.id == job_id)
    assert listed.done >= 50 and listed.message == "big.bin"  # `sd job list` beside a foreground `sd cp`
    assert library.jobs.get(job_id).done >= listed.done
    library.jobs.cancel(job_id)
    assert (await library.jobs.wait(job_id)).state == "canceled"


async def test_pause_then_resume_finishes_with_the_same_result(library: Library) -> None:
    job_id = await library.jobs.start(CountJob(target=200, delay=0.002))
    await until(lambda: library.jobs.job(job_id).count >= 5)
    library.jobs.pause(job_id)
    paused = await library.jobs.wait(job_id)
    assert paused.state == "paused"
    saved = checkpoint_of(library, job_id)
    assert 5 <= saved["count"] < 200
    assert saved["total"] == saved["count"] * (saved["count"] + 1) // 2
    assert not library.jobs.is_running(job_id)
    with pytest.raises(SdError, match="not running"):
        library.jobs.pause(job_id)

    await library.jobs.resume(job_id)
    done = await library.jobs.wait(job_id)
    assert (done.state, done.result) == ("completed", expected(200))
    assert checkpoint_of(library, job_id)["starts"] == [0, saved["count"]]  # resumed, not restarted
    with pytest.raises(SdError, match="completed"):
        await library.jobs.resume(job_id)


async def test_cancel_stops_at_a_checkpoint_and_runs_cleanup(library: Library) -> None:
    job_id = await library.jobs.start(CountJob(target=10_000, delay=0.001))
    await until(lambda: library.jobs.job(job_id).count >= 3)
    library.jobs.cancel(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "canceled"
    assert record.result is None
    assert CountJob.cleanups.count(job_id) == 1
    with pytest.raises(SdError, match="canceled already"):
        library.jobs.cancel(job_id)
    with pytest.raises(SdError):
        await library.jobs.resume(job_id)


async def test_a_paused_job_can_be_canceled(library: Library) -> None:
    job_id = await library.jobs.start(CountJob(target=10_000, delay=0.001))
    await until(lambda: library.jobs.job(job_id).count >= 2)
    library.jobs.pause(job_id)
    await library.jobs.wait(job_id)
    library.jobs.cancel(job_id)
    assert (await library.jobs.wait(job_id)).state == "canceled"
    assert CountJob.cleanups.count(job_id) == 1  # what it left behind is cleaned up too


async def test_jobs_report_progress_and_state_on_the_bus(core: Core, library: Library) -> None:
    with core.bus.subscribe(JobProgress, JobStateChanged) as events:
        job_id = await library.jobs.start(CountJob(target=5))
        await library.jobs.wait(job_id)
        seen = []
        while (event := events.get_nowait()) is not None:
            seen.append(event)
    states = [e.state for e in seen if isinstance(e, JobStateChanged) and e.job_id == job_id]
    assert states == ["running", "completed"]
    progress = [e for e in seen if isinstance(e, JobProgress) and e.job_id == job_id]
    assert progress and progress[-1].done == 5 and progress[-1].total == 5  # coalesced: the latest wins


async def test_a_failing_job_is_failed_with_its_error_and_can_be_retried(library: Library) -> None:
    @dataclass
    class Flaky(Job):
        kind = "test-flaky"
        tries: int = 0

        async def run(self, ctx: JobContext) -> str:
            self.tries += 1
            await ctx.checkpoint()
            if self.tries == 1:
                raise SdError("the disk went away")
            return "ok"

    job_id = await library.jobs.start(Flaky())
    record = await library.jobs.wait(job_id)
    assert (record.state, record.error) == ("failed", "the disk went away")
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert (record.state, record.result, record.error) == ("completed", "ok", None)


async def test_unknown_jobs_are_clear_errors(library: Library) -> None:
    with pytest.raises(NotFound, match="sd job list"):
        library.jobs.get("doesnotexist")
    with library.write() as db:
        db.execute(
            "INSERT INTO jobs (id, name, state, checkpoint, created, updated) VALUES ('abc123', 'from-the-future',"
            " 'paused', ?, 0, 0)",
            (msgpack.packb({}),),
        )
    with pytest.raises(SdError, match="does not know"):
        await library.jobs.resume("abc123")


async def test_closing_the_core_leaves_a_running_job_interrupted_and_it_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Core(data) as core:
        library = core.library()
        job_id = await library.jobs.start(CountJob(target=300, delay=0.002))
        await until(lambda: library.jobs.job(job_id).count >= 5)
    async with Core(data) as core:
        library = core.library()
        record = library.jobs.get(job_id)
        assert record.state == "interrupted"
        assert await library.jobs.resume_interrupted() == [job_id]
        done = await library.jobs.wait(job_id)
        assert (done.state, done.result) == ("completed", expected(300))
        assert checkpoint_of(library, job_id)["starts"][0] == 0
        assert checkpoint_of(library, job_id)["starts"][1] >= 4  # its last checkpoint (5 was counted, not saved)


async def test_a_job_running_when_its_process_was_killed_is_interrupted_on_reopen_and_resumes(tmp_path: Path) -> None:
    """kill -9 in the middle of a job: the next opener finds it 'running', marks it interrupted, resumes it."""
    root = tmp_path / "libraries"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_jobs import CountJob
        from sdcore.library import Libraries

        async def main():
            library = Libraries(Path({str(root)!r})).create("Crashy")
            job_id = await library.jobs.start(CountJob(target=100_000, delay=0.002))
            print(job_id, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().strip()
        db_path = root / "Crashy.sdlibrary" / "database.db"
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "the job never checkpointed"
            conn = sqlite3.connect(db_path, timeout=1)
            row = conn.execute("SELECT state, checkpoint FROM jobs WHERE id = ?", (job_id,)).fetchone()
            conn.close()
            if row and row[0] == "running" and msgpack.unpackb(row[1])["count"] >= 10:
                break
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()

    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone() == ("running",)
    conn.close()

    library = Libraries(root).open("Crashy")
    try:
        assert library.jobs.get(job_id).state == "interrupted"
        at = checkpoint_of(library, job_id)["count"]
        assert at >= 10
        # make the rest quick: a resumed job is rebuilt from its checkpoint, so shorten it there
        with library.write() as db:
            state = checkpoint_of(library, job_id)
            db.execute(
                "UPDATE jobs SET checkpoint = ? WHERE id = ?",
                (msgpack.packb({**state, "target": at + 50, "delay": 0.0}), job_id),
            )
        assert await library.jobs.resume_interrupted() == [job_id]
        done = await library.jobs.wait(job_id)
        assert (done.state, done.result) == ("completed", expected(at + 50))
        assert checkpoint_of(library, job_id)["starts"] == [0, at]
    finally:
        await library.jobs.close()
        library.close()


async def test_a_resumed_jobs_rate_counts_only_what_it_does_now(core: Core, library: Library) -> None:
    job_id = await library.jobs.start(CountJob(target=400, delay=0.005))  # at most 200 a second
    await until(lambda: library.jobs.job(job_id).count >= 100)
    library.jobs.pause(job_id)
    await library.jobs.wait(job_id)
    with core.bus.subscribe(JobProgress, JobStateChanged) as events:
        await library.jobs.resume(job_id)
        rates = []
        while not isinstance(event := await asyncio.wait_for(events.__anext__(), 5), JobStateChanged) or (
            event.state != "completed"
        ):
            if isinstance(event, JobProgress):
                rates.append(event.rate)
    assert max(rates) < 400, max(rates)  # not the 100 done before divided by a moment
    assert any(r > 0 for r in rates)
