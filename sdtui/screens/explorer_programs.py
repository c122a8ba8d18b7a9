"""The explorer's hand-over to other programs: the desktop's opener, the pager and the editor."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import subprocess

from textual import work
from textual.app import SuspendNotSupported

from sdcore.api import Entry, previewable
from sdcore.sdpath import SdPath, display
from sdtui import programs
from sdtui.screens.explorer_base import ExplorerBase, reports_errors

OPENABLE = ("file", "symlink")
"""Kinds of entry Enter, F3 and F4 hand to another program (never a FIFO, socket or device)."""
BROKEN_LINK = {
    errno.ELOOP: "a link that leads round in a loop of links",
    errno.ENOENT: "a link that leads to nothing (its target is gone)",
}


class ProgramActions(ExplorerBase):
    """Enter, F3 (view) and F4 (edit) on a file of this device."""

    def open_file(self, path: SdPath, entry: Entry) -> None:
        """Enter on a file: the desktop's default application opens it, or, in a terminal alone, the pager."""
        if not self.is_here(path):  # not an error here: the inspector shows it
            self.status(f"{self._label(path)}: previewed in the inspector; F5 copies it here to open it")
            return
        if not self._openable(path, entry):
            return
        opener = programs.desktop_opener()
        if not opener and previewable(path.name):  # a pager shows a picture or a recording as noise
            self.status(f"{display(path.name)} is previewed in the inspector (i shows it); F3 views its bytes")
            return
        if not opener:
            self.action_view(path)
            return
        try:
            subprocess.Popen(
                [*opener, path.path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            self.status(f"{opener[0]}: {exc.strerror or exc}", error=True)
            return
        self.status(f"opened {display(path.name)} with {opener[0]}")

    def action_view(self, path: SdPath | None = None) -> None:
        path = path or self._file_under_cursor()
        if path is not None:
            self._run_in_terminal(programs.pager(), path, "a pager (set $PAGER)")

    def action_edit(self) -> None:
        path = self._file_under_cursor()
        if path is not None:
            self._run_in_terminal(programs.editor(), path, "an editor (set $EDITOR)")

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_open_with(self) -> None:
        """O: choose the program that opens the file under the cursor (the desktop's for its type, $EDITOR, $PAGER)."""
        from sdtui import open_with
        from sdtui.screens.open_with import OpenWithScreen

        path = self._file_under_cursor()
        if path is None:
            return
        choices = await asyncio.to_thread(open_with.programs_for, path.name)
        if not choices:
            self.status(f"no program here opens {open_with.mime_type(path.name)}: set $EDITOR or $PAGER", error=True)
            return
        chosen = await self.app.push_screen_wait(OpenWithScreen(path.name, open_with.mime_type(path.name), choices))
        if chosen is None:
            return
        if chosen.terminal:
            self.run_program(chosen.argv(path.path))
            self.refresh_panes(path.parent)
            return
        try:
            subprocess.Popen(
                chosen.argv(path.path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            self.status(f"{chosen.command[0]}: {exc.strerror or exc}", error=True)
            return
        self.status(f"opened {display(path.name)} with {chosen.name}")

    def _file_under_cursor(self) -> SdPath | None:
        """The file under the cursor, if a program here can open it (see `_openable`)."""
        pane = self.active
        entry = pane.file_list.current
        path = pane.path_of(entry) if entry is not None else None
        if entry is None or path is None or entry.is_dir or not self._openable(path, entry):
            return None
        return path

    def _openable(self, path: SdPath, entry: Entry) -> bool:
        """Whether a program here can open this file: one of this device's, and never a FIFO, socket or device
        (a pager or an editor would wait on a FIFO for good); says why not on the status line."""
        if entry.kind not in OPENABLE:
            self.status(f"{display(path.name)} is a {entry.kind}: nothing to open", error=True)
            return False
        if not self.is_here(path):
            self.status(f"{self._label(path)} is on another device: F5 copies it here to open it", error=True)
            return False
        if entry.kind == "symlink":
            return self._link_leads_somewhere(path)
        return True

    def _link_leads_somewhere(self, path: SdPath) -> bool:
        """Whether a link leads to something a program can open; says where it fails to on the status line."""
        try:
            target = os.stat(path.path)
        except OSError as exc:
            why = BROKEN_LINK.get(exc.errno or 0) or exc.strerror or str(exc)
            self.status(f"{display(path.name)}: {why}", error=True)
            return False
        if not stat.S_ISREG(target.st_mode):  # a pager would wait on a FIFO for good
            self.status(f"{display(path.name)}: a link to something that is not a file: nothing to open", error=True)
            return False
        return True

    def _run_in_terminal(self, program: list[str], path: SdPath, wanted: str) -> None:
        """Hand the terminal to `program` on `path` until it exits (the pager or the editor)."""
        if not program:
            self.status(f"no {wanted} is installed", error=True)
            return
        self.run_program([*program, path.path])
        self.refresh_panes(path.parent)  # an editor may have changed it

    def run_program(self, command: list[str]) -> bool:
        """Hand the terminal to `command` until it exits; whether it ended well (else said)."""
        try:
            with self.app.suspend():
                code = subprocess.call(command)
        except SuspendNotSupported:  # no terminal to hand over (headless, as in tests): run it without one
            code = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            self.status(f"{command[0]}: {exc.strerror or exc}", error=True)
            return False
        if code != 0:
            self.status(f"{command[0]} exited with status {code}", error=True)
        return code == 0
