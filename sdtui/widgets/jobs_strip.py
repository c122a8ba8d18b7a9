"""JobsStrip: one line per running job with a live progress bar, fed by the core's job events."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from sdcore.api.text import human_size
from sdcore.events import JobProgress, JobStateChanged
from sdcore.sdpath import display

FINISHED_STATES = ("completed", "done", "failed", "canceled", "cancelled")
"""Job states after which a job leaves the strip (a moment later)."""

LINGER = 3.0
"""Seconds a finished job stays on the strip so its outcome can be read."""


@dataclass
class JobView:
    """What the strip knows of one job."""

    job_id: str
    name: str
    state: str = "running"
    done: int = 0
    total: int = 0
    message: str = ""
    unit: str = "items"
    rate: float = 0.0
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    device: str = ""
    """The paired device whose core runs it ("" for this device's)."""

    @property
    def title(self) -> str:
        """Its kind, and where it runs when that is another device: `copy on nas`."""
        return f"{self.name} on {display(self.device)}" if self.device else self.name

    def amount(self) -> str:
        rate = f" {human_size(int(self.rate))}/s" if self.rate and self.unit == "bytes" else ""
        return amount(self.done, self.total, self.unit) + rate


def amount(done: int, total: int, unit: str) -> str:
    """How far a job is, for people: 1.2G/4.0G for bytes, else 1,200/4,000 files."""
    if unit == "bytes":
        return f"{human_size(done)}/{human_size(total)}"
    return f"{done:,}/{total:,} {unit}".strip()


def jobs_table(jobs: list[JobView], width: int = 80) -> RenderableType:
    """The jobs as rows: name, bar, amount, state or message."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column(ratio=1, min_width=10)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, max_width=30, overflow="ellipsis")
    for job in jobs:
        counted = bool(job.total or job.done)  # an instant job (a rename, a mkdir) has nothing to count: no 0/0 bar
        bar = ProgressBar(total=max(job.total, 1), completed=min(job.done, max(job.total, 1))) if counted else ""
        status = job.error or job.message or job.state
        style = "red" if job.state == "failed" else ("dim" if job.state in FINISHED_STATES else "")
        table.add_row(Text(job.title, style="bold"), bar, job.amount() if counted else "", Text(status, style=style))
    return Group(table)


class JobsStrip(Static):
    """Live progress of the jobs that run now; hidden when none does."""

    DEFAULT_CSS = """
    JobsStrip { height: auto; max-height: 6; display: none; background: $boost; padding: 0 1; }
    JobsStrip.-busy { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.jobs: dict[str, JobView] = {}
        """Jobs shown, by id."""

    @dataclass
    class Clicked(Message):
        """The strip was clicked: the screen opens the jobs screen."""

        strip: JobsStrip

        @property
        def control(self) -> JobsStrip:
            return self.strip

    def on_click(self) -> None:
        self.post_message(self.Clicked(self))

    def on_progress(self, event: JobProgress, device: str = "") -> None:
        """A job's progress (`device`: the paired device whose core runs it)."""
        job = self.jobs.setdefault(event.job_id, JobView(event.job_id, event.name, device=device))
        job.done, job.total, job.unit, job.rate = event.done, event.total, event.unit, event.rate
        job.message = event.message
        self._redraw()

    def on_state(self, event: JobStateChanged, device: str = "") -> None:
        job = self.jobs.setdefault(event.job_id, JobView(event.job_id, event.name, device=device))
        job.state, job.error = event.state, event.error
        if event.state in FINISHED_STATES:
            if event.state in ("completed", "done") and job.total:
                job.done = job.total
            self.set_timer(LINGER, lambda: self._forget(event.job_id, event.state))
        self._redraw()

    def _forget(self, job_id: str, state: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.state == state:
            del self.jobs[job_id]
            self._redraw()

    def running(self, kinds: tuple[str, ...]) -> list[JobView]:
        """This core's jobs of these kinds that run now (a paired device's go on whatever this explorer does)."""
        return [j for j in self.jobs.values() if j.state in ("queued", "running") and j.name in kinds and not j.device]

    def _redraw(self) -> None:
        self.set_class(bool(self.jobs), "-busy")
        self.update(jobs_table(list(self.jobs.values())) if self.jobs else "")
