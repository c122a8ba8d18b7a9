"""The undo history through the core API: `await api.undo.last()`, `await api.undo.undo(step.id)`."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from sdcore.api.library import in_thread
from sdcore.api.records import UndoStep
from sdcore.errors import NotFound, SdError

if TYPE_CHECKING:
    from sdcore.api.root import Api
    from sdcore.library.library import Library
    from sdcore.ops.undo import Step


class Undo:
    """The last renames, moves, trashings, tags and notes of the api's library (up to 50, kept across restarts),
    undone newest first; an undo that would overwrite, or finds its file changed since, does nothing and says why."""

    def __init__(self, api: Api, library: str | None = None) -> None:
        self._api = api
        self._library_name = library

    async def _library(self) -> Library:
        return await self._api._open(self._library_name)

    async def list(self) -> builtins.list[UndoStep]:
        """The steps that can be undone, newest first."""
        from sdcore.ops import undo

        library = await self._library()
        return [_told(s) for s in reversed(await in_thread(library, undo.history, library))]

    async def last(self) -> UndoStep | None:
        """The step `undo()` would undo (None: nothing to undo)."""
        steps = await self.list()
        return steps[0] if steps else None

    async def undo(self, step_id: int | None = None) -> UndoStep:
        """Undo the last step (`step_id`: only if it is still that one, as shown to the user); what was undone.
        Raises CannotUndo, nothing done, when its file changed or its old name is taken since."""
        from sdcore.ops import undo

        library = await self._library()
        step = await self._last(library, step_id)
        await undo.undo(library, step)
        return _told(step)

    async def forget(self, step_id: int | None = None) -> UndoStep:
        """Drop the last step without undoing it (one that can no longer be undone); what was dropped."""
        from sdcore.ops import undo

        library = await self._library()
        step = await self._last(library, step_id)
        await in_thread(library, undo.forget, library, step.id)
        return _told(step)

    async def _last(self, library: Library, step_id: int | None) -> Step:
        from sdcore.ops import undo

        steps = await in_thread(library, undo.history, library)
        if not steps:
            raise NotFound("nothing to undo: renames, moves, trashings, tags and notes are undone, newest first")
        if step_id is not None and steps[-1].id != step_id:
            raise SdError(f"the last step is now “{steps[-1].what}”, not the one shown; look again (`sd undo --list`)")
        return steps[-1]


def _told(step: Step) -> UndoStep:
    return UndoStep(step.id, step.what, step.kind, step.when)
