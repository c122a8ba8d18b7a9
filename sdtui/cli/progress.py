"""Follow a job on the terminal: a progress bar from its events; Ctrl-C pauses it (resumable)."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import typer

from sdcore.api import human_size
from sdcore.errors import SdError
from sdtui.cli.common import console, current, fail, on_interrupt, routes_commands

if TYPE_CHECKING:
    import asyncio


def refuse_background(background: bool) -> None:
    """`--background` needs a core that outlives this command: a command run in its own process has none."""
    if background and current.get() is None:
        fail(
            "--background needs a running core to carry the job on: start `sd serve` (or sdtui) for this "
            "data dir, then run the command again; or leave out --background to follow the job here"
        )


def exit_unless_completed(record: Any) -> None:
    """A command whose job did not complete exits non-zero: 130 when Ctrl-C paused it (as shells expect)."""
    paused_by_us = record.id in _interrupted
    _interrupted.discard(record.id)
    if record.state != "completed":
        raise typer.Exit(130 if paused_by_us and record.state == "paused" else 1)


_interrupted: set[str] = set()
"""Jobs a Ctrl-C asked to pause (a core hosting commands follows several at once)."""


async def follow(api: Any, job_id: str, quiet: bool = False) -> Any:
    """Wait for a job of the api's library, drawing its progress; Ctrl-C asks it to pause. Returns its final
    record."""
    jobs = api.library().jobs
    interrupted = False

    async def pause() -> None:
        try:
            await jobs.pause(job_id)
        except SdError:
            pass

    def on_sigint() -> bool:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop now; the job stays resumable from its last checkpoint
            return False
        interrupted = True
        _interrupted.add(job_id)
        print("\npausing… (Ctrl-C again to stop at once)", file=sys.stderr)
        import asyncio

        pausing = asyncio.ensure_future(pause())
        _pausing.add(pausing)
        pausing.add_done_callback(_pausing.discard)
        return True

    with on_interrupt(on_sigint):
        if quiet or not sys.stderr.isatty():
            record = await jobs.wait(job_id)
        else:
            record = await _with_bar(api, job_id)
    if record.state == "paused" and record.error:  # paused by the core itself (a full disk): say why
        raise SdError(f"job {job_id} paused: {record.error}")
    if record.state == "paused":
        print(f"job {job_id} paused; `sd job resume {job_id}` (or running the command again) carries on", file=sys.stderr)
    elif record.state == "failed":
        raise SdError(f"job {job_id} failed: {record.error}")
    elif record.state == "canceled":
        print(f"job {job_id} canceled", file=sys.stderr)
    return record


_pausing: set[asyncio.Future[None]] = set()
"""Pauses asked by a Ctrl-C, kept until done (a task nobody holds may be collected mid-way)."""


async def _with_bar(api: Any, job_id: str) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[message]}", style="dim", markup=False),  # a file's name: never markup
        transient=False,
        console=console(),
        # a core running others' commands must not swap its sys.stdout for a bar: what they print would go
        # through that bar's console (the bar drawn after it, on the wrong stream, at the wrong width)
        redirect_stdout=not routes_commands(),
        redirect_stderr=not routes_commands(),
    ) as bar:
        task = bar.add_task(job_id, total=None, amount="", rate="", message="")

        from sdcore.events import JobProgress  # (and asyncio with it: not for a command that follows no job)

        async def draw() -> None:
            async for event in api.events():
                if isinstance(event, JobProgress) and event.job_id == job_id:
                    bar.update(
                        task,
                        description=event.name,
                        completed=event.done,
                        total=event.total or None,
                        amount=amount(event.done, event.total, event.unit),
                        rate=rate(event.rate, event.unit),
                        message=event.message[-40:],
                    )

        import asyncio

        drawing = asyncio.ensure_future(draw())
        try:
            return await api.library().jobs.wait(job_id)
        finally:
            drawing.cancel()  # the events' stream ends with the task (its subscription with it)
            with contextlib.suppress(asyncio.CancelledError):
                await drawing


def amount(done: int, total: int, unit: str) -> str:
    """`1.2G/3.4G`, `61,777/90,000 files`, or `61,777 entries` while the total is not known yet."""
    fmt = human_size if unit == "bytes" else (lambda n: f"{n:,.0f}")
    text = f"{fmt(done)}/{fmt(total)}" if total else fmt(done)
    return text if unit == "bytes" else f"{text} {unit}"


def rate(per_second: float, unit: str) -> str:
    """`80M/s`, `1,250 files/s`; empty before a rate is measured."""
    if not per_second:
        return ""
    return f"{human_size(int(per_second))}/s" if unit == "bytes" else f"{per_second:,.0f} {unit}/s"
