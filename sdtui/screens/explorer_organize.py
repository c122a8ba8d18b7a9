"""The explorer's organizing: tags, notes, favourites, and searches of the library."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from textual import work

from sdcore.api import Entry, NotInLibrary
from sdcore.sdpath import SdPath, display
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.history import HistoryScreen
from sdtui.screens.prompt import PromptScreen
from sdtui.screens.tag_picker import TagPickerScreen

if TYPE_CHECKING:
    from sdcore.api import Api


class OrganizeActions(ExplorerBase):
    """t, n, *, ctrl+f and ctrl+s, and the results of a search, a tag or a saved search in a pane."""

    async def _in_library(self, targets: list[SdPath], done: str) -> bool:
        """Whether the targets are entries of the library, indexing them first if the user agrees (else said why).

        Tags, notes and favourites live on the library's entries. A file in a location the index has not
        reached yet is indexed on the spot; a file outside every location is offered to be indexed (its
        folder becomes a location), and is left alone, with a message saying so, when the user declines.
        """
        api = await self._organizer(*targets)
        library = api.library()
        if api is self.api and {t.device_id for t in targets} != {api.device.id}:
            return True  # a device this library is shared with: its catalogue here, or that device, knows them
        try:
            await library.entries.find(*targets, index=True)
            return True
        except NotInLibrary:
            outside = targets[0]
            if outside.device_id != api.device.id:
                raise
        folder = outside.parent
        ok = await self.app.push_screen_wait(
            ConfirmScreen(
                f"{self._describe(targets)} is not in any location of library “{(await library.info()).name}”, so it"
                f" cannot be {done} yet: tags, notes and favourites live in the library's index.\n\n"
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
            return False
        self.status(f"indexing {self._label(folder)} as a new location… (w shows the job)")
        added = await library.entries.make_known(*targets)
        self.fill_sidebar()
        self.status(", ".join(f"{self._label(SdPath(loc.device_id, loc.path))} is now location “{loc.name}”, indexed" for loc in added))
        return True

    async def _organizer(self, *targets: SdPath) -> Api:
        """The core whose library tags, notes and favourites these: this one, when they are this device's or
        its library is shared with their device; else their device's, when its library is open here."""
        devices = {t.device_id for t in targets}
        if devices == {self.api.device.id} or (len(devices) == 1 and await self.api.library().holds_files_of(devices.pop())):
            return self.api
        return self.sd.api_for(*targets)  # a paired device's files, in its library when it is open here

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_tag(self) -> None:
        """t: tag the selection (picker with fuzzy match; a new name creates the tag)."""
        targets = self._targets()
        if not targets:
            return
        if not await self._in_library(targets, "tagged"):
            return
        organizer = await self._organizer(*targets)
        library = organizer.library()
        names = [t.name for t in await library.tags.list()]
        name = await self.app.push_screen_wait(TagPickerScreen(names, what=self._describe(targets)))
        if not name:
            return
        self._selection_done()
        await self.remembered(organizer, lambda: library.tags[name].add(*targets))
        self.status(f"tagged {self._describe(targets)} “{name}”")
        self.fill_sidebar()
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_note(self) -> None:
        """n: write the note of the entry under the cursor (blank removes it)."""
        entry = self.active.file_list.current
        path = self.active.path_of(entry) if entry is not None else None
        if path is None:
            return
        if not await self._in_library([path], "given a note"):
            return
        organizer = await self._organizer(path)
        notes = organizer.library().notes
        current = await notes.get(path)
        text = await self.app.push_screen_wait(
            PromptScreen(f"Note on {display(path.name)}:", current or "", title="Note")
        )
        if text is None and current is None:
            return
        await self.remembered(organizer, lambda: notes.set(path, text))
        self.status(f"note {'saved' if text else 'removed'} on {display(path.name)}")
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_history(self) -> None:
        """N: the texts the note of the entry under the cursor held and the tags put on and taken off it, on any
        device of the library; Enter puts an old text or a tag taken off back."""
        entry = self.active.file_list.current
        path = self.active.path_of(entry) if entry is not None else None
        if path is None:
            return
        library = (await self._organizer(path)).library()
        details = await library.entries.details(path)
        if details is None:
            self.status(f"{display(path.name)} is in no location of the library: it has no history", error=True)
            return
        notes, changes = await library.notes.history(path), await library.tags.history(path)
        picked = await self.app.push_screen_wait(HistoryScreen(path.name, notes, changes, set(details.tags)))
        if picked is None:
            return
        if picked[0] == "note":
            text = await library.notes.restore(path, int(picked[1]))
            self.status(f"note on {display(path.name)} put back" + ("" if text else " (none: it was cleared)"))
        else:
            await library.tags[str(picked[1])].add(path)
            self.status(f"tag “{display(str(picked[1]))}” put back on {display(path.name)}")
        self.fill_sidebar()
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_favourite(self) -> None:
        """*: mark the selection as favourites, or unmark them when the first already is one."""
        targets = self._targets()
        if not targets:
            return
        if not await self._in_library(targets, "marked as favourite"):
            return
        self._selection_done()
        now = await (await self._organizer(*targets)).library().favourites.toggle(*targets)
        self.status(f"{self._describe(targets)} {'marked as favourite ★' if now else 'no longer favourite'}")
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_search(self) -> None:
        """ctrl+f: search the library (a paired device's, when the pane shows its files and its library is open
        here); the results fill the active pane (`[` goes back)."""
        where = self.active.path
        api = self.sd.api_for(where) if where is not None else self.api
        there = f" of {display(self.sd.device_names.get(api.device.id, api.device.name))}" if api is not self.api else ""
        text = await self.app.push_screen_wait(
            PromptScreen(f"Search the library{there} (names, paths, notes):", title="Search")
        )
        if not text:
            return
        await self.show_found(f"search{there}: {text}", api.library().search(text), api)
        self.last_search, self.searched = text, api

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_save_search(self) -> None:
        """ctrl+s: keep the last search under a name; it shows in the sidebar's saved searches."""
        if not self.last_search:
            self.status("nothing to save: search first (ctrl+f)")
            return
        api = self.searched or self.api
        there = f" in the library of {display(self.sd.device_names.get(api.device.id, api.device.name))}" if api is not self.api else ""
        name = await self.app.push_screen_wait(
            PromptScreen(f"Save the search “{self.last_search}”{there} as:", self.last_search, title="Save search")
        )
        if not name:
            return
        await api.library().saved.save(name, self.last_search)
        self.status(f"saved the search as “{name}”{there}")
        self.fill_sidebar()

    async def _devices_off(self, found: list[Entry]) -> str:
        """Hits on other devices of the library are named by device (`alpha:/…`); those offline are said so."""
        others = {e.path.device_id for e in found} - {self.api.device.id}
        if not others:
            return ""
        for device in await self.api.library().devices():  # known from the catalogue, paired or not
            self.sd.device_names.setdefault(device.id, device.name)
        offline = [o for o in [await self.api.offline(SdPath(d, "/")) for d in sorted(others)] if o is not None]
        return "".join(f" · {display(o.device.name)} {o.describe()}" for o in offline)

    @reports_errors
    async def show_found(self, title: str, finding: Awaitable[list[Entry]], api: Api | None = None) -> None:
        """Show what a search, a tag or a saved search found (`api`: the core that found it, this one's if None)."""
        found = await finding
        if api in (None, self.api):
            title += await self._devices_off(found)
        self.active.show_results(f"{title} ({len(found)})", found)
        self.active.file_list.focus()
        if not found and api in (None, self.api) and not self.has_locations:  # this library's, not a device's
            self.status(f"{title}: nothing, the library has no location yet (t, n or * on a file offers to add its folder)")
            return
        unfinished = await (api or self.api).library().incomplete()
        if unfinished:  # found only among what the index reached so far: say so, and how to finish
            self.status(f"{title}: {len(found)} found · {unfinished[0]}", error=True)
            return
        self.status(f"{title}: {len(found)} found · Enter opens where it lies · [ goes back")
