"""Listings of a directory: from the index inside a location, ephemerally (nothing written) elsewhere."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdcore.errors import NotFound
from sdcore.fs.base import EntryInfo, why_not_a_folder
from sdcore.fs.local import fs_error
from sdcore.index.kinds import extension_of, kind_from_extension
from sdcore.index.walker import KIND, NAME, Found, IgnoreRules, scan_dir
from sdcore.sdpath import SdPath, display, from_db, join, to_db

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a listing, as scripts and the UI see it."""

    name: str
    path: str
    kind: str
    size: int
    mtime: float
    inode: int | None = None
    object_kind: str | None = None
    cas_id: str | None = None
    hidden: bool = False
    files: int | None = None
    link_target: str | None = None
    entry_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry for scripts: name, path, kind, size, mtime, and the rest where known."""
        data: dict[str, Any] = {"name": self.name, "path": self.path, "kind": self.kind, "size": self.size, "mtime": self.mtime}
        for key in ("inode", "object_kind", "cas_id", "files", "link_target", "entry_id"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data["hidden"] = self.hidden
        return data


def list_indexed(library: Library, path: str) -> list[Entry] | None:
    """The children of `path` as the index has them; None when `path` is not an indexed directory."""
    found = library.locations.containing(path)
    if found is None:
        return None
    loc, rel = found
    db = library.read()
    row = db.execute(
        "SELECT entry_id FROM directory_paths WHERE location_id = ? AND path = ?", (loc.id, to_db(rel))
    ).fetchone()
    if row is None:
        return None
    rows = db.execute(
        "SELECT e.name, e.kind, e.size, e.mtime, e.inode, e.object_kind, c.cas_id, e.hidden, e.files, e.link_target, e.id"
        " FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.parent_id = ? ORDER BY e.name",
        (row[0],),
    )
    entries = [
        Entry(
            from_db(name), join(path, from_db(name)), kind, size, mtime, inode, object_kind, cas_id, bool(hidden),
            files if kind == "dir" else None, from_db(link) if link else None, entry_id,
        )
        for name, kind, size, mtime, inode, object_kind, cas_id, hidden, files, link, entry_id in rows
    ]
    if loc.ignore:
        entries.extend(_ignored(path, rel, IgnoreRules(loc.ignore)))
        entries.sort(key=lambda e: to_db(e.name))
    return entries


def _ignored(path: str, rel: str, rules: IgnoreRules) -> list[Entry]:
    """What the ignore rules keep out of the index here: rules decide what is indexed, never what a listing shows."""
    try:
        found = scan_dir(path, "", IgnoreRules(()))
    except OSError:
        return []
    out = []
    for name_db, _ext, kind, object_kind, size, inode, mtime, _mode, hidden, link in found:
        name = from_db(name_db)
        if rules.ignores(name, f"{rel}/{name}" if rel else name):
            out.append(Entry(name, join(path, name), kind, size, mtime, inode, object_kind, None, hidden, None,
                             from_db(link) if link else None))
    return out


def entry_of_info(directory: str, info: EntryInfo) -> Entry:
    ext = extension_of(info.name) if info.kind == "file" else ""
    return Entry(
        info.name, join(directory, info.name), info.kind, info.size if info.kind != "dir" else 0, info.mtime,
        info.inode, kind_from_extension(ext), None, info.hidden, None, info.link_target,
    )


def scan_ephemeral(path: str, recursive: bool = False, batch_size: int = 1000) -> Iterator[list[Entry]]:
    """List a local directory (and, if asked, everything below it) in batches; nothing is written.

    Directories that cannot be read below the first are skipped; the first raises a clear error.
    """
    for directory, found in scan_ephemeral_found(path, recursive):
        batch: list[Entry] = []
        for name, _ext, kind, object_kind, size, inode, mtime, _mode, hidden, link in found:
            name = from_db(name)
            batch.append(
                Entry(name, join(directory, name), kind, size, mtime, inode, object_kind, None, hidden, None,
                      from_db(link) if link else None)
            )
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def scan_ephemeral_found(path: str, recursive: bool = False) -> Iterator[tuple[str, list[Found]]]:
    """As `scan_ephemeral`, as each directory's path and its raw found tuples (names in DB form): what
    `sd index quick-scan --json` formats for scripts without making an object per entry."""
    pending = [path]
    first = True
    rules = IgnoreRules(())
    while pending:
        directory = pending.pop()
        try:
            found = scan_dir(directory, "", rules)
        except OSError as exc:
            if first:
                raise fs_error(exc, directory) from None
            continue
        first = False
        if recursive:
            pending.extend(join(directory, from_db(f[NAME])) for f in found if f[KIND] == "dir")
        yield directory, found


async def listing(core: Core, path: SdPath, library: Library | None = None) -> AsyncIterator[list[Entry]]:
    """A directory of any device in batches: from the index when it is indexed here, else from its filesystem."""
    if library is not None and core.is_local(path):
        indexed = list_indexed(library, path.path)
        if indexed is not None:
            for i in range(0, max(len(indexed), 1), 1000):
                yield indexed[i : i + 1000]
            return
    if core.is_local(path) and not os.path.isdir(path.path):
        raise NotFound(f"{display(path.path)} {why_not_a_folder(path.path)}")
    async for batch in core.browse(path):
        yield [entry_of_info(path.path, info) for info in batch]
