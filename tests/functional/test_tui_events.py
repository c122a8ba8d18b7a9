"""The jobs screen follows the core's job events: a burst of progress keeps it current without reading each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable
from tui_support import app_for, make_tree, own_home, settle, wait_for  # noqa: F401 (own_home: autouse)

from sdcore.jobs.job import Job, JobContext
from sdtui.screens.jobs import JobsScreen


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


async def test_a_burst_of_1000_progress_events_keeps_the_jobs_screen_current_with_one_read_per_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(tmp_path, make_tree(tmp_path))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        jobs = (await app.library()).jobs
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
        assert len(reads) <= 1 + 2 * len(ids), f"{len(reads)} reads: {reads}"  # each new job read once (its record, its route)
        print(f"1,000 progress events over 10 new jobs: {len(reads)} reads, current after {took:.2f}s")
