"""Tags: named, coloured, nestable ('work/clients/acme') labels on entries or on content (every copy of it)."""

from __future__ import annotations

import builtins
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.sdpath import typed

if TYPE_CHECKING:
    from sdcore.library.library import Library
    from sdcore.sync.shared import TagEvent

COLORS = (
    "red", "orange", "yellow", "green", "teal", "cyan", "blue", "purple", "magenta", "pink", "brown", "gray", "grey",
    "black", "white",
)
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


class TagError(SdError):
    """A tag name, colour or assignment that cannot be used as given."""


@dataclass(frozen=True)
class Tag:
    """A tag; `name` is its full path ('work/clients/acme')."""

    id: int
    name: str
    color: str | None
    created: float
    entries: int = 0  # entries carrying it directly
    contents: int = 0  # contents carrying it (each on every copy)

    @property
    def parent(self) -> str | None:
        head, slash, _ = self.name.rpartition("/")
        return head if slash else None

    @property
    def leaf(self) -> str:
        return self.name.rpartition("/")[2]

    @property
    def depth(self) -> int:
        return self.name.count("/")


@dataclass(frozen=True)
class Tagged:
    """An entry that carries a tag, directly or through its content."""

    entry_id: int
    tag: str
    via_content: bool


# -- the tags themselves -------------------------------------------------------------------------------


def create(library: Library, name: str, color: str | None = None) -> Tag:
    """Create a tag (and its missing parents: 'a/b/c' makes 'a' and 'a/b' too)."""
    name = normalize(name)
    color = normalize_color(color)
    with library.write() as db:
        existing = _find(db, name)
        if existing is not None:
            raise AlreadyExists(
                f"tag {existing.name!r} exists already; `sd tag rename` renames it, `sd tag color` recolours it"
            )
        _make_parents(library, db, name)
        library.sync.new_tag(db, name, color)
    library.sync.tell()
    return get(library, name)


def get(library: Library, name: str) -> Tag:
    """A tag by name (case does not matter)."""
    tag = _find(library.read(), normalize(name))
    if tag is None:
        raise NotFound(f"no tag named {name!r}; `sd tag create {typed(name)}` makes it, `sd tag list` shows the tags")
    return tag


def list(library: Library) -> builtins.list[Tag]:
    """Every tag, parents before their children, with how many entries and contents carry each."""
    from sdcore.sync.kept_entries import shown_sql

    rows = library.read().execute(
        "SELECT t.id, t.name, t.color, t.created,"
        f" (SELECT count(*) FROM tag_assignments a WHERE a.tag_id = t.id AND {shown_sql(library, 'a.entry_id')}),"
        " (SELECT count(*) FROM tag_assignments a WHERE a.tag_id = t.id AND a.cas_id IS NOT NULL)"
        " FROM tags t ORDER BY replace(t.name, '/', char(1)) COLLATE NOCASE"
    )
    return [Tag(*row) for row in rows]


def rename(library: Library, name: str, new_name: str) -> Tag:
    """Rename a tag; its nested tags move with it ('a' -> 'b' makes 'a/x' into 'b/x')."""
    new_name = normalize(new_name)
    with library.write() as db:
        tag = _require(db, normalize(name))
        if new_name.casefold() == tag.name.casefold():
            library.sync.set_tag(db, _uid(library, db, tag.id), "name", new_name)  # a change of case only
        else:
            if new_name.casefold().startswith(tag.name.casefold() + "/"):
                raise TagError(f"cannot move tag {tag.name!r} inside itself ({new_name!r})")
            clash = _find(db, new_name)
            if clash is not None:
                raise AlreadyExists(f"tag {clash.name!r} exists already; delete it first or choose another name")
            subtree = _subtree(db, tag.name)
            _make_parents(library, db, new_name)
            for tag_id, old in subtree:
                library.sync.set_tag(db, _uid(library, db, tag_id), "name", new_name + old[len(tag.name) :])
    library.sync.tell()
    return get(library, new_name)


def recolor(library: Library, name: str, color: str | None) -> Tag:
    """Give a tag another colour (None: none)."""
    color = normalize_color(color)
    with library.write() as db:
        tag = _require(db, normalize(name))
        library.sync.set_tag(db, _uid(library, db, tag.id), "color", color)
    library.sync.tell()
    return get(library, tag.name)


def delete(library: Library, name: str, recursive: bool = False) -> int:
    """Delete a tag and its assignments (nested tags too with `recursive`); returns how many tags went."""
    with library.write() as db:
        tag = _require(db, normalize(name))
        subtree = _subtree(db, tag.name)
        if len(subtree) > 1 and not recursive:
            raise TagError(
                f"tag {tag.name!r} has {len(subtree) - 1} nested tag(s); delete them first, or delete all with --recursive"
            )
        for tag_id, _ in subtree:
            uid = _uid(library, db, tag_id)
            for target in library.sync.targets_of(db, uid):
                library.sync.untag(db, uid, target)
            library.sync.set_tag(db, uid, "gone", True)
    library.sync.tell()
    return len(subtree)


# -- tagging -------------------------------------------------------------------------------------------


def assign(library: Library, name: str, entry_ids: Iterable[int], content: bool = False) -> int:
    """Tag entries (with `content`, their content: every copy shows it); returns how many were newly tagged."""
    ids = builtins.list(entry_ids)
    now = time.time()
    with library.write() as db:
        tag = _require(db, normalize(name))
        uid = _uid(library, db, tag.id)
        places = _targets(library, db, ids, content)
        count = db.executemany(  # (the rows it inserted: not what triggers wrote beside them)
            f"INSERT OR IGNORE INTO tag_assignments (tag_id, {'cas_id' if content else 'entry_id'}, created) VALUES (?, ?, ?)",
            [(tag.id, value, now) for _, value, _ in places],
        ).rowcount
        library.sync.tag(db, uid, [target for _, _, target in places])
    library.sync.tell()
    return count


def remove(library: Library, name: str, entry_ids: Iterable[int], content: bool = False) -> int:
    """Untag entries (with `content`, their content); returns how many assignments went."""
    ids = builtins.list(entry_ids)
    count = 0
    with library.write() as db:
        tag = _require(db, normalize(name))
        uid = _uid(library, db, tag.id)
        for column, value, target in _targets(library, db, ids, content, known=False):
            count += _carries(db, tag.id, column, value)
            library.sync.untag(db, uid, target)
            # one a moved file's content brought back (the `detached` trigger) is this device's alone
            db.execute(f"DELETE FROM tag_assignments WHERE tag_id = ? AND {column} = ?", (tag.id, value))
    library.sync.tell()
    return count


def entries(library: Library, name: str, nested: bool = True) -> builtins.list[Tagged]:
    """Entries carrying a tag (or, with `nested`, any tag below it), directly or through their content."""
    from sdcore.sync.kept_entries import shown_sql

    conn = library.read()
    tag = _require(conn, normalize(name))
    names = {tag_id: tag_name for tag_id, tag_name in (_subtree(conn, tag.name) if nested else [(tag.id, tag.name)])}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        f"SELECT a.entry_id, a.tag_id, 0 FROM tag_assignments a WHERE a.tag_id IN ({marks}) AND {shown_sql(library, 'a.entry_id')}"
        f" UNION ALL SELECT e.id, a.tag_id, 1 FROM tag_assignments a JOIN content_identities c ON c.cas_id = a.cas_id"
        f" JOIN entries e ON e.content_id = c.id WHERE a.tag_id IN ({marks}) ORDER BY 1",
        [*names, *names],
    ).fetchall()
    rows += _on_kept_copies(library, conn, names)
    return [Tagged(entry_id, names[tag_id], bool(via)) for entry_id, tag_id, via in sorted(rows)]


def _on_kept_copies(
    library: Library, conn: sqlite3.Connection, tag_ids: Iterable[int]
) -> builtins.list[tuple[int, int, int]]:
    """(global id, tag id, 1) of the copies, in other devices' kept catalogues, of the contents these tags are on."""
    from sdcore.sync.kept_entries import with_content

    ids = builtins.list(tag_ids)
    by_content: dict[str, builtins.list[int]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for cas_id, tag_id in conn.execute(
            f"SELECT cas_id, tag_id FROM tag_assignments WHERE cas_id IS NOT NULL AND tag_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            by_content.setdefault(cas_id, []).append(tag_id)
    if not by_content:
        return []
    return [
        (entry_id, tag_id, 1)
        for entry_id, cas_id in with_content(library, builtins.list(by_content))
        for tag_id in by_content[cas_id]
    ]


def of(library: Library, entry_id: int) -> builtins.list[Tagged]:
    """The tags an entry carries, directly or through its content (another device's: its content as its kept
    catalogue has it)."""
    from sdcore.sync import kept_entries

    if kept_entries.is_global(entry_id):
        found = kept_entries.cas_id_of(library, entry_id)
        content = "SELECT ? AS cas_id"
        args: tuple[int | str | None, ...] = (entry_id, found[1] if found is not None else None)
    else:
        content = "SELECT c.cas_id FROM entries e JOIN content_identities c ON c.id = e.content_id WHERE e.id = ?"
        args = (entry_id, entry_id)
    rows = library.read().execute(
        "SELECT t.name, 0 FROM tag_assignments a JOIN tags t ON t.id = a.tag_id WHERE a.entry_id = ?"
        f" UNION SELECT t.name, 1 FROM ({content}) c JOIN tag_assignments a ON a.cas_id = c.cas_id"
        " JOIN tags t ON t.id = a.tag_id ORDER BY 1",
        args,
    )
    return [Tagged(entry_id, name, bool(via)) for name, via in rows]


def history(library: Library, entry_id: int) -> builtins.list[TagEvent]:
    """The tags put on and taken off an entry and its content, on any device of the library, oldest first."""
    _check_entries(library, [entry_id])
    return library.sync.tag_history(entry_id)


def ids_under(conn: sqlite3.Connection, name: str) -> builtins.list[int]:
    """The ids of a tag and every tag nested below it."""
    tag = _require(conn, normalize(name))
    return [tag_id for tag_id, _ in _subtree(conn, tag.name)]


# -- names and colours ---------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """A tag name as stored: segments trimmed, joined by '/'; an empty segment or control character is refused."""
    parts = [p.strip() for p in name.strip().strip("/").split("/")]
    if not name.strip() or any(not p for p in parts):
        raise TagError(f"{name!r} is not a tag name; use words, nested with '/': work/clients/acme")
    if any(ord(c) < 0x20 or c == "\x7f" or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise TagError(f"{name!r} contains a control character; tag names are plain text")
    if len(name) > 200:
        raise TagError("a tag name is at most 200 characters")
    return "/".join(parts)


def normalize_color(color: str | None) -> str | None:
    if color is None or color.strip() in ("", "none"):
        return None
    text = color.strip().lower()
    if _HEX.fullmatch(text) or text in COLORS:
        return text
    raise TagError(f"{color!r} is not a colour; use #rrggbb, #rgb or one of {', '.join(COLORS)}")


# -- helpers -------------------------------------------------------------------------------------------


def _find(conn: sqlite3.Connection, name: str) -> Tag | None:
    row = conn.execute("SELECT id, name, color, created FROM tags WHERE name = ?", (name,)).fetchone()
    return Tag(*row) if row else None


def _require(conn: sqlite3.Connection, name: str) -> Tag:
    tag = _find(conn, name)
    if tag is None:
        raise NotFound(f"no tag named {name!r}; `sd tag create {typed(name)}` makes it, `sd tag list` shows the tags")
    return tag


def _subtree(conn: sqlite3.Connection, name: str) -> builtins.list[tuple[int, str]]:
    """(id, name) of the tag and every tag below it, the tag first."""
    rows = conn.execute(
        "SELECT id, name FROM tags WHERE name = ? OR (substr(name, 1, ?) = ? COLLATE NOCASE)"
        " ORDER BY length(name)",
        (name, len(name) + 1, name + "/"),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _make_parents(library: Library, db: sqlite3.Connection, name: str) -> None:
    """Make the missing tags above `name` ('a' and 'a/b' for 'a/b/c')."""
    parts = name.split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        if _find(db, parent) is None:
            library.sync.new_tag(db, parent)


def _uid(library: Library, db: sqlite3.Connection, tag_id: int) -> str:
    """The id every device knows the tag by."""
    return library.sync.uid_of(db, tag_id)


def _targets(
    library: Library, db: sqlite3.Connection, ids: builtins.list[int], content: bool, known: bool = True
) -> builtins.list[tuple[str, int | str, str]]:
    """(column, value, sync target) of each distinct entry, or of its content; `known`: every id must be an entry."""
    from sdcore.sync import oplog

    if content:
        return [("cas_id", cas, oplog.content_target(cas)) for cas in dict.fromkeys(_cas_ids(library, ids))]
    from sdcore.sync import kept_entries

    out: builtins.list[tuple[str, int | str, str]] = []
    for entry_id in dict.fromkeys(ids):
        try:
            if known and kept_entries.is_global(entry_id) and not kept_entries.exists(library, entry_id):
                raise NotFound(entry_id)
            out.append(("entry_id", entry_id, library.sync.target_of(db, entry_id)))
        except NotFound:
            if known:
                raise NotFound(f"entry {entry_id} is not in the library (deleted, or never indexed)") from None
    return out


def _carries(db: sqlite3.Connection, tag_id: int, column: str, value: int | str) -> bool:
    return db.execute(f"SELECT 1 FROM tag_assignments WHERE tag_id = ? AND {column} = ?", (tag_id, value)).fetchone() is not None


def _check_entries(library: Library, ids: builtins.list[int]) -> None:
    from sdcore.sync.kept_entries import cas_id_of

    for entry_id in ids:
        if cas_id_of(library, entry_id) is None:
            raise NotFound(f"entry {entry_id} is not in the library (deleted, or never indexed)")


def _cas_ids(library: Library, ids: builtins.list[int]) -> builtins.list[str]:
    """The cas_id of each entry (another device's from its kept catalogue)."""
    from sdcore.sync.kept_entries import cas_id_of

    out = []
    for entry_id in ids:
        row = cas_id_of(library, entry_id)
        if row is None:
            raise NotFound(f"entry {entry_id} is not in the library (deleted, or never indexed)")
        if row[1] is None:
            raise TagError(
                f"{row[0]!r} has no content identity yet (a folder, an empty file, a shallow location, or hashing has "
                "not reached it); tag the file itself without --content, or index the location in content mode first"
            )
        out.append(row[1])
    return out
