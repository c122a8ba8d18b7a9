"""The explorer's jumps: z (the folders visited, by frecency), m then a letter (a bookmark), ' then a letter (go)."""

from __future__ import annotations

from textual import work

from sdcore.errors import NotFound
from sdcore.sdpath import SdPath, display
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.screens.jump import JumpScreen, LetterScreen


class JumpActions(ExplorerBase):
    """z, m and '."""

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_jump(self) -> None:
        """z: the folders visited, the most frecent first; type to narrow, Enter goes."""
        folders = [(self._label(p), p) for p in self.state.jump_list()]
        if not folders:
            self.status("nothing to jump to yet: the folders you visit are listed here, the most visited first")
            return
        target = await self.app.push_screen_wait(JumpScreen(folders))
        if target is not None:
            await self._go(target, "taken off the jump list", lambda: self.state.forget(target))

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_mark(self) -> None:
        """m then a letter: bookmark the folder of the active pane on that letter."""
        here = self.active.path
        if here is None:
            self.status("a bookmark marks a folder: open one first", error=True)
            return
        letter = await self.app.push_screen_wait(LetterScreen("Bookmark this folder: press a letter", self._marks()))
        if letter is None:
            return
        self.state.bookmarks[letter] = str(SdPath(here.device_id, here.path))
        self.state.save()
        self.status(f"bookmark {letter}: {self._label(here)} (' then {letter} comes back here)")

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def action_go_mark(self) -> None:
        """' then a letter: go to the folder bookmarked on that letter."""
        letter = await self.app.push_screen_wait(LetterScreen("Go to a bookmark: press its letter", self._marks()))
        if letter is None:
            return
        text = self.state.bookmarks.get(letter)
        if text is None:
            self.status(f"no bookmark {letter}: m then {letter} sets one on the folder shown", error=True)
            return
        await self._go(SdPath.parse_canonical(text), f"bookmark {letter} kept", lambda: None)

    def _marks(self) -> list[tuple[str, str]]:
        return [(letter, self._label(SdPath.parse_canonical(t))) for letter, t in sorted(self.state.bookmarks.items())]

    async def _go(self, target: SdPath, then: str, gone: object) -> None:
        try:
            info = await self.api.stat(target)
        except NotFound:
            if callable(gone):
                gone()
            self.state.save()
            raise NotFound(f"{self._label(target)} is no longer there ({then})") from None
        if not info.is_dir:
            raise NotFound(f"{display(target.path)} is not a folder any more")
        self.active.open(target)
