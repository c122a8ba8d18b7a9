"""Inspector: the metadata of the entry under the cursor and a preview of it.

Text and code are previewed with rich's Syntax highlighting, other files as hex; a directory or an archive is
previewed as its listing; pictures, PDFs and recordings as the core's `preview` makes them (sdtui.widgets.preview).
The preview is read in a worker after the cursor rests, so moving fast through a list stays fast.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import stat as statmod
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from rich.cells import cell_len, set_cell_size
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.strip import Strip
from textual.timer import Timer
from textual.visual import Visual, visualize
from textual.widget import Widget

from sdcore.api import is_archive_name, previewable
from sdcore.api.records import Entry, EntryDetails, Preview
from sdcore.api.text import human_size, shorten_home
from sdcore.errors import SdError
from sdcore.sdpath import SdPath, display
from sdtui.graphics import HALF_BLOCKS, Graphics
from sdtui.widgets.listing import Arrangement, arrange, format_mtime, kind_marker
from sdtui.widgets.picture import picture_for
from sdtui.widgets.preview import PICTURE_ROWS, hex_view, preview_renderable, shown_text

PREVIEW_BYTES = 16 * 1024
"""How much of a file the preview reads."""

PREVIEW_ENTRIES = 200
"""How many entries of a directory the preview lists."""

PREVIEW_SCAN = 5_000
"""How many entries of a directory (members of an archive) the preview reads at most (it lists the first in order)."""

SHOW_DELAY = 0.04
"""Seconds the cursor must rest on an entry before the inspector redraws (holding a key stays fast)."""

PREVIEW_DELAY = 0.12
"""Seconds the cursor must rest on an entry before its preview is read."""

ReadHead = Callable[[SdPath, int], "AsyncIterator[bytes]"]
Peek = Callable[[SdPath, int], Awaitable[tuple[list[Entry], bool]]]
"""A glance at a folder or an archive: its first entries (an archive read no further), and whether that is all."""
Details = Callable[[SdPath, Entry], Awaitable[list[tuple[str, str]]]]
"""What the library knows of a file (cas_id, tags, note...), as (label, text) rows."""
PreviewOf = Callable[[SdPath, int, int], Awaitable[Preview]]
"""The core's preview of a file (a picture fitted in width x height pixels, a PDF's text, a recording's facts)."""


def metadata_table(path: SdPath, entry: Entry, extra: list[tuple[str, str]] | None = None, where: str = "") -> Table:
    """The facts about one entry as a two-column table (`where`: its path as people read it, `laptop:/home/me/x` on
    another device; its path here by default)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("name", Text(display(entry.name) + kind_marker(entry)))
    table.add_row("kind", entry.kind)
    if not entry.looked_at:
        table.add_row("size", "not known: its folder lets no one look at it (read without search permission)")
    elif entry.kind != "dir":
        table.add_row("size", f"{human_size(entry.size)} ({entry.size:,} bytes)")
    if entry.looked_at:
        table.add_row("modified", format_mtime(entry.mtime))
    if entry.mode:
        table.add_row("mode", statmod.filemode(entry.mode))
    if entry.link_target is not None:
        table.add_row("target", Text(display(entry.link_target)))
    table.add_row("path", Text(where or display(shorten_home(path.path))))
    for key, value in extra or ():
        table.add_row(key, Text(shown_text(value)))  # a note or a tag may come from another device: escaped
    return table


def detail_rows(cas_id: str | None, details: EntryDetails | None) -> list[tuple[str, str]]:
    """The rows of what the core knows of an entry beyond its listing: a file's cas_id; a folder's indexed totals,
    tags, note, favourite and the other files with the same content, when the library indexes it."""
    rows = [("cas_id", cas_id)] if cas_id else []
    if details is None:
        return rows
    if details.files is not None:  # summed by the indexer: what `du` would take a walk for
        files = details.files
        rows.append(("holds", f"{files:,} file{'' if files == 1 else 's'}, {human_size(details.size)} (indexed)"))
    rows.append(("tags", ", ".join(details.tags) or "—"))
    if details.favourite:
        rows.append(("favourite", "★"))
    if details.note:
        rows.append(("note", details.note))
    if details.same_content:
        rows.append(("same content", "\n".join(display(p) for p in details.same_content)))
    return rows


@functools.cache
def _builtin_lexers() -> tuple[frozenset[str], dict[str, str]]:
    """Pygments' own lexers: every alias, and file name or `.suffix` -> alias (plugins left out)."""
    from pygments.lexers import get_all_lexers

    aliases: set[str] = set()
    by_name: dict[str, str] = {}
    for _title, names, patterns, _mimetypes in get_all_lexers(plugins=False):
        if not names:
            continue
        aliases.update(names)
        for pattern in patterns:
            if pattern.startswith("*.") and not any(c in pattern[2:] for c in "*?["):
                by_name.setdefault(pattern[1:].lower(), names[0])
            elif not any(c in pattern for c in "*?["):
                by_name.setdefault(pattern, names[0])
    return frozenset(aliases), by_name


def lexer_for(name: str) -> str:
    """The pygments lexer for a file name, from its name or suffix alone ("text" when none fits).

    Never pygments' guessing: that reads every lexer, plugins included, which imports packages such as
    IPython (seconds, on the UI's loop) and runs each lexer's content test.
    """
    aliases, by_name = _builtin_lexers()
    if name in by_name:
        return by_name[name]
    dot = name.rfind(".")
    if dot <= 0:
        return "text"
    suffix = name[dot:].lower()
    return suffix[1:] if suffix[1:] in aliases else by_name.get(suffix, "text")


def text_preview(name: str, data: bytes, width: int = 44) -> RenderableType:
    """Highlighted text for the first bytes of a file, or hex for a binary one (as many bytes a line as `width` fits)."""
    if b"\0" in data[:4096]:
        return hex_view(data, width)
    from rich.syntax import Syntax  # pygments: not needed until the first preview (a faster start)

    text = shown_text(data.decode("utf-8", errors="replace"))
    lexer = lexer_for(name)
    return Syntax(
        text, lexer, theme="ansi_dark", line_numbers=False, word_wrap=False, background_color="default"
    )


def listing_preview(entries: list[Entry], total: int | None, width: int = 0) -> RenderableType:
    """A directory (or an archive) as a short listing, each file's size at the right of a line `width` wide (0: no
    sizes); `total` None: more entries than were read."""
    lines = Text()
    if total is None:  # said first: below, f00000 then f00010 looked like files missing
        lines.append(f"{PREVIEW_SCAN:,} of more (the first read, sorted): Enter lists all\n",
                     style="dim italic")
    for entry in entries:
        style = "bold" if entry.is_dir else ""
        name = display(entry.name) + kind_marker(entry)
        size = human_size(entry.size) if entry.kind == "file" else ""
        if width and size:
            room = width - len(size) - 1
            name = set_cell_size(name, room - 1) + "…" if cell_len(name) > room else name + " " * (room - cell_len(name))
            lines.append(name, style=style)
            lines.append(" " + size + "\n", style="dim")
        else:
            lines.append(name + "\n", style=style)
    if total is not None and total > len(entries):
        lines.append(f"… and {total - len(entries):,} more", style="dim italic")
    if not entries:
        lines.append("empty directory", style="dim italic")
    return lines


class Inspector(Widget):
    """Metadata and preview of the entry under the cursor in the active pane.

    Drawn through the Line API, in a box of a fixed size: what it shows is rendered to lines once a change (and a
    width), and a change repaints the inspector alone. (Two widgets of automatic height in a scrolling container laid
    the whole screen out again several times a change, twice a cursor rest: a key pressed meanwhile waited tens of
    milliseconds, more over SSH.) The mouse wheel scrolls a long preview.
    """

    DEFAULT_CSS = """
    Inspector { width: 25%; min-width: 24; max-width: 48; height: 1fr; border: round $panel; background: $surface; padding: 0 1; }
    """

    SCROLL_LINES = 3
    """Lines a turn of the mouse wheel scrolls."""

    def __init__(
        self,
        read_head: ReadHead,
        peek: Peek,
        details: Details | None = None,
        preview: PreviewOf | None = None,
        *,
        graphics: Graphics = HALF_BLOCKS,
        label: Callable[[SdPath], str] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._label = label
        """A path as people read it (the explorer's: `laptop:/home/me/x` on another device)."""
        self._read_head = read_head
        self._peek = peek
        self._details = details
        self._preview_of = preview
        self._timer: Timer | None = None
        self.shown: SdPath | None = None
        """The path whose preview is shown (or being read)."""
        self.meta: RenderableType = Text("nothing selected", style="dim italic")
        """What is shown of the entry: its metadata table."""
        self.preview: RenderableType = ""
        """Its preview, below the metadata."""
        self._lines: list[Strip] = []
        self._top = 0  # the first line shown (the mouse wheel scrolls)
        self.picture = picture_for(graphics, self._write_terminal)
        """The picture the terminal draws (Kitty's protocol, iTerm2's, Sixel), below the preview's lines; None:
        half-blocks."""
        self._picture_at = 0  # the line of _lines where the picture's blank box starts
        self.border_title = "Inspector"

    def on_mount(self) -> None:
        if self.picture is not None:  # the picture follows the inspector wherever the layout moves it
            # immediate: a screen under a dialog holds its messages until it is shown again
            self.screen.screen_layout_refresh_signal.subscribe(self, lambda _: self._place_picture(), immediate=True)
            self.app.screen_change_signal.subscribe(self, lambda _: self._place_picture(), immediate=True)
            self.app.app_suspend_signal.subscribe(self, lambda _: self._place_picture(hide=True), immediate=True)
            self.app.app_resume_signal.subscribe(self, lambda _: self._place_picture(), immediate=True)

    def on_hide(self) -> None:
        self._place_picture(hide=True)

    def on_unmount(self) -> None:
        if self.picture is not None:
            self.picture.clear()

    def _write_terminal(self, sequence: str) -> None:
        """Write to the terminal through the app's driver, in order with its frames."""
        driver = self.app._driver
        if driver is not None:
            driver.write(sequence)

    def _place_picture(self, hide: bool = False) -> None:
        """Show the picture over its blank box, the part of it scrolled into view; hidden when the inspector is not
        on the screen shown (a dialog over it, another program in the terminal, a narrow window). A picture drawn
        into the cells is drawn after the repaint that comes (of its blank box, which would wipe it), and again."""
        if self.picture is None:
            return
        if self.picture.in_cells and not hide:
            self.call_after_refresh(self._place_picture_now, True)
            return
        self._place_picture_now(hide=hide)

    def _place_picture_now(self, redraw: bool = False, hide: bool = False) -> None:
        if self.picture is None:
            return
        region = self.content_region
        on_top = self.is_mounted and self.app.screen is self.screen  # a screen under a dialog counts as current
        shown = not hide and on_top and self.region.area > 0 and self.display
        start = self._picture_at - self._top  # where its top line is, from the content's top
        first = max(0, -start)  # its first line in view
        visible = min(self.picture.lines - first, region.height - max(0, start)) if shown else 0
        self.picture.place(Region(region.x, region.y + max(0, start), 0, 0), first, visible, redraw=redraw)

    def _draw(
        self,
        meta: RenderableType | None = None,
        preview: RenderableType | None = None,
        top: int | None = None,
        picture: Preview | None = None,
    ) -> None:
        """Show this metadata and preview (None: keep what is shown), from line `top` (None: where it is scrolled):
        rendered to lines now, at the current width. A new preview takes the place of the terminal's picture (by
        `picture`'s pixels, or by none)."""
        self.meta = self.meta if meta is None else meta
        self.preview = self.preview if preview is None else preview
        width = self.content_size.width
        wipe = self.picture is not None and self.picture.in_cells and self.picture.shown is not None
        if self.picture is not None and preview is not None:
            made = picture or Preview()
            self.picture.set(made.width, made.height, made.pixels, max(width, 1))
        if width <= 0:
            return  # not laid out yet: drawn at the first resize
        style = self.visual_style
        shown = [self.render_line(y) for y in range(self.content_size.height)]
        self._lines = [
            *Visual.to_strips(self, visualize(self, self.meta), width, None, style),
            Strip.blank(width, style.rich_style),  # the metadata's margin
            *Visual.to_strips(self, visualize(self, self.preview), width, None, style),
        ]
        if self.picture is not None:  # its box: blank lines the terminal draws the picture over
            self._picture_at = len(self._lines)
            self._lines += [Strip.blank(width, style.rich_style)] * self.picture.lines
        self._top = max(0, min(self._top if top is None else top, len(self._lines) - self.content_size.height))
        self._place_picture()
        # the rows that changed, no more: what goes to the terminal (over SSH too) is what differs
        changed = [Region(0, y, width, 1) for y, line in enumerate(shown) if self.render_line(y) != line]
        if wipe:  # a picture drawn into the cells goes when they are repainted (and is drawn again if it stays)
            self.refresh()
        elif changed:
            self.refresh(*changed)

    def render_line(self, y: int) -> Strip:
        index = self._top + y
        if index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.content_size.width, self.visual_style.rich_style)

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    def _scroll(self, lines: int) -> None:
        top = max(0, min(self._top + lines, len(self._lines) - self.content_size.height))
        if top != self._top:
            self._top = top
            self.refresh()
            self._place_picture()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll(self.SCROLL_LINES)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll(-self.SCROLL_LINES)

    def show(self, path: SdPath | None, entry: Entry | None) -> None:
        """Show `entry` (at `path`) once the cursor rests: metadata first, then the preview."""
        if self._timer is not None:
            self._timer.stop()
        self.shown = path
        self._timer = self.set_timer(SHOW_DELAY, lambda: self._show_now(path, entry))

    def _where(self, path: SdPath) -> str:
        return self._label(path) if self._label is not None else ""

    def _show_now(self, path: SdPath | None, entry: Entry | None) -> None:
        if self.shown != path:
            return
        if path is None or entry is None:
            self._draw(Text("nothing selected", style="dim italic"), "", top=0)
            return
        self._draw(metadata_table(path, entry, where=self._where(path)), Text("…", style="dim"), top=0)  # another entry: its metadata first
        self._timer = self.set_timer(PREVIEW_DELAY - SHOW_DELAY, lambda: self._start_preview(path, entry))

    def _start_preview(self, path: SdPath, entry: Entry) -> None:
        self.run_worker(
            partial(self._preview, path, entry),  # type: ignore[arg-type]  # textual types a partial too narrowly
            group="preview", exclusive=True, exit_on_error=False,
        )

    async def _preview(self, path: SdPath, entry: Entry) -> None:
        meta = None
        picture = None
        try:
            if self._details is not None:
                extra = await self._details(path, entry)
                if extra:
                    meta = metadata_table(path, entry, extra, self._where(path))
            if entry.is_dir or (entry.kind == "file" and is_archive_name(entry.name)):  # an archive lists as a folder
                entries, complete = await self._peek(path, PREVIEW_SCAN)  # a huge one: its pane lists it all
                rows = await asyncio.to_thread(arrange, entries, Arrangement())
                total = len(rows) if complete else None
                renderable = listing_preview(rows[:PREVIEW_ENTRIES], total, self.content_size.width)
            elif entry.kind == "file" and self._preview_of is not None and previewable(entry.name):
                width = max(self.content_size.width, 8)
                if self.picture is not None:  # the terminal draws it: pixels to fill its cells, shown apart
                    made = await self._preview_of(path, *self.picture.box(width, PICTURE_ROWS))
                    picture, made = made, dataclasses.replace(made, width=0, height=0, pixels=b"")
                else:
                    made = await self._preview_of(path, width, 2 * min(PICTURE_ROWS, width))
                renderable = preview_renderable(made)
            elif entry.kind == "file":
                data = b""
                async for chunk in self._read_head(path, PREVIEW_BYTES):
                    data += chunk
                    if len(data) >= PREVIEW_BYTES:
                        break
                renderable = text_preview(entry.name, data[:PREVIEW_BYTES], self.content_size.width)
            else:
                renderable = Text(f"{entry.kind}: no preview", style="dim italic")
        except SdError as exc:
            renderable = Text(str(exc), style="italic")
        if self.shown == path:
            self._draw(meta, Group(renderable), picture=picture)  # one change, one repaint: the details and the preview together
