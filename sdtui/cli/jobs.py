"""`sd job ...`: list, monitor, pause, resume and cancel jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import typer

from sdcore.events import JobProgress, JobStateChanged
from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, current, fail, print_json, print_table, run_api
from sdtui.cli.progress import amount, exit_unless_completed, follow, rate, refuse_background

job_app = typer.Typer(help="Long work: indexing, copies, moves, deletions.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")


def _record_json(r: Any) -> dict:
    return {
        "id": r.id, "kind": r.kind, "state": r.state, "done": r.done, "total": r.total, "unit": r.unit,
        "message": r.message, "error": r.error, "location_id": r.location_id, "created": r.created,
        "updated": r.updated, "result": r.stored_result,
    }


@job_app.command("list")
def job_list(json: bool = JsonOpt, all_: bool = typer.Option(False, "--all", "-a", help="Include finished jobs.")) -> None:
    """List jobs (unfinished ones unless --all)."""

    async def body(api: Any) -> None:
        jobs = api.library().jobs
        records = await (jobs.list() if all_ else jobs.list(states=("queued", "running", "paused", "interrupted", "failed")))
        if json:
            print_json([_record_json(r) for r in records])
            return
        rows = [
            (r.id, r.kind, r.state, f"{r.done:,}/{r.total:,} {r.unit}", time.strftime("%m-%d %H:%M", time.localtime(r.updated)), r.error or r.message)
            for r in records
        ]
        print_table(("id", "kind", "state", "progress", "updated", "message"), rows)

    run_api(body)


@job_app.command("resume")
def job_resume(job_id: str, background: bool = typer.Option(False, "--background", help="Do not wait.")) -> None:
    """Resume a paused or interrupted job from its last checkpoint."""

    refuse_background(background)

    async def body(api: Any) -> None:
        jobs = api.library().jobs
        job_id_full = (await jobs.get(job_id)).id
        await jobs.resume(job_id_full)
        if not background:
            record = await follow(api, job_id_full)
            print(f"job {record.id}: {record.state}")
            exit_unless_completed(record)

    run_api(body)


@job_app.command("pause")
def job_pause(job_id: str) -> None:
    """Pause a running job at its next checkpoint."""

    async def body(api: Any) -> None:
        jobs = api.library().jobs
        await jobs.pause((await jobs.get(job_id)).id)

    run_api(body)


@job_app.command("cancel")
def job_cancel(job_id: str) -> None:
    """Cancel a job (a running one stops at its next checkpoint and cleans up)."""

    async def body(api: Any) -> None:
        jobs = api.library().jobs
        record = await jobs.get(job_id)
        await jobs.cancel(record.id)
        await jobs.wait(record.id)  # a running one stops at its next checkpoint
        print(f"job {record.id} canceled")

    run_api(body)


@job_app.command("monitor")
def job_monitor(json: bool = JsonOpt) -> None:
    """Print job progress and state changes as they happen (Ctrl-C stops watching)."""
    if current.get() is None:  # this process would be the core: no other command's job could run to be seen
        fail(
            "nothing to watch: jobs run in a core, and none runs for this data dir; start `sd serve` "
            "(or sdtui), then `sd` commands run their jobs there and `sd job monitor` follows them"
        )

    async def body(api: Any) -> None:
        shown: dict[str, float] = {}  # job id -> when its progress was last printed
        await api.library().info()  # opened: its jobs are the ones to follow
        async for event in api.events():
            if not isinstance(event, (JobProgress, JobStateChanged)):
                continue
            if json:
                print_json({"event": type(event).__name__, **dataclasses.asdict(event)})
            elif isinstance(event, JobStateChanged):
                shown.pop(event.job_id, None)
                print(state_line(event), flush=True)
            elif time.monotonic() - shown.get(event.job_id, 0.0) >= MONITOR_EVERY:
                shown[event.job_id] = time.monotonic()
                print(progress_line(event), flush=True)
            await asyncio.sleep(0)

    run_api(body)


MONITOR_EVERY = 1.0  # seconds between two progress lines of one job


def progress_line(event: JobProgress) -> str:
    """`3f2a1b copy  45%  1.2G/2.6G  80M/s  914/3,005 files · report.pdf`"""
    percent = f"{100 * event.done / event.total:.0f}%" if event.total else ""
    parts = [percent, amount(event.done, event.total, event.unit), rate(event.rate, event.unit), display(event.message)]
    return f"{event.job_id} {event.name}  " + "  ".join(p for p in parts if p)


def state_line(event: JobStateChanged) -> str:
    """`3f2a1b copy paused`, `3f2a1b copy failed: no space left on ...`"""
    return f"{event.job_id} {event.name} {event.state}" + (f": {event.error}" if event.error else "")
