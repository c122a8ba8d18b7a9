"""DiskUsageScreen: what each child of a folder holds, largest first (ncdu's view): Enter goes into a folder,
Backspace up, `d` sends the entry to the trash, `a` switches between the disk's blocks (as `du`) and apparent sizes
(the index's totals in a location: at once), Esc closes (and stops the counting)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from sdcore.api import Api, Entry, display, human_size, is_archive_name
from sdcore.errors import SdError
from sdcore.sdpath import SdPath
from sdtui.screens.confirm import ConfirmScreen
from sdtui.widgets.usage_list import UsageList


class DiskUsageScreen(Screen[None]):
    """A folder's children by size: from the index's totals in a location (at once), else counted as it goes."""

    DEFAULT_CSS = """
    DiskUsageScreen > #usage-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    DiskUsageScreen > #usage-status { height: 1; padding: 0 1; background: $panel; }
    """

    BINDINGS = [
        Binding("enter,l,right", "into", "Into folder", id="usage_into"),
        Binding("backspace,h,left", "up", "Up a level", id="usage_up"),
        Binding("d,f8", "trash", "Trash", id="usage_trash"),
        Binding("a", "apparent", "Disk/apparent", id="usage_apparent"),
        Binding("escape,q", "close", "Back", id="usage_close"),
    ]

    def __init__(self, api: Api, folder: SdPath, label: str) -> None:
        super().__init__()
        self.api = api
        self.folder = folder
        self._label = label
        self.entries: dict[str, Entry] = {}
        """The children shown, by name."""
        self.walking: set[str] = set()
        """Folders still being counted."""
        self.apparent: bool | None = None
        """Apparent sizes (what the files say, the index's totals) rather than the disk's blocks (as du counts);
        None until the first count: apparent in a location (its index's totals come at once), else blocks."""

    def compose(self) -> ComposeResult:
        yield Static("", id="usage-title", markup=False)
        yield UsageList()
        yield Static("", id="usage-status", markup=False)
        yield Footer()

    @property
    def usage_list(self) -> UsageList:
        return self.query_one(UsageList)

    def on_mount(self) -> None:
        self.usage_list.focus()
        self.load(self.folder)

    def load(self, folder: SdPath, cursor_on: str | None = None) -> None:
        """Show `folder`, stopping the counting of the one shown before."""
        self.folder = folder
        self.entries = {}
        self.walking = set()
        self.usage_list.moved = False
        self.usage_list.show([], set())
        self._count(folder, cursor_on)

    @work(group="usage", exclusive=True, exit_on_error=False)
    async def _count(self, folder: SdPath, cursor_on: str | None) -> None:
        self._said("listing…")
        try:
            if self.apparent is None:
                self.apparent = await self.api.library().locations.containing(folder) is not None
            first = True
            async for batch in self.api.usage(folder, apparent=self.apparent):
                for entry in batch:
                    self.entries[entry.name] = entry
                    self.walking.discard(entry.name)
                if first:
                    self.walking = {e.name for e in batch if e.is_dir and e.files is None}
                    first = False
                self.usage_list.show(list(self.entries.values()), self.walking, cursor_on)
                cursor_on = None
                self._said()
        except SdError as exc:
            self._said(str(exc))
            return
        self._said()

    def _said(self, text: str | None = None) -> None:
        total = sum(e.size for e in self.entries.values())
        blocks_known = self.folder.device_id == self.api.device.id and not any(
            is_archive_name(part) for part in self.folder.path.split("/")
        )  # a paired device's files and an archive's members have apparent sizes only
        measure = "disk usage" if blocks_known and not self.apparent else "apparent size"
        title = f"{display(self._label)}  {human_size(total)} in {len(self.entries):,} entries ({measure})"
        self.query_one("#usage-title", Static).update(title)
        if text is None:
            other = "disk usage" if self.apparent else "apparent sizes"
            text = (f"counting {len(self.walking):,} folders… (Esc stops)" if self.walking
                    else f"Enter: into · Backspace: up · d: trash · a: {other} · Esc: back")  # fmt: skip
        self.query_one("#usage-status", Static).update(text)

    def action_into(self) -> None:
        entry = self.usage_list.current
        if entry is not None and entry.is_dir:
            self._label = f"{self._label.rstrip('/')}/{entry.name}"
            self.load(self.folder.child(entry.name))

    def action_apparent(self) -> None:
        """Count the other way: apparent sizes, or the disk's blocks."""
        self.apparent = not self.apparent  # (None, not yet decided, becomes apparent: the index's totals)
        current = self.usage_list.current
        self.load(self.folder, cursor_on=current.name if current is not None else None)

    def action_up(self) -> None:
        if self.folder.path != "/":
            name = self.folder.name
            self._label = self._label.rstrip("/").rsplit("/", 1)[0] or "/"
            self.load(self.folder.parent, cursor_on=name)

    @work(group="usage-trash", exit_on_error=False)
    async def action_trash(self) -> None:
        entry = self.usage_list.current
        if entry is None:
            return
        held = f"{display(entry.name)} ({human_size(entry.size)})"
        if not await self.app.push_screen_wait(ConfirmScreen(f"Move {held} to the trash?", title="Trash", yes="Trash")):
            return
        try:
            await self.api.ops.trash([self.folder.child(entry.name)])
        except SdError as exc:
            self._said(str(exc))
            return
        self.entries.pop(entry.name, None)
        self.walking.discard(entry.name)
        self.usage_list.show(list(self.entries.values()), self.walking)
        self._said(f"{held} moved to the trash")

    def action_close(self) -> None:
        self.workers.cancel_group(self, "usage")
        self.dismiss(None)

