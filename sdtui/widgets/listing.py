"""Arranging a directory's entries for a pane: sort, filter, hidden files, and the text of a row.

Plain functions with no Textual import, so they run in a worker thread and test on their own.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

from sdcore.api.records import Entry
from sdcore.api.text import human_size, name_order, shorten_home  # noqa: F401 (the explorer's words are the core's)

SORT_KEYS = ("name", "size", "mtime", "ext")
"""The orders a pane can be sorted in, in the order `s` cycles through them."""


@dataclass(frozen=True, slots=True)
class Arrangement:
    """How a pane shows its entries: the sort, its direction, the filter and whether hidden files show."""

    sort: str = "name"
    reverse: bool = False
    filter: str = ""
    show_hidden: bool = False

    def describe(self) -> str:
        arrow = "↑" if self.reverse else "↓"
        parts = [f"{self.sort}{arrow}"]
        if self.filter:
            parts.append(f"/{self.filter}")
        if self.show_hidden:
            parts.append("hidden shown")
        return " ".join(parts)


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot + 1 :].casefold() if dot > 0 else ""


_KEYS: dict[str, Callable[[Entry], object]] = {  # as `sd search --sort`: largest and newest first
    "name": lambda e: name_order(e.name),
    "size": lambda e: (-e.size, name_order(e.name)),
    "mtime": lambda e: (-e.mtime, name_order(e.name)),
    "ext": lambda e: (_ext(e.name), name_order(e.name)),
}


def arrange(entries: Sequence[Entry], how: Arrangement) -> list[Entry]:
    """The entries a pane shows, in order: directories first, then the sort key; filtered, hidden dropped.

    The filter matches names as `name_matcher` says.
    """
    rows: Sequence[Entry] = entries
    if not how.show_hidden:
        rows = [e for e in rows if not e.name.startswith(".")]
    if how.filter:
        matches = name_matcher(how.filter)
        rows = [e for e in rows if matches(e.name)]
    key = _KEYS[how.sort]
    dirs = sorted((e for e in rows if e.kind == "dir"), key=key, reverse=how.reverse)  # type: ignore[arg-type]
    files = sorted((e for e in rows if e.kind != "dir"), key=key, reverse=how.reverse)  # type: ignore[arg-type]
    return dirs + files


def arrange_tree(entries: Sequence[Entry], how: Arrangement, expanded: frozenset[str]) -> list[Entry]:
    """The rows of a tree view: `entries` are named by their path from the pane's folder (`docs/deep/a.txt`), each
    folder's children arranged as `arrange` arranges a folder and shown under it when it is `expanded`.

    A hidden name hides what is below it; the filter keeps the names it matches and the folders leading to them.
    """
    children: dict[str, list[Entry]] = {}
    for entry in entries:
        parent, _, _ = entry.name.rpartition("/")
        children.setdefault(parent, []).append(entry)
    leaf_key = _TREE_KEYS[how.sort]  # siblings sort by their own names
    matches = name_matcher(how.filter) if how.filter else None

    def under(folder: str) -> list[Entry]:
        """The rows of `folder`'s children and of what is expanded below them, in order."""
        found: list[Entry] = []
        level = [e for e in children.get(folder, ()) if how.show_hidden or not tree_leaf(e.name).startswith(".")]
        dirs = sorted((e for e in level if e.kind == "dir"), key=leaf_key, reverse=how.reverse)  # type: ignore[arg-type]
        files = sorted((e for e in level if e.kind != "dir"), key=leaf_key, reverse=how.reverse)  # type: ignore[arg-type]
        for entry in dirs + files:
            below = under(entry.name) if entry.kind == "dir" and entry.name in expanded else []
            if matches is None or below or matches(tree_leaf(entry.name)):
                found.append(entry)
                found.extend(below)
        return found

    return under("")


def tree_leaf(name: str) -> str:
    """The last name of a tree row's path (`a.txt` of `docs/deep/a.txt`)."""
    return name.rpartition("/")[2]


def tree_depth(name: str) -> int:
    """How deep a tree row lies below the pane's folder (0: in it)."""
    return name.count("/")


_TREE_KEYS: dict[str, Callable[[Entry], object]] = {
    "name": lambda e: name_order(tree_leaf(e.name)),
    "size": lambda e: (-e.size, name_order(tree_leaf(e.name))),
    "mtime": lambda e: (-e.mtime, name_order(tree_leaf(e.name))),
    "ext": lambda e: (_ext(tree_leaf(e.name)), name_order(tree_leaf(e.name))),
}


REGEX_PREFIX = "re:"
"""A filter that starts with this is a regular expression (searched in the name, case aside)."""


def name_matcher(text: str) -> Callable[[str], bool]:
    """What a pane's filter keeps, case aside: `re:REGEX` the names it finds; a glob (`*.c`, `IMG_????.jpg`, with
    `*`, `?` or `[`) the whole names it fits; anything else the names holding it. A regular expression not written
    to the end yet (`re:(ab`) keeps every name until it is."""
    if text.startswith(REGEX_PREFIX):
        try:
            return re.compile(text[len(REGEX_PREFIX) :], re.IGNORECASE).search  # type: ignore[return-value]
        except re.error:
            return lambda name: True
    if any(c in text for c in "*?["):
        pattern = re.compile(fnmatch.translate(text), re.IGNORECASE)
        return lambda name: pattern.match(name) is not None
    needle = text.casefold()
    return lambda name: needle in name.casefold()


def unfiltered_count(entries: Sequence[Entry], how: Arrangement) -> int:
    """How many entries the pane would show without its filter (hidden files count only when shown)."""
    return len(entries) if how.show_hidden else sum(1 for e in entries if not e.name.startswith("."))


def fit_name(name: str, width: int, *, path: bool = False) -> str:
    """A row's name cut to `width` cells so that it still says which file it is.

    A `path` (a search hit) gives way from its folders, nearest folder last; a name too long on its own loses its
    middle, so its start and its end (the extension) both stay: `kernel-pa…eters.txt`.
    """
    if cell_len(name) <= width:
        return name
    folders, slash, last = name.rpartition("/") if path else ("", "", name)
    room = width - 1 - cell_len(slash + last)
    if slash and room >= 4:
        kept = folders
        while cell_len(kept) > room:
            kept = kept[1:]
        return "…" + kept + slash + last
    return _cut_middle(last, width)


def _cut_middle(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return text
    if width < 3:
        return set_cell_size(text, width)
    tail = ""
    for char in reversed(text):
        if cell_len(char + tail) > (width - 1) // 2:
            break
        tail = char + tail
    return set_cell_size(text, width - 1 - cell_len(tail)) + "…" + tail


def format_mtime(mtime: float) -> str:
    """A modification time as `2026-11-26 17:54` (local time)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime))


def kind_marker(entry: Entry) -> str:
    """The suffix `ls -F` would give the name: / for a directory, @ for a link, | for a fifo..."""
    return {"dir": "/", "symlink": "@", "fifo": "|", "socket": "=", "device": "#"}.get(entry.kind, "")


def shorten_home_in(message: str) -> str:
    """A message with every mention of the home directory shown as `~`."""
    home = os.path.expanduser("~").rstrip("/")
    return message.replace(home + "/", "~/") if home else message
