"""The explorer's mouse drag: files dragged from one pane and dropped on the other are copied there, once confirmed."""

from __future__ import annotations

from textual import events, work

from sdcore.sdpath import SdPath
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.explorer_base import ExplorerBase, reports_errors
from sdtui.widgets.file_list import FileList
from sdtui.widgets.pane import Pane

Drag = tuple[Pane, list[SdPath]]
"""Where a drag began and the files it carries."""


class MouseActions(ExplorerBase):
    """A drag from a pane's list to the other pane: the row pressed (with the selection, when it is selected) is
    copied there."""

    dragging: Drag | None = None

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.dragging = None
        pane = _pane_of(event.widget)
        if pane is None or event.button != 1:
            return
        listing = pane.file_list
        row = int(listing.scroll_offset.y) + event.screen_y - listing.content_region.y
        if not 0 <= row < len(listing.rows):
            return
        pressed = listing.rows[row]
        chosen = listing.selection()  # a selected row drags the selection with it, another row itself
        picked = [pane.path_of(e) for e in (chosen if pressed in chosen else [pressed])]
        sources = [p for p in picked if p is not None]
        if sources:
            self.dragging = (pane, sources)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        drag, self.dragging = self.dragging, None
        pane = _pane_of(event.widget)
        if drag is None or pane is None or pane is drag[0] or pane.path is None:
            return
        self.drop(drag[1], pane.path)

    @work(group="ops", exit_on_error=False)
    @reports_errors
    async def drop(self, sources: list[SdPath], destination: SdPath) -> None:
        ok = await self.app.push_screen_wait(
            ConfirmScreen(f"Copy {self._describe(sources)} to {self._label(destination)}?", title="Copy", yes="Copy")
        )
        if ok:
            await self._transfer("copy", sources, destination)


def _pane_of(widget: object) -> Pane | None:
    """The pane whose list `widget` is (or is in), if any."""
    node = widget
    while node is not None and not isinstance(node, FileList):
        node = getattr(node, "parent", None)
    parent = getattr(node, "parent", None)
    return parent if isinstance(parent, Pane) else None
