"""Duplicates: files with the same content, found by cas_id and proven with a full-file BLAKE3."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3
from xxhash import xxh3_64_intdigest

from sdcore.errors import NotFound
from sdcore.fs import held
from sdcore.index.cas import FULL_HASH_CHUNK
from sdcore.sdpath import display, from_db

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from sdcore.library.library import Library
    from sdcore.library.locations import Location

EMPTY_HASH = blake3.blake3(b"").hexdigest()
_HASH_THREADS = min(4, os.cpu_count() or 1)
_BIG = 1 << 20  # files from this size up are hashed on threads
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO swapped in never blocks


@dataclass(frozen=True)
class DuplicateFile:
    """One file of a group; `links` are other names of the same inode (hard links: not duplicates)."""

    entry_id: int | None  # None when found by `find_in` (nothing indexed)
    path: str
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class DuplicateGroup:
    """Files proven identical by a full-file BLAKE3."""

    full_hash: str
    size: int
    files: tuple[DuplicateFile, ...]

    @property
    def wasted(self) -> int:
        """Bytes that all but one copy take."""
        return self.size * (len(self.files) - 1)


@dataclass(frozen=True)
class Duplicates:
    """The groups found, biggest waste first, and the files left out because they changed since indexing (from disk:
    or could not be read, and the folders that could not be read, with a trailing "/")."""

    groups: tuple[DuplicateGroup, ...]
    changed: tuple[str, ...]

    @property
    def wasted(self) -> int:
        return sum(g.wasted for g in self.groups)


@dataclass(frozen=True)
class DeviceCopy:
    """One copy of a content on some device of the library (this one, or one known from its catalogue)."""

    device_id: uuid.UUID
    path: str
    entry_id: int


@dataclass(frozen=True)
class CrossDeviceGroup:
    """Files on two or more devices with one cas_id. Proven identical (`proven`) when each device hashed its copy
    whole (`full_hash`, equal); copies on the devices in `offline` are the same content by the sampled content id
    only (the catalogue of another device carries no full hash: not verified byte for byte)."""

    cas_id: str
    size: int
    copies: tuple[DeviceCopy, ...]
    full_hash: str | None = None
    """The full BLAKE3 of every copy on a device that was asked (None: none was)."""
    offline: tuple[uuid.UUID, ...] = ()
    """Devices whose copies were not hashed (out of reach): held by the sampled cas_id only."""

    @property
    def proven(self) -> bool:
        """Whether every copy was hashed whole where it lives, with one result."""
        return self.full_hash is not None and not self.offline


def across_devices(library: Library, min_size: int = 1, limit: int = 10_000) -> tuple[CrossDeviceGroup, ...]:
    """Contents held on more than one device of the library, by cas_id, biggest first (not proven: see `proven_by`).
    A device whose catalogue is kept as a file of its own (sdcore.sync.catalogue_store) is read there, by cas_number,
    its copies named by global id; rows of it the library's own tables may still hold are not read (as search)."""
    import sqlite3  # (here: `sd dupes FOLDER` loads neither SQLite nor the library, test_cli_startup)

    from sdcore.library.damage import uri
    from sdcore.library.schema import ENTRY_KINDS
    from sdcore.sync import catalogue_store
    from sdcore.sync.catalogue_file import cas_number

    file_kind = ENTRY_KINDS.index("file")
    kept = catalogue_store.kept(library)
    places = {loc.id: loc for loc in library.locations.list()}
    theirs = [id for id, loc in places.items() if loc.device_id in kept]
    files = {}  # the kept catalogues read: device -> (slot, its location ids -> the library's)
    for device, slot in kept.items():
        if catalogue_store.reader(library, device, slot) is not None:  # (forgotten meanwhile; an apply cut off: rolled back)
            files[device] = slot, {owner: here for here, owner in catalogue_store.location_ids(library, device).items()}
    least = max(int(min_size), 1)  # (written into the SQL: a number, whatever a caller sent)
    own = (  # the library's own files of each content and device, but those of a kept device
        "SELECT c.cas_id AS cas, l.device_id AS device, max(e.size) AS size FROM lib.entries e"
        " JOIN lib.locations l ON l.id = e.location_id JOIN lib.content_identities c ON c.id = e.content_id"
        f" WHERE e.kind = 'file' AND e.size >= {least} AND e.parent_id IS NOT NULL AND {_not_in('e.location_id', theirs)}"
        " GROUP BY e.content_id, l.device_id"
    )
    biggest = f"ORDER BY max(size) DESC, cas LIMIT {int(limit)}"
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as tally:
        # (one connection attaching each database in turn: the counting stays in SQLite, whatever the number of devices)
        tally.create_function("cas_number", 1, cas_number, deterministic=True)
        tally.execute("ATTACH ? AS lib", (uri(library.folder / "database.db", "mode=ro"),))
        if not files:
            wanted = f"SELECT cas, max(size) AS size FROM ({own}) GROUP BY cas HAVING count(*) > 1 {biggest}"
        else:
            tally.execute(f"CREATE TABLE held AS {own}")  # one row a content and device: count(*) counts devices
            for device, (_, owned) in files.items():
                with _attached(tally, catalogue_store.path_of(library, device)):
                    tally.execute(
                        f"INSERT INTO held SELECT printf('%016x', cas_number), '{device}', max(size) FROM k.entries"
                        f" WHERE cas_number IS NOT NULL AND kind_code = {file_kind} AND size >= {least}"
                        f" AND parent_id IS NOT NULL AND location_id IN ({','.join(map(str, owned))}) GROUP BY cas_number"
                    )
            wanted = f"SELECT cas, max(size) AS size FROM held GROUP BY cas HAVING count(*) > 1 {biggest}"
        tally.execute(f"CREATE TABLE wanted AS SELECT cas, cas_number(cas) AS number, size FROM ({wanted})")
        groups = tally.execute("SELECT cas, size FROM wanted ORDER BY rowid").fetchall()
        copies: dict[str, list[DeviceCopy]] = defaultdict(list)
        _own_copies(library, tally, theirs, copies)
        for device, (slot, owned) in files.items():
            with _attached(tally, catalogue_store.path_of(library, device)):
                rows = tally.execute(
                    "SELECT w.cas, e.id, e.location_id, p.path, e.name FROM wanted w CROSS JOIN k.entries e"
                    " ON e.cas_number = w.number JOIN k.directory_paths p ON p.entry_id = e.parent_id"
                    f" WHERE w.number IS NOT NULL AND e.cas_number IS NOT NULL AND e.kind_code = {file_kind}"
                ).fetchall()
            for cas, entry_id, location_id, parent, name in rows:
                loc = places.get(owned.get(location_id, -1))
                if loc is not None:
                    path = loc.absolute(from_db(f"{parent}/{name}" if parent else name))
                    copies[cas].append(DeviceCopy(device, path, catalogue_store.global_id(slot, entry_id)))
    out = []
    for cas, size in groups:
        found = sorted(copies[cas], key=lambda c: (str(c.device_id), c.path))
        out.append(CrossDeviceGroup(cas, size, tuple(found), None, tuple(sorted({c.device_id for c in found}))))
    return tuple(out)


def _own_copies(library: Library, tally: sqlite3.Connection, theirs: list[int], copies: dict[str, list[DeviceCopy]]) -> None:
    """The copies in the library's own tables of the contents `wanted` (`across_devices`), added to `copies`."""
    from sdcore.library.entries import paths_of  # (here: `find_in` needs no library)

    rows = tally.execute(
        "SELECT w.cas, e.id, l.device_id FROM wanted w CROSS JOIN lib.content_identities c ON c.cas_id = w.cas"
        " CROSS JOIN lib.entries e ON e.content_id = c.id JOIN lib.locations l ON l.id = e.location_id"
        f" WHERE e.kind = 'file' AND e.parent_id IS NOT NULL AND {_not_in('e.location_id', theirs)}"
    ).fetchall()
    paths = paths_of(library, [r[1] for r in rows])
    for cas, entry_id, device in rows:
        if entry_id in paths:
            copies[cas].append(DeviceCopy(uuid.UUID(device), paths[entry_id], entry_id))


def _not_in(column: str, ids: list[int]) -> str:
    return f"{column} NOT IN ({','.join(map(str, ids))})"


@contextlib.contextmanager
def _attached(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Another device's catalogue file attached to `conn` as `k`, read-only, while the block runs."""
    from sdcore.library.damage import uri

    conn.execute("ATTACH ? AS k", (uri(path, "mode=ro"),))
    try:
        yield
    finally:
        conn.execute("DETACH k")


def proven_by(
    groups: tuple[CrossDeviceGroup, ...], hashes: dict[int, str | None], offline: set[uuid.UUID]
) -> tuple[CrossDeviceGroup, ...]:
    """The groups split by the full hash of each copy (`hashes`: entry id -> its device's full BLAKE3 of it; None:
    changed since it was indexed, or unreadable: left out). A group whose copies on reachable devices differ
    becomes one group per content (those on one device only are not cross-device duplicates); copies on `offline`
    devices join each, held by the sampled cas_id only."""
    out: list[CrossDeviceGroup] = []
    for g in groups:
        away = [c for c in g.copies if c.device_id in offline]
        classes: dict[str, list[DeviceCopy]] = defaultdict(list)
        for c in g.copies:
            digest = hashes.get(c.entry_id) if c.device_id not in offline else None
            if digest is not None:
                classes[digest].append(c)
        if away and not classes:
            classes[""] = []
        for digest, same in classes.items():
            copies = sorted([*same, *away], key=lambda c: (str(c.device_id), c.path))
            if len({c.device_id for c in copies}) > 1:
                unproven = tuple(sorted({c.device_id for c in away}))
                out.append(CrossDeviceGroup(g.cas_id, g.size, tuple(copies), digest or None, unproven))
    return tuple(out)


MAX_HASHED = 1000
"""Files one `full_hashes` call hashes (a device asks for more in several)."""


def full_hashes(library: Library, entry_ids: list[int]) -> list[str | None]:
    """The full BLAKE3 of each of these entries, read whole here (blocking: run it in a thread); None for one that is
    not a file of this device's own locations in the library (another device's, from its catalogue: never read
    through here), that changed since it was indexed, or that cannot be read. Kept and reused as `find` does."""
    if len(entry_ids) > MAX_HASHED:
        raise ValueError(f"at most {MAX_HASHED} files at once")
    locations = {loc.id: loc for loc in library.locations.list() if loc.device_id == library.locations.device_id}
    wanted = [i for i in entry_ids if type(i) is int]
    if not locations or not wanted:
        return [None] * len(entry_ids)
    marks = ",".join("?" * len(wanted))
    rows = library.read().execute(
        "SELECT e.id, e.location_id, p.path, e.name, e.size, e.mtime, e.inode, h.size, h.inode, h.ctime_ns, h.full_hash"
        " FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id LEFT JOIN file_hashes h ON h.entry_id = e.id"
        f" WHERE e.id IN ({marks}) AND e.kind = 'file'",
        wanted,
    ).fetchall()
    candidates = []
    for entry_id, location_id, parent, name, size, mtime, inode, *cache in rows:
        if location_id in locations:
            rel = from_db(f"{parent}/{name}" if parent else name)
            held = tuple(cache) if cache[0] is not None else None
            candidates.append(_Candidate(entry_id, locations[location_id].absolute(rel), size, mtime, inode, held))  # type: ignore[arg-type]
    found: dict[int, str] = {}
    fresh: list[tuple[int, int, int, int, str]] = []
    for files in _distinct_files(candidates, []).values():
        first = files[0]
        digest = first.cached or _hash_checked(first)
        if digest is None:
            continue
        if first.cached is None:
            fresh.append((first.entry_id, *first.stamp, digest))
        found.update((f.entry_id, digest) for f in files)
    _keep_hashes(library, fresh)
    return [found.get(i) for i in entry_ids]


def _keep_hashes(library: Library, fresh: list[tuple[int, int, int, int, str]]) -> None:
    """Remember full hashes (entry id, size, inode, ctime_ns, hash) while the entries are still there."""
    if fresh:
        with library.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO file_hashes (entry_id, size, inode, ctime_ns, full_hash)"
                " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM entries WHERE id = ?)",
                [(*row, row[0]) for row in fresh],
            )


@dataclass
class _Candidate:
    entry_id: int
    path: str
    size: int
    mtime: float | None
    inode: int | None
    cache: tuple[int, int, int, str] | None = None  # (size, inode, ctime_ns, full hash) from an earlier run
    key: tuple[int, int] = (0, 0)  # (st_dev, st_ino) once checked
    stamp: tuple[int, int, int] = (0, 0, 0)  # (size, inode, ctime_ns) as checked
    cached: str | None = None  # the full hash, when the cache still holds


def find(
    library: Library, location: int | str | None = None, min_size: int = 1, include_empty: bool = False
) -> Duplicates:
    """Groups of identical files in the library's locations on this device (blocking: run it in a thread).

    Candidates share a cas_id (or, where hashing has not run, a size); each is checked against the disk (a file whose size or mtime changed
    since it was indexed is left out and listed in `changed`), hard links count once, and a full
    BLAKE3 settles identity. Full hashes are kept and reused while a file's size, mtime and inode hold.
    """
    locations = {
        loc.id: loc for loc in library.locations.list() if loc.device_id == library.locations.device_id
    }
    if location is not None:
        only = library.locations.get(location)
        locations = {only.id: only} if only.id in locations else {}
    if not locations:
        return Duplicates((), ())
    changed: list[str] = []
    groups: list[DuplicateGroup] = []
    fresh: list[tuple[int, int, int, int, str]] = []
    with ThreadPoolExecutor(_HASH_THREADS) as pool:
        for candidates in _candidate_groups(library, locations, max(min_size, 1)):
            groups.extend(_confirm(candidates, changed, fresh, pool))
    if include_empty and min_size <= 1:
        groups.extend(_empty_files(library, locations, changed))
    _keep_hashes(library, fresh)
    groups.sort(key=lambda g: (-g.wasted, -g.size, g.files[0].path))
    return Duplicates(tuple(groups), tuple(changed))


def copies_of(library: Library, entry_id: int, limit: int = 20) -> list[str]:
    """The other indexed files with this entry's content (same cas_id; `find` confirms by full hash): the library's own
    and those in other devices' kept catalogues (read there by cas_number, as `across_devices`), for an entry of either;
    this device's by path, first, another device's as "NAME:path"."""
    from sdcore.library.entries import paths_of
    from sdcore.sync import catalogue_store
    from sdcore.sync.kept_entries import cas_id_of, device_name, with_content

    found = cas_id_of(library, entry_id)
    if found is None or found[1] is None:
        return []
    cas_id, here = found[1], str(library.context.device_id)
    kept = catalogue_store.kept(library)
    theirs = [loc.id for loc in library.locations.list() if loc.device_id in kept]  # (rows of theirs left: not read)
    device_of = dict(
        library.read().execute(
            "SELECT e.id, l.device_id FROM content_identities c JOIN entries e ON e.content_id = c.id"
            f" JOIN locations l ON l.id = e.location_id WHERE c.cas_id = ? AND e.id != ? AND {_not_in('e.location_id', theirs)}"
            " LIMIT ?",
            (cas_id, entry_id, limit),
        )
    )
    by_slot = {slot: str(device) for device, slot in kept.items()}
    for other, _ in with_content(library, [cas_id]):
        if other != entry_id:
            device_of[other] = by_slot[other >> catalogue_store.SLOT_BITS]
    names = {device: device_name(library, uuid.UUID(device)) for device in set(device_of.values()) - {here}}
    shown = [
        (device_of[i] != here, path if device_of[i] == here else f"{names[device_of[i]]}:{path}")
        for i, path in paths_of(library, list(device_of)).items()
    ]
    return [text for _, text in sorted(shown)[:limit]]


def _candidate_groups(library: Library, locations: dict[int, Location], min_size: int) -> Iterator[list[_Candidate]]:
    """Files of these locations that may be identical, one list per cas_id; where some file of a size has no
    cas_id yet (a shallow location, or hashing has not reached it), every file of that size is one list."""
    marks = ",".join("?" * len(locations))
    conn = library.read()
    unhashed = conn.execute(
        f"SELECT 1 FROM entries WHERE content_id IS NULL AND kind = 'file' AND size >= ? AND location_id IN ({marks})"
        " LIMIT 1",
        [min_size, *locations],
    ).fetchone()
    columns = "e.id, e.location_id, p.path, e.name, e.size, e.mtime, e.inode, h.size, h.inode, h.ctime_ns, h.full_hash"
    paths = "JOIN directory_paths p ON p.entry_id = e.parent_id LEFT JOIN file_hashes h ON h.entry_id = e.id"
    if unhashed is None:  # every file has its cas_id: the content index finds the candidates
        rows = conn.execute(  # CROSS JOIN keeps this order: shared cas_ids first, then only their entries
            f"SELECT g.content_id, {columns} FROM (SELECT content_id FROM entries WHERE content_id IS NOT NULL"
            " GROUP BY content_id HAVING count(*) > 1) g CROSS JOIN entries e ON e.content_id = g.content_id"
            f" {paths} WHERE e.kind = 'file' AND e.size >= ? AND +e.location_id IN ({marks}) ORDER BY g.content_id",
            [min_size, *locations],
        )
    else:
        rows = conn.execute(
            "WITH f AS (SELECT id, size, content_id FROM entries"
            f"  WHERE kind = 'file' AND size >= ? AND location_id IN ({marks})),"
            " unhashed AS (SELECT DISTINCT size FROM f WHERE content_id IS NULL),"
            " keyed AS (SELECT id, CASE WHEN size IN unhashed THEN -size ELSE content_id END AS grp FROM f),"
            " wanted AS (SELECT grp FROM keyed GROUP BY grp HAVING count(*) > 1)"
            f" SELECT k.grp, {columns} FROM keyed k CROSS JOIN entries e ON e.id = k.id {paths}"
            " WHERE k.grp IN wanted ORDER BY k.grp",
            [min_size, *locations],
        )
    current: list[_Candidate] = []
    current_key = None
    for key, entry_id, location_id, parent, name, size, mtime, inode, *cache in rows:
        if key != current_key:
            if len(current) > 1:
                yield current
            current, current_key = [], key
        rel = from_db(f"{parent}/{name}" if parent else name)
        held = tuple(cache) if cache[0] is not None else None
        current.append(_Candidate(entry_id, locations[location_id].absolute(rel), size, mtime, inode, held))  # type: ignore[arg-type]
    if len(current) > 1:
        yield current


def _confirm(
    candidates: list[_Candidate], changed: list[str], fresh: list[tuple[int, int, int, int, str]],
    pool: ThreadPoolExecutor,
) -> list[DuplicateGroup]:
    by_inode = _distinct_files(candidates, changed)
    if len(by_inode) < 2:
        return []
    firsts = [files[0] for files in by_inode.values()]
    todo = [c for c in firsts if c.cached is None]
    if todo and todo[0].size >= _BIG:  # big files on threads (BLAKE3 and reads let go of the GIL); small ones here
        hashes = dict(zip((c.entry_id for c in todo), pool.map(_hash_checked, todo), strict=True))
    else:
        hashes = {c.entry_id: _hash_checked(c) for c in todo}
    by_hash: dict[str, list[list[_Candidate]]] = defaultdict(list)
    for files in by_inode.values():
        first = files[0]
        digest = first.cached or hashes.get(first.entry_id)
        if digest is None:
            changed.append(first.path)  # vanished or unreadable between the check and the hash
            continue
        if first.cached is None:
            fresh.append((first.entry_id, *first.stamp, digest))
        by_hash[digest].append(files)
    return [
        DuplicateGroup(
            digest, same[0][0].size,
            tuple(DuplicateFile(f[0].entry_id, f[0].path, tuple(x.path for x in f[1:])) for f in same),
        )
        for digest, same in by_hash.items()
        if len(same) > 1
    ]


def _distinct_files(candidates: list[_Candidate], changed: list[str]) -> dict[tuple[int, int], list[_Candidate]]:
    """Candidates still as indexed, by (device, inode): hard links to one inode are one file."""
    by_inode: dict[tuple[int, int], list[_Candidate]] = {}
    for c in candidates:
        try:
            st = os.lstat(c.path)
        except OSError:
            changed.append(c.path)
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size != c.size or (c.mtime is not None and st.st_mtime != c.mtime):
            changed.append(c.path)
            continue
        c.key = (st.st_dev, st.st_ino)
        c.stamp = (st.st_size, st.st_ino, st.st_ctime_ns)
        if c.cache is not None and c.cache[:3] == c.stamp:
            c.cached = c.cache[3]  # unchanged since it was last hashed: any write would have moved its ctime
        by_inode.setdefault(c.key, []).append(c)
    return by_inode


def _hash_checked(c: _Candidate) -> str | None:
    """The full BLAKE3 of a candidate, read from a descriptor of the very file `_distinct_files` checked (its inode and
    size): one swapped in since (a symlink out of the location, a FIFO that would never end a read) is not read."""
    try:
        fd = os.open(c.path, _FILE)
    except OSError:
        return None
    st = None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != c.key or st.st_size != c.size:
            return None
        return _hash_exactly(fd, c.size)
    except OSError:
        return None
    finally:
        held.close(fd, st)


def _empty_files(library: Library, locations: dict[int, Location], changed: list[str]) -> list[DuplicateGroup]:
    marks = ",".join("?" * len(locations))
    rows = library.read().execute(
        "SELECT e.id, e.location_id, p.path, e.name, e.mtime, e.inode FROM entries e"
        " JOIN directory_paths p ON p.entry_id = e.parent_id"
        f" WHERE e.kind = 'file' AND e.size = 0 AND e.location_id IN ({marks}) ORDER BY e.id",
        [*locations],
    )
    candidates = [
        _Candidate(entry_id, locations[loc].absolute(from_db(f"{parent}/{name}" if parent else name)), 0, mtime, inode)
        for entry_id, loc, parent, name, mtime, inode in rows
    ]
    by_inode = _distinct_files(candidates, changed)
    if len(by_inode) < 2:
        return []
    files = tuple(DuplicateFile(f[0].entry_id, f[0].path, tuple(x.path for x in f[1:])) for f in by_inode.values())
    return [DuplicateGroup(EMPTY_HASH, 0, files)]


# -- without an index --------------------------------------------------------------------------------

_HEAD = 4096  # bytes compared first, before a file is read whole
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def find_in(paths: list[str], min_size: int = 1, include_empty: bool = False) -> Duplicates:
    """Groups of identical files under folders that need not be indexed: read from disk, nothing written.

    Files are grouped by size, then by their first 4 KiB (the whole of a smaller file), then proven by a full
    BLAKE3; hard links count once, symlinks below the paths given are not followed. A file of a size no other file
    has is only stat'ed; one whose start no other file of its size shares is read no further.
    """
    missing = [top for top in paths if not os.path.exists(top)]
    if missing:
        raise NotFound(f"{display(missing[0])} does not exist")
    # a folder named through a symlink is searched, as `find -H` does; links inside it are never followed
    paths = [os.path.realpath(top) if os.path.islink(top) else top for top in paths]
    changed: list[str] = []  # what could not be read: files, and folders (with a trailing "/")
    folders: list[str] = []  # each folder's path with a trailing "/"
    files: list[_Found] = []  # in the order they were read: folder by folder
    sizes: dict[int, int] = {}  # how many files have each size
    for top in paths:
        _walk(os.path.abspath(top), folders, files, sizes, changed)
    least = max(min_size, 1)
    candidates = [f for f in files if f[2] >= least and sizes[f[2]] > 1]
    groups: list[DuplicateGroup] = []
    for (size, _), same in _same_heads(folders, candidates, changed).items():
        groups.extend(_proven(size, [folders[f[0]] + f[1] for f in same], changed))
    if include_empty:
        groups.extend(_proven(0, [folders[f[0]] + f[1] for f in files if f[2] == 0], changed))
    groups.sort(key=lambda g: (-g.wasted, -g.size, g.files[0].path))
    return Duplicates(tuple(groups), tuple(changed))


_Found = tuple[int, str, int]  # (folder index, name, size) of a regular file


def _walk(top: str, folders: list[str], files: list[_Found], sizes: dict[int, int], unread: list[str]) -> None:
    """Add the regular files under `top` (itself, if it is one) to `files` and count their sizes; a folder that cannot
    be read (no permission, a path past PATH_MAX) goes to `unread`: the report says part of the tree was not seen. Each folder is opened once (never through a symlink) and its files are stat'ed by name
    relative to it: the kernel does not walk each file's whole path again."""
    try:
        st = os.lstat(top)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        folders.append(os.path.join(os.path.dirname(top), ""))
        files.append((len(folders) - 1, os.path.basename(top), st.st_size))
        sizes[st.st_size] = sizes.get(st.st_size, 0) + 1
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [len(folders)]
    folders.append(os.path.join(top, ""))
    while stack:
        index = stack.pop()
        folder = folders[index]
        try:
            fd = os.open(folder, _FOLDER)
        except OSError:
            unread.append(folder)
            continue
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(len(folders))
                            folders.append(folder + entry.name + "/")
                        elif entry.is_file(follow_symlinks=False):
                            size = entry.stat(follow_symlinks=False).st_size  # fstatat(fd, name)
                            files.append((index, entry.name, size))
                            sizes[size] = sizes.get(size, 0) + 1
                    except OSError:
                        continue  # vanished since the folder was read
        except OSError:
            unread.append(folder)
        finally:
            os.close(fd)


def _same_heads(folders: list[str], candidates: list[_Found], changed: list[str]) -> dict[tuple[int, int], list[_Found]]:
    """The candidates that share their size and a hash of their first 4 KiB (of all of a smaller file) with
    another, by (size, that hash). Read folder by folder, each opened once, so each file is opened by name
    relative to it; one that cannot be read, or is no longer its size, goes to `changed`. The hash only sorts
    files into candidates: the full BLAKE3 after it is the proof."""
    firsts: dict[tuple[int, int], _Found] = {}
    same: dict[tuple[int, int], list[_Found]] = {}
    folder, dir_fd = -1, -1
    try:
        for found in candidates:
            index, name, size = found
            if index != folder:
                if dir_fd >= 0:
                    os.close(dir_fd)
                folder, dir_fd = index, -1
                try:
                    dir_fd = os.open(folders[index], _FOLDER)
                except OSError:
                    pass
            data = b""
            if dir_fd >= 0:
                try:
                    fd = os.open(name, _FILE, dir_fd=dir_fd)
                    try:
                        data = os.read(fd, size + 1 if size <= _HEAD else _HEAD)  # a small file that grew is seen
                    finally:
                        held.close(fd)
                except OSError:
                    pass
            if len(data) != min(size, _HEAD):
                changed.append(folders[index] + name)
                continue
            key = (size, xxh3_64_intdigest(data))
            first = firsts.setdefault(key, found)
            if first is not found:
                twins = same.get(key)
                if twins is None:
                    same[key] = [first, found]
                else:
                    twins.append(found)
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)
    return same


def _proven(size: int, paths: list[str], changed: list[str]) -> list[DuplicateGroup]:
    """The groups among `paths` (files of `size` that may be identical) that a full BLAKE3 proves identical. Each
    name is opened now: the names of one inode (hard links, a folder reached twice) are one file, hashed once."""
    by_inode: dict[tuple[int, int], list[str]] = {}
    digests: dict[tuple[int, int], str] = {}
    for path in dict.fromkeys(paths):  # a folder given twice lists its files once
        inode = _identify(path, size, digests)
        if inode is None:
            changed.append(path)
        else:
            by_inode.setdefault(inode, []).append(path)
    by_hash: dict[str, list[list[str]]] = defaultdict(list)
    for inode, names in by_inode.items():
        by_hash[digests[inode]].append(names)
    return [DuplicateGroup(d, size, tuple(_file(n) for n in twins)) for d, twins in by_hash.items() if len(twins) > 1]


def _identify(path: str, size: int, digests: dict[tuple[int, int], str]) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at `path`, its full BLAKE3 put in `digests` (once an inode); None when it is no
    longer a regular file of exactly `size` bytes or cannot be read whole."""
    try:
        fd = os.open(path, _FILE)
    except OSError:
        return None
    st = None
    try:
        st = os.fstat(fd)
        inode = (st.st_dev, st.st_ino)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        if inode not in digests:
            digest = _hash_exactly(fd, size)
            if digest is None:
                return None
            digests[inode] = digest
        return inode
    except OSError:
        return None
    finally:
        held.close(fd, st)


def _hash_exactly(fd: int, size: int) -> str | None:
    """The BLAKE3 of an open file's `size` bytes; None when it holds fewer (cut short since) or more (grown since, or
    a /proc file that says 0 bytes). A small file in one read, big ones hashed on threads."""
    data = os.read(fd, size + 1) if size < _BIG else b""
    if len(data) > size:
        return None
    hasher = blake3.blake3(data) if data else blake3.blake3(max_threads=blake3.blake3.AUTO)
    left = size - len(data)
    if not left:
        return hasher.hexdigest()
    while left:
        chunk = os.read(fd, min(left, FULL_HASH_CHUNK))
        if not chunk:
            return None
        hasher.update(chunk)
        left -= len(chunk)
    return None if os.read(fd, 1) else hasher.hexdigest()


def _file(names: list[str]) -> DuplicateFile:
    names = sorted(names)  # the same report whatever order the folders were read in
    return DuplicateFile(None, names[0], tuple(names[1:]))
