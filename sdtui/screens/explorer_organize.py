"""The explorer's organizing: tags, notes, favourites, and searches of the library."""

from __future__ import annotations

from collections.abc import Awaitable

from textual import work

from sdcore.api import Entry, NotInLibrary
from sdcore.sdpath import SdPath, display
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.prompt import PromptScreen
from sdtui.screens.tag_picker import TagPickerScreen


class OrganizeActions(ExplorerBase):
    """t, n, *, ctrl+f and ctrl+s, and the results of a search, a tag or a saved search in a pane."""

    async def _in_library(self, targets: list[SdPath], done: str) -> bool:
        """Whether the targets are entries of the library, indexing them first if the user agrees (else said why).

        Tags, notes and favourites live on the library's entries. A file in a location the index has not
        reached yet is indexed on the spot; a file outside every location is offered to be indexed (its
        folder becomes a location), and is left alone, with a message saying so, when the user declines.
        """
        library = self.api.library()
        try:
            await library.entries.find(*targets, index=True)
            return True
        except NotInLibrary:
            outside = targets[0]
            if not self.is_here(outside):
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
        location = await library.locations.add(folder, "shallow", index=True)
        self.fill_sidebar()
        await library.entries.find(*targets)
        self.status(f"{self._label(folder)} is now location “{location.name}”, indexed")
        return True

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_tag(self) -> None:
        """t: tag the selection (picker with fuzzy match; a new name creates the tag)."""
        targets = self._targets()
        if not targets:
            return
        if not await self._in_library(targets, "tagged"):
            return
        names = [t.name for t in await self.api.library().tags.list()]
        name = await self.app.push_screen_wait(TagPickerScreen(names, what=self._describe(targets)))
        if not name:
            return
        self._selection_done()
        await self.api.library().tags[name].add(*targets)
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
        notes = self.api.library().notes
        current = await notes.get(path)
        text = await self.app.push_screen_wait(
            PromptScreen(f"Note on {display(path.name)}:", current or "", title="Note")
        )
        if text is None and current is None:
            return
        await notes.set(path, text)
        self.status(f"note {'saved' if text else 'removed'} on {display(path.name)}")
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
        now = await self.api.library().favourites.toggle(*targets)
        self.status(f"{self._describe(targets)} {'marked as favourite ★' if now else 'no longer favourite'}")
        self._inspect(self.active)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_search(self) -> None:
        """ctrl+f: search the library; the results fill the active pane (`[` goes back)."""
        text = await self.app.push_screen_wait(
            PromptScreen("Search the library (names, paths, notes):", title="Search")
        )
        if not text:
            return
        await self.show_found(f"search: {text}", self.api.library().search(text))
        self.last_search = text

    @work(group="ops", exit_on_error=False)
    @reports_errors
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
        await self.api.library().saved.save(name, self.last_search)
        self.status(f"saved the search as “{name}”")
        self.fill_sidebar()

    @reports_errors
    async def show_found(self, title: str, finding: Awaitable[list[Entry]]) -> None:
        found = await finding
        self.active.show_results(f"{title} ({len(found)})", found)
        self.active.file_list.focus()
        if not found and not self.has_locations:
            self.status(f"{title}: nothing, the library has no location yet (t, n or * on a file offers to add its folder)")
            return
        unfinished = await self.api.library().incomplete()
        if unfinished:  # found only among what the index reached so far: say so, and how to finish
            self.status(f"{title}: {len(found)} found · {unfinished[0]}", error=True)
            return
        self.status(f"{title}: {len(found)} found · Enter opens where it lies · [ goes back")
