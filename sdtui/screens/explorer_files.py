"""The explorer's file operations: make a folder, go to a path, rename, trash, restore, delete, copy and move."""

from __future__ import annotations

import posixpath

from textual import work

from sdcore.api import Entry
from sdcore.errors import SdError
from sdcore.sdpath import SCHEME, SdPath, display, split_remote
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.conflict import ConflictScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.prompt import PromptScreen
from sdtui.widgets.pane import Pane


class FileActions(ExplorerBase):
    """F5 to F8, rename, the trash, the clipboard (y, x, p) and ctrl+l."""

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_mkdir(self) -> None:
        pane = self.active
        if pane.path is None:
            return
        name = await self.app.push_screen_wait(PromptScreen("New folder name:", title="Make directory"))
        if not name:
            return
        target = pane.path.child(name)
        await self.api.ops.mkdir(target)
        self.status(f"made {display(target.path)}")
        if pane.path == target.parent:  # the core's event of it shows it; the cursor goes there
            pane.put_cursor_on(target.name)

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
        if here is not None and not text.startswith(("/", "~", SCHEME)) and split_remote(text) is None:
            target = SdPath(here.device_id, posixpath.normpath(posixpath.join(here.path, text)))
        else:
            target = await self.api.resolve(text)
        self.go_to(pane, target, await self.api.stat(target))

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def go_to(self, pane: Pane, target: SdPath, info: Entry | None = None) -> None:
        """Show a folder, or the folder of a file with the cursor on it."""
        if info is None:
            info = await self.api.stat(target)
        if info.is_dir:
            pane.open(target)
        else:
            pane.open(target.parent, cursor_name=target.name)

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
        await self.api.ops.rename(source, new)
        self.status(f"renamed {display(source.name)} to {display(new)}")
        if pane.path == source.parent:  # the core's event of it updates every pane; the cursor follows the file
            pane.put_cursor_on(new)

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
        self.last_trashed = await self.api.ops.trash(targets)  # the core's event updates the panes
        self.status(f"moved {self._describe(targets)} to the trash: u restores")

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_restore(self) -> None:
        if not self.last_trashed:
            self.status("nothing to restore: u puts back what d last sent to the trash")
            return
        restored = await self.api.ops.restore(self.last_trashed)
        self.last_trashed = []
        self.status(f"restored {len(restored)} item(s) from the trash")
        self.refresh_panes(*{p.parent for p in restored})

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
        await self.api.ops.delete(targets)  # the core's event of it updates the panes (what was done before an error too)
        self.status(f"deleted {self._describe(targets)}")

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
        start = self.api.ops.copy if kind == "copy" else self.api.ops.move
        job_id = await start(sources, destination, on_conflict=on_conflict)
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
            async for batch in self.api.browse(directory):
                names.update(e.name for e in batch)
        except SdError:
            pass  # the job says what is wrong with the destination
        return names

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_copy_to_other(self) -> None:
        await self._to_other("copy")

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
    @reports_errors
    async def action_paste(self) -> None:
        if self.clipboard is None or self.active.path is None:
            self.status("nothing to paste: y copies, x cuts")
            return
        kind, sources = self.clipboard
        destination = self.active.path
        if await self._transfer("copy" if kind == "copy" else "move", sources, destination) and kind == "cut":
            self.clipboard = None  # moved: there is nothing left to paste
