"""What the explorer's screen and its actions share: the panes, the status line, and the one way an action reports its error."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.screen import Screen
from textual.widgets import Static

from sdcore import log
from sdcore.api.client import Disconnected
from sdcore.errors import SdError
from sdcore.sdpath import SdPath, display
from sdtui.widgets.pane import Pane

if TYPE_CHECKING:
    from sdcore.api import Api, DeviceId, Trashed
    from sdtui.app import SdtuiApp
    from sdtui.state import State

Action = Callable[..., Awaitable[None]]
T = TypeVar("T")


def reports_errors(action: Action) -> Action:
    """Run an explorer action; whatever stops it is reported (see `ExplorerBase.report`), never raised or lost."""

    @functools.wraps(action)
    async def run(self: ExplorerBase, *args: Any, **kwargs: Any) -> None:
        try:
            await action(self, *args, **kwargs)
        except Exception as exc:  # an SdError is said as its message, anything else is logged
            self.report(exc, action.__name__)

    return run


class ExplorerBase(Screen[None]):
    """The explorer screen's parts that its actions (files, organize, network, programs) use."""

    status_is_place = False
    """Whether the status line names the active pane's place (Tab then names the other's) rather than a message."""

    if TYPE_CHECKING:  # the screen's own state and work, which actions use (set in ExplorerScreen)
        active_id: str
        clipboard: tuple[str, list[SdPath]] | None
        last_trashed: list[Trashed]
        said_when_done: dict[str, str]
        last_search: str
        searched: Api | None
        has_locations: bool
        state: State
        online: dict[DeviceId, bool]

        def keep_tab(self) -> None: ...
        async def _transfer(self, kind: str, sources: list[SdPath], destination: SdPath) -> bool: ...
        async def _say_done(self, job_id: str, done_text: str) -> None: ...

        def fill_sidebar(self) -> Any: ...
        def probe_devices(self) -> Any: ...
        def _inspect(self, pane: Pane) -> None: ...
        def run_program(self, command: list[str]) -> bool: ...

    @property
    def sd(self) -> SdtuiApp:
        return self.app  # type: ignore[return-value]

    @property
    def api(self) -> Api:
        """The core API: the explorer's one way to the core."""
        return self.sd.api

    def is_here(self, path: SdPath) -> bool:
        """Whether `path` is on the device the core runs on (a program here can open it)."""
        return path.device_id == self.sd.api.device.id

    @property
    def active(self) -> Pane:
        return self.query_one(f"#{self.active_id}", Pane)

    @property
    def inactive(self) -> Pane:
        return self.query_one("#right" if self.active_id == "left" else "#left", Pane)

    @property
    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

    def status(self, text: str, *, error: bool = False, place: bool = False) -> None:
        """Say something on the status line (errors in the error colour; `place`: the active pane's place)."""
        line = self.query_one("#status", Static)
        line.update(text)
        line.set_class(error, "-error")
        self.status_is_place = place

    def report(self, exc: BaseException, what: str) -> None:
        """The one way the explorer reports what stopped its work: an SdError (a user can cause it) says its message
        on the status line and in a notification; anything else is a bug, logged with its traceback and told in one
        line naming the log. A lost core is said once, by the app, which takes the core over."""
        if isinstance(exc, Disconnected):
            return
        if isinstance(exc, SdError):
            self.status(str(exc), error=True)
            self.app.notify(str(exc), severity="error", timeout=6, markup=False)
        else:
            self.status(log.unexpected(exc, what), error=True)

    async def ask_and_do(self, ask: Callable[[str], Screen[str | None]], do: Callable[[str], Awaitable[object]],
                         typed: str = "") -> str | None:
        """Ask for a line (`ask` makes the prompt, holding `typed`) and `do` it; what the core refuses (a name that
        is not one, too long, already there) is said and the prompt asked again holding what was typed, so that
        nothing typed is lost. The line done, or None when the prompt was cancelled."""
        while True:
            answer = await self.app.push_screen_wait(ask(typed))
            if not answer:
                return None
            try:
                await do(answer)
            except SdError as exc:
                if isinstance(exc, Disconnected):
                    raise
                self.report(exc, "ask_and_do")
                typed = answer
                continue
            return answer

    async def remembered(self, api: Api, step: Callable[[], Awaitable[T]]) -> T:
        """Do a step through `api`; when that is a paired device's core (its files, its library), the step it records
        there goes into this explorer's undo history too, so that u here undoes it there."""
        if api is self.api:
            return await step()
        before = await api.undo.last()
        result = await step()
        after = await api.undo.last()
        if after is not None and (before is None or after.id != before.id):
            await self.api.undo.remember(api.device.id, display(after.what), step=after)  # its core's words: escaped
        return result

    def _label(self, path: SdPath) -> str:
        return self.sd.label(path)

    def refresh_panes(self, *directories: SdPath) -> None:
        """List again the panes that show any of `directories` (after an operation of ours)."""
        for pane in self.panes:
            if pane.path is not None and pane.path in directories:
                pane.refresh_listing()

    def _targets(self) -> list[SdPath]:
        pane = self.active
        return [p for p in (pane.path_of(e) for e in pane.file_list.selection()) if p is not None]

    def _selection_done(self) -> None:
        """An operation took the selection: nothing stays selected and range mode ends, so the next operation
        cannot reach files the user never picked for it (as in Midnight Commander)."""
        self.active.file_list.action_clear_selection()

    def _describe(self, paths: list[SdPath]) -> str:
        return display(paths[0].name) if len(paths) == 1 else f"{len(paths)} items"
