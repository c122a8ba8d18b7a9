"""ExplorerScreen: the sidebar, two file panes, the inspector, the jobs strip, status line and footer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import replace

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sdcore.api import DeviceId, Entry, PairedDevice, Trashed
from sdcore.errors import NotFound, SdError
from sdcore.events import (
    DeviceConnected,
    DeviceLost,
    DropOffered,
    Event,
    JobProgress,
    JobStateChanged,
    LibraryChanged,
)
from sdcore.sdpath import SdPath
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_files import FileActions
from sdtui.screens.explorer_network import NetworkActions
from sdtui.screens.explorer_organize import OrganizeActions
from sdtui.screens.explorer_programs import ProgramActions
from sdtui.screens.help import HelpScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.inspector import Inspector, detail_rows
from sdtui.widgets.jobs_strip import FINISHED_STATES, JobsStrip
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar, volumes_from_mounts

NETWORK_AFTER = 1.0
"""Seconds after start-up by which the network is attached even if the first listing has not come."""

PATCH_LIMIT = 256
"""An EntriesChanged naming more entries than this re-lists the directory instead of patching it."""

INSPECTOR_FROM = 120
SIDEBAR_FROM = 100
"""Terminal widths (columns) from which the inspector, and the sidebar, are shown at first (80 columns: two panes of 40)."""


class ExplorerScreen(FileActions, OrganizeActions, NetworkActions, ProgramActions):
    """The main screen: browse with two panes, act on the selection (the actions live in explorer_*.py)."""

    DEFAULT_CSS = """
    ExplorerScreen > #main { height: 1fr; }
    ExplorerScreen.-single #right { display: none; }
    ExplorerScreen.-no-inspector Inspector { display: none; }
    ExplorerScreen.-no-sidebar Sidebar { display: none; }
    ExplorerScreen > #status { height: 1; padding: 0 1; background: $panel; color: $text; }
    ExplorerScreen > #status.-error { background: $error 40%; }
    """

    BINDINGS = [
        Binding("tab", "switch_pane", "Other pane", id="switch_pane", priority=True),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
        Binding("o", "single_pane", "Single pane", show=False, id="single_pane"),
        Binding("i", "toggle_inspector", "Inspector", show=False, id="toggle_inspector"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False, id="toggle_sidebar"),
        Binding("b", "focus_sidebar", "Places", show=False, id="focus_sidebar"),
        Binding("f5", "copy_to_other", "Copy", id="copy_to_other"),
        Binding("f6", "move_to_other", "Move", id="move_to_other"),
        Binding("f7", "mkdir", "Mkdir", id="mkdir"),
        Binding("ctrl+l", "goto", "Go to a path", show=False, id="goto"),
        Binding("f3", "view", "View in the pager", show=False, id="view"),
        Binding("e,f4", "edit", "Edit in the editor", show=False, id="edit"),
        Binding("r,f2", "rename", "Rename", show=False, id="rename"),
        Binding("d,f8", "trash", "Trash", id="trash"),
        Binding("D", "delete", "Delete permanently", show=False, id="delete"),
        Binding("u", "restore", "Restore from trash", show=False, id="restore"),
        Binding("y", "yank", "Copy (clipboard)", show=False, id="yank"),
        Binding("x", "cut", "Cut (clipboard)", show=False, id="cut"),
        Binding("p", "paste", "Paste here", show=False, id="paste"),
        Binding("w", "jobs", "Jobs", show=False, id="jobs"),
        Binding("t", "tag", "Tag", show=False, id="tag"),
        Binding("n", "note", "Note", show=False, id="note"),
        Binding("asterisk", "favourite", "Favourite", show=False, id="favourite"),
        Binding("ctrl+f", "search", "Search", show=False, id="search"),
        Binding("ctrl+s", "save_search", "Save search", show=False, id="save_search"),
    ]

    def __init__(self, start: SdPath, other: SdPath | None = None) -> None:
        super().__init__()
        self.start = start
        self.other = other or start
        self.active_id = "left"
        """Id of the pane actions apply to."""
        self.last_search = ""
        """The text of the last library search (ctrl+s saves it)."""
        self.clipboard: tuple[str, list[SdPath]] | None = None
        """('copy' or 'cut', paths) after y or x."""
        self.last_trashed: list[Trashed] = []
        """What d last sent to the trash, and where each item lies in its own device's trash (u restores them)."""
        self.network_attached = False
        """Whether the network was asked for (paired devices listed); see `attach_network`."""
        self.places_complete = False
        """Whether the sidebar lists everything, paired devices included."""
        self.said_when_done: dict[str, str] = {}
        """What the status line says when a copy or move started here completes (job id -> text)."""
        self.has_locations = True
        """Whether the library has a location (as the sidebar last listed them): an empty search says if not."""
        self.online: dict[DeviceId, bool] = {}
        """Paired devices known to be connected (True) or not (False), from DeviceConnected and DeviceLost."""
        self.width_class = ""
        """How much the terminal's width holds ("wide", "medium", "narrow"); see `on_resize`."""

    # -- layout ----------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        """Give the two panes the room: below INSPECTOR_FROM columns the inspector is hidden, below SIDEBAR_FROM the
        sidebar too (i and ctrl+b show them). Only crossing a width changes it, so a choice of the user's holds."""
        width = event.size.width
        fits = "wide" if width >= INSPECTOR_FROM else "medium" if width >= SIDEBAR_FROM else "narrow"
        if fits != self.width_class:
            self.width_class = fits
            self.set_class(fits != "wide", "-no-inspector")
            self.set_class(fits == "narrow", "-no-sidebar")

    def compose(self) -> ComposeResult:
        api = self.api
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            yield Pane(api.browse, self._label, watch=api.watch, id="left")
            yield Pane(api.browse, self._label, watch=api.watch, id="right")
            yield Inspector(self._read_head, api.browse, self._details, id="inspector")
        yield JobsStrip(id="jobs-strip")
        yield Static("", id="status", markup=False)
        yield Footer()


    def on_mount(self) -> None:
        self.query_one("#left", Pane).open(self.start)
        if self.other != self.start:
            self.query_one("#right", Pane).open(self.other)
        # else: the right pane shows the left one's listing once it is complete (one scan, not two)
        self.query_one("#left", Pane).add_class("-active")
        self.query_one("#left", Pane).file_list.focus()
        self.fill_sidebar()
        self.follow_events()
        self.set_timer(NETWORK_AFTER, self.attach_network)  # at the latest; usually after the first listing

    @work(group="network-attach", exit_on_error=False)  # not exclusive: a second call must not cancel the first
    async def attach_network(self) -> None:
        """Make paired devices browsable and list them: after the first paint, not before.

        Importing the network (asyncssh) takes the interpreter for a few hundred milliseconds; done at
        start-up it delays the first screen.
        """
        if self.network_attached:
            return
        self.network_attached = True
        try:
            await self.api.devices.attach()
            await self.sd.paired_devices()
        except (SdError, ImportError) as exc:
            self.status(f"paired devices: {exc}", error=True)
        self.fill_sidebar()
        self.sd.host_commands()
        self.probe_devices()

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def probe_devices(self) -> None:
        """Connect once to each paired device to learn whether it is online; from then on DeviceConnected and
        DeviceLost keep the sidebar current (no polling)."""

        async def probe(device: PairedDevice) -> None:
            try:
                await self.api.devices.connect(device.id)
            except (SdError, OSError):
                self._device_state(device.id, False)

        await asyncio.gather(*(probe(d) for d in await self.sd.paired_devices() if d.id not in self.online))

    def _read_head(self, path: SdPath, size: int) -> AsyncIterator[bytes]:
        return self.api.read(path)

    async def _details(self, path: SdPath, entry: Entry) -> list[tuple[str, str]]:
        """What the core knows of an entry beyond its listing (the inspector's rows)."""
        cas_id = None
        if entry.kind == "file":
            with suppress(SdError):
                cas_id = (await self.api.stat(path, cas_id=True)).cas_id or "— (empty)"
        return detail_rows(cas_id, await self.api.library().entries.details(path))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's error that no action reported (a bug: an action reports its own) is reported, never lost."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report(event.worker.error, event.worker.name or "the explorer")

    # -- sidebar ---------------------------------------------------------------------------

    @work(group="sidebar", exclusive=True, exit_on_error=False)
    async def fill_sidebar(self) -> None:
        """The places: this device, locations, tags, saved searches, volumes."""
        api = self.api
        here: list[tuple[str, str, SdPath | None, str]] = [
            ("home", "~ home", await api.resolve("~"), "dir"),
            ("root", "/ root", await api.resolve("/"), "dir"),
        ]
        if self.network_attached:  # where files other devices send land
            with suppress(SdError, ImportError):
                here.append(("spacedrop", "⇣ Spacedrop", await api.devices.spacedrop_dir(), "spacedrop"))
        locations: list[tuple[str, str, SdPath | None, str]] = []
        favourites: list[tuple[str, str, SdPath | None, str]] = []
        tags: list[tuple[str, str, SdPath | None, str]] = []
        saved: list[tuple[str, str, SdPath | None, str]] = []
        try:
            library = api.library()
            library_id = (await library.info()).id
            for loc in await library.locations.list():
                locations.append(
                    (f"loc-{loc.id}", loc.name, SdPath(api.device.id, loc.path, library_id), "location")
                )
            for entry in await library.favourites.list():
                favourites.append((f"fav:{entry.path.path}", f"★ {entry.name}", entry.path, "favourite"))
            for tag in await library.tags.list():
                tags.append(
                    (
                        f"tag:{tag.name}",
                        f"{'  ' * tag.depth}#{tag.leaf} ({tag.entries + tag.contents})",
                        None,
                        "tag",
                    )
                )
            for search in await library.saved.list():
                saved.append((f"saved:{search.name}", search.name, None, "saved"))
        except SdError as exc:
            self.status(f"library: {exc}", error=True)
        devices: list[tuple[str, str, SdPath | None, str]] | None = None  # None: not known yet
        if self.network_attached:
            devices = [
                (f"dev-{d.id}", self._device_label(d.id, d.name), SdPath(d.id, "/"), "device")
                for d in await self.sd.paired_devices()
            ]
        volumes: list[tuple[str, str, SdPath | None, str]] = []
        try:
            data = b""
            async for chunk in api.read(SdPath(api.device.id, self.sd.mounts_file)):
                data += chunk
            for point, source in volumes_from_mounts(data.decode("utf-8", "replace")):
                volumes.append(
                    (
                        f"vol-{point}",
                        f"{point} ({os.path.basename(source)})",
                        SdPath(api.device.id, point),
                        "volume",
                    )
                )
        except SdError:
            pass
        self.has_locations = bool(locations)
        self.query_one(Sidebar).set_places(
            [
                (f"This device: {api.device.name}", here),
                ("Paired devices", devices),
                ("Locations", locations),
                ("Favourites", favourites),
                ("Tags", tags),
                ("Saved searches", saved),
                ("Volumes", volumes),
            ]
        )
        self.places_complete = devices is not None

    def _device_label(self, device_id: DeviceId, name: str) -> str:
        state = self.online.get(device_id)
        return f"{name} " + ("● online" if state else "○ offline" if state is False else "… checking")

    def _device_state(self, device_id: DeviceId, online: bool) -> None:
        """A paired device went online or offline: its place in the sidebar says so."""
        self.online[device_id] = online
        name = self.sd.device_names.get(device_id)
        if name is not None:
            self.query_one(Sidebar).relabel(f"dev-{device_id}", self._device_label(device_id, name))

    @on(Sidebar.PlaceChosen)
    async def _place_chosen(self, event: Sidebar.PlaceChosen) -> None:
        if event.kind == "device" and event.path is not None:
            self.show_device(event.path)
        elif event.kind == "favourite" and event.path is not None:
            self.go_to(self.active, event.path)
            self.active.file_list.focus()
        elif event.kind == "spacedrop" and event.path is not None:
            await asyncio.to_thread(os.makedirs, event.path.path, exist_ok=True)  # nothing received yet: empty
            self.active.open(event.path)
            self.active.file_list.focus()
        elif event.path is not None:
            self.active.open(event.path)
            self.active.file_list.focus()
        elif event.kind == "tag":
            self.run_worker(
                self.show_found(f"tag: {event.key[4:]}", self.api.library().tags[event.key[4:]].files()), group="ops"
            )
        elif event.kind == "saved":
            self.run_worker(
                self.show_found(f"saved: {event.key[6:]}", self.api.library().saved.run(event.key[6:])), group="ops"
            )

    @work(group="ops", exit_on_error=False)
    async def show_device(self, device: SdPath) -> None:
        """A paired device opens on its places (its shares, or its locations), not on `/`."""
        name = self._label(device).split(":", 1)[0]
        self.status(f"{name}: asking for its places…")
        await self.show_found(f"{name}: places", self.api.devices.places(device.device_id))

    # -- panes -----------------------------------------------------------------------------

    @on(Pane.Activated)
    def _pane_activated(self, event: Pane.Activated) -> None:
        if event.pane.id and event.pane.id != self.active_id:
            self.inactive.remove_class("-active")
            self.active_id = event.pane.id
            event.pane.add_class("-active")
            self._inspect(event.pane)

    @on(FileList.CursorMoved)
    def _cursor_moved(self, event: FileList.CursorMoved) -> None:
        pane = event.file_list.parent
        if isinstance(pane, Pane) and pane.id == self.active_id:
            self._inspect(pane)

    def _inspect(self, pane: Pane) -> None:
        inspector = self.query_one(Inspector)
        entry = pane.file_list.current
        path = pane.path_of(entry) if entry is not None else None
        if path is None or entry is None or not inspector.display:
            inspector.show(None, None)
            return
        inspector.show(path, replace(entry, name=path.name))

    @on(Pane.FileOpened)
    def _file_opened(self, event: Pane.FileOpened) -> None:
        self.open_file(event.path, event.entry)

    @on(FileList.StateChanged, "#left FileList")
    def _left_listed(self, event: FileList.StateChanged) -> None:
        right = self.query_one("#right", Pane)
        left = self.query_one("#left", Pane)
        if not self.network_attached and event.file_list.state in ("ready", "unreachable"):
            self.call_after_refresh(self.attach_network)  # the first screen is drawn: the rest can load
        if (
            right.path is None
            and right.results is None
            and left.path == self.other
            and event.file_list.state == "ready"
        ):
            right.open(self.other, preloaded=left.file_list.entries)
        elif right.path is None and right.results is None and event.file_list.state == "unreachable":
            right.open(self.other)

    @on(JobsStrip.Clicked)
    def _strip_clicked(self) -> None:
        self.sd.open_jobs()

    @on(Pane.Navigated)
    def _navigated(self, event: Pane.Navigated) -> None:
        if event.pane.id == self.active_id:
            self.status(self._label(event.path))

    def action_switch_pane(self) -> None:
        if self.has_class("-single"):
            return
        self.inactive.file_list.focus()

    def action_single_pane(self) -> None:
        self.toggle_class("-single")
        if self.has_class("-single") and self.active_id == "right":
            self.query_one("#left", Pane).file_list.focus()

    def action_toggle_inspector(self) -> None:
        self.toggle_class("-no-inspector")
        self._inspect(self.active)

    def action_toggle_sidebar(self) -> None:
        self.toggle_class("-no-sidebar")

    def action_focus_sidebar(self) -> None:
        self.remove_class("-no-sidebar")
        self.query_one(Sidebar).focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.sd.help_sections(), self.sd.keymap))

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def action_quit(self) -> None:
        """q: quit; while a copy, a move or a delete runs, ask first (it stops now and resumes at the next start)."""
        running = self.query_one(JobsStrip).running(("copy", "move", "delete"))
        if running:
            what = ", ".join(f"{j.name} ({j.amount()})" for j in running[:3])
            ok = await self.app.push_screen_wait(
                ConfirmScreen(
                    f"{what} {'is' if len(running) == 1 else 'are'} still running. Quit now? It stops where it is"
                    " and carries on the next time sdtui or `sd serve` starts on this data dir.",
                    title="Quit", yes="Quit",
                )
            )
            if not ok:
                return
        self.app.exit()

    # -- live updates ----------------------------------------------------------------------

    @work(group="events", exit_on_error=False)
    async def follow_events(self) -> None:
        """Apply the core's events: job progress drives the strip (a pane follows its own directory's changes)."""
        async for event in self.api.events():
            await self.apply_event(event)

    @on(Pane.Changed)
    async def _pane_changed(self, event: Pane.Changed) -> None:
        """Entries changed in the directory a pane shows: patch them in, or list it again when many did."""
        pane, path, names = event.pane, event.directory, event.change.names
        if pane.path != path:
            return  # it left the directory meanwhile
        if not names or len(names) > PATCH_LIMIT or pane.file_list.is_loading:
            pane.refresh_listing()
        else:
            await pane.apply_changes(await self._stat_names(path, names))

    async def apply_event(self, event: Event) -> None:
        if isinstance(event, JobProgress):
            self.query_one(JobsStrip).on_progress(event)
        elif isinstance(event, JobStateChanged):
            self.query_one(JobsStrip).on_state(event)
            done_text = self.said_when_done.pop(event.job_id, None) if event.state in FINISHED_STATES else None
            if event.state == "failed" and event.error:
                self.status(f"{event.name} failed: {event.error}", error=True)
            elif event.state == "completed" and done_text:
                self.status(done_text)
        elif isinstance(event, LibraryChanged):
            self.fill_sidebar()
        elif isinstance(event, DropOffered):
            self.offer_drop(event)
        elif isinstance(event, DeviceLost):
            self._device_state(event.device_id, False)
            self.status(f"{event.name or event.device_id} lost: {event.reason}", error=True)
        elif isinstance(event, DeviceConnected):
            was = self.online.get(event.device_id)
            self._device_state(event.device_id, True)
            if was is not None:  # not at the start-up check: only a device that comes back is news
                self.status(f"{event.name or event.device_id} connected")

    async def _stat_names(self, directory: SdPath, names: tuple[str, ...]) -> dict[str, Entry | None]:
        changed: dict[str, Entry | None] = {}
        for name in names:
            try:
                changed[name] = await self.api.stat(directory.child(name))
            except NotFound:
                changed[name] = None
            except SdError:
                continue
        return changed

    def action_jobs(self) -> None:
        self.sd.open_jobs()

