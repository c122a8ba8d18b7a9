"""ExplorerScreen: the sidebar, two file panes, the inspector, the jobs strip, status line and footer."""

from __future__ import annotations

import asyncio
import os
import posixpath
import subprocess
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sdcore import log
from sdcore.errors import NotFound, SdError
from sdcore.events import (
    DeviceConnected,
    DeviceLost,
    DropOffered,
    EntriesChanged,
    Event,
    JobProgress,
    JobStateChanged,
    LibraryChanged,
)
from sdcore.fs.base import EntryInfo
from sdcore.sdpath import SCHEME, SdPath, display, split_remote
from sdtui import programs
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.conflict import ConflictScreen
from sdtui.screens.help import HelpScreen
from sdtui.screens.prompt import PromptScreen
from sdtui.screens.tag_picker import TagPickerScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.jobs_strip import FINISHED_STATES, JobsStrip
from sdtui.widgets.listing import human_size
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar, volumes_from_mounts

if TYPE_CHECKING:
    from sdcore.net import Network, Peer
    from sdtui.app import SdtuiApp

NETWORK_AFTER = 1.0
"""Seconds after start-up by which the network is attached even if the first listing has not come."""

PATCH_LIMIT = 256
"""An EntriesChanged naming more entries than this re-lists the directory instead of patching it."""

OPENABLE = ("file", "symlink")
"""Kinds of entry Enter, F3 and F4 hand to another program (never a FIFO, socket or device)."""

INSPECTOR_FROM = 120
SIDEBAR_FROM = 100
"""Terminal widths (columns) from which the inspector, and the sidebar, are shown at first (80 columns: two panes of 40)."""


class ExplorerScreen(Screen[None]):
    """The main screen: browse with two panes, act on the selection."""

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
        self.network_attached = False
        """Whether the network was asked for (paired devices listed); see `attach_network`."""
        self.places_complete = False
        """Whether the sidebar lists everything, paired devices included."""
        self.said_when_done: dict[str, str] = {}
        """What the status line says when a copy or move started here completes (job id -> text)."""
        self.has_locations = True
        """Whether the library has a location (as the sidebar last listed them): an empty search says if not."""
        self.online: dict[str, bool] = {}
        """Paired devices known to be connected (True) or not (False), from DeviceConnected and DeviceLost."""
        self.width_class = ""
        """How much the terminal's width holds ("wide", "medium", "narrow"); see `on_resize`."""

    @property
    def sd(self) -> SdtuiApp:
        return self.app  # type: ignore[return-value]

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
        core = self.sd.core
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            yield Pane(core.browse, self._label, watch=core.watch, id="left")
            yield Pane(core.browse, self._label, watch=core.watch, id="right")
            yield Inspector(self._read_head, core.browse, self.sd.details, id="inspector")
        yield JobsStrip(id="jobs-strip")
        yield Static("", id="status", markup=False)
        yield Footer()

    @property
    def active(self) -> Pane:
        return self.query_one(f"#{self.active_id}", Pane)

    @property
    def inactive(self) -> Pane:
        return self.query_one("#right" if self.active_id == "left" else "#left", Pane)

    @property
    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

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
            await asyncio.to_thread(self.sd.attach_network)
        except (SdError, ImportError) as exc:
            self.status(f"paired devices: {exc}", error=True)
        self.fill_sidebar()
        self.sd.host_commands()
        self.probe_devices()

    @work(group="probe", exclusive=True, exit_on_error=False)
    async def probe_devices(self) -> None:
        """Connect once to each paired device to learn whether it is online; from then on DeviceConnected and
        DeviceLost keep the sidebar current (no polling)."""
        network = self.sd.core.network
        if network is None:
            return

        async def probe(peer_id: str) -> None:
            try:
                await network.link(peer_id).connect()
            except (SdError, OSError):
                self._device_state(peer_id, False)

        await asyncio.gather(*(probe(p.id) for p in network.trust.peers() if p.id not in self.online))

    def _label(self, path: SdPath) -> str:
        return self.sd.label(path)

    def _read_head(self, path: SdPath, size: int) -> AsyncIterator[bytes]:
        return self.sd.core.fs_for(path.device_id).open_read(path.path)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's unexpected error (a bug, not an SdError its action reports) is logged with its traceback
        and said on the status line, never lost."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.status(log.unexpected(event.worker.error, event.worker.name or "the explorer"), error=True)

    def status(self, text: str, *, error: bool = False) -> None:
        """Say something on the status line (errors in the error colour)."""
        line = self.query_one("#status", Static)
        line.update(text)
        line.set_class(error, "-error")

    # -- sidebar ---------------------------------------------------------------------------

    @work(group="sidebar", exclusive=True, exit_on_error=False)
    async def fill_sidebar(self) -> None:
        """The places: this device, locations, tags, saved searches, volumes."""
        core = self.sd.core
        here: list[tuple[str, str, SdPath | None, str]] = [
            ("home", "~ home", core.local_path("~"), "dir"),
            ("root", "/ root", core.local_path("/"), "dir"),
        ]
        if core.network is not None:  # where files other devices send land
            here.append(("spacedrop", "⇣ Spacedrop", core.local_path(str(core.network.spacedrop_dir)), "spacedrop"))
        locations: list[tuple[str, str, SdPath | None, str]] = []
        favourites: list[tuple[str, str, SdPath | None, str]] = []
        tags: list[tuple[str, str, SdPath | None, str]] = []
        saved: list[tuple[str, str, SdPath | None, str]] = []
        try:
            library = await self.sd.library()
            for loc in await asyncio.to_thread(library.locations.list):
                locations.append(
                    (f"loc-{loc.id}", loc.name, SdPath(core.device.id, loc.path, library.id), "location")
                )
            for path in await self.sd.favourites():
                favourites.append((f"fav:{path.path}", f"★ {path.name}", path, "favourite"))
            for tag in await self.sd.tag_names():
                tags.append(
                    (
                        f"tag:{tag.name}",
                        f"{'  ' * tag.depth}#{tag.leaf} ({tag.entries + tag.contents})",
                        None,
                        "tag",
                    )
                )
            for search in await self.sd.saved_searches():
                saved.append((f"saved:{search.name}", search.name, None, "saved"))
        except SdError as exc:
            self.status(f"library: {exc}", error=True)
        devices: list[tuple[str, str, SdPath | None, str]] | None = None  # None: not known yet
        if core.network is not None:
            devices = [
                (f"dev-{peer.id}", self._device_label(peer.id, peer.name), SdPath(peer.uuid, "/"), "device")
                for peer in core.network.trust.peers()
            ]
        volumes: list[tuple[str, str, SdPath | None, str]] = []
        try:
            data = b""
            async for chunk in core.local_fs.open_read(self.sd.mounts_file):
                data += chunk
            for point, source in volumes_from_mounts(data.decode("utf-8", "replace")):
                volumes.append(
                    (
                        f"vol-{point}",
                        f"{point} ({os.path.basename(source)})",
                        core.local_path(point),
                        "volume",
                    )
                )
        except SdError:
            pass
        self.has_locations = bool(locations)
        self.query_one(Sidebar).set_places(
            [
                (f"This device: {core.device.name}", here),
                ("Paired devices", devices),
                ("Locations", locations),
                ("Favourites", favourites),
                ("Tags", tags),
                ("Saved searches", saved),
                ("Volumes", volumes),
            ]
        )
        self.places_complete = devices is not None

    def _device_label(self, device_id: str, name: str) -> str:
        state = self.online.get(device_id)
        return f"{name} " + ("● online" if state else "○ offline" if state is False else "… checking")

    def _device_state(self, device_id: str, online: bool) -> None:
        """A paired device went online or offline: its place in the sidebar says so."""
        self.online[device_id] = online
        network = self.sd.core.network
        peer = network.trust.get(device_id) if network is not None else None
        if peer is not None:
            self.query_one(Sidebar).relabel(f"dev-{peer.id}", self._device_label(peer.id, peer.name))

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
                self.show_found(f"tag: {event.key[4:]}", self.sd.tagged(event.key[4:])), group="ops"
            )
        elif event.kind == "saved":
            self.run_worker(
                self.show_found(f"saved: {event.key[6:]}", self.sd.run_saved(event.key[6:])), group="ops"
            )

    @work(group="ops", exit_on_error=False)
    async def show_device(self, device: SdPath) -> None:
        """A paired device opens on its places (its shares, or its locations), not on `/`."""
        name = self._label(device).split(":", 1)[0]
        self.status(f"{name}: asking for its places…")
        await self.show_found(f"{name}: places", self.sd.device_places(device.device_id))

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
        """Enter on a file: the desktop's default application opens it, or, in a terminal alone, the pager."""
        if not self.sd.core.is_local(event.path):  # not an error here: the inspector shows it
            self.status(f"{self._label(event.path)}: previewed in the inspector; F5 copies it here to open it")
            return
        if not self._openable(event.path, event.entry):
            return
        opener = programs.desktop_opener()
        if not opener:
            self.action_view(event.path)
            return
        try:
            subprocess.Popen(
                [*opener, event.path.path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            self.status(f"{opener[0]}: {exc.strerror or exc}", error=True)
            return
        self.status(f"opened {display(event.path.name)} with {opener[0]}")

    def action_view(self, path: SdPath | None = None) -> None:
        path = path or self._file_under_cursor()
        if path is not None:
            self._run_in_terminal(programs.pager(), path, "a pager (set $PAGER)")

    def action_edit(self) -> None:
        path = self._file_under_cursor()
        if path is not None:
            self._run_in_terminal(programs.editor(), path, "an editor (set $EDITOR)")

    def _file_under_cursor(self) -> SdPath | None:
        """The file under the cursor, if a program here can open it (see `_openable`)."""
        pane = self.active
        entry = pane.file_list.current
        path = pane.path_of(entry) if entry is not None else None
        if entry is None or path is None or entry.is_dir or not self._openable(path, entry):
            return None
        return path

    def _openable(self, path: SdPath, entry: EntryInfo) -> bool:
        """Whether a program here can open this file: one of this device's, and never a FIFO, socket or device
        (a pager or an editor would wait on a FIFO for good); says why not on the status line."""
        if entry.kind not in OPENABLE:
            self.status(f"{display(path.name)} is a {entry.kind}: nothing to open", error=True)
            return False
        if not self.sd.core.is_local(path):
            self.status(f"{self._label(path)} is on another device: F5 copies it here to open it", error=True)
            return False
        return True

    def _run_in_terminal(self, program: list[str], path: SdPath, wanted: str) -> None:
        """Hand the terminal to `program` on `path` until it exits (the pager or the editor)."""
        if not program:
            self.status(f"no {wanted} is installed", error=True)
            return
        command = [*program, path.path]
        try:
            with self.app.suspend():
                code = subprocess.call(command)
        except SuspendNotSupported:  # no terminal to hand over (headless, as in tests): run it without one
            code = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            self.status(f"{program[0]}: {exc.strerror or exc}", error=True)
            return
        if code != 0:
            self.status(f"{program[0]} exited with status {code}", error=True)
        self.refresh_panes(path.parent)  # an editor may have changed it

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
        """Apply the core's events: changed directories are patched, job progress drives the strip."""
        watched = (EntriesChanged, JobProgress, JobStateChanged, LibraryChanged, DeviceConnected, DeviceLost, DropOffered)
        with self.sd.core.bus.subscribe(*watched) as events:
            async for event in events:
                await self.apply_event(event)

    async def apply_event(self, event: Event) -> None:
        if isinstance(event, EntriesChanged):
            for pane in self.panes:
                path = pane.path
                if (
                    path is None
                    or path.device_id != event.device_id
                    or path.path != event.directory
                ):
                    continue
                if not event.names or len(event.names) > PATCH_LIMIT or pane.file_list.is_loading:
                    pane.refresh_listing()
                else:
                    await pane.file_list.patch(await self._stat_names(path, event.names))
        elif isinstance(event, JobProgress):
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
            self._device_state(str(event.device_id), False)
            self.status(f"{event.name or event.device_id} lost: {event.reason}", error=True)
        elif isinstance(event, DeviceConnected):
            was = self.online.get(str(event.device_id))  # keyed as the trust store keys its peers
            self._device_state(str(event.device_id), True)
            if was is not None:  # not at the start-up check: only a device that comes back is news
                self.status(f"{event.name or event.device_id} connected")

    # -- pairing and Spacedrop (from the command palette) ---------------------------------------

    async def _network(self) -> Network:
        """The core's network, attached now if it was not yet."""
        if self.sd.core.network is None:
            await asyncio.to_thread(self.sd.attach_network)
        assert self.sd.core.network is not None
        return self.sd.core.network

    @work(group="pairing", exclusive=True, exit_on_error=False)
    async def pair_show_code(self) -> None:
        """Show a 12-word code and wait for another device to join with it (`sd network pair join` there)."""
        from sdcore.net import DEFAULT_PORT, PairingError

        network = await self._network()
        if network.address is None:
            typed = await self.app.push_screen_wait(
                PromptScreen("Where should the other device reach this one? (HOST:PORT; 0.0.0.0 is every network)",
                             f"0.0.0.0:{DEFAULT_PORT}", title="Pair: listen")
            )
            if not typed:
                return
            try:
                await network.start(typed)
            except SdError as exc:
                self._fail(exc)
                return
        code = network.pair_generate()
        self.app.notify(
            f"Pairing code: {code}\n\nOn the other device: palette “Pair: join”, or\n"
            f"sd network pair join {code} --host {network.address}",
            title="Pair: waiting (10 minutes at most)", timeout=600, markup=False,
        )
        self.status(f"pairing: waiting for a device to join at {network.address} with the code shown")
        try:
            peer = await network.wait_paired()
        except PairingError as exc:
            self._fail(exc)
            return
        self._paired(peer)

    @work(group="pairing", exclusive=True, exit_on_error=False)
    async def pair_join(self) -> None:
        """Join another device that shows a pairing code."""
        code = await self.app.push_screen_wait(
            PromptScreen("The 12 words the other device shows:", title="Pair: join")
        )
        if not code:
            return
        host = await self.app.push_screen_wait(
            PromptScreen("Where it listens (HOST:PORT, as it says):", title="Pair: join")
        )
        if not host:
            return
        network = await self._network()
        self.status(f"pairing with the device at {host}…")
        try:
            peer = await network.pair_join(code, host)
        except SdError as exc:
            self._fail(exc)
            return
        self._paired(peer)

    def _paired(self, peer: Peer) -> None:
        self.app.clear_notifications()
        self.status(f"paired with {peer.name}, trust {peer.trust}: it is in the sidebar")
        self.app.notify(f"paired with {peer.name}", timeout=5, markup=False)
        self.fill_sidebar()
        self.probe_devices()

    @work(group="ops", exit_on_error=False)
    async def spacedrop_send(self) -> None:
        """Send the selected files to a paired device's Spacedrop folder."""
        pane = self.active
        files = [p for e in pane.file_list.selection() if e.kind == "file" and (p := pane.path_of(e)) is not None]
        if not files or any(not self.sd.core.is_local(f) for f in files):
            self.status("Spacedrop sends files of this device: select one or more files first", error=True)
            return
        network = await self._network()
        peers = network.trust.peers()
        if not peers:
            self.status("no paired device to send to: pair one first (palette: “Pair: show a code”)", error=True)
            return
        device = await self.app.push_screen_wait(
            PromptScreen(f"Send {self._describe(files)} to which device? ({', '.join(p.name for p in peers)})",
                         peers[0].name, title="Spacedrop")
        )
        if not device:
            return
        self._selection_done()
        self.status(f"offering {self._describe(files)} to {device}…")
        try:
            sent = await network.drop(device, [f.path for f in files])
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"sent {len(sent)} file(s) to {device}'s Spacedrop folder")

    def offer_drop(self, event: DropOffered) -> None:
        """Spacedrop: a paired device offers files; they land in the Spacedrop folder only if the user says yes."""
        names = ", ".join(display(n) for n in event.names[:5]) + (", …" if len(event.names) > 5 else "")
        question = (
            f"{event.device_name} wants to send you {len(event.names)} file(s), {human_size(event.total_bytes)}:"
            f" {names}"
        )
        def answer(accept: bool | None) -> None:
            self.sd.answer_drop(event.drop_id, bool(accept))
            network = self.sd.core.network
            if accept and network is not None:
                where = self._label(self.sd.core.local_path(str(network.spacedrop_dir)))
                self.app.notify(
                    f"the files from {event.device_name} land in {where} (⇣ Spacedrop in the sidebar)", markup=False
                )
                self.fill_sidebar()

        self.app.push_screen(ConfirmScreen(question, title="Spacedrop", yes="Accept"), answer)

    async def _stat_names(self, directory: SdPath, names: tuple[str, ...]) -> dict[str, EntryInfo | None]:
        fs = self.sd.core.fs_for(directory.device_id)
        changed: dict[str, EntryInfo | None] = {}
        for name in names:
            try:
                changed[name] = await fs.stat(directory.child(name).path)
            except NotFound:
                changed[name] = None
            except SdError:
                continue
        return changed

    def refresh_panes(self, *directories: SdPath) -> None:
        """List again the panes that show any of `directories` (after an operation of ours)."""
        for pane in self.panes:
            if pane.path is not None and pane.path in directories:
                pane.refresh_listing()

    # -- operations ------------------------------------------------------------------------

    def _targets(self) -> list[SdPath]:
        pane = self.active
        return [p for p in (pane.path_of(e) for e in pane.file_list.selection()) if p is not None]

    def _selection_done(self) -> None:
        """An operation took the selection: nothing stays selected and range mode ends, so the next operation
        cannot reach files the user never picked for it (as in Midnight Commander)."""
        self.active.file_list.action_clear_selection()

    def _describe(self, paths: list[SdPath]) -> str:
        return display(paths[0].name) if len(paths) == 1 else f"{len(paths)} items"

    def _fail(self, exc: SdError) -> None:
        self.status(str(exc), error=True)
        self.app.notify(str(exc), severity="error", timeout=6, markup=False)

    @work(group="ops", exit_on_error=False)
    async def action_mkdir(self) -> None:
        pane = self.active
        if pane.path is None:
            return
        name = await self.app.push_screen_wait(PromptScreen("New folder name:", title="Make directory"))
        if not name:
            return
        target = pane.path.child(name)
        try:
            await self.sd.mkdir(target)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"made {display(target.path)}")
        pane.file_list.load(lambda: self.sd.core.browse(target.parent), keep=True, cursor_name=name)

    @work(group="ops", exit_on_error=False)
    async def action_goto(self) -> None:
        """Ctrl+L: type where to go (a folder, or a file to put the cursor on), as in a file dialog."""
        pane = self.active
        here = pane.path
        typed = await self.app.push_screen_wait(
            PromptScreen("A folder or a file: /path, ~/path, a path from here, or DEVICE:/path",
                         self._label(here) if here is not None else "", title="Go to")
        )
        if not typed or not typed.strip():
            return
        text = typed.strip()
        try:
            if here is not None and not text.startswith(("/", "~", SCHEME)) and split_remote(text) is None:
                target = SdPath(here.device_id, posixpath.normpath(posixpath.join(here.path, text)))
            else:
                target = self.sd.core.resolve(text)
            info = await self.sd.core.fs_for(target.device_id).stat(target.path)
        except SdError as exc:
            self._fail(exc)
            return
        self.go_to(pane, target, info)

    @work(group="ops", exit_on_error=False)
    async def go_to(self, pane: Pane, target: SdPath, info: EntryInfo | None = None) -> None:
        """Show a folder, or the folder of a file with the cursor on it."""
        if info is None:
            try:
                info = await self.sd.core.fs_for(target.device_id).stat(target.path)
            except SdError as exc:
                self._fail(exc)
                return
        if info.is_dir:
            pane.open(target)
        else:
            pane.open(target.parent, cursor_name=target.name)

    @work(group="ops", exit_on_error=False)
    async def action_rename(self) -> None:
        pane = self.active
        entry = pane.file_list.current
        source = pane.path_of(entry) if entry is not None else None
        if source is None:
            return
        new = await self.app.push_screen_wait(
            PromptScreen(f"Rename {display(source.name)} to:", source.name, title="Rename", select_stem=True)
        )
        if not new or new == source.name:
            return
        try:
            await self.sd.rename(source, new)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"renamed {display(source.name)} to {display(new)}")
        directory = source.parent
        if pane.path == directory:
            pane.file_list.load(lambda: self.sd.core.browse(directory), keep=True, cursor_name=new)
        self.refresh_panes(*(p.path for p in self.panes if p is not pane and p.path == directory))

    @work(group="ops", exit_on_error=False)
    async def action_trash(self) -> None:
        targets = self._targets()
        if not targets:
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(f"Move {self._describe(targets)} to the trash?", title="Trash", yes="Trash")
        )
        if not ok:
            return
        self._selection_done()
        try:
            await self.sd.trash(targets)
        except SdError as exc:
            self._fail(exc)
        else:
            self.status(f"moved {self._describe(targets)} to the trash: u restores")
        self.refresh_panes(targets[0].parent)

    @work(group="ops", exit_on_error=False)
    async def action_restore(self) -> None:
        if not self.sd.last_trashed:
            self.status("nothing to restore: u puts back what d last sent to the trash")
            return
        try:
            restored = await self.sd.restore(self.sd.last_trashed)
        except SdError as exc:
            self._fail(exc)
            return
        self.sd.last_trashed = []
        self.status(f"restored {len(restored)} item(s) from the trash")
        self.refresh_panes(*{p.parent for p in restored})

    @work(group="ops", exit_on_error=False)
    async def action_delete(self) -> None:
        targets = self._targets()
        if not targets:
            return
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                f"Delete {self._describe(targets)} permanently? This cannot be undone.",
                title="Delete permanently",
                yes="Delete",
            )
        )
        if not ok:
            return
        self._selection_done()
        try:
            await self.sd.delete(targets)
        except SdError as exc:
            self._fail(exc)
        else:
            self.status(f"deleted {self._describe(targets)}")
        self.refresh_panes(targets[0].parent)

    async def _transfer(self, kind: str, sources: list[SdPath], destination: SdPath) -> bool:
        """Start a copy or move job into `destination`, asking first what to do with names already there;
        whether a job started."""
        existing = await self._names_in(destination)
        clashes = [s for s in sources if s.name in existing]
        on_conflict = "fail"
        if clashes:
            shown = ", ".join(display(s.name) for s in clashes[:3]) + (f" and {len(clashes) - 3} more" if len(clashes) > 3 else "")
            answer = await self.app.push_screen_wait(
                ConflictScreen(f"{self._label(destination)} already has {shown}. Keep both (a file that clashes"
                               " gets a numbered name, folders merge), skip those, or overwrite them?")
            )
            if answer is None:
                self.status(f"nothing {'copied' if kind == 'copy' else 'moved'}")
                return False
            on_conflict = answer
        try:
            job_id = await self.sd.transfer(kind, sources, destination, on_conflict=on_conflict)
        except SdError as exc:
            self._fail(exc)
            return False
        what = f"{self._describe(sources)} to {self._label(destination)}"
        self.status(f"{'copying' if kind == 'copy' else 'moving'} {what} (job {job_id}: w shows jobs)")
        self.said_when_done[job_id] = f"{'copied' if kind == 'copy' else 'moved'} {what}"
        return True

    async def _names_in(self, directory: SdPath) -> set[str]:
        """The names in a directory: from a pane that shows it whole, else listed now."""
        for pane in self.panes:
            if pane.path == directory and pane.file_list.state == "ready":
                return {e.name for e in pane.file_list.entries}
        names: set[str] = set()
        try:
            async for batch in self.sd.core.browse(directory):
                names.update(e.name for e in batch)
        except SdError:
            pass  # the job says what is wrong with the destination
        return names

    @work(group="ops", exit_on_error=False)
    async def action_copy_to_other(self) -> None:
        await self._to_other("copy")

    @work(group="ops", exit_on_error=False)
    async def action_move_to_other(self) -> None:
        await self._to_other("move")

    async def _to_other(self, kind: str) -> None:
        sources = self._targets()
        destination = self.inactive.path
        if not sources or destination is None:
            return
        if self.has_class("-single"):
            self.status("F5/F6 copy or move to the other pane: leave single-pane mode (o) first", error=True)
            return
        if await self._transfer(kind, sources, destination):
            self._selection_done()

    def action_yank(self) -> None:
        targets = self._targets()
        if targets:
            self.clipboard = ("copy", targets)
            self._selection_done()
            self.status(f"copied {self._describe(targets)}: p pastes")

    def action_cut(self) -> None:
        targets = self._targets()
        if targets:
            self.clipboard = ("cut", targets)
            self._selection_done()
            self.status(f"cut {self._describe(targets)}: p moves them here")

    @work(group="ops", exit_on_error=False)
    async def action_paste(self) -> None:
        if self.clipboard is None or self.active.path is None:
            self.status("nothing to paste: y copies, x cuts")
            return
        kind, sources = self.clipboard
        destination = self.active.path
        if await self._transfer("copy" if kind == "copy" else "move", sources, destination) and kind == "cut":
            self.clipboard = None  # moved: there is nothing left to paste

    def action_jobs(self) -> None:
        self.sd.open_jobs()

    async def _entry_ids(self, targets: list[SdPath], done: str) -> list[int] | None:
        """The library entries of the targets, indexing them first if the user agrees; None (said why) if not.

        Tags, notes and favourites live on the library's entries. A file in a location the index has not
        reached yet is indexed on the spot; a file outside every location is offered to be indexed (its
        folder becomes a location), and is left alone, with a message saying so, when the user declines.
        """
        from sdcore.library.entries import NotIndexed, NotInLibrary  # not needed to start

        try:
            return await self.sd.entry_ids(targets)
        except NotIndexed:
            try:
                await self.sd.index_now(sorted({t.parent for t in targets}, key=str))
                return await self.sd.entry_ids(targets)
            except SdError as exc:
                self._fail(exc)
                return None
        except NotInLibrary as exc:
            outside = targets[0]
            folder = outside.parent
            if not self.sd.core.is_local(outside):
                self._fail(exc)
                return None
            library = await self.sd.library()
            ok = await self.app.push_screen_wait(
                ConfirmScreen(
                    f"{self._describe(targets)} is not in any location of library “{library.name}”, so it cannot"
                    f" be {done} yet: tags, notes and favourites live in the library's index.\n\n"
                    f"Add {self._label(folder)} as a location and index it now?",
                    title="Not in a location",
                    yes="Add and index",
                )
            )
            if not ok:
                self.status(
                    f"not {done}: {display(outside.name)} is in no location of the library"
                    " (add its folder as a location first)",
                    error=True,
                )
                return None
            self.status(f"indexing {self._label(folder)} as a new location… (w shows the job)")
        except SdError as exc:
            self._fail(exc)
            return None
        try:
            name = await self.sd.add_location(folder)
            self.fill_sidebar()
            ids = await self.sd.entry_ids(targets)
        except SdError as exc:
            self._fail(exc)
            return None
        self.status(f"{self._label(folder)} is now location “{name}”, indexed")
        return ids

    @work(group="ops", exit_on_error=False)
    async def action_tag(self) -> None:
        """t: tag the selection (picker with fuzzy match; a new name creates the tag)."""
        targets = self._targets()
        if not targets:
            return
        ids = await self._entry_ids(targets, "tagged")
        if ids is None:
            return
        try:
            names = [t.name for t in await self.sd.tag_names()]
        except SdError as exc:
            self._fail(exc)
            return
        name = await self.app.push_screen_wait(TagPickerScreen(names, what=self._describe(targets)))
        if not name:
            return
        self._selection_done()
        try:
            await self.sd.tag(name, ids)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"tagged {self._describe(targets)} “{name}”")
        self.fill_sidebar()
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    async def action_note(self) -> None:
        """n: write the note of the entry under the cursor (blank removes it)."""
        entry = self.active.file_list.current
        path = self.active.path_of(entry) if entry is not None else None
        if path is None:
            return
        ids = await self._entry_ids([path], "given a note")
        if ids is None:
            return
        (entry_id,) = ids
        try:
            current = await self.sd.note(entry_id)
        except SdError as exc:
            self._fail(exc)
            return
        text = await self.app.push_screen_wait(
            PromptScreen(f"Note on {display(path.name)}:", current or "", title="Note")
        )
        if text is None and current is None:
            return
        try:
            await self.sd.set_note(entry_id, text)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"note {'saved' if text else 'removed'} on {display(path.name)}")
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    async def action_favourite(self) -> None:
        """*: mark the selection as favourites, or unmark them when the first already is one."""
        targets = self._targets()
        if not targets:
            return
        ids = await self._entry_ids(targets, "marked as favourite")
        if ids is None:
            return
        self._selection_done()
        try:
            now = await self.sd.toggle_favourite(ids)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"{self._describe(targets)} {'marked as favourite ★' if now else 'no longer favourite'}")
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    async def action_search(self) -> None:
        """ctrl+f: search the library; the results fill the active pane (`[` goes back)."""
        text = await self.app.push_screen_wait(
            PromptScreen("Search the library (names, paths, notes):", title="Search")
        )
        if not text:
            return
        await self.show_found(f"search: {text}", self.sd.search(text))
        self.last_search = text

    @work(group="ops", exit_on_error=False)
    async def action_save_search(self) -> None:
        """ctrl+s: keep the last search under a name; it shows in the sidebar's saved searches."""
        if not self.last_search:
            self.status("nothing to save: search first (ctrl+f)")
            return
        name = await self.app.push_screen_wait(
            PromptScreen(f"Save the search “{self.last_search}” as:", self.last_search, title="Save search")
        )
        if not name:
            return
        try:
            await self.sd.save_search(name, self.last_search)
        except SdError as exc:
            self._fail(exc)
            return
        self.status(f"saved the search as “{name}”")
        self.fill_sidebar()

    async def show_found(self, title: str, finding: Awaitable[list[tuple[SdPath, EntryInfo]]]) -> None:
        try:
            found = await finding
        except SdError as exc:
            self._fail(exc)
            return
        self.active.show_results(f"{title} ({len(found)})", found)
        self.active.file_list.focus()
        if not found and not self.has_locations:
            self.status(f"{title}: nothing, the library has no location yet (t, n or * on a file offers to add its folder)")
            return
        unfinished = await self.sd.incomplete_locations()
        if unfinished:  # found only among what the index reached so far: say so, and how to finish
            self.status(f"{title}: {len(found)} found · {unfinished[0]}", error=True)
            return
        self.status(f"{title}: {len(found)} found · Enter opens where it lies · [ goes back")
