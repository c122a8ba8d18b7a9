"""ExplorerScreen: the sidebar, two file panes, the inspector, the jobs strip, status line and footer."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sdcore.api import Api, DeviceId, Entry, PairedDevice, Trashed, human_size
from sdcore.errors import NotAdmin, NotFound, SdError
from sdcore.events import (
    LOCATION_MOVED,
    LOCATION_NEEDS_DECISION,
    DeviceConnected,
    DeviceLost,
    DeviceRenamed,
    DropOffered,
    EntriesChanged,
    Event,
    JobProgress,
    JobStateChanged,
    LibraryChanged,
    VolumesChanged,
)
from sdcore.sdpath import SdPath, display
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_disks import DiskActions, DiskView
from sdtui.screens.explorer_files import FileActions
from sdtui.screens.explorer_jump import JumpActions
from sdtui.screens.explorer_mouse import MouseActions
from sdtui.screens.explorer_network import NetworkActions
from sdtui.screens.explorer_organize import OrganizeActions
from sdtui.screens.explorer_programs import ProgramActions
from sdtui.screens.explorer_tabs import ALT_DIGITS_AS_READ, TabActions
from sdtui.screens.explorer_undo import UndoActions
from sdtui.screens.help import HelpScreen
from sdtui.state import State
from sdtui.widgets.file_list import FileList
from sdtui.widgets.inspector import Inspector, detail_rows
from sdtui.widgets.jobs_strip import FINISHED_STATES, JobsStrip
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar

if TYPE_CHECKING:
    from sdcore.api.library import LibraryHandle

NETWORK_AFTER = 1.0
"""Seconds after start-up by which the network is attached even if the first listing has not come."""

PATCH_LIMIT = 256
"""An EntriesChanged naming more entries than this re-lists the directory instead of patching it."""

Place = tuple[str, str, SdPath | None, str]
"""A sidebar place: (option id, label, path, kind)."""

INSPECTOR_FROM = 120
SIDEBAR_FROM = 100
"""Terminal widths (columns) from which the inspector, and the sidebar, are shown at first (80 columns: two panes of 40)."""


class ExplorerScreen(FileActions, OrganizeActions, NetworkActions, ProgramActions, UndoActions, JumpActions, TabActions,
                     MouseActions, DiskActions):
    """The main screen: browse with two panes, act on the selection (the actions live in explorer_*.py)."""

    DEFAULT_CSS = """
    ExplorerScreen > #main { height: 1fr; }
    ExplorerScreen.-single #right { display: none; }
    ExplorerScreen.-no-inspector Inspector { display: none; }
    ExplorerScreen.-no-sidebar Sidebar { display: none; }
    ExplorerScreen > #status { height: 1; padding: 0 1; background: $panel; color: $text; }
    ExplorerScreen > #status.-error { background: $error 40%; }
    ExplorerScreen > #tabs { height: 1; background: $panel; color: $text-muted; }
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
        Binding("O", "open_with", "Open with…", show=False, id="open_with"),
        Binding("r,f2", "rename", "Rename", show=False, id="rename"),
        Binding("d,f8", "trash", "Trash", id="trash"),
        Binding("D", "delete", "Delete permanently", show=False, id="delete"),
        Binding("U", "restore", "Restore from trash", show=False, id="restore"),
        Binding("u,ctrl+z", "undo", "Undo", show=False, id="undo"),
        Binding("R", "bulk_rename", "Rename in the editor", show=False, id="bulk_rename"),
        Binding("z", "jump", "Jump to a folder visited", show=False, id="jump"),
        Binding("m", "mark", "Bookmark this folder (a letter)", show=False, id="mark"),
        Binding("apostrophe", "go_mark", "Go to a bookmark (its letter)", show=False, id="go_mark"),
        Binding("ctrl+t", "new_tab", "New tab", show=False, id="new_tab"),
        Binding("ctrl+w", "close_tab", "Close tab", show=False, id="close_tab"),
        *[Binding(f"{n},alt+{n},{ALT_DIGITS_AS_READ[n]}", f"switch_tab({n})", f"Tab {n}", show=False, id=f"tab_{n}")
          for n in range(1, 10)],  # alt+N also as Textual reads it under tmux (ESC N)
        Binding("y", "yank", "Copy (clipboard)", show=False, id="yank"),
        Binding("x", "cut", "Cut (clipboard)", show=False, id="cut"),
        Binding("p", "paste", "Paste here", show=False, id="paste"),
        Binding("w", "jobs", "Jobs", show=False, id="jobs"),
        Binding("c", "disk_usage", "Disk usage (count sizes, largest first)", show=False, id="disk_usage"),
        Binding("t", "tag", "Tag", show=False, id="tag"),
        Binding("n", "note", "Note", show=False, id="note"),
        Binding("N", "history", "Note and tag history", show=False, id="history"),
        Binding("asterisk", "favourite", "Favourite", show=False, id="favourite"),
        Binding("ctrl+f", "search", "Search", show=False, id="search"),
        Binding("ctrl+s", "save_search", "Save search", show=False, id="save_search"),
        Binding("I", "index_disk", "Index this disk", show=False, id="index_disk"),
    ]

    def __init__(self, start: SdPath, other: SdPath | None = None, *, restore: bool = False) -> None:
        super().__init__()
        self.start = start
        self.other = other or start
        self.restore = restore
        """Whether to open on the saved tabs as they were (no folder was asked for)."""
        self.active_id = "left"
        """Id of the pane actions apply to."""
        self.disk_views: dict[str, DiskView] = {}
        """What each pane's folder was on (its disk out or not, its location) when it last looked."""
        self.mount_points: set[str] | None = None
        """Where volumes were mounted at the last look (None: not looked yet)."""
        self.disks_looking = False
        """Whether a look at the panes' disks runs now."""
        self.disks_look_again = False
        """Whether a disk changed while it ran (one more look follows)."""
        self.last_search = ""
        """The text of the last library search (ctrl+s saves it)."""
        self.searched: Api | None = None
        """The core whose library the last search ran in (a paired device's, or this one's): ctrl+s saves it there."""
        self.clipboard: tuple[str, list[SdPath]] | None = None
        """('copy' or 'cut', paths) after y or x."""
        self.last_trashed: list[Trashed] = []
        """What d last sent to the trash, and where each item lies in its own device's trash (U restores them)."""
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
        self.library_devices: dict[DeviceId, tuple[str, str]] = {}
        """The other devices that hold this library: (name, time of the last sync), for their sidebar rows."""
        self.width_class = ""
        """How much the terminal's width holds ("wide", "medium", "narrow"); see `on_resize`."""
        self.device_library: DeviceId | None = None
        """The paired device whose library the sidebar shows (one that trusts this device fully), if any."""
        self.browse_only: set[DeviceId] = set()
        """Paired devices that refused this one their core API (they share files only)."""
        self.following: set[DeviceId] = set()
        """Paired devices whose core's events this screen follows (their jobs in the strip)."""

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
            if fits == "wide":  # shown by this resize: what the cursor is on, not "nothing selected"
                self.call_after_refresh(self._inspect, self.active)

    def compose(self) -> ComposeResult:
        api = self.api
        yield Static("", id="tabs")
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            yield Pane(api.browse, self._label, watch=self._watch, id="left")
            yield Pane(api.browse, self._label, watch=self._watch, id="right")
            yield Inspector(
                self._read_head, api.peek, self._details, api.preview, graphics=self.sd.graphics, label=self._label,
                id="inspector",
            )
        yield JobsStrip(id="jobs-strip")
        yield Static("", id="status", markup=False)
        yield Footer()


    def on_mount(self) -> None:
        self.state = State.load(self.sd.data_dir)
        tab = self.first_tab(self.start, self.other, self.restore)
        self.start, self.other = SdPath.parse_canonical(tab.left), SdPath.parse_canonical(tab.right)
        self.query_one("#left", Pane).open(self.start, cursor_name=tab.left_cursor)
        if self.other != self.start:
            self.query_one("#right", Pane).open(self.other, cursor_name=tab.right_cursor)
        # else: the right pane shows the left one's listing once it is complete (one scan, not two)
        first = "right" if tab.active == "right" else "left"
        self.query_one(f"#{first}", Pane).add_class("-active")
        self.query_one(f"#{first}", Pane).file_list.focus()
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
            else:  # its link may have been made before this screen followed events: no DeviceConnected comes then
                self._device_state(device.id, True)

        await asyncio.gather(*(probe(d) for d in await self.sd.paired_devices() if d.id not in self.online))

    def _watch(self, directory: SdPath) -> AsyncIterator[EntriesChanged]:
        """A directory's changes, from the core of its device when its library is open here (it watches it)."""
        return self.sd.api_for(directory).watch(directory)

    def _read_head(self, path: SdPath, size: int) -> AsyncIterator[bytes]:
        return self.api.read(path)

    async def _details(self, path: SdPath, entry: Entry) -> list[tuple[str, str]]:
        """What the core knows of an entry beyond its listing (the inspector's rows)."""
        cas_id = None
        if entry.kind == "file":
            with suppress(SdError):
                cas_id = (await self.api.stat(path, cas_id=True)).cas_id or "— (empty)"
        return detail_rows(cas_id, await (await self._library_of(path)).entries.details(path))

    async def _library_of(self, path: SdPath) -> LibraryHandle:
        """The library that knows `path`: the explorer's own for this device's files and for the files of a device
        it is shared with (their catalogue and shared data are here), else that device's own library."""
        api = self.sd.api_for(path)
        if api is self.api or any(d.id == str(path.device_id) for d in await self.api.library().sharing.list()):
            return self.api.library()
        return api.library()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's error that no action reported (a bug: an action reports its own) is reported, never lost."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report(event.worker.error, event.worker.name or "the explorer")

    # -- sidebar ---------------------------------------------------------------------------

    @work(group="sidebar", exclusive=True, exit_on_error=False)
    async def fill_sidebar(self) -> None:
        """The places: this device, locations, tags, saved searches, volumes."""
        api = self.api
        here: list[Place] = [
            ("home", "~ home", await api.resolve("~"), "dir"),
            ("root", "/ root", await api.resolve("/"), "dir"),
        ]
        if self.network_attached:  # where files other devices send land
            with suppress(SdError, ImportError):
                here.append(("spacedrop", "⇣ Spacedrop", await api.devices.spacedrop_dir(), "spacedrop"))
        locations, favourites, tags, saved = [], [], [], []
        try:
            locations, favourites, tags, saved = await _library_places(api, "")
        except SdError as exc:
            self.status(f"library: {exc}", error=True)
        paired = await self.sd.paired_devices() if self.network_attached else None  # None: not known yet
        device_sections: list[tuple[str, list[Place] | None]] = []
        if self.network_attached:
            with suppress(SdError):
                if (held_by := await self._library_devices()) is not None:
                    device_sections.append(held_by)
        remote = self.sd.device_apis.get(self.device_library) if self.device_library else None
        if remote is not None:  # a paired device's library: where its jobs run, its index is searched
            name = display(self.sd.device_names.get(remote.device.id, remote.device.name))
            try:
                there, _, their_tags, their_saved = await _library_places(remote, "remote-")
                device_sections += [
                    (f"{name}: locations", there), (f"{name}: tags", their_tags), (f"{name}: saved searches", their_saved)
                ]
            except SdError:  # a lost device is said by the app
                pass
            except Exception:  # what a broken or hostile core sent: said, not shown
                self.warn(f"{name}: its core sent what this explorer cannot read; its library is not shown")
        volumes: list[Place] = []
        with suppress(SdError):
            for volume in await api.volumes():
                point = volume.mount_point
                said = [volume.name] if not volume.label else []  # a label says more than where it is mounted
                said += [f"{human_size(volume.free)} free"] if volume.size else []
                label = f"{volume.label or point} ({', '.join(said)})" if said else volume.label or point
                volumes.append((f"vol-{point}", label, SdPath(api.device.id, point), "volume"))
        self.has_locations = bool(locations)
        # labelled at the last moment: a device that went online or offline during the awaits above is shown so
        devices: list[Place] | None = None
        if paired is not None:
            devices = [(f"dev-{d.id}", self._device_label(d.id, d.name), SdPath(d.id, "/"), "device") for d in paired]
        self.query_one(Sidebar).set_places(
            [
                (f"This device: {api.device.name}", here),
                ("Paired devices", devices),
                *device_sections,
                ("Locations", locations),
                ("Favourites", favourites),
                ("Tags", tags),
                ("Saved searches", saved),
                ("Volumes", volumes),
            ]
        )
        self.places_complete = devices is not None
        for device_id, online in self.online.items():  # an event that came while the places were gathered
            if device_id in self.library_devices:
                self.query_one(Sidebar).relabel(f"libdev-{device_id}", self._library_device_label(device_id, online))

    async def _library_devices(self) -> tuple[str, list[Place]] | None:
        """The devices that hold this library, each online or offline, with its last sync; None when it is not shared."""
        library = self.api.library()
        held_by = await library.sharing.list()
        if len(held_by) < 2:
            return None
        rows: list[Place] = []
        for d in held_by:
            if d.this_device:
                continue
            device_id = DeviceId(d.id)
            synced = "" if not d.direct else time.strftime("%H:%M", time.localtime(d.last_sync)) if d.last_sync else "never"
            self.library_devices[device_id] = (display(d.name), synced)
            online = self.online.get(device_id, d.online)
            rows.append((f"libdev-{d.id}", self._library_device_label(device_id, online), SdPath(device_id, "/"), "device"))
        return (f"Devices of {display((await library.info()).name)}", rows)

    def _library_device_label(self, device_id: DeviceId, online: bool) -> str:
        name, synced = self.library_devices[device_id]
        if not synced:  # not synced with this device itself (not paired with full trust here)
            return f"{name} · synced through the others"
        return f"{name} {'● online' if online else '○ offline'} · synced {synced}"

    def _device_label(self, device_id: DeviceId, name: str) -> str:
        state = self.online.get(device_id)
        return f"{name} " + ("● online" if state else "○ offline" if state is False else "… checking")

    def _device_state(self, device_id: DeviceId, online: bool) -> None:
        """A paired device went online or offline: its place in the sidebar says so."""
        self.online[device_id] = online
        name = self.sd.device_names.get(device_id)
        if name is not None:
            self.query_one(Sidebar).relabel(f"dev-{device_id}", self._device_label(device_id, name))
        if device_id in self.library_devices:
            self.query_one(Sidebar).relabel(f"libdev-{device_id}", self._library_device_label(device_id, online))

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
        elif event.kind in ("tag", "saved", "remote-tag", "remote-saved"):
            remote = event.kind.startswith("remote-")
            api = self.sd.device_apis.get(self.device_library) if remote and self.device_library else self.api
            if api is None:
                return
            name = event.key.split(":", 1)[1]
            device = f"{display(self.sd.device_names.get(api.device.id, api.device.name))} " if remote else ""
            if event.kind.endswith("tag"):
                found, title = api.library().tags[name].files(), f"{device}tag: {display(name)}"
            else:
                found, title = api.library().saved.run(name), f"{device}saved: {display(name)}"
            self.run_worker(self.show_found(title, found, api), group="ops")

    @work(group="ops", exit_on_error=False)
    async def show_device(self, device: SdPath) -> None:
        """A paired device opens on its places (its shares, or its locations), not on `/`; when it trusts this one
        fully, the sidebar shows its library too (its locations, tags and saved searches)."""
        name = self._label(device).split(":", 1)[0]
        self.status(f"{name}: asking for its places…")
        await self.open_device_library(device.device_id)
        await self.show_found(f"{name}: places", self.api.devices.places(device.device_id))

    async def open_device_library(self, device_id: DeviceId) -> None:
        """Show a paired device's library in the sidebar and its jobs in the strip, if it lets this device use its
        core (a device that shares files only keeps the browse-only view)."""
        if device_id in self.browse_only:
            return
        try:
            remote = await self.sd.device_api(device_id)
        except NotAdmin:
            self.browse_only.add(device_id)
            return
        except SdError as exc:
            self.status(str(exc), error=True)
            return
        self.device_library = device_id
        if device_id not in self.following:
            self.following.add(device_id)
            self.follow_device(device_id, remote)
            for pane in self.panes:  # a pane opened on its files before: its core tells of their changes from now on
                if pane.path is not None and pane.path.device_id == device_id:
                    pane.follow_again()
        self.fill_sidebar()

    def warn(self, text: str) -> None:
        """Say what went wrong on the status line and in a notification (the status line changes soon)."""
        self.status(text, error=True)
        self.app.notify(text, severity="warning", timeout=8, markup=False)

    def device_api_lost(self, device_id: DeviceId, lost: SdError) -> None:
        """A paired device's core API went away: its library leaves the sidebar; the status line says why."""
        self.following.discard(device_id)
        if self.device_library == device_id:
            self.device_library = None
            self.fill_sidebar()
        self.status(str(lost), error=True)

    @work(group="device-events", exit_on_error=False)
    async def follow_device(self, device_id: DeviceId, remote: Api) -> None:
        """Apply a paired device's job events (its jobs in the strip, marked with its name) until it is lost."""
        name = self.sd.device_names.get(device_id, remote.device.name)
        try:
            async for event in remote.events():
                if isinstance(event, JobProgress | JobStateChanged):
                    await self.apply_event(event, device=name)
                elif isinstance(event, LibraryChanged) and self.device_library == device_id:
                    self.fill_sidebar()
        except SdError:  # lost: said by the app
            pass
        except Exception:  # an event whose fields are not what they should be: its jobs are no longer followed
            self.warn(f"{display(name)}: its core sent events this explorer cannot read; its jobs are not shown")
        finally:
            self.following.discard(device_id)

    # -- panes -----------------------------------------------------------------------------

    @on(Pane.Activated)
    def _pane_activated(self, event: Pane.Activated) -> None:
        if event.pane.id and event.pane.id != self.active_id:
            self.inactive.remove_class("-active")
            self.active_id = event.pane.id
            event.pane.add_class("-active")
            self._inspect(event.pane)
            if self.status_is_place and event.pane.path is not None:  # it named the other pane's folder
                self.status(self._label(event.pane.path), place=True)

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
        if event.entry.kind == "symlink" and self.is_here(event.path) and os.path.isdir(event.path.path):
            event.pane.open(event.path)  # a link to a folder opens as that folder, as in mc and yazi
            return
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
        self.state.visit(event.path)  # the jump list (z)
        self.keep_tab()
        if event.pane.id == self.active_id:
            self.status(self._label(event.path), place=True)
        self.look_at_disk(event.pane)  # a device out of reach, a disk that is out: the title says so

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
        running = self.query_one(JobsStrip).running(("copy", "move", "delete", "extract"))
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
        self.keep_tab()  # where the cursors are, for the next start
        self.app.exit()

    # -- live updates ----------------------------------------------------------------------

    @work(group="events", exit_on_error=False)
    async def follow_events(self) -> None:
        """Apply the core's events: job progress drives the strip (a pane follows its own directory's changes)."""
        async for event in self.api.events():
            try:
                await self.apply_event(event)
            except Exception as exc:  # a bug meeting one event is reported; the events after it still apply
                self.report(exc, f"applying a {type(event).__name__} event")

    @on(Pane.Changed)
    async def _pane_changed(self, event: Pane.Changed) -> None:
        """Entries changed in a directory a pane shows (its folder, or one open in its tree): patch them in, or list it
        again when many did."""
        pane, path, names = event.pane, event.directory, event.change.names
        folder = pane.folder_of(path)  # the pane's folder, or one open in its tree
        if folder is None:
            return  # it left the directory meanwhile
        if not names or len(names) > PATCH_LIMIT or pane.file_list.is_loading:
            pane.refresh_listing()
        else:
            await pane.apply_changes(await self._stat_names(path, names), folder)

    async def apply_event(self, event: Event, device: str = "") -> None:
        """Apply an event of this core, or (`device`: its name) a job event of a paired device's core."""
        if isinstance(event, JobProgress):
            self.query_one(JobsStrip).on_progress(event, device)
        elif isinstance(event, JobStateChanged):
            self.query_one(JobsStrip).on_state(event, device)
            done_text = self.said_when_done.pop(event.job_id, None) if event.state in FINISHED_STATES else None
            if event.state == "failed" and event.error:
                self.status(f"{event.name} failed: {event.error}", error=True)
            elif event.state == "completed" and done_text:
                await self._say_done(event.job_id, done_text)
        elif isinstance(event, LibraryChanged | VolumesChanged):
            self.fill_sidebar()
            if isinstance(event, VolumesChanged) or event.what in (LOCATION_MOVED, LOCATION_NEEDS_DECISION):
                self.disks_changed()  # a pane on a disk that came or went lists it again
            if isinstance(event, LibraryChanged) and event.what in ("tags", "notes", "favorites"):  # another device's, synced: shown at once
                self._inspect(self.active)
        elif isinstance(event, DropOffered):
            self.offer_drop(event)
        elif isinstance(event, DeviceLost):
            self._device_state(event.device_id, False)
            self.status(f"{event.name or event.device_id} lost: {event.reason}", error=True)
            self._look_at_panes_on(event.device_id)
        elif isinstance(event, DeviceRenamed):  # its places in the sidebar and the titles of the panes on it say so
            self.sd.device_names[event.device_id] = event.name
            self.fill_sidebar()
            self._look_at_panes_on(event.device_id)
        elif isinstance(event, DeviceConnected):
            was = self.online.get(event.device_id)
            self._device_state(event.device_id, True)
            if was is False:  # not at the start-up check: only a device that comes back is news
                self.status(f"{event.name or event.device_id} connected")
                self._look_at_panes_on(event.device_id)

    def _look_at_panes_on(self, device_id: DeviceId) -> None:
        """A device went or came back: the panes on its folders say so in their titles ("offline, as of ...")."""
        for pane in self.panes:
            if pane.path is not None and pane.path.device_id == device_id:
                self.look_at_disk(pane)

    async def _say_done(self, job_id: str, done_text: str) -> None:
        """Say that a copy or move this explorer started is done, and what it could not read (left where it is)."""
        try:
            result = (await self.api.library().jobs.get(job_id)).result
        except SdError:
            result = None
        unreadable = getattr(result, "unreadable", ())
        if not unreadable:
            self.status(done_text)
            return
        shown = ", ".join(display(p) for p in unreadable[:3]) + (f" and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
        self.status(f"{done_text}; not readable, left out: {shown}", error=True)

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

    def action_disk_usage(self) -> None:
        """What each child of the active pane's folder holds, largest first (ncdu's view)."""
        from sdtui.screens.disk_usage import DiskUsageScreen

        folder = self.active.path
        if folder is None:
            self.status("disk usage is of a folder: open one first", error=True)
            return
        self.app.push_screen(DiskUsageScreen(self.api, folder, self._label(folder)))



async def _library_places(api: Api, kind: str) -> tuple[list[Place], list[Place], list[Place], list[Place]]:
    """The places of a core's library: its locations, favourites, tags and saved searches (`kind`: "remote-" for
    a paired device's, whose tags and saved searches are read from that device's core)."""
    library = api.library()
    library_id = (await library.info()).id
    prefix = kind  # one paired device's library is shown at a time: its ids cannot clash with this one's
    locations: list[Place] = []
    for loc in await library.locations.list():
        name = f"{loc.name} (another disk?)" if loc.undecided else loc.name
        path = SdPath(api.device.id, loc.path, library_id)
        if not kind and loc.device_id != api.device.id and loc.device_id.int != 0:  # another device's (its catalogue)
            path = SdPath(loc.device_id, loc.path, library_id)
            name = f"{name} on {(await api.label(SdPath(loc.device_id, '/'))).rpartition(':')[0]}"
        locations.append((f"{prefix}loc-{loc.id}", name, path, "location"))
    favourites: list[Place] = [
        (f"{prefix}fav:{e.path.path}", f"★ {e.name}", e.path, "favourite") for e in await library.favourites.list()
    ] if not kind else []
    tags: list[Place] = [
        (f"{prefix}tag:{t.name}", f"{'  ' * t.depth}#{t.leaf} ({t.entries + t.contents})", None, f"{kind}tag")
        for t in await library.tags.list()
    ]
    saved: list[Place] = [
        (f"{prefix}saved:{s.name}", s.name, None, f"{kind}saved") for s in await library.saved.list()
    ]
    return locations, favourites, tags, saved
