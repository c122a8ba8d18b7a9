"""The explorer renders the core's events: one change reaches a pane once; a burst of job progress is not re-read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable
from tui_support import (  # noqa: F401 (own_home: autouse)
    answer_prompt,
    app_for,
    explorer,
    index_for_the_app,
    library_of,
    make_tree,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore.events import EntriesChanged
from sdcore.jobs.job import Job, JobContext
from sdcore.sdpath import SdPath
from sdtui.screens.jobs import JobsScreen
from sdtui.widgets.pane import Pane


@dataclass
class BurstJob(Job):
    """Reports `steps` progress events as fast as it can, each reaching the bus on its own."""

    steps: int = 100

    kind = "test-burst"

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        for step in range(1, self.steps + 1):
            ctx.progress(step, self.steps, f"step {step}", "items")
            await asyncio.sleep(0)
        return {}


def counted(calls: list[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kw: Any) -> Any:
        calls.append(name)
        return method(*args, **kw)

    return call


async def test_a_rename_in_a_watched_location_reaches_the_pane_once_and_the_pane_lists_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path)
    await index_for_the_app(tmp_path, tree)
    app = app_for(tmp_path, tree)
    watches: dict[str, Any] = {}  # the core's watch of each directory a pane follows
    start_watch = app.core.watch

    def watch_and_keep(path: SdPath) -> Any:
        made = start_watch(path)
        if made is not None:
            watches[path.path] = made
        return made

    monkeypatch.setattr(app.core, "watch", watch_and_keep)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await asyncio.wait_for(app.core.watcher(await library_of(app)).ready.wait(), 10)
        screen = explorer(app)
        pane = screen.active
        await wait_for(pilot, lambda: str(tree) in watches)
        assert await asyncio.to_thread(watches[str(tree)].ready.wait, 5)
        listings: list[str] = []
        for shown in screen.query(Pane):
            monkeypatch.setattr(shown.file_list, "load", counted(listings, shown.id or "", shown.file_list.load))
        with app.core.bus.subscribe(EntriesChanged) as events:
            await pilot.press("j", "j")  # alpha.py
            await answer_prompt(pilot, app, "r", "omega.py")
            await wait_for(pilot, lambda: pane.file_list.current is not None and pane.file_list.current.name == "omega.py")
            await pilot.pause(1.5)  # the location watcher's and the directory watch's bursts would have come
            told = [(e.directory, e.names) for e in iter(events.get_nowait, None) if isinstance(e, EntriesChanged)]
        assert told == [(str(tree), ("alpha.py", "omega.py"))]
        assert listings == []
        assert "omega.py" in names(pane) and "alpha.py" not in names(pane)


async def test_a_burst_of_1000_progress_events_keeps_the_jobs_screen_current_with_one_read_per_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(tmp_path, make_tree(tmp_path))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        jobs = (await library_of(app)).jobs
        reads: list[str] = []
        for name in ("list", "get", "state_of"):
            monkeypatch.setattr(jobs, name, counted(reads, name, getattr(jobs, name)))
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        await wait_for(pilot, lambda: reads == ["list"])  # the screen's one read of the jobs
        started = time.monotonic()
        ids = [await jobs.start(BurstJob(100)) for _ in range(10)]  # 10 x 100 progress events at once
        table = screen.query_one(DataTable)

        def current() -> bool:
            return all(
                job_id in screen.records
                and screen.records[job_id].state == "completed"
                and str(table.get_cell(job_id, "done")) == "100/100 items"
                for job_id in ids
            )

        await wait_for(pilot, current)
        took = time.monotonic() - started
        assert table.row_count == 10
        # each new job read once (its record, its route), plus a finished job's record read by the explorer under
        # the screen when its state event comes late: a few reads per job, never one per event (1,000)
        assert len(reads) <= 1 + 3 * len(ids), f"{len(reads)} reads: {reads}"
        print(f"1,000 progress events over 10 new jobs: {len(reads)} reads, current after {took:.2f}s")


async def test_an_event_the_explorer_fails_to_apply_is_reported_and_the_next_ones_still_reach_the_strip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sdcore.events import JobProgress, JobStateChanged
    from sdtui.widgets.jobs_strip import JobsStrip

    on_progress = JobsStrip.on_progress

    def fails_on_job_a(strip: JobsStrip, event: JobProgress, device: str = "") -> None:
        if event.job_id == "a":  # a bug in the explorer, met by one event
            raise ValueError("a bug")
        on_progress(strip, event, device)

    monkeypatch.setattr(JobsStrip, "on_progress", fails_on_job_a)
    app = app_for(tmp_path, make_tree(tmp_path))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        strip = app.screen.query_one(JobsStrip)
        app.core.bus.publish(JobProgress("a", "copy", 1, 10, "x.txt", unit="items"))
        await wait_for(pilot, lambda: "JobProgress event stopped" in shown_text(app.screen.query_one("#status")))
        app.core.bus.publish(JobProgress("b", "copy", 5, 10, "y.txt", unit="items"))
        app.core.bus.publish(JobStateChanged("b", "copy", "completed"))
        await wait_for(pilot, lambda: "b" in strip.jobs and strip.jobs["b"].state == "completed")
        assert "a" not in strip.jobs
    assert any(r.exc_info and str(r.exc_info[1]) == "a bug" for r in caplog.records)  # logged with its traceback
