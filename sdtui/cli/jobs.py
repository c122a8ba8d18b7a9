"""`sd job ...`: list, monitor, pause, resume and cancel jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from typing import Any

import typer

from sdcore.errors import SdError
from sdcore.events import JobProgress, JobStateChanged
from sdcore.sdpath import display
from sdtui.cli.common import JsonOpt, chosen, current, data_dir, fail, print_json, print_table, run_api
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
            (r.id, r.kind, r.state, amount(r.done, r.total, r.unit), time.strftime("%m-%d %H:%M", time.localtime(r.updated)), r.error or r.message)
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
    if current.get() is not None:  # carried out by the core itself (`sd serve` for an admin over SSH)
        run_api(lambda api: _follow_jobs(api, json, {}))
        return
    try:
        asyncio.run(_monitor_attached(json))
    except SdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)


async def _monitor_attached(json: bool) -> None:
    """Follow the jobs of the core another process runs; when that process exits, say which jobs it cut off."""
    from sdcore.api.client import Disconnected, attach

    api = await attach(data_dir(), chosen().library)
    if api is None:  # this process would be the core: no other command's job could run to be seen
        fail(
            "nothing to watch: jobs run in a core, and none runs for this data dir; start `sd serve` "
            "(or sdtui), then `sd` commands run their jobs there and `sd job monitor` follows them"
        )
    running: dict[str, str] = {}
    try:
        await _follow_jobs(api, json, running)
    except Disconnected as exc:
        for job_id, kind in running.items():
            print(f"job {job_id} ({kind}) stopped with it; `sd job resume {job_id}` carries it on", file=sys.stderr)
        fail(f"{exc}: nothing more to follow")
    finally:
        await api.close()


async def _follow_jobs(api: Any, json: bool, running: dict[str, str]) -> None:
    """Print the jobs' events until the core stops; `running` keeps the id and kind of each job under way."""
    shown: dict[str, float] = {}  # job id -> when its progress was last printed
    await api.library().info()  # opened: its jobs are the ones to follow
    events = aiter(api.events())
    running.update((r.id, r.kind) for r in await api.library().jobs.list(states=("running",)))
    async for event in events:
        if not isinstance(event, (JobProgress, JobStateChanged)):
            continue
        if isinstance(event, JobStateChanged) and event.state != "running":
            running.pop(event.job_id, None)
        else:
            running[event.job_id] = event.name
        if json:
            print_json({"event": type(event).__name__, **dataclasses.asdict(event)})
        elif isinstance(event, JobStateChanged):
            shown.pop(event.job_id, None)
            print(state_line(event), flush=True)
        elif time.monotonic() - shown.get(event.job_id, 0.0) >= MONITOR_EVERY:
            shown[event.job_id] = time.monotonic()
            print(progress_line(event), flush=True)
        await asyncio.sleep(0)


MONITOR_EVERY = 1.0  # seconds between two progress lines of one job


def progress_line(event: JobProgress) -> str:
    """`3f2a1b copy  45%  1.2G/2.6G  80M/s  914/3,005 files · report.pdf`"""
    percent = f"{100 * event.done / event.total:.0f}%" if event.total else ""
    parts = [percent, amount(event.done, event.total, event.unit), rate(event.rate, event.unit), display(event.message)]
    return f"{event.job_id} {event.name}  " + "  ".join(p for p in parts if p)


def state_line(event: JobStateChanged) -> str:
    """`3f2a1b copy paused; `sd job resume 3f2a1b` carries on`, `3f2a1b copy failed: no space left on ...`"""
    line = f"{event.job_id} {event.name} {event.state}" + (f": {event.error}" if event.error else "")
    if event.state in ("paused", "interrupted") and "sd job resume" not in line:
        line += f"; `sd job resume {event.job_id}` carries on"
    return line
