"""The undo history through the core API: `await api.undo.last()`, `await api.undo.undo(step.id)`.

A step a paired device's core did for this device's user (`api.undo.remember(device, ...)`) is undone by that core,
through its API, and refused with the reason while it cannot be reached."""

from __future__ import annotations

import builtins
from contextlib import AsyncExitStack, suppress
from typing import TYPE_CHECKING

from sdcore.api.library import in_thread
from sdcore.api.records import DeviceId, UndoStep
from sdcore.errors import CannotUndo, NotAdmin, NotFound, SdError
from sdcore.sdpath import display

if TYPE_CHECKING:
    from sdcore.api.client import RemoteApi
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
        Raises CannotUndo, nothing done, when its file changed or its old name is taken since; a step done by a paired
        device's core is undone there, and refused (SdError, nothing done) while that device cannot be reached."""
        from sdcore.ops import undo

        library = await self._library()
        step = await self._last(library, step_id)
        if step.kind == undo.REMOTE:
            await self._undo_there(step)
            await in_thread(library, undo.forget, library, step.id)
        else:
            await undo.undo(library, step)
        return _told(step)

    async def remember(
        self, device: DeviceId, what: str, *, job: str | None = None, step: UndoStep | None = None
    ) -> UndoStep:
        """Note in this history a step that `device`'s core did for this device's user: its job `job` (the step that
        job records when it finishes), or its own undo step `step` (as its history gave it). `undo()` undoes it on that
        device; `what` says what it did ("move a.txt to /srv"), the device's name is added."""
        from sdcore.ops import undo

        names = {d.id: d.name for d in await self._api.devices.list()}
        told = f"{what} on {names.get(device, str(device)[:8])}"
        library = await self._library()
        number, when = (None, None) if step is None else (step.id, step.when)
        kept = await in_thread(
            library, lambda: undo.remember_remote(library, str(device), told, job=job, step=number, when=when)
        )
        return _told(kept)

    async def of_job(self, job_id: str) -> UndoStep | None:
        """The step a finished job of this library recorded (None: it recorded none, or it left the history)."""
        from sdcore.ops import undo

        library = await self._library()
        step = await in_thread(library, undo.of_job, library, job_id)
        return None if step is None else _told(step)

    async def _undo_there(self, step: Step) -> None:
        """Undo a step of kind REMOTE through the core of the device that did it."""
        import uuid

        device = uuid.UUID(step.data["device"])
        async with AsyncExitStack() as session:
            try:
                remote = await session.enter_async_context((await self._api.devices._network()).core_session(device))
            except (NotAdmin, NotFound) as exc:  # unpaired, or no longer trusted with its core: it will not come back
                raise CannotUndo(f"cannot undo {step.what}: {exc}; nothing done") from None
            except SdError as exc:
                raise SdError(f"cannot undo “{step.what}” now, nothing done: {exc} — it is undone on that device, so "
                              "try again once it is online") from None
            there = await self._step_there(remote, step)
            await remote.undo.undo(there.id)

    async def _step_there(self, remote: RemoteApi, step: Step) -> UndoStep:
        """The step of the device's own history that `step` stands for, while it is that device's last."""
        job, step_id = step.data.get("job"), step.data.get("step")
        there = await remote.undo.of_job(job) if job else next((s for s in await remote.undo.list() if s.id == step_id), None)
        if there is not None and step.data.get("when") not in (None, there.when):
            there = None  # its number given to another step since (that history started again): not ours
        if there is None:
            state = ""
            if job:
                with suppress(NotFound):  # a job record forgotten there: nothing of it to undo either
                    state = (await remote.library().jobs.get(job)).state
            if state in ("queued", "running", "paused", "interrupted"):
                raise SdError(f"cannot undo “{step.what}” yet: it is {state} there; nothing done")
            raise CannotUndo(f"cannot undo {step.what}: that device has nothing of it to undo (it did not finish, or was "
                             "undone there); nothing done")
        last = await remote.undo.last()
        if last is not None and last.id != there.id:
            raise CannotUndo(f"cannot undo {step.what}: “{display(last.what)}” was done there after it; undo that there"
                             " first, nothing done")
        return there

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
