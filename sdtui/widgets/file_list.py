"""FileList: a virtual list of a directory's entries that draws only the rows on screen.

A `ScrollView` whose `virtual_size` is the row count; `render_line` builds a row's `Strip` on demand and
keeps recent ones in an LRU cache (the pattern of Textualize/toolong's log_lines.py). Entries stream in
from an async worker, one exclusive worker per list, so opening another directory cancels the listing
of the one being left. Sorting and filtering run in a thread.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from functools import partial

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input
from textual.worker import Worker

from sdcore.api.records import Entry
from sdcore.api.text import human_size
from sdcore.errors import NotFound, SdError
from sdcore.sdpath import display
from sdtui import gcfreeze
from sdtui.widgets.listing import (
    SORT_KEYS,
    Arrangement,
    arrange,
    arrange_tree,
    fit_name,
    format_mtime,
    kind_marker,
    shorten_home_in,
    tree_depth,
    tree_leaf,
)

Batches = Callable[[], AsyncIterator[list[Entry]]]
"""What a list is loaded from: a function that starts streaming a directory's entries in batches."""

REARRANGE_EVERY = 1.0
"""Seconds between re-sorts while a big listing streams in (the first batch shows at once). Each re-sort
and relayout takes the interpreter from the scan: at 0.4 s a 100,000-entry listing took ~20% longer."""

COUNT_EVERY = 0.25
"""Seconds between updates of the "listed so far" count while a listing streams in (each one repaints)."""

SLOW_AFTER = 3.0
"""Seconds without a first batch after which a listing is reported as slow (a dead mount, a far device)."""


def unreachable_as(exc: BaseException) -> str:
    """A failed listing's one word: a folder gone or closed to this user is no device out of reach."""
    from sdcore.api import AccessDenied

    return "not there" if isinstance(exc, NotFound) else "not readable" if isinstance(exc, AccessDenied) else "unreachable"


class FileList(ScrollView, can_focus=True):
    """The entries of one directory, drawn virtually; cursor, selection, visual range, sort and filter."""

    COMPONENT_CLASSES = {
        "file-list--cursor",
        "file-list--dir",
        "file-list--symlink",
        "file-list--hidden",
        "file-list--selected",
        "file-list--meta",
        "file-list--notice",
    }

    DEFAULT_CSS = """
    FileList {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    FileList > .file-list--cursor { background: $boost; text-style: bold; }
    FileList:focus > .file-list--cursor { background: $accent 60%; color: $text; text-style: bold; }
    FileList > .file-list--dir { color: $primary; text-style: bold; }
    FileList > .file-list--symlink { color: $secondary; text-style: italic; }
    FileList > .file-list--hidden { color: $text-muted; }
    FileList > .file-list--selected { color: $warning; text-style: bold; }
    FileList > .file-list--meta { color: $text-muted; }
    FileList > .file-list--notice { color: $text-muted; text-style: italic; }
    """

    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="cursor_down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="cursor_up"),
        Binding("pagedown,ctrl+d", "page_down", "Page down", show=False, id="page_down"),
        Binding("pageup,ctrl+u", "page_up", "Page up", show=False, id="page_up"),
        Binding("home", "first", "Top", show=False, id="first"),
        Binding("G,end", "last", "Bottom", show=False, id="last"),
        Binding("g", "g_prefix", "g g: top", show=False, id="g_prefix"),
        Binding("enter,l,right", "open", "Open", id="open", key_display="enter"),
        Binding("backspace,h,left", "parent", "Up a level", show=False, id="parent"),
        Binding("space", "toggle_select", "Select", id="select"),
        Binding("v", "visual", "Visual select", show=False, id="visual"),
        Binding("escape", "escape", "Clear selection, else filter", show=False, id="clear_selection"),
        Binding("full_stop", "toggle_hidden", "Hidden files", show=False, id="toggle_hidden"),
        Binding("s", "cycle_sort", "Sort", show=False, id="cycle_sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, id="reverse_sort"),
    ]

    @dataclass
    class CursorMoved(Message):
        """The cursor is on another entry (None when the list is empty)."""

        file_list: FileList
        entry: Entry | None

        @property
        def control(self) -> FileList:
            return self.file_list

    @dataclass
    class OpenRequested(Message):
        """Enter on an entry: the pane opens a directory or previews a file."""

        file_list: FileList
        entry: Entry

        @property
        def control(self) -> FileList:
            return self.file_list

    @dataclass
    class ParentRequested(Message):
        """Backspace: go up a level."""

        file_list: FileList

        @property
        def control(self) -> FileList:
            return self.file_list

    @dataclass
    class FilterDropRequested(Message):
        """Esc with nothing selected while a filter is on: the pane clears its filter."""

        file_list: FileList

        @property
        def control(self) -> FileList:
            return self.file_list

    @dataclass
    class StateChanged(Message):
        """Rows, selection, arrangement or loading state changed; the pane updates its footer."""

        file_list: FileList

        @property
        def control(self) -> FileList:
            return self.file_list

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FileList.StateChanged) and message.file_list is self.file_list

    state: reactive[str] = reactive("empty", layout=False)
    """'empty' before a load, then 'loading', 'ready' or 'unreachable'."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.entries: list[Entry] = []
        """Every entry of the directory as listed, unordered."""
        self.rows: list[Entry] = []
        """The entries shown, arranged."""
        self.arrangement = Arrangement()
        """Sort, filter and hidden files."""
        self.cursor = 0
        """Index of the row under the cursor."""
        self.selected: set[str] = set()
        """Names of the selected entries."""
        self.visual_anchor: int | None = None
        """Row where a visual (range) selection started, while one is active."""
        self.notice = ""
        """What the list shows when it has no rows: loading, unreachable, empty."""
        self.unreachable_as = "unreachable"
        """What a listing that failed is called: `unreachable` (a device, a mount), `not there`, `not readable`."""
        self._empty = "empty directory"
        """The notice of a complete listing of nothing (search results: nothing found)."""
        self.loaded_in: float | None = None
        """Seconds the last complete listing took."""
        self.listed = 0
        """Entries received so far by the listing in progress."""
        self.first_batch_in: float | None = None
        """Seconds from the start of the last listing to its first rows."""
        self._lines: LRUCache[tuple, Strip] = LRUCache(1024)
        self._generation = 0
        self._g_pressed_at = 0.0
        self._worker: Worker | None = None
        self._index: dict[str, int] | None = None
        self._user_moved = False
        self._pending_cursor: str | None = None
        self.typing_into: Input | None = None
        """A text box opening for this list (the filter): printable keys that still reach the list go there."""
        self.tree_open: frozenset[str] | None = None
        """In a tree view, the folders shown expanded (rows are named by their path from the pane's folder, `a/b.txt`);
        None in a plain listing."""

    # -- data ------------------------------------------------------------------------------

    @property
    def current(self) -> Entry | None:
        """The entry under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    @property
    def is_loading(self) -> bool:
        return self.state == "loading"

    def selection(self) -> list[Entry]:
        """The entries an action applies to: the selection (with a visual range), else the cursor's."""
        names = self._selected_names()
        if names:
            return [e for e in self.rows if e.name in names]
        return [self.current] if self.current is not None else []

    def _selected_names(self) -> set[str]:
        names = set(self.selected)
        if self.visual_anchor is not None and self.rows:
            low, high = sorted((self.visual_anchor, self.cursor))
            names.update(e.name for e in self.rows[low : high + 1])
        return names

    def index_of(self, name: str) -> int | None:
        """The row showing `name`, if any."""
        if self._index is None:
            self._index = {e.name: i for i, e in enumerate(self.rows)}
        return self._index.get(name)

    def load(
        self,
        batches: Batches,
        *,
        cursor_name: str | None = None,
        scroll_y: float = 0.0,
        keep: bool = False,
        empty: str = "empty directory",
    ) -> Worker:
        """List a directory from `batches`, cancelling any listing still running.

        `cursor_name` and `scroll_y` restore a position (history); `keep` shows the old rows until the new
        listing is complete (a refresh), instead of clearing at once; `empty` is what a listing of nothing says.
        """
        if keep and cursor_name is None:  # a refresh: the cursor stays where it is, or where it was sent
            current = self.current
            cursor_name = self._pending_cursor if self.is_loading else (current.name if current else None)
        self._pending_cursor = cursor_name
        if not keep:
            gcfreeze.release(self)
            self.entries = []
            self._set_rows([], cursor_name=None)
            self.selected.clear()
            self.visual_anchor = None
            self._jump_scroll(0)
        self.notice = "loading…"
        self._empty = empty
        self.listed = 0
        self.state = "loading"
        self._generation += 1
        self._worker = self.run_worker(
            partial(self._stream, batches, self._generation, cursor_name, scroll_y, keep),
            group="listing",
            exclusive=True,
            exit_on_error=False,
            name="listing",
        )
        return self._worker

    def cancel_listing(self) -> None:
        """Stop the listing in progress (leaving the directory)."""
        if self._worker is not None:
            self._worker.cancel()

    async def _stream(
        self, batches: Batches, generation: int, cursor_name: str | None, scroll_y: float, keep: bool
    ) -> None:
        started = time.monotonic()
        entries: list[Entry] = []
        last_arranged = 0.0
        last_counted = 0.0
        arranged: tuple[int, Arrangement] | None = None
        self._user_moved = False
        slow_timer = self.set_timer(SLOW_AFTER, lambda: self._mark_slow(generation))
        try:
            async for batch in batches():
                entries.extend(batch)
                self.listed = len(entries)
                now = time.monotonic()
                if keep or now - last_arranged < REARRANGE_EVERY:
                    if now - last_counted >= COUNT_EVERY:  # the count moves between sorts (a repaint each)
                        last_counted = now
                        self.post_message(self.StateChanged(self))
                    continue
                first = not last_arranged
                if first:
                    slow_timer.stop()
                how = self.arrangement
                rows = await asyncio.to_thread(self._arranger(), list(entries), how)
                if generation != self._generation:
                    return
                arranged = (len(entries), how)
                self.entries = entries
                self._set_rows(
                    rows, cursor_name=self._cursor_name_or(cursor_name), scroll_y=scroll_y if first else None
                )
                if first:
                    self.first_batch_in = time.monotonic() - started
                last_arranged = time.monotonic()
        except (TimeoutError, SdError, OSError, ConnectionError) as exc:
            # a dead mount, a lost device: say so in the list instead of failing the worker
            if generation == self._generation:
                self.entries = []
                self._set_rows([], cursor_name=None)
                self.unreachable_as = unreachable_as(exc)
                self.notice = f"{self.unreachable_as}: {shorten_home_in(str(exc) or type(exc).__name__)}"
                self.state = "unreachable"
                self.post_message(self.StateChanged(self))
            return
        finally:
            slow_timer.stop()
        first = last_arranged == 0.0
        if arranged != (len(entries), self.arrangement):  # else the rows shown are complete already
            rows = await asyncio.to_thread(self._arranger(), list(entries), self.arrangement)
            if generation != self._generation:
                return
            self.entries = entries
            self._set_rows(
                rows, cursor_name=self._cursor_name_or(cursor_name), scroll_y=scroll_y if first else None
            )
        if first:
            self.first_batch_in = time.monotonic() - started
        self.loaded_in = time.monotonic() - started
        if len(entries) >= gcfreeze.BIG:
            gcfreeze.hold(self)
        else:
            gcfreeze.release(self)
        if self.selected:  # a name gone since it was selected is not selected when it comes back
            self.selected &= {e.name for e in entries}
        self.notice = self._empty if not entries else "nothing matches the filter or all are hidden"
        self.state = "ready"
        self.post_message(self.StateChanged(self))

    def _cursor_name_or(self, cursor_name: str | None) -> str | None:
        """While a listing streams in, the cursor stays on the row asked for (or the top) until the user moves it."""
        current = self.current
        if current is not None and self._user_moved:
            return current.name
        return cursor_name

    def _mark_slow(self, generation: int) -> None:
        if generation == self._generation and self.state == "loading":
            self.notice = f"loading… (no answer after {SLOW_AFTER:.0f}s: the device or mount is slow)"
            self.refresh()

    def _jump_scroll(self, y: float) -> None:
        y = max(0, min(round(y), self.max_scroll_y))
        self.scroll_target_y = y
        self.scroll_y = y

    def _set_rows(
        self, rows: list[Entry], *, cursor_name: str | None, scroll_y: float | None = None
    ) -> None:
        before, old_rows = self.current, self.rows
        self.rows = rows
        self._index = None
        self._lines.clear()
        if cursor_name is not None:
            found = self.index_of(cursor_name)
            if found is None:  # gone (deleted, moved away): the next row still there, as after `dd` in vim
                later = (self.index_of(e.name) for e in old_rows[self.cursor + 1 :])
                found = next((i for i in later if i is not None), None)
            self.cursor = found if found is not None else min(self.cursor, max(len(rows) - 1, 0))
        elif not self._user_moved:
            self.cursor = 0
        else:
            self.cursor = min(self.cursor, max(len(rows) - 1, 0))
        if self.visual_anchor is not None:
            self.visual_anchor = min(self.visual_anchor, max(len(rows) - 1, 0))
        self.virtual_size = Size(self.size.width, len(rows))
        self.refresh()
        if scroll_y:
            self._jump_scroll(scroll_y)
        self._scroll_cursor_into_view()
        if self.current is not before:
            self.post_message(self.CursorMoved(self, self.current))
        self.post_message(self.StateChanged(self))

    async def rearrange(self, how: Arrangement) -> None:
        """Show the same entries sorted or filtered another way (in a thread), keeping the cursor's entry."""
        self.arrangement = how
        keep = self.current.name if self.current else None
        entries = self.entries
        generation = self._generation
        tree = self.tree_open
        rows = await asyncio.to_thread(self._arranger(), entries, how)
        if generation == self._generation and how == self.arrangement and entries is self.entries and tree == self.tree_open:
            self._set_rows(rows, cursor_name=keep)  # else a listing has streamed in since, arranged already

    def _arranger(self) -> Callable[[list[Entry], Arrangement], list[Entry]]:
        """How rows are made from entries: a folder's listing, or a tree's rows with its expanded folders now."""
        if self.tree_open is None:
            return arrange
        return partial(arrange_tree, expanded=self.tree_open)

    async def show_tree(self, expanded: frozenset[str] | None, changed: dict[str, Entry | None] | None = None) -> None:
        """Show the entries as a tree with these folders `expanded` (None: as a plain listing), after applying the
        `changed` entries; the cursor stays on its entry, or goes to the nearest folder still shown above it."""
        self.tree_open = expanded
        if changed:
            self._apply(changed)
        current = self.current.name if self.current else None
        while current and "/" in current and (expanded is None or current.rpartition("/")[0] not in expanded):
            current = current.rpartition("/")[0]  # hidden in a folder collapsed: the cursor goes to that folder
        entries, generation = self.entries, self._generation
        rows = await asyncio.to_thread(self._arranger(), entries, self.arrangement)
        if generation == self._generation and entries is self.entries and expanded == self.tree_open:
            self._set_rows(rows, cursor_name=current)

    def _apply(self, changed: dict[str, Entry | None]) -> None:
        entries = [e for e in self.entries if e.name not in changed]
        entries.extend(e for e in changed.values() if e is not None)
        self.entries = entries
        self.selected &= {e.name for e in entries}

    async def patch(self, changed: dict[str, Entry | None]) -> None:
        """Apply changes to some names (an entry, or None when it is gone) without listing again."""
        self._apply(changed)
        await self.rearrange(self.arrangement)

    # -- drawing ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            if not self.rows and self.notice:
                lines = textwrap.wrap(self.notice, max(width - 3, 10), subsequent_indent="  ")
                if index < len(lines):
                    style = self.get_component_rich_style("file-list--notice")
                    return Strip([Segment(set_cell_size(f"  {lines[index]}", width), style)], width)
            return Strip.blank(width, self.rich_style)
        entry = self.rows[index]
        is_cursor = index == self.cursor
        selected = entry.name in self.selected or (
            self.visual_anchor is not None
            and min(self.visual_anchor, self.cursor) <= index <= max(self.visual_anchor, self.cursor)
        )
        key = (index, is_cursor and (1 + self.has_focus), selected, width, self._generation, id(self.rows), self.tree_open)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_row(entry, width, is_cursor, selected)
            self._lines[key] = strip
        return strip

    def _render_row(self, entry: Entry, width: int, is_cursor: bool, selected: bool) -> Strip:
        base = self.rich_style
        if entry.kind == "dir":
            name_style = base + self.get_component_rich_style("file-list--dir", partial=True)
        elif entry.kind == "symlink":
            name_style = base + self.get_component_rich_style("file-list--symlink", partial=True)
        elif (tree_leaf(entry.name) if self.tree_open is not None else entry.name).startswith("."):
            name_style = base + self.get_component_rich_style("file-list--hidden", partial=True)
        else:
            name_style = base
        meta_style = base + self.get_component_rich_style("file-list--meta", partial=True)
        mark_style = base
        if selected:
            sel = self.get_component_rich_style("file-list--selected", partial=True)
            name_style += sel
            mark_style += sel
        if is_cursor:
            cur = self.get_component_rich_style("file-list--cursor", partial=True)
            name_style += cur
            meta_style += cur
            mark_style += cur

        size = "" if entry.kind == "dir" else human_size(entry.size) if entry.looked_at else "?"
        show_time = width >= 56  # the name keeps 30 columns: it says more than the time (the inspector has that)
        when = format_mtime(entry.mtime) if entry.looked_at else f"{'?':<16}"
        meta = f" {size:>7}" + (f"  {when}" if show_time else "")
        meta = meta if width >= 24 else ""
        name_width = max(width - 2 - cell_len(meta), 1)
        indent = ""
        if self.tree_open is not None:  # a tree: the row's depth, and whether a folder is open
            opened = "▾ " if entry.name in self.tree_open else "▸ " if entry.kind == "dir" else "  "
            indent = ("  " * tree_depth(entry.name) + opened)[: max(name_width - 4, 0)]
            name_width -= len(indent)
        name = display(tree_leaf(entry.name) if self.tree_open is not None else entry.name) + kind_marker(entry)
        if entry.link_target is not None and width >= 60:
            name += f" → {display(entry.link_target)}"
        if cell_len(name) > name_width:
            name = fit_name(name, name_width, path="/" in entry.name and self.tree_open is None)
        segments = [
            Segment("● " if selected else "  ", mark_style),
            *([Segment(indent, meta_style)] if indent else []),
            Segment(set_cell_size(name, name_width), name_style),
            Segment(meta, meta_style),
        ]
        return Strip(segments).adjust_cell_length(width, base)

    def on_unmount(self) -> None:
        gcfreeze.release(self)

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self.virtual_size = Size(event.size.width, len(self.rows))
        self.call_after_refresh(self._scroll_cursor_into_view)  # a smaller terminal must not hide the cursor

    def on_focus(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._lines.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    # -- cursor ----------------------------------------------------------------------------

    def move_cursor(self, index: int) -> None:
        """Put the cursor on row `index` (clamped), redrawing only what changed."""
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        if index == self.cursor:
            return
        old = self.cursor
        self.cursor = index
        self._user_moved = True
        if self.visual_anchor is not None:
            low, high = sorted((old, index, self.visual_anchor))[0::2]
            self.refresh_lines(low, high - low + 1)
            self.post_message(self.StateChanged(self))  # the footer counts the range as it grows
        else:
            self.refresh_line(old)
            self.refresh_line(index)
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(self, self.current))

    def _scroll_cursor_into_view(self) -> None:
        if self.rows:
            self.scroll_to_region(Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + max(self.scrollable_content_region.height - 1, 1))

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - max(self.scrollable_content_region.height - 1, 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    def action_g_prefix(self) -> None:
        """`g g` goes to the top: the second `g` within a second."""
        now = time.monotonic()
        if now - self._g_pressed_at < 1.0:
            self._g_pressed_at = 0.0
            self.action_first()
        else:
            self._g_pressed_at = now

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.OpenRequested(self, self.current))

    def action_parent(self) -> None:
        self.post_message(self.ParentRequested(self))

    def on_key(self, event: events.Key) -> None:
        if self.typing_into is None and event.is_printable:
            active = self.app.active_bindings.get(event.key)
            if active is not None and active.binding.action == "filter" and hasattr(active.node, "action_filter"):
                # Open the filter now, not once the key has bubbled up to the app: the keys typed right after
                # it are already queued here, and they must land in the box.
                active.node.action_filter()
                event.stop()
                event.prevent_default()
                return
        if self.typing_into is not None and event.is_printable and event.character:
            self.typing_into.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < len(self.rows):
            self.move_cursor(index)
            if event.chain >= 2:
                self.action_open()

    # -- selection -------------------------------------------------------------------------

    def action_toggle_select(self) -> None:
        """Space: select or unselect the cursor's entry, then move down."""
        entry = self.current
        if entry is None:
            return
        self.selected ^= {entry.name}
        self.refresh_line(self.cursor)
        self._lines.clear()
        self.post_message(self.StateChanged(self))
        self.action_cursor_down()

    def action_visual(self) -> None:
        """v: start a range selection at the cursor; v again keeps the range selected."""
        if self.visual_anchor is None:
            self.visual_anchor = self.cursor
        else:
            self.selected = self._selected_names()
            self.visual_anchor = None
        self._lines.clear()
        self.refresh()
        self.post_message(self.StateChanged(self))

    def action_escape(self) -> None:
        """Esc: drop the selection and the range; with none, drop the filter."""
        if self.selected or self.visual_anchor is not None:
            self.action_clear_selection()
        elif self.arrangement.filter:
            self.post_message(self.FilterDropRequested(self))

    def action_clear_selection(self) -> None:
        """Esc, and the end of every operation: nothing selected, range mode over."""
        self.selected.clear()
        self.visual_anchor = None
        self._lines.clear()
        self.refresh()
        self.post_message(self.StateChanged(self))

    # -- arrangement -----------------------------------------------------------------------

    async def action_toggle_hidden(self) -> None:
        await self.rearrange(replace(self.arrangement, show_hidden=not self.arrangement.show_hidden))

    async def action_cycle_sort(self) -> None:
        following = SORT_KEYS[(SORT_KEYS.index(self.arrangement.sort) + 1) % len(SORT_KEYS)]
        await self.rearrange(replace(self.arrangement, sort=following))

    async def action_reverse_sort(self) -> None:
        await self.rearrange(replace(self.arrangement, reverse=not self.arrangement.reverse))

    async def set_filter(self, text: str) -> None:
        """Filter as you type: show only names containing `text`."""
        await self.rearrange(replace(self.arrangement, filter=text))

    def watch_state(self) -> None:
        self.set_class(self.state == "loading", "-loading")
        self.set_class(self.state == "unreachable", "-unreachable")
        self.refresh()

