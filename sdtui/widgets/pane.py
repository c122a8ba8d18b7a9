"""Pane: one side of the explorer: a path header, the file list, a filter box, and a footer of counts.

A pane owns its place and its history: going back or forward restores the cursor and the scroll. In a tree view (T)
its folders open in place: each one opened is listed when it is opened, and followed while it is shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import partial

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.events import DescendantFocus
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import Worker

from sdcore.api import is_archive_name
from sdcore.api.records import Entry
from sdcore.errors import SdError
from sdcore.events import EntriesChanged
from sdcore.sdpath import SdPath, display
from sdtui.widgets.file_list import FileList
from sdtui.widgets.listing import unfiltered_count

Browse = Callable[[SdPath], AsyncIterator[list[Entry]]]
"""Streams the entries of a directory (the core API's `browse`)."""

Watcher = Callable[[SdPath], AsyncIterator[EntriesChanged]]
"""The changes of a directory while they are iterated (the core API's `watch`)."""


@dataclass(frozen=True)
class Place:
    """A directory as the history remembers it: where the cursor was and how far it was scrolled."""

    path: SdPath
    cursor_name: str | None = None
    scroll_y: float = 0.0


class FilterBox(Input):
    """The filter-as-you-type box under a pane's list."""

    DEFAULT_CSS = """
    FilterBox, FilterBox:focus { height: 1; border: none; padding: 0 1; background: $boost; }
    """

    BINDINGS = [Binding("escape", "cancel", "Clear filter", show=False, id="filter_cancel")]

    def on_focus(self) -> None:
        # Keys sent to the list before the focus moved here are still in its queue: they go to the box, then the
        # list stops forwarding (set at once, the rest of a fast typist's "/2" was lost under load).
        file_list = self.query_ancestor(Pane).file_list
        file_list.call_later(setattr, file_list, "typing_into", None)

    def action_cancel(self) -> None:
        self.value = ""
        pane = self.query_ancestor(Pane)
        pane.close_filter()


class Pane(Vertical):
    """A file pane: its path, its virtual list, a filter box and a footer."""

    DEFAULT_CSS = """
    Pane { width: 1fr; height: 1fr; border: round $panel; border-title-color: $text-muted; }
    Pane.-active { border: round $accent; border-title-color: $text; }
    Pane > FileList { height: 1fr; }
    Pane > FilterBox { color: $text-muted; }
    Pane > .pane--footer { height: 1; color: $text-muted; padding: 0 1; }
    """

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("left_square_bracket,alt+left", "back", "Back", show=False, id="back"),
        Binding("right_square_bracket,alt+right", "forward", "Forward", show=False, id="forward"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="refresh"),
        Binding("T", "toggle_tree", "Tree view (l opens, h closes)", show=False, id="toggle_tree"),
    ]

    @dataclass
    class Navigated(Message):
        """The pane shows another directory."""

        pane: Pane
        path: SdPath

        @property
        def control(self) -> Pane:
            return self.pane

    @dataclass
    class Activated(Message):
        """The pane got the focus: it is the one actions apply to."""

        pane: Pane

        @property
        def control(self) -> Pane:
            return self.pane

    @dataclass
    class FileOpened(Message):
        """Enter on a file (not a directory)."""

        pane: Pane
        path: SdPath
        entry: Entry

        @property
        def control(self) -> Pane:
            return self.pane

    @dataclass
    class Changed(Message):
        """Entries changed in the directory the pane shows (the core's event of it)."""

        pane: Pane
        directory: SdPath
        change: EntriesChanged

        @property
        def control(self) -> Pane:
            return self.pane

    def __init__(
        self,
        browse: Browse,
        label: Callable[[SdPath], str] | None = None,
        *,
        watch: Watcher | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._browse = browse
        self._start_watch = watch
        self._watch: Worker[None] | None = None
        self._watching: SdPath | None = None
        self._label = label or (lambda p: display(p.path))
        self.path: SdPath | None = None
        """The directory shown (None while the pane shows search results)."""
        self.results: dict[str, SdPath] | None = None
        """While the pane shows results (a search, a tag): each row's name -> the file it stands for."""
        self.back_stack: list[Place] = []
        self.forward_stack: list[Place] = []
        self._cursor_to: str | None = None
        self.tree_view = False
        """Whether the pane shows its folder as a tree (T): folders open in place, their rows named by their path from
        the pane's folder (`docs/deep/a.txt`)."""
        self.expanded: set[str] = set()
        """In a tree view, the folders opened in place (paths from the pane's folder)."""
        self.offline = False
        """Whether the pane lists a folder of a device or disk that is out, from its catalogue (its title says since
        when; the footer says "offline" too: a narrow pane's title is cut before it)."""
        self._folder_watches: dict[str, Worker[None]] = {}

    def compose(self) -> ComposeResult:
        yield FileList()
        yield FilterBox(placeholder="/ filter", select_on_focus=False)  # keys typed before it had focus stay
        yield Static("", classes="pane--footer", markup=False)  # the filter typed: a glob "*.[ch]" is text

    @property
    def file_list(self) -> FileList:
        return self.query_one(FileList)

    @property
    def watching(self) -> SdPath | None:
        """The directory whose changes the pane follows, while there is one."""
        return self._watching

    @property
    def filter_box(self) -> FilterBox:
        return self.query_one(FilterBox)

    def path_of(self, entry: Entry) -> SdPath | None:
        """The file a row stands for."""
        if self.results is not None:
            return self.results.get(entry.name)
        return self.path.child(entry.name) if self.path is not None else None

    def show_results(self, title: str, found: list[Entry]) -> None:
        """Show files from anywhere (search hits, tagged files, a device's places) as rows named by their path;
        `[` goes back."""
        here = self.here()
        if here is not None:
            self.back_stack.append(here)
            self.forward_stack.clear()
        self._watch_directory(None)
        self._close_folders()
        self.file_list.tree_open = None  # results are named by their path: never a tree
        self.path = None
        self.results = {}
        rows = []
        for entry in found:
            name = self._label(entry.path)  # `~/docs/a.txt` here, `laptop:/home/me/a.txt` on a paired device
            self.results[name] = entry.path
            rows.append(replace(entry, name=name))
        self.border_title = Content(title)  # text, not markup: names may hold `[`
        self._drop_filter()

        async def batches() -> AsyncIterator[list[Entry]]:
            yield rows

        self.file_list.load(batches, empty="nothing found")

    def here(self) -> Place | None:
        """This pane's place now, as the history would keep it."""
        if self.path is None:
            return None
        current = self.file_list.current
        return Place(self.path, current.name if current else None, self.file_list.scroll_y)

    def open(
        self,
        path: SdPath,
        *,
        cursor_name: str | None = None,
        scroll_y: float = 0.0,
        record: bool = True,
        preloaded: list[Entry] | None = None,
    ) -> None:
        """Show directory `path`; the place being left goes on the back stack.

        `preloaded` entries (the other pane's listing of the same directory) are shown without listing again.
        """
        if record:
            here = self.here()
            if here is not None and here.path != path:
                self.back_stack.append(here)
                self.forward_stack.clear()
        if path != self._watching:
            self._watch_directory(path)  # before listing: a change made while it lists is not missed
        self._close_folders()
        self.file_list.tree_open = frozenset() if self.tree_view else None
        self.path = path
        self.results = None
        self._cursor_to = None
        self.border_title = Content(self._label(path))
        self._drop_filter()
        if preloaded is not None:
            entries = list(preloaded)

            async def batches() -> AsyncIterator[list[Entry]]:
                yield entries

            self.file_list.load(batches, cursor_name=cursor_name, scroll_y=scroll_y)
        else:
            self.file_list.load(lambda: self._browse(path), cursor_name=cursor_name, scroll_y=scroll_y)
        self.post_message(self.Navigated(self, path))

    def _drop_filter(self) -> None:
        """A new listing (a directory, search results) starts unfiltered; sort and hidden files carry over."""
        if self.filter_box.has_class("-open") or self.file_list.arrangement.filter:
            self.filter_box.value = ""
            self.close_filter(refocus=False)
        self.file_list.arrangement = replace(self.file_list.arrangement, filter="")

    def _watch_directory(self, path: SdPath | None) -> None:
        """Stop following the directory being left; follow `path` (each change comes as a `Changed` message)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._watching = None
        if path is not None and self._start_watch is not None:
            self._watching = path
            self._watch = self.run_worker(self._follow(path), group="watch", exit_on_error=False)

    async def _follow(self, directory: SdPath) -> None:
        assert self._start_watch is not None
        try:
            async for change in self._start_watch(directory):
                self.post_message(self.Changed(self, directory, change))
        except SdError:
            pass  # a directory that cannot be watched still lists; ctrl+r lists it again

    def on_unmount(self) -> None:
        self._watch_directory(None)
        self._close_folders()

    def follow_again(self) -> None:
        """Follow the pane's folder, and the folders open in its tree, anew (another core watches them now: a paired
        device's own, once its library is open here), and list them again for what changed meanwhile."""
        if self.path is None or self._start_watch is None:
            return
        self._watch_directory(self.path)
        for folder, watch in list(self._folder_watches.items()):
            watch.cancel()
            self._folder_watches[folder] = self.run_worker(
                self._follow(self.path.child(folder)), group="watch", exit_on_error=False
            )
        self.refresh_listing()

    def refresh_listing(self) -> None:
        """List the directory again (in a tree, with the folders open in it), keeping the rows shown until the new
        listing is complete."""
        if self.path is not None:
            path = self.path
            cursor_to, self._cursor_to = self._cursor_to, None
            self.file_list.load(lambda: self._tree_listing(path), keep=True, cursor_name=cursor_to)

    async def apply_changes(self, changed: dict[str, Entry | None], folder: str = "") -> None:
        """Apply the changes of a core event to some names of the pane's folder, or of a `folder` open in its tree (an
        entry, or None when it is gone), without listing again."""
        if folder and folder not in self.expanded:
            return  # closed meanwhile
        if not self.tree_view or self.path is None:
            await self.file_list.patch(changed)
        else:
            rows: dict[str, Entry | None] = {}
            for name, entry in changed.items():
                row = f"{folder}/{name}" if folder else name
                rows[row] = None if entry is None else replace(entry, directory=self.path, name=row)
                if (entry is None or not entry.is_dir) and row in self.expanded:  # gone: so is what it showed
                    rows.update(self._close_folder(row))
            await self.file_list.show_tree(frozenset(self.expanded), rows)
        if self._cursor_to is not None and changed.get(self._cursor_to) is not None:
            self.put_cursor_on(self._cursor_to)

    # -- the tree view ---------------------------------------------------------------------

    def folder_of(self, directory: SdPath) -> str | None:
        """Where `directory` shows in the pane: "" for its folder, a folder's path from there when it is open in the
        tree; None when it is not shown."""
        if self.path is None:
            return None
        if directory == self.path:
            return ""
        return next((f for f in self.expanded if self.path.child(f) == directory), None)

    async def action_toggle_tree(self) -> None:
        """T: show the folder as a tree (its folders open in place), or as a plain listing again."""
        if self.path is None:
            self.notify("a tree view is of a folder: open one first", severity="warning", markup=False)
            return
        self.tree_view = not self.tree_view
        if self.tree_view:
            await self.file_list.show_tree(frozenset())
        else:
            below = {e.name: None for e in self.file_list.entries if "/" in e.name}
            self._close_folders()
            await self.file_list.show_tree(None, below)
        self._state_changed()

    def open_folder(self, folder: str) -> None:
        """Open `folder` (a path from the pane's folder) in place: shown open at once, its rows once listed."""
        if self.path is None or folder in self.expanded or self.file_list.is_loading:
            return
        self.expanded.add(folder)
        if self._start_watch is not None:  # before listing: a change made while it lists is not missed
            self._folder_watches[folder] = self.run_worker(
                self._follow(self.path.child(folder)), group="watch", exit_on_error=False
            )
        self.run_worker(self._list_folder(self.path, folder), group=f"tree-{folder}", exclusive=True, exit_on_error=False)

    async def _list_folder(self, root: SdPath, folder: str) -> None:
        await self.file_list.show_tree(frozenset(self.expanded))
        rows: dict[str, Entry | None] = {}
        try:
            async for batch in self._browse(root.child(folder)):
                rows.update((f"{folder}/{e.name}", replace(e, directory=root, name=f"{folder}/{e.name}")) for e in batch)
        except (TimeoutError, SdError, OSError, ConnectionError) as exc:
            if self.path == root and folder in self.expanded:
                await self.file_list.show_tree(frozenset(self.expanded), self._close_folder(folder))
                self.notify(f"{display(folder)}: {exc}", severity="error", markup=False)
            return
        if self.path == root and folder in self.expanded and self.file_list.tree_open is not None:
            await self.file_list.show_tree(frozenset(self.expanded), rows)

    def close_folder(self, folder: str) -> None:
        """Close a folder open in the tree (and those open below it)."""
        gone = self._close_folder(folder)
        self.run_worker(self.file_list.show_tree(frozenset(self.expanded), gone), group="tree-close", exit_on_error=False)

    def _close_folder(self, folder: str) -> dict[str, Entry | None]:
        """Forget that `folder` and the folders below it are open; the rows that leave the tree (as None)."""
        below = folder + "/"
        for open_folder in [f for f in self.expanded if f == folder or f.startswith(below)]:
            self.expanded.discard(open_folder)
            watch = self._folder_watches.pop(open_folder, None)
            if watch is not None:
                watch.cancel()
        return {e.name: None for e in self.file_list.entries if e.name.startswith(below)}

    def _close_folders(self) -> None:
        """Forget every folder open in the tree, and stop following them."""
        for watch in self._folder_watches.values():
            watch.cancel()
        self._folder_watches.clear()
        self.expanded.clear()

    async def _tree_listing(self, root: SdPath) -> AsyncIterator[list[Entry]]:
        """The pane's folder listed, then each folder open in its tree that is still there (the others close)."""
        folders: set[str] = set()
        async for batch in self._browse(root):
            folders.update(e.name for e in batch if e.is_dir)
            yield batch
        for folder in sorted(self.expanded, key=lambda f: f.count("/")):  # a folder after the one holding it
            if self.path != root:
                return
            rows = None
            if folder in folders:
                with suppress(TimeoutError, SdError, OSError, ConnectionError):
                    rows = [replace(e, directory=root, name=f"{folder}/{e.name}")
                            async for batch in self._browse(root.child(folder)) for e in batch]  # fmt: skip
            if rows is None:  # gone, or no longer readable: it closes
                self._close_folder(folder)
                self.file_list.tree_open = frozenset(self.expanded)
                continue
            folders.update(e.name for e in rows if e.is_dir)
            yield rows

    def put_cursor_on(self, name: str) -> None:
        """Put the cursor on `name` (a folder made or a file renamed here): now, or once the core's event of it arrived."""
        found = self.file_list.index_of(name)
        if found is None:
            self._cursor_to = name
        else:
            self._cursor_to = None
            self.file_list.move_cursor(found)

    def go_up(self) -> None:
        if self.results is not None:
            self.action_back()
        elif self.path is not None and self.path.path != "/":
            self.open(self.path.parent, cursor_name=self.path.name)

    def action_back(self) -> None:
        if self.back_stack:
            here = self.here()
            place = self.back_stack.pop()
            if here is not None:
                self.forward_stack.append(here)
            self.open(place.path, cursor_name=place.cursor_name, scroll_y=place.scroll_y, record=False)

    def action_forward(self) -> None:
        if self.forward_stack:
            here = self.here()
            place = self.forward_stack.pop()
            if here is not None:
                self.back_stack.append(here)
            self.open(place.path, cursor_name=place.cursor_name, scroll_y=place.scroll_y, record=False)

    def action_refresh(self) -> None:
        self.refresh_listing()

    def action_filter(self) -> None:
        box = self.filter_box
        box.add_class("-open")
        self.file_list.typing_into = box  # keys typed before the focus moves go to the box too
        box.focus()

    def close_filter(self, refocus: bool = True) -> None:
        box = self.filter_box
        if not box.value:
            box.remove_class("-open")
            self.run_worker(partial(self.file_list.set_filter, ""), group="filter", exclusive=True)  # type: ignore[arg-type]
        if refocus:
            self.file_list.focus()

    @on(Input.Changed, "FilterBox")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.run_worker(partial(self.file_list.set_filter, event.value), group="filter", exclusive=True)  # type: ignore[arg-type]

    @on(Input.Submitted, "FilterBox")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.close_filter()

    @on(FileList.OpenRequested)
    def _open_requested(self, event: FileList.OpenRequested) -> None:
        target = self.path_of(event.entry)
        if target is None:
            return
        if self.tree_view and self.results is None and event.entry.is_dir and event.entry.name not in self.expanded:
            self.open_folder(event.entry.name)  # l again goes into it
        elif self.results is not None and not event.entry.is_dir:
            self.open(target.parent, cursor_name=target.name)  # a hit opens where it lies
        elif event.entry.is_dir or (event.entry.kind == "file" and is_archive_name(event.entry.name)):
            self.open(target)  # an archive opens as a read-only folder of its members
        else:
            self.post_message(self.FileOpened(self, target, event.entry))

    @on(FileList.FilterDropRequested)
    def _filter_dropped(self) -> None:
        self.filter_box.value = ""
        self.close_filter()

    @on(FileList.ParentRequested)
    def _parent_requested(self) -> None:
        current = self.file_list.current
        if self.tree_view and self.results is None and current is not None and current.name in self.expanded:
            self.close_folder(current.name)
        elif self.tree_view and self.results is None and current is not None and "/" in current.name:
            self.put_cursor_on(current.name.rpartition("/")[0])  # to the folder it is in; h again closes it
        else:
            self.go_up()

    @on(FileList.StateChanged)
    def _state_changed(self) -> None:
        self.query_one(".pane--footer", Static).update(self.footer_text())

    def set_offline(self, offline: bool) -> None:
        self.offline = offline
        self._state_changed()

    def footer_text(self) -> str:
        fl = self.file_list
        parts = [
            f"{len(fl.rows):,} of {unfiltered_count(fl.entries, fl.arrangement):,}"
            if fl.arrangement.filter
            else f"{len(fl.rows):,} item{'' if len(fl.rows) == 1 else 's'}"
        ]
        chosen = len(fl._selected_names())
        if chosen:
            parts.append(f"{chosen} selected")
        parts.append(fl.arrangement.describe())
        if self.tree_view and self.path is not None:
            parts.append(f"tree, {len(self.expanded)} open" if self.expanded else "tree")
        if fl.state == "loading":
            parts.append(f"loading… {fl.listed:,} listed")
        elif fl.state == "unreachable":
            parts.append(fl.unreachable_as)
        if self.offline:
            parts.append("offline")
        return " · ".join(parts)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        self.post_message(self.Activated(self))
