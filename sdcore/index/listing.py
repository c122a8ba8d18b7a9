"""Listings of a directory: from the index inside a location, ephemerally (nothing written) elsewhere."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from sdcore.api.records import Entry
from sdcore.errors import NotFound
from sdcore.fs.base import EntryInfo, why_not_a_folder
from sdcore.index.kinds import extension_of, kind_from_extension
from sdcore.index.walker import KIND, NAME, Found, IgnoreRules, scan_dir
from sdcore.sdpath import UNNAMED_DEVICE, DeviceId, SdPath, display, from_db, join, to_db

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library


CHILDREN_SQL = (
    "SELECT e.name, e.kind, e.size, e.mtime, e.inode, e.mode, e.object_kind, c.cas_id, e.files, e.link_target, e.id"
    " FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.parent_id = ? ORDER BY e.name"
)
"""The entries in a folder (by its entry id), as a listing shows them."""


def list_indexed(
    library: Library, path: str, device_id: DeviceId | None = None, *, decided: bool = False
) -> list[Entry] | None:
    """The children of `path` (a folder of this device, or of `device_id` from its catalogue) as the index has
    them; None when `path` is not an indexed directory (nor, with `decided`, in a location on a disk that may be
    another disk than the one indexed: see Location.undecided)."""
    directory = SdPath(device_id or library.context.device_id, path)
    found = library.locations.containing(path, device_id)
    if found is None or decided and found[0].undecided:
        return None
    loc, rel = found
    db, location_id, high = library.read(), loc.id, 0
    if device_id is not None and device_id != library.context.device_id:
        # (here: a quick scan of a folder imports this module and loads no library, test_cli_startup)
        from sdcore.sync import catalogue_store

        slot = catalogue_store.slot_of(library, device_id)
        kept = None if slot is None else catalogue_store.reader(library, device_id, slot)
        if kept is not None and slot is not None:
            # from the file kept of that device's catalogue (rows of it the library's own tables may hold are not read)
            location_id = catalogue_store.location_ids(library, device_id).get(loc.id, -1)
            db, high = kept, slot << catalogue_store.SLOT_BITS  # (its ids | high: their global ids)
    row = db.execute(
        "SELECT entry_id FROM directory_paths WHERE location_id = ? AND path = ?", (location_id, to_db(rel))
    ).fetchone()
    if row is None:
        return None
    rows = db.execute(CHILDREN_SQL, (row[0],))
    entries = [
        Entry(
            directory, from_db(name), kind, size, mtime, inode or 0, mode or 0, from_db(link) if link else None,
            entry_id | high, cas_id, object_kind, files if kind == "dir" else None,
        )  # positional: a listing makes 100,000 of them
        for name, kind, size, mtime, inode, mode, object_kind, cas_id, files, link, entry_id in rows
    ]
    if loc.ignore and device_id in (None, library.context.device_id):
        entries.extend(_ignored(directory, rel, IgnoreRules(loc.ignore)))
        entries.sort(key=lambda e: to_db(e.name))
    return entries


def _ignored(directory: SdPath, rel: str, rules: IgnoreRules) -> list[Entry]:
    """What the ignore rules keep out of the index here: rules decide what is indexed, never what a listing shows."""
    try:
        found = scan_dir(directory.path, "", IgnoreRules(()))
    except OSError:
        return []
    return [
        e for e in _entries_found(directory, found) if rules.ignores(e.name, f"{rel}/{e.name}" if rel else e.name)
    ]


def _entries_found(directory: SdPath, found: list[Found]) -> list[Entry]:
    """The entries of a directory's found tuples (`scan_dir`), with their kinds by extension."""
    return [
        Entry(directory, from_db(name), kind, size, mtime, inode, mode, from_db(link) if link else None, None, None,
              object_kind)
        for name, _ext, kind, object_kind, size, inode, mtime, mode, _hidden, link in found
    ]  # fmt: skip


def entry_of_info(directory: SdPath, info: EntryInfo) -> Entry:
    """An entry as a filesystem lists it, with its kind by extension (a folder's size is not shown)."""
    ext = extension_of(info.name) if info.kind == "file" else ""
    return Entry(
        directory, info.name, info.kind, info.size if info.kind != "dir" else 0, info.mtime, info.inode, info.mode,
        info.link_target, None, None, kind_from_extension(ext),
    )  # fmt: skip


def scan_ephemeral(
    path: str, recursive: bool = False, batch_size: int = 1000, device: DeviceId = UNNAMED_DEVICE
) -> Iterator[list[Entry]]:
    """List a directory of this machine (`device`: its id) and, if asked, everything below it, in batches; nothing
    is written.

    Directories that cannot be read below the first are skipped; the first raises a clear error.
    """
    for directory, found in scan_ephemeral_found(path, recursive):
        entries = _entries_found(SdPath(device, directory), found)
        for start in range(0, len(entries), batch_size):
            yield entries[start : start + batch_size]


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
                from sdcore.fs.local import fs_error  # (and asyncio with it: not for a quick scan)

                raise fs_error(exc, directory) from None
            continue
        first = False
        if recursive:
            pending.extend(join(directory, from_db(f[NAME])) for f in found if f[KIND] == "dir")
        yield directory, found


async def listing(core: Core, path: SdPath, library: Library | None = None) -> AsyncIterator[list[Entry]]:
    """A directory of any device in batches: from the index when it is indexed here, else from its filesystem."""
    if library is not None and core.is_local(path):
        indexed = list_indexed(library, path.path, decided=True)  # the disk mounted there is listed as it is
        if indexed is not None:
            for i in range(0, max(len(indexed), 1), 1000):
                yield indexed[i : i + 1000]
            return
    if core.is_local(path) and not os.path.isdir(path.path):
        raise NotFound(f"{display(path.path)} {why_not_a_folder(path.path)}")
    async for batch in core.browse(path):
        yield [entry_of_info(path, info) for info in batch]
