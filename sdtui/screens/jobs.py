"""JobsScreen: the library's jobs with live progress; pause, resume and cancel the one under the cursor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.progress_bar import ProgressBar
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from sdcore.api import Api, JobRecord, JobRoute
from sdcore.errors import NotFound, SdError
from sdcore.events import JobProgress, JobStateChanged
from sdcore.sdpath import SdPath, display
from sdtui.widgets.jobs_strip import amount
from sdtui.widgets.listing import format_mtime

if TYPE_CHECKING:
    from sdtui.app import SdtuiApp

COLUMNS = ("kind", "device", "state", "done", "from", "to", "started", "progress", "message")
"""The table's columns, in order (what and where first: at 80 columns the rest scrolls into view)."""

CHANGING = ("state", "done", "progress", "message")
"""The columns a job's events change (the others are drawn once, with its row)."""

Route = tuple[str, str]
"""Where a job reads from and where it writes to, for people ("" where it has no such side)."""


SHOWN = 200
"""The newest jobs shown."""

KEYS = "p pause · r resume · c cancel · Esc back"
"""The status line's words when the job under the cursor has nothing to say."""


def job_route(route: JobRoute, label: Callable[[SdPath], str]) -> Route:
    """What a job works on: the sources and the folder they go to (copy, move), what it deletes, renames or makes."""
    sources = ""
    if route.sources:
        more = len(route.sources) - 1
        sources = label(route.sources[0]) + (f" and {more} more" if more else "")
    if route.new_name is not None:  # a rename
        return sources, display(route.new_name)
    if route.destination is not None:  # a copy, a move, a mkdir
        return sources, label(route.destination)
    return sources, "the trash" if route.to_trash else ""


def job_row(record: JobRecord, live: JobProgress | None = None, route: Route = ("", ""), device: str = "") -> tuple:
    """A job as a table row (live progress, when one came, beats the stored figures); an instant job (a rename,
    a mkdir: nothing to count) shows no bar and no count. `device`: the device whose core runs it."""
    done, total = (live.done, live.total) if live else (record.done, record.total)
    message = (live.message if live else record.message) or ""
    state_style = {"failed": "red", "completed": "green", "running": "bold", "paused": "yellow"}.get(
        record.state, ""
    )
    counted = bool(total or done)
    return (  # as Text, escaped: a paired device's job says what that device chose (its kind, its error)
        Text(display(record.kind)),
        Text(display(device), overflow="ellipsis", no_wrap=True),
        Text(record.state, style=state_style),
        amount(done, total, record.unit or "") if counted else "",
        Text(route[0], overflow="ellipsis", no_wrap=True),
        Text(route[1], overflow="ellipsis", no_wrap=True),
        format_mtime(record.created),
        ProgressBar(total=max(total, 1), completed=min(done, max(total, 1)), width=20) if counted else "",
        Text(display(record.error or message), style="red" if record.error else "", overflow="ellipsis"),
    )


class JobsScreen(Screen[None]):
    """Every job of the library, newest first, and of the paired devices' libraries open in the explorer: read once
    when it opens, then kept current by each core's job events."""

    DEFAULT_CSS = """
    JobsScreen > DataTable { height: 1fr; }
    JobsScreen > #jobs-status { height: 1; padding: 0 1; background: $panel; }
    """

    BINDINGS = [
        Binding("p", "pause", "Pause", id="job_pause"),
        Binding("r", "resume", "Resume", id="job_resume"),
        Binding("c", "cancel", "Cancel job", id="job_cancel"),
        Binding("escape,w,q", "close", "Back", id="jobs_close"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[str, JobProgress] = {}
        """The latest progress of each running job."""
        self.records: dict[str, JobRecord] = {}
        self.routes: dict[str, Route] = {}
        """Each job's source and destination (they never change: read once per job)."""
        self.elsewhere: set[str] = set()
        """Jobs whose events came but that are not this library's (another library of the core)."""
        self.device_of: dict[str, str] = {}
        """The device whose core runs each job, by name."""
        self.cores: dict[str, Api] = {}
        """The cores whose jobs are shown, by their device's name: this one's, and the open paired devices'."""

    @property
    def sd(self) -> SdtuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static(KEYS, id="jobs-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.cores = {self.sd.api.device.name: self.sd.api}
        for device_id, remote in self.sd.device_apis.items():
            self.cores.setdefault(self.sd.device_names.get(device_id, remote.device.name), remote)  # type: ignore[arg-type]
        for device in self.cores:
            self.run_worker(self.load(device), group="jobs-load", exit_on_error=False)
            self.run_worker(self.follow(device), group="jobs-follow", exit_on_error=False)

    async def load(self, device: str) -> None:
        """Read the newest jobs of a core's library (once: their events keep them current)."""
        try:
            records = await self.cores[device].library().jobs.list(limit=SHOWN)
            for record in records:
                self.device_of[record.id] = device
            await self._read_routes([r.id for r in records if r.id not in self.routes])
        except SdError as exc:
            self.say(str(exc))
            return
        for record in records:
            self.records.setdefault(record.id, record)  # one an event brought meanwhile is newer
        self.redraw()

    def redraw(self) -> None:
        """Draw the table again from the jobs held, newest first, keeping the cursor's job."""
        table = self.query_one(DataTable)
        current = self.selected_id()
        newest = sorted(self.records.values(), key=lambda r: r.created, reverse=True)[:SHOWN]
        self.records = {r.id: r for r in newest}
        table.clear()
        for record in newest:
            table.add_row(*self._row(record), key=record.id)
        if current in self.records:
            table.move_cursor(row=table.get_row_index(current))

    async def follow(self, device: str) -> None:
        """Apply each job event of a core to the row it changes; a job new to this screen is read once."""
        try:
            await self._follow(device)
        except SdError as exc:  # a paired device's core went away: its rows stay as they were
            self.say(str(exc))

    async def _follow(self, device: str) -> None:
        async for event in self.cores[device].events():
            if not isinstance(event, JobProgress | JobStateChanged) or event.job_id in self.elsewhere:
                continue
            record = self.records.get(event.job_id)
            new = record is None
            if record is None:
                self.device_of[event.job_id] = device
                record = await self._read_job(event.job_id)
                if record is None:
                    continue
            if isinstance(event, JobProgress):
                self.live[event.job_id] = event
            else:
                record = replace(record, state=event.state, error=event.error)
            self.records[event.job_id] = record
            if new:
                self.redraw()
            else:
                self._update_row(record)

    async def _read_job(self, job_id: str) -> JobRecord | None:
        """The record of a job this screen has not seen yet (None when it is another library's)."""
        try:
            record = await self._api_of(job_id).library().jobs.get(job_id)
            if record.id != job_id:
                raise NotFound(job_id)
            await self._read_routes([job_id])
        except NotFound:
            self.elsewhere.add(job_id)
            return None
        except SdError as exc:
            self.say(str(exc))
            return None
        return record

    def _update_row(self, record: JobRecord) -> None:
        table = self.query_one(DataTable)
        row = dict(zip(COLUMNS, self._row(record), strict=True))
        for column in CHANGING:
            table.update_cell(record.id, column, row[column], update_width=True)
        if record.id == self.selected_id() and record.error:
            self.say_why(record)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        record = self.records.get(str(event.row_key.value))
        if record is not None:
            self.say_why(record)

    def say_why(self, record: JobRecord) -> None:
        """Why the job under the cursor failed, in full on the status line: its column is off screen at 80 columns
        and cut to a few letters at 160 (the paths take the room)."""
        self.say(f"{record.kind} failed: {display(record.error)}" if record.error else KEYS)

    def _row(self, record: JobRecord) -> tuple:
        route = self.routes.get(record.id, ("", ""))
        return job_row(record, self.live.get(record.id), route, self.device_of.get(record.id, ""))

    def _api_of(self, job_id: str) -> Api:
        """The core that runs a job: a paired device's, or this one's."""
        return self.cores.get(self.device_of.get(job_id, ""), self.sd.api)

    async def _read_routes(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            try:
                self.routes[job_id] = job_route(await self._api_of(job_id).library().jobs.route(job_id), self.sd.label)
            except SdError:
                self.routes[job_id] = ("", "")

    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def say(self, text: str) -> None:
        self.query_one("#jobs-status", Static).update(text)

    async def _control(self, verb: str) -> None:
        job_id = self.selected_id()
        if job_id is None:
            return
        jobs = self._api_of(job_id).library().jobs
        try:
            if verb == "pause":
                await jobs.pause(job_id)
            elif verb == "cancel":
                await jobs.cancel(job_id)
            else:
                await jobs.resume(job_id)
        except SdError as exc:
            self.say(str(exc))
            return
        self.say(f"{verb} requested for job {job_id}")  # the job's state event updates its row

    async def action_pause(self) -> None:
        await self._control("pause")

    async def action_resume(self) -> None:
        await self._control("resume")

    async def action_cancel(self) -> None:
        await self._control("cancel")

    def action_close(self) -> None:
        self.dismiss()
