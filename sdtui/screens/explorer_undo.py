"""The explorer's undo (u, ctrl+z) and bulk rename (R: the selection's names in $EDITOR, one per line)."""

from __future__ import annotations

import os
import tempfile

from textual import work

from sdcore.api import count
from sdcore.errors import CannotUndo
from sdcore.sdpath import SdPath, display
from sdtui import programs
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors


class UndoActions(ExplorerBase):
    """u / ctrl+z undo the last step (said before it is done); R renames the selection in the editor."""

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_undo(self) -> None:
        step = await self.api.undo.last()
        if step is None:
            self.status("nothing to undo: renames, moves, trashings, tags and notes are undone, newest first")
            return
        ok = await self.app.push_screen_wait(ConfirmScreen(f"Undo “{display(step.what)}”?", title="Undo", yes="Undo"))
        if not ok:
            return
        try:
            await self.api.undo.undo(step.id)
        except CannotUndo as exc:
            drop = await self.app.push_screen_wait(
                ConfirmScreen(f"{exc}.\n\nDrop this step from the undo history (the steps before it can be undone then)?",
                              title="Cannot undo", yes="Drop")
            )
            if drop:
                await self.api.undo.forget(step.id)
                self.status(f"dropped from the undo history: {display(step.what)}")
            else:
                self.status(str(exc), error=True)
            return
        self.status(f"undone: {display(step.what)}")  # the core's events update the panes
        if step.kind in ("tag", "untag", "note", "remote"):  # a remote step may be a tag of its library
            self.fill_sidebar()
            self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_bulk_rename(self) -> None:
        """R: the selected names (else the one under the cursor) in $EDITOR, one a line; what the editor leaves is
        renamed as one job (u undoes it), or nothing at all when a name clashes."""
        targets = self._targets()
        if not targets:
            return
        broken = [t for t in targets if "\n" in t.name or "\r" in t.name]
        if broken:
            self.status(f"{display(broken[0].name)} has a line break in its name: rename it alone with r", error=True)
            return
        edited = self._edit_names([t.name for t in targets])
        if edited is None:
            return
        if len(edited) != len(targets):
            self.status(f"the editor left {count(len(edited), 'line')} for {count(len(targets), 'name')}: nothing renamed"
                        " (keep one line per file, in the same order)", error=True)
            return
        renames: list[tuple[SdPath, str]] = list(zip(targets, edited, strict=True))
        changed = await self.api.ops.rename_many(renames)
        if not changed:
            self.status("no name changed")
            return
        self._selection_done()
        self.status(f"renamed {count(changed, 'item')}: u undoes it")

    def _edit_names(self, names: list[str]) -> list[str] | None:
        """The names as the user's editor leaves them, one a line (None: no editor, or it failed)."""
        editor = programs.editor()
        if not editor:
            self.status("no editor is installed: set $EDITOR", error=True)
            return None
        fd, path = tempfile.mkstemp(prefix="sdtui-rename-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
                out.write("".join(f"{n}\n" for n in names))
            if not self.run_program([*editor, path]):
                return None
            with open(path, encoding="utf-8", errors="surrogateescape") as edited:
                lines = edited.read().split("\n")
        finally:
            os.unlink(path)
        if lines and lines[-1] == "":
            lines.pop()  # the last line's end
        return lines
