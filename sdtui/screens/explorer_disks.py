"""The explorer and the disks that come and go: a pane on a disk lists it again when the disk is plugged in (live)
or out (from the index), or follows its location to where the disk is mounted now; its title says which."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.content import Content

from sdcore.api import Offline
from sdcore.errors import SdError
from sdcore.sdpath import SdPath, display
from sdtui.screens.explorer_base import ExplorerBase
from sdtui.widgets.pane import Pane


@dataclass(frozen=True, slots=True)
class DiskView:
    """What a pane's folder was on when the pane last looked: whether its disk was out, and its location."""

    offline: bool
    location: tuple[int, str, str] | None
    """The location holding the folder: its id, its path then, and the folder inside it."""
    undecided: str
    """When the disk mounted there may be another disk than the one indexed: what to do (else "")."""


class DiskActions(ExplorerBase):
    """Panes that follow the disks their folders are on, through the core's events (no polling)."""

    if TYPE_CHECKING:  # set in ExplorerScreen
        disk_views: dict[str, DiskView]
        """What each pane's folder was on when it last looked (pane id -> view)."""
        mount_points: set[str] | None
        """Where volumes were mounted at the last look (None: not looked yet)."""
        disks_looking: bool
        """Whether a look at the panes' disks runs now."""
        disks_look_again: bool
        """Whether a disk changed while it ran (one more look follows)."""

    def look_at_disk(self, pane: Pane) -> None:
        """A pane shows another folder: say in its title when that folder is on a disk that is out or on a disk
        that may not be the one indexed (and remember it, to list it again when the disk comes or goes)."""
        if pane.path is not None:
            self.run_worker(self._mark(pane, pane.path), group=f"disk-{pane.id}", exclusive=True, exit_on_error=False)

    def disks_changed(self) -> None:
        """A disk was plugged in or out, or a location followed its disk: the panes it touches list it again.

        One look at a time, and one more after it when something changed meanwhile: a look is never cancelled by
        the next event (mounts elsewhere on a busy machine could otherwise cancel every look before it ends)."""
        if self.disks_looking:
            self.disks_look_again = True
            return
        self.disks_looking = True
        self.run_worker(self._follow_disks(), group="disks", exit_on_error=False)

    async def _follow_disks(self) -> None:
        try:
            self.disks_look_again = True
            while self.disks_look_again:
                self.disks_look_again = False
                await self._look_at_disks()
        finally:
            self.disks_looking = False

    async def _mark(self, pane: Pane, path: SdPath) -> None:
        offline, view = await self._view_of(path)
        if self.mount_points is None and self.is_here(path):
            self.mount_points = {v.mount_point for v in await self.api.volumes()}
        if pane.path == path:
            self._title(pane, path, offline, view)

    async def _view_of(self, path: SdPath) -> tuple[Offline | None, DiskView]:
        offline = await self.api.offline(path)
        location = None
        undecided = ""
        if self.is_here(path) and offline is None or offline is not None and offline.volume:
            try:
                loc = await self.api.library().locations.containing(path)
            except SdError:
                loc = None
            if loc is not None and loc.volume_id:
                location = (loc.id, loc.path, loc.relative(path.path) or "")
                if loc.undecided:  # the status line of 80 columns (`sd location list` says more)
                    undecided = f"most of {loc.name} is missing; same disk? `sd location rescan {loc.id} --confirm-drop`"
        return offline, DiskView(offline is not None, location, undecided)

    def _title(self, pane: Pane, path: SdPath, offline: Offline | None, view: DiskView) -> None:
        """The pane's title for `path`: its label, and what is known of its disk."""
        self.disk_views[pane.id or ""] = view
        pane.set_offline(offline is not None)
        if offline is not None:
            where = display(path.path) if offline.volume else f"{offline.device.name}:{display(path.path)}"
            pane.border_title = Content(f"{where} — {offline.describe()}")
        elif not self.is_here(path) and self.online.get(path.device_id) is False:  # no catalogue of it here
            pane.border_title = Content(f"{self._label(path)} — out of reach")
        elif view.undecided:  # the title is short: the status line says what to do
            pane.border_title = Content(f"{self._label(path)} — another disk?")
            if pane.id == self.active_id:
                self.status(view.undecided, error=True)
        else:
            pane.border_title = Content(self._label(path))

    async def _look_at_disks(self) -> None:
        points = {v.mount_point for v in await self.api.volumes()}
        changed = points ^ self.mount_points if self.mount_points is not None else set()  # else: told by the views
        looks: list[tuple[Pane, SdPath, Offline | None, DiskView, SdPath | None]] = []
        for pane in self.panes:
            path = pane.path
            if path is None or not self.is_here(path):
                continue
            offline, view = await self._view_of(path)
            before = self.disk_views.get(pane.id or "")
            moved_to = None
            if before is not None and before.location is not None:
                loc_id, was_at, inside = before.location
                try:
                    loc = await self.api.library().locations.get(loc_id)
                except SdError:
                    loc = None
                if loc is not None and loc.path != was_at:  # it followed its disk to another mount point
                    moved_to = SdPath(path.device_id, loc.absolute(inside), path.library_id)
            looks.append((pane, path, offline, view, moved_to if moved_to != path else None))
        # no await from here on: what the panes show and what was seen change together
        self.mount_points = points
        for pane, path, offline, view, moved_to in looks:
            if pane.path != path:
                continue
            before = self.disk_views.get(pane.id or "")
            if moved_to is not None:
                pane.open(moved_to, cursor_name=pane.file_list.current.name if pane.file_list.current else None,
                          record=False)  # fmt: skip
            elif before != view or any(path.path == p or path.path.startswith(p.rstrip("/") + "/") for p in changed):
                pane.refresh_listing()
                self._title(pane, path, offline, view)
