"""`sd job ...`: list, monitor, pause, resume and cancel jobs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer

from sdcore.events import JobProgress, JobStateChanged
from sdtui.cli.common import JsonOpt, library_of, print_json, print_table, run
from sdtui.cli.progress import follow

job_app = typer.Typer(help="Long work: indexing, copies, moves, deletions.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")


def _record_json(r: Any) -> dict:
    return {
        "id": r.id, "kind": r.kind, "state": r.state, "done": r.done, "total": r.total, "unit": r.unit,
        "message": r.message, "error": r.error, "location_id": r.location_id, "created": r.created,
        "updated": r.updated, "result": r.result,
    }


@job_app.command("list")
def job_list(json: bool = JsonOpt, all_: bool = typer.Option(False, "--all", "-a", help="Include finished jobs.")) -> None:
    """List jobs (unfinished ones unless --all)."""

    async def body(core: Any) -> None:
        jobs = library_of(core).jobs
        records = jobs.list() if all_ else jobs.list(states=("queued", "running", "paused", "interrupted", "failed"))
        if json:
            print_json([_record_json(r) for r in records])
            return
        rows = [
            (r.id, r.kind, r.state, f"{r.done:,}/{r.total:,} {r.unit}", time.strftime("%m-%d %H:%M", time.localtime(r.updated)), r.error or r.message)
            for r in records
        ]
        print_table(("id", "kind", "state", "progress", "updated", "message"), rows)

    run(body)


@job_app.command("resume")
def job_resume(job_id: str, background: bool = typer.Option(False, "--background", help="Do not wait.")) -> None:
    """Resume a paused or interrupted job from its last checkpoint."""

    async def body(core: Any) -> None:
        library = library_of(core)
        job_id_full = library.jobs.get(job_id).id
        await library.jobs.resume(job_id_full)
        if not background:
            record = await follow(library, job_id_full)
            print(f"job {record.id}: {record.state}")

    run(body)


@job_app.command("pause")
def job_pause(job_id: str) -> None:
    """Pause a running job at its next checkpoint."""

    async def body(core: Any) -> None:
        library = library_of(core)
        library.jobs.pause(library.jobs.get(job_id).id)

    run(body)


@job_app.command("cancel")
def job_cancel(job_id: str) -> None:
    """Cancel a job (a running one stops at its next checkpoint and cleans up)."""

    async def body(core: Any) -> None:
        library = library_of(core)
        record = library.jobs.get(job_id)
        library.jobs.cancel(record.id)
        if library.jobs.is_running(record.id):
            await library.jobs.wait(record.id)
        print(f"job {record.id} canceled")

    run(body)


@job_app.command("monitor")
def job_monitor(json: bool = JsonOpt) -> None:
    """Print job progress and state changes as they happen (Ctrl-C stops watching)."""

    async def body(core: Any) -> None:
        with core.bus.subscribe(JobProgress, JobStateChanged) as events:
            library_of(core)
            async for event in events:
                if json:
                    print_json({"event": type(event).__name__, **event.__dict__} if hasattr(event, "__dict__") else {
                        "event": type(event).__name__, **{f: getattr(event, f) for f in event.__slots__}})
                else:
                    print(event, flush=True)
                await asyncio.sleep(0)

    run(body)
