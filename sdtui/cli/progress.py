"""Follow a job on the terminal: a progress bar from its events; Ctrl-C pauses it (resumable)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from sdcore.errors import SdError
from sdcore.events import JobProgress, JobStateChanged
from sdtui.cli.common import console, current, human_size, on_interrupt


async def follow(library: Any, job_id: str, quiet: bool = False) -> Any:
    """Wait for a job, drawing its progress; Ctrl-C asks it to pause. Returns its final record."""
    core = library.core
    interrupted = False

    def on_sigint() -> bool:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop now; the job stays resumable from its last checkpoint
            return False
        interrupted = True
        print("\npausing… (Ctrl-C again to stop at once)", file=sys.stderr)
        try:
            library.jobs.pause(job_id)
        except SdError:
            pass
        return True

    with on_interrupt(on_sigint):
        if quiet or not sys.stderr.isatty():
            record = await library.jobs.wait(job_id)
        else:
            record = await _with_bar(core, library, job_id)
    if record.state == "paused" and record.error:  # paused by the core itself (a full disk): say why
        raise SdError(f"job {job_id} paused: {record.error}")
    if record.state == "paused":
        print(f"job {job_id} paused; `sd job resume {job_id}` (or running the command again) carries on", file=sys.stderr)
    elif record.state == "failed":
        raise SdError(f"job {job_id} failed: {record.error}")
    elif record.state == "canceled":
        print(f"job {job_id} canceled", file=sys.stderr)
    return record


async def _with_bar(core: Any, library: Any, job_id: str) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with core.bus.subscribe(JobProgress, JobStateChanged) as events:
        waiter = asyncio.ensure_future(library.jobs.wait(job_id))
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[message]}", style="dim"),
            transient=False,
            console=console(),
            # a core running others' commands must not swap its sys.stdout for one command's bar
            redirect_stdout=current.get() is None,
            redirect_stderr=current.get() is None,
        ) as bar:
            task = bar.add_task(job_id, total=None, amount="", rate="", message="")
            while not waiter.done():
                next_event = asyncio.ensure_future(events.__anext__())
                done, _ = await asyncio.wait({waiter, next_event}, return_when=asyncio.FIRST_COMPLETED)
                if next_event not in done:
                    next_event.cancel()
                    continue
                event = next_event.result()
                if isinstance(event, JobProgress) and event.job_id == job_id:
                    bytes_ = event.unit == "bytes"
                    fmt = human_size if bytes_ else (lambda n: f"{n:,.0f}")
                    bar.update(
                        task,
                        description=event.name,
                        completed=event.done,
                        total=event.total or None,
                        amount=f"{fmt(event.done)}/{fmt(event.total)} {'' if bytes_ else event.unit}",
                        rate=f"{fmt(event.rate)}/s",
                        message=event.message[-40:],
                    )
        return waiter.result()
