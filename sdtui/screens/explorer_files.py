"""The explorer's file operations: make a folder, go to a path, rename, trash, restore, delete, copy and move."""

from __future__ import annotations

import contextlib
import posixpath

from textual import work

from sdcore.api import Entry, count, is_archive_name
from sdcore.errors import SdError
from sdcore.sdpath import SCHEME, SdPath, display, split_remote, undisplay
from sdtui.screens.choice import ChoiceScreen
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
        here = pane.path

        async def make(name: str) -> None:  # ("a/b" makes both, as yazi and mkdir -p do)
            if not name.strip("/"):
                raise SdError(f"{display(name)} names no folder: type a folder's name")
            await self.api.ops.mkdir(here.child(name.strip("/")), parents="/" in name.strip("/"))

        name = await self.ask_and_do(
            lambda typed: PromptScreen("New folder name (a/b makes both):", typed, title="Make directory"), make
        )
        if not name:
            return
        target = here.child(name.strip("/"))
        self.status(f"made {display(target.path)}")
        first = here.child(name.strip("/").split("/")[0])
        if pane.path == first.parent:  # the core's event of it shows it; the cursor goes there
            pane.put_cursor_on(first.name)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_goto(self) -> None:
        """Ctrl+L: type where to go (a folder, or a file to put the cursor on), as in a file dialog."""
        pane = self.active
        here = pane.path
        typed = await self.app.push_screen_wait(
            PromptScreen("A folder or a file: /path, ~/path, a path from here, or DEVICE:/path (Tab completes)",
                         self._label(here) if here is not None else "", title="Go to",
                         complete=lambda text: self._complete_path(here, text))
        )
        if not typed or not typed.strip():
            return
        target = await self._typed_path(here, typed.strip())
        self.go_to(pane, target)

    async def _typed_path(self, here: SdPath | None, text: str) -> SdPath:
        """A path as typed in the go-to prompt: from `here` unless it starts with /, ~ or names a device."""
        if here is not None and not text.startswith(("/", "~", SCHEME)) and split_remote(text) is None:
            return SdPath(here.device_id, posixpath.normpath(posixpath.join(here.path, text)))
        return await self.api.resolve(text)

    async def _complete_path(self, here: SdPath | None, typed: str) -> str:
        """Tab in the go-to prompt: the last name typed completed as far as the names in its folder agree, and a
        folder that is the only one to fit gets its `/` (as a shell completes)."""
        head, slash, stem = typed.rpartition("/")
        try:
            folder = await self._typed_path(here, head + slash if slash else ".")
            fits = [e async for batch in self.api.browse(folder) for e in batch
                    if e.name.startswith(stem) and (stem.startswith(".") or not e.name.startswith("."))]  # fmt: skip
        except SdError:
            return typed
        if not fits:
            return typed
        common = posixpath.commonprefix([e.name for e in fits])
        if len(fits) == 1 and fits[0].is_dir:
            common += "/"
        return head + slash + common

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def go_to(self, pane: Pane, target: SdPath, info: Entry | None = None) -> None:
        """Show a folder, or the folder of a file with the cursor on it (of a device offline: as its catalogue has it)."""
        if info is None:
            try:
                info = await self.api.stat(target)
            except SdError:
                if await self.api.offline(target) is None:
                    raise
                info = await self._catalogued(target)
        if info is None or info.is_dir:
            pane.open(target)
        else:
            pane.open(target.parent, cursor_name=target.name)

    async def _catalogued(self, target: SdPath) -> Entry | None:
        """`target` as the catalogue of its device (out of reach) has it, from its folder's listing; None when the
        catalogue has no such entry (the pane opened on it says so)."""
        with contextlib.suppress(SdError):
            async for batch in self.api.browse(target.parent, index=True):
                for entry in batch:
                    if entry.name == target.name:
                        return entry
        return None

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_rename(self) -> None:
        pane = self.active
        entry = pane.file_list.current
        source = pane.path_of(entry) if entry is not None else None
        if source is None:
            return

        async def rename(typed: str) -> None:
            new = undisplay(typed, source.name)
            if new != source.name:
                await self.api.ops.rename(source, new)

        shown = display(source.name)  # (a name's undecodable bytes and control characters escaped, edited as such)
        typed = await self.ask_and_do(
            lambda typed: PromptScreen(f"Rename {shown} to:", typed, title="Rename", select_stem=typed == shown),
            rename, shown,
        )
        new = undisplay(typed, source.name) if typed else None
        if not new or new == source.name:
            return
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
        self.status(f"moved {self._describe(targets)} to the trash: u undoes it")

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_restore(self) -> None:
        if not self.last_trashed:
            self.status("nothing to restore: U puts back what d last sent to the trash")
            return
        restored = await self.api.ops.restore(self.last_trashed)  # the core's event updates the panes
        self.last_trashed = []
        self.status(f"restored {count(len(restored), 'item')} from the trash")

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
        for path in {p.device_id: p for p in [*sources, destination]}.values():  # (before asking anything)
            off = await self.api.offline(path)
            if off is not None:
                self.status(f"{self._label(path)} is {off.describe()}: it is listed from its catalogue, nothing is"
                            f" {'copied' if kind == 'copy' else 'moved'} until it is back", error=True)  # fmt: skip
                return False
        if is_archive_name(destination.name) and (await self.api.stat(destination)).kind == "file":
            self.status(f"{self._label(destination)} is an archive, read-only here: copy into a folder", error=True)
            return False
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
        api = self.sd.api_for(*sources, destination)  # both sides on a paired device: its core runs the job
        unfit = await api.ops.unfit_names(sources, destination)
        unfit_names = "fail"
        if unfit:
            shown = ", ".join(display(n) for n in unfit[:5]) + (f" and {len(unfit) - 5} more" if len(unfit) > 5 else "")
            answer = await self.app.push_screen_wait(ChoiceScreen(
                f"{self._label(destination)} is on a FAT or exFAT disk, which cannot hold {count(len(unfit), 'name')}"
                f" (: ? \" * < > | \\, a trailing dot or space, two names differing only in case): {shown}. "
                "Rename them (a:b becomes a_b) or skip them?",
                [("rename", "Rename", "r"), ("skip", "Skip them", "s")], title="Names the disk cannot hold",
            ))  # fmt: skip
            if answer is None:
                self.status(f"nothing {'copied' if kind == 'copy' else 'moved'}")
                return False
            unfit_names = answer
        start = api.ops.copy if kind == "copy" else api.ops.move
        job = await start(sources, destination, on_conflict=on_conflict, unfit_names=unfit_names)
        what = f"{self._describe(sources)} to {self._label(destination)}"
        doing, done = {"copy": ("copying", "copied"), "move": ("moving", "moved"), "extract": ("unpacking", "unpacked")}[
            job.kind if job.kind == "extract" else kind]
        self.status(f"{doing} {what} (job {job.id}: w shows jobs)")
        self.said_when_done[job.id] = f"{done} {what}"  # before any wait: a quick job's end may come during it
        if kind == "move" and api is not self.api:  # the device's core records it: u here undoes it there
            await self.api.undo.remember(api.device.id, f"move {self._describe(sources)} to {display(destination.path)}",
                                         job=job.id)
        if api is self.api:
            await self._say_if_done_already(job.id)
        return True

    async def _say_if_done_already(self, job_id: str) -> None:
        """A quick job can end before its start is answered (its end's event, come first, found nothing to say)."""
        try:
            state = (await self.api.library().jobs.get(job_id)).state
        except SdError:
            return
        if state == "completed" and (text := self.said_when_done.pop(job_id, None)):
            await self._say_done(job_id, text)

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
    async def action_index_disk(self) -> None:
        """I: make the disk the active pane shows a location (shallow or content, as chosen) and index it."""
        pane = self.active
        here = pane.path
        disks = [] if here is None or here.device_id != self.api.device.id else await self.api.volumes()
        inside = [v for v in disks if here is not None and (here.path + "/").startswith(v.mount_point.rstrip("/") + "/")]
        volume = max(inside, key=lambda v: len(v.mount_point), default=None)
        if volume is None or volume.system:
            self.status("I indexes a disk: open one from the sidebar's Volumes first (b, then Enter on it)", error=True)
            return
        mode = await self.app.push_screen_wait(ChoiceScreen(
            f"Index {volume.name} ({display(volume.mount_point)})? Shallow reads names, sizes and dates (quick); "
            "content also identifies each file's content (to find duplicates and the same file on other disks). "
            "Either way the disk is known by its identity: its files stay searchable when it is unplugged.",
            [("shallow", "Shallow", "s"), ("content", "Content", "c")], title="Index this disk",
        ))  # fmt: skip
        if mode is None:
            return
        locations = self.api.library().locations
        location = await locations.add(SdPath(self.api.device.id, volume.mount_point), mode=mode, name=volume.name)
        job = await locations.index(location.id)
        self.status(f"indexing {volume.name} ({mode}; job {job.id}: w shows jobs)")

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
