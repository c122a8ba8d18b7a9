"""The indexer: a resumable job that walks a location and keeps the library's entries in step with the disk.

Phases: discovery (read directories, batch by batch) feeding processing (diff each directory with
the database by name, inode, size and mtime: new, changed, moved, deleted), then cleanup (entries
that vanished and were not found moved), aggregation (directory sizes and file counts) and, in
content and deep mode, content (cas_id and object kind; a first load's walker reads most files' as it lists them,
`HASH_WHILE_WALKING`: the content phase reads what it left). Every batch commits together with the
job's cursor (the `scan_queue` rows and the job state), so a killed index resumes exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sdcore.errors import NotFound
from sdcore.events import EntriesChanged, LibraryChanged, LocationScanState
from sdcore.index.fts import pause_fts, resume_fts
from sdcore.index.hasher import Identified, Request, identify_all, start_hasher
from sdcore.index.walker import (
    EXTENSION,
    INODE,
    KIND,
    LINK,
    MODE,
    MTIME,
    NAME,
    OBJECT_KIND,
    SIZE,
    Found,
    IgnoreRules,
    Listing,
    ProcessWalker,
    Walked,
    Walker,
    found_of,
)
from sdcore.jobs.job import Job, JobCanceled, JobContext, JobPaused
from sdcore.library import volume_locations
from sdcore.library.bulk import drop_secondary_indexes, make_secondary_indexes
from sdcore.library.damage import DiskFull
from sdcore.library.library import Library
from sdcore.library.locations import Location
from sdcore.library.schema import kind_code_sql, mode_code_sql, next_entry_id, object_code_sql
from sdcore.sdpath import display, from_db, to_db
from sdcore.sync.catalogue import refuse_catalogue

BATCH_ENTRIES = 5000  # entries per discovery transaction
KNOWN_FOLDERS = 200_000  # a rescan reads what it knows of up to this many folders at once (~60 MB), not one by one
# Files hashed (by the children) while the last batch is written: about CONTENT_BATCH_SECONDS' worth, so a fast disk
# makes few write transactions (~10 ms each at any size) and a slow one still moves the progress bar.
CONTENT_BATCH_SECONDS = 1.0
CONTENT_BATCH_MIN, CONTENT_BATCH_MAX = 100, 10_000

HASH_WHILE_WALKING = 6.0
"""A content index's first load: the walker reads the files' content identities as it lists them (their rows written
once, with their content id: no second pass over the database and the paths) while that makes the walk at most this
many times longer (and a second). Past that (a slow disk: every file a seek) the content phase reads the rest, after
the location is searchable, so search waits no longer than that for a content index. 0: the content phase reads all."""

# a row (id, location, parent, *Found): its kinds stored as their codes, `hidden` (?12) read from its name
_COLUMNS = "id, location_id, parent_id, name, extension, kind_code, object_code, size, inode, mtime, mode_code, link_target"
_VALUES = (
    f"?1, ?2, ?3, ?4, ?5, {kind_code_sql('?6')}, {object_code_sql('?7')}, ?8, ?9, ?10,"
    f" {mode_code_sql('?11', kind_code_sql('?6'))}, ?13"
)
_INSERT = f"INSERT INTO entries ({_COLUMNS}) VALUES ({_VALUES})"
_INSERT_IDENTIFIED = (  # rows found with their cas_id last (`hasher.identify_listing`), their identities written first
    f"INSERT INTO entries ({_COLUMNS}, content_id)"
    f" VALUES ({_VALUES}, (SELECT id FROM content_identities WHERE cas_id = ?14))"
)


@dataclass
class IndexJob(Job):
    """Index a location (or one directory of it, with scope 'current')."""

    kind = "index"

    location: int
    scope: str = "recursive"
    subpaths: list[str] = field(default_factory=list)  # directories to start from ('' or none: the root)
    keep_orphans: bool = False  # a refresh pass that more passes follow: vanished entries may yet turn up
    confirm_drop: bool = False  # a disk's location: drop what is not there even when it is most of it
    announce: bool = True  # publish EntriesChanged for what changed (not when an operation told it already)
    phase: str = "start"
    first_load: bool = False
    dirs: int = 0
    found: int = 0
    added: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    errors: int = 0
    hashed: int = 0
    to_hash: int = 0
    content_cursor: int = 0
    vanished: int = 0  # files gone from where the content phase looked (moved or deleted since the walk)
    rewalked: bool = False
    moved_dirs: list[str] = field(default_factory=list)  # a one-level refresh: folders it found moved (to read whole)
    media_cursor: int = 0
    described: int = 0
    _next_id: int = 0
    _next_folder_id: int = 0

    def location_id(self) -> int | None:
        return self.location

    def describe(self) -> str:
        return f"index location {self.location}" + (f" ({', '.join(self.subpaths)})" if self.subpaths else "")

    def summary(self) -> dict[str, int]:
        return {
            "dirs": self.dirs, "found": self.found, "added": self.added, "changed": self.changed,
            "moved": self.moved, "removed": self.removed, "errors": self.errors, "hashed": self.hashed,
            "described": self.described,
        }

    async def run(self, ctx: JobContext) -> dict[str, int]:
        library = ctx.library
        loc = library.locations.get(self.location)
        refuse_catalogue(library, loc)
        out = volume_locations.offline(library, loc) if loc.volume_id else None
        if out is not None:  # its mount point may be there, empty: indexing it would forget the disk's files
            raise volume_locations.VolumeOffline(
                f"location {loc.name!r} is on {out.label}, which is not plugged in ({out.describe()}); plug the disk in"
            )
        if not os.path.isdir(loc.path):
            library.locations.set_state(loc.id, "failed")
            raise NotFound(f"location {loc.name!r}: {display(loc.path)} is not there (unmounted or deleted?)")
        if self._rescans_a_disk(loc):  # another disk taken for it would lose the real one's entries and tags
            await asyncio.to_thread(volume_locations.refuse_mass_drop, library, loc)
        elif loc.undecided and self.phase == "start" and not (self.confirm_drop or self.keep_orphans):  # a folder of it:
            if await asyncio.to_thread(volume_locations.still_undecided, library, loc):  # what it drops is ours too
                raise volume_locations.RescanWouldDrop(loc.decision())
        undecided = loc.undecided
        self._scan_state(library, loc, "indexing")
        try:
            while True:
                if self.phase == "start":
                    await asyncio.to_thread(self._start, ctx, loc)
                while self.phase == "discovery":
                    await asyncio.to_thread(self._discover, ctx, loc)
                    ctx.stop_point()
                if self.phase == "cleanup":
                    await asyncio.to_thread(self._in_tx, ctx, self._cleanup, loc)
                if self.phase == "aggregation":
                    await asyncio.to_thread(self._in_tx, ctx, self._aggregate, loc)
                if self.phase == "search":
                    ctx.progress(self.found, self.found, "search index", "entries")
                    await asyncio.to_thread(self._in_tx, ctx, self._build_search, loc)
                if self.phase == "indexes":
                    ctx.progress(self.found, self.found, "indexes", "entries")
                    await asyncio.to_thread(self._in_tx, ctx, self._make_indexes, loc)
                while self.phase == "content":
                    await asyncio.to_thread(self._content, ctx, loc)
                    ctx.stop_point()
                while self.phase == "media":
                    await asyncio.to_thread(self._media_batch, ctx, loc)
                    ctx.stop_point()
                if self.phase != "start":  # else files vanished under the content phase: see `_write_content`
                    break
        except JobPaused:
            self._scan_state(library, loc, "paused")
            raise
        except JobCanceled:
            self._scan_state(library, loc, "indexed" if loc.last_scanned else "pending")
            raise
        except DiskFull:  # the job pauses; freeing space and indexing again carries on
            with contextlib.suppress(DiskFull):
                self._scan_state(library, loc, "paused")
            raise
        except BaseException:
            self._scan_state(library, loc, "failed")
            raise
        self._scan_state(library, loc, "indexed", scanned=True)
        if undecided:  # decided: its folders are watched again
            library.context.bus.publish(LibraryChanged(library.id, volume_locations.NEEDS_DECISION))
        return self.summary()

    def _rescans_a_disk(self, loc: Location) -> bool:
        """Whether this is a rescan of a whole location on a disk, not confirmed to drop what is not there."""
        return bool(
            loc.volume_id and loc.last_scanned is not None and self.phase == "start" and self.scope == "recursive"
            and self.subpaths in ([], [""]) and not self.keep_orphans and not self.confirm_drop
        )  # fmt: skip

    async def cleanup(self, ctx: JobContext) -> None:
        """Canceled: leave the location consistent with what was found so far (searchable, sizes summed)."""

        def finish() -> None:
            with ctx.library.write() as db:
                db.execute("DELETE FROM scan_queue WHERE job_id = ?", (ctx.job_id,))
                make_secondary_indexes(db)  # a canceled first load dropped them
                resume_fts(db, self.location)
                self._aggregate(db, ctx.library.locations.get(self.location))

        await asyncio.to_thread(finish)

    async def forget_queue(self, ctx: JobContext) -> None:
        def forget() -> None:
            with ctx.library.write() as db:
                db.execute("DELETE FROM scan_queue WHERE job_id = ?", (ctx.job_id,))

        await asyncio.to_thread(forget)

    # -- phases ------------------------------------------------------------------------------

    def _in_tx(self, ctx: JobContext, step: Any, loc: Location) -> None:
        with ctx.library.write() as db:
            step(db, loc)
            ctx.save(db)

    def _start(self, ctx: JobContext, loc: Location) -> None:
        with ctx.library.write() as db:
            starts = [_nearest_indexed(db, loc, rel) for rel in self.subpaths or [""]]
            self.subpaths = sorted({from_db(rel) for _, rel in starts})
            count = db.execute("SELECT COUNT(*) FROM entries WHERE location_id = ?", (loc.id,)).fetchone()[0]
            # A bulk load: only ever a location's first index, never a refresh (keep_orphans) beside it.
            self.first_load = count <= 1 and loc.last_scanned is None and not self.keep_orphans
            if self.first_load:
                pause_fts(db, loc.id)  # the search index is built in one pass at the end
            else:
                make_secondary_indexes(db)  # in case a first load elsewhere was cut off
            if self.scope == "recursive" and self.subpaths == [""]:  # the whole location: files that failed, again
                db.execute(
                    "UPDATE entries SET error = NULL WHERE +location_id = ? AND kind = 'file' AND error IS NOT NULL",
                    (loc.id,),
                )
            db.executemany(
                "INSERT OR IGNORE INTO scan_queue (job_id, entry_id) VALUES (?, ?)", [(ctx.job_id, i) for i, _ in starts]
            )
            self.phase = "discovery"
            ctx.progress(0, 0, "discovery", "entries")
            ctx.save(db)

    def _discover(self, ctx: JobContext, loc: Location) -> None:
        """Walk on a background thread while this one writes, a transaction per few thousand entries."""
        library = ctx.library
        with library.write() as db:
            ids = {
                rel: entry_id
                for entry_id, rel in db.execute(
                    "SELECT q.entry_id, p.path FROM scan_queue q JOIN directory_paths p ON p.entry_id = q.entry_id"
                    " WHERE q.job_id = ?",
                    (ctx.job_id,),
                )
            }
            db.execute(
                "DELETE FROM scan_queue WHERE job_id = ? AND entry_id NOT IN (SELECT entry_id FROM directory_paths)",
                (ctx.job_id,),
            )
            if self.first_load:  # a first bulk load writes faster without secondary indexes; made again after
                drop_secondary_indexes(db)
            # A rescan of the whole location reads what it knows of its folders in one query, not one per folder.
            known = _Folders.load(db, loc.id) if self.scope == "recursive" and not self.first_load and self.subpaths == [""] else None
        recursive = self.scope == "recursive"
        rules = IgnoreRules(loc.ignore)
        walker: ProcessWalker | Walker
        (root_inode,) = ctx.library.read().execute("SELECT inode FROM entries WHERE id = ?", (loc.root_id,)).fetchone() or (None,)
        # A first load of a whole tree is read by a child process, so the disk and SQLite each get a core (in content
        # mode the child reads each file's content id as it lists its folder). A rescan reads in this process: most of
        # its listings are as they were, and cost their reading and nothing more.
        try:
            reading = HASH_WHILE_WALKING if self.first_load and loc.mode != "shallow" else 0.0
            walker = (
                ProcessWalker(loc.path, list(ids), rules, root_inode=root_inode, reading=reading)
                if recursive and self.first_load
                else Walker(loc.path, list(ids), rules, recursive, root_inode=root_inode)
            )  # fmt: skip
        except OSError:
            walker = Walker(loc.path, list(ids), rules, recursive, root_inode=root_inode)
        try:
            batch: list[Walked] = []
            size = 0
            with _paused_if_stopping(ctx):
                for item in walker:
                    batch.append(item)
                    size += len(item[1]) if isinstance(item[1], list) else 1
                    if size >= BATCH_ENTRIES:
                        self._write_batch(ctx, loc, batch, ids, known)
                        batch, size = [], 0
                        if ctx.should_stop:
                            return
                self._write_batch(ctx, loc, batch, ids, known, last=True)
        finally:
            walker.close()

    def _write_batch(
        self, ctx: JobContext, loc: Location, batch: list[Walked], ids: dict[str, int], known: _Folders | None = None,
        last: bool = False,
    ) -> None:
        library = ctx.library
        changed_dirs: list[tuple[str, tuple[str, ...]]] = []
        with library.write() as db:
            # The one writer holds the lock: ids are handed out here, so every insert can be batched.
            self._next_id = next_entry_id(db)
            # The batch's new folders take the ids before its files', so their rows fill pages of their own: a folder's
            # row grows once written (its listing's fingerprint, its totals) and a full page that grows splits in two
            # half-empty ones; the files' pages stay full (a first index 3-4% smaller).
            self._next_folder_id = self._next_id
            self._next_id += sum(_folders(found) for _, found, _ in batch)
            listed = [] if known is not None else [ids[rel] for rel, found, _ in batch if rel in ids and isinstance(found, list)]
            writes = _BatchWrites(db, listed, known)
            done: list[int] = []
            for rel_db, found, fingerprint in batch:
                dir_id = ids.pop(rel_db, None)
                if dir_id is None:
                    continue
                if isinstance(found, OSError):
                    self.errors += 1
                    writes.unreadable.append((found.strerror or str(found), dir_id))
                else:
                    names = self._apply_dir(db, ctx, loc, dir_id, rel_db, found, fingerprint, ids, writes)
                    if names:
                        changed_dirs.append((loc.absolute(from_db(rel_db)), names))
                    self.found += len(found)
                done.append(dir_id)
                self.dirs += 1
            self.hashed += writes.flush(db, ctx.job_id, loc.id if self.first_load else None)
            db.execute("DELETE FROM scan_queue WHERE job_id = ? AND entry_id IN (SELECT value FROM json_each(?))",
                       (ctx.job_id, json.dumps(done)))
            if last:
                db.execute("DELETE FROM scan_queue WHERE job_id = ?", (ctx.job_id,))
                if not self.first_load:  # a first load's are made once its entries are searchable (`_make_indexes`)
                    make_secondary_indexes(db)
                self.phase = "cleanup"
            ctx.progress(self.found, 0, f"discovery: {self.dirs:,} folders", "entries")
            ctx.save(db)
        context = library.context
        for directory, names in changed_dirs if self.announce else ():
            context.bus.publish(EntriesChanged(context.device_id, directory, names, library.id))

    def _apply_dir(
        self, db: sqlite3.Connection, ctx: JobContext, loc: Location, dir_id: int, rel_db: str, listed: Listing | list[Found],
        fingerprint: int, ids: dict[str, int], writes: _BatchWrites,
    ) -> tuple[str, ...]:
        """Diff one directory with the database and write the difference; returns the names that changed.

        Every subdirectory to scan next is queued (`scan_queue`, and `ids` for the walker's results).
        """
        recursive = self.scope == "recursive"
        prefix = rel_db + "/" if rel_db else ""
        queued = writes.queued

        def queue_dir(entry_id: int, name: str) -> None:
            if recursive:
                queued.append(entry_id)
                ids[prefix + name] = entry_id

        # A first load writes a directory without a diff, unless something else read it first (a refresh by
        # the watcher or a tag while the load runs: it left a fingerprint); that one is diffed as usual.
        known = writes.fingerprint(db, dir_id)
        if known == fingerprint:
            if recursive:  # the listing is as it was: only its subdirectories need a look
                for name, entry_id in writes.subdirs(db, dir_id):
                    queue_dir(entry_id, name)
            return ()
        found = found_of(listed) if isinstance(listed, Listing) else listed
        if self.first_load and known is None:  # every entry is new: no diff
            self._add_new(loc, dir_id, prefix, found, fingerprint, queue_dir, writes)
            return ()
        existing = {
            row[0]: row
            for row in db.execute(
                "SELECT name, kind, size, inode, mtime, mode, link_target, id FROM entries WHERE parent_id = ?", (dir_id,)
            )
        }
        new: list[Found] = []
        touched: list[str] = []
        for f in found:
            row = existing.pop(f[NAME], None) if existing else None
            if row is None:
                new.append(f)
                continue
            _, kind, size, inode, mtime, mode, link, entry_id = row
            if kind != f[KIND] or (kind == "dir" and inode != f[INODE]):
                existing[f[NAME]] = row  # replaced by another object: the old one is missing, this one is new
                new.append(f)
                continue
            if kind == "dir":
                if (mtime, mode) != (f[MTIME], f[MODE]):
                    db.execute(
                        f"UPDATE entries SET mtime = ?1, mode_code = {mode_code_sql('?2', 'kind_code')} WHERE id = ?3",
                        (f[MTIME], f[MODE], entry_id),
                    )
                queue_dir(entry_id, f[NAME])
            elif (size, inode, mtime, mode, link) != (f[SIZE], f[INODE], f[MTIME], f[MODE], f[LINK]):
                db.execute(
                    f"UPDATE entries SET size = ?1, mtime = ?2, inode = ?3, mode_code = {mode_code_sql('?4', 'kind_code')},"
                    " link_target = ?5, error = NULL, content_id = CASE WHEN ?6 THEN content_id END WHERE id = ?7",
                    (f[SIZE], f[MTIME], f[INODE], f[MODE], f[LINK], (size, mtime, inode) == (f[SIZE], f[MTIME], f[INODE]), entry_id),
                )
                self.changed += 1
                touched.append(f[NAME])
        for name, row in existing.items():
            _orphan(db, loc.id, row[-1], row[1] == "dir")
            touched.append(name)
        if new:
            new = self._match_moves(db, ctx, loc, dir_id, rel_db, new, touched, queue_dir, writes)
        self._add_new(loc, dir_id, prefix, new, fingerprint, queue_dir, writes)
        touched.extend(f[NAME] for f in new)
        return tuple(from_db(n) for n in touched)

    def _add_new(
        self, loc: Location, dir_id: int, prefix: str, new: list[Found], fingerprint: int, queue_dir: Any,
        writes: _BatchWrites,
    ) -> None:
        """Entries new in a directory, given their ids (the rows are written with the batch); its subfolders queued."""
        folders = [f for f in new if f[KIND] == "dir"]
        files = [f for f in new if f[KIND] != "dir"] if folders else new
        first_folder, first_file = self._next_folder_id, self._next_id
        self._next_folder_id += len(folders)
        self._next_id += len(files)
        writes.entries.extend([(first_file + i, loc.id, dir_id, *f) for i, f in enumerate(files)])
        for i, f in enumerate(folders):
            writes.folders.append((first_folder + i, loc.id, dir_id, *f))
            writes.directories.append((first_folder + i, loc.id, prefix + f[NAME]))
            queue_dir(first_folder + i, f[NAME])
        writes.listed.append((fingerprint, dir_id))
        self.added += len(new)

    def _match_moves(
        self, db: sqlite3.Connection, ctx: JobContext, loc: Location, dir_id: int, rel_db: str, new: list[Found],
        touched: list[str], queue_dir: Any, writes: _BatchWrites,
    ) -> list[Found]:
        """Entries that moved here (gone from their old place) keep their row; the rest are new.

        A file is the same file when its inode, size and time are: a filesystem gives a deleted file's inode to
        the next one made (ext4, tmpfs), and that file must not take the old one's tags, notes and undo steps.
        So a file renamed and edited while nothing watched is taken for a new one. A folder matches on its inode
        alone (its time changes with its contents): what is in it is diffed name by name like any folder.
        """
        by_inode = {f[INODE]: f for f in new}
        marks = ",".join("?" * len(by_inode))
        candidates = db.execute(
            f"SELECT e.id, e.parent_id, e.name, e.kind, e.inode, e.size, e.mtime, p.path FROM entries e"
            f" LEFT JOIN directory_paths p ON p.entry_id = e.parent_id"
            f" WHERE e.location_id = ? AND e.inode IN ({marks}) AND e.id != ?",
            (loc.id, *by_inode, loc.root_id),
        ).fetchall()
        moved: set[int] = set()
        for entry_id, parent_id, name, kind, inode, size, mtime, parent_rel in candidates:
            f = by_inode.get(inode)
            if f is None or f[KIND] != kind or inode in moved or entry_id == dir_id:
                continue
            if kind != "dir" and (size, mtime) != (f[SIZE], f[MTIME]):
                continue  # another file on a reused inode
            if parent_id is not None:
                old = loc.absolute(from_db(f"{parent_rel}/{name}" if parent_rel else name))
                try:
                    if os.lstat(old).st_ino == inode:
                        continue  # still there: a hard link, not a move
                except OSError:
                    pass
            writes.write_paths(db)  # this folder may be new in this batch
            db.execute(
                f"UPDATE entries SET parent_id = ?1, name = ?2, size = ?3, mtime = ?4, mode_code = {mode_code_sql('?5', 'kind_code')},"
                " link_target = ?6,"
                f" object_code = CASE WHEN extension IS ?7 THEN object_code ELSE {object_code_sql('?8')} END, extension = ?7,"
                " error = NULL WHERE id = ?9",
                (dir_id, f[NAME], f[SIZE], f[MTIME], f[MODE], f[LINK], f[EXTENSION], f[OBJECT_KIND], entry_id),
            )
            if kind == "dir":
                old_rel = db.execute("SELECT path FROM directory_paths WHERE entry_id = ?", (entry_id,)).fetchone()[0]
                _move_paths(db, loc.id, old_rel, f"{rel_db}/{f[NAME]}" if rel_db else f[NAME])
                queue_dir(entry_id, f[NAME])
                if self.scope != "recursive":
                    self.moved_dirs.append(from_db(f"{rel_db}/{f[NAME]}" if rel_db else f[NAME]))
            moved.add(inode)
            self.moved += 1
            touched.append(f[NAME])
        return [f for f in new if f[INODE] not in moved]

    def _cleanup(self, db: sqlite3.Connection, loc: Location) -> None:
        """Entries still orphaned were deleted from disk, not moved: remove them with what was below them, and
        aggregate in the same transaction (a reader never sees them gone while the totals still count them)."""
        orphans = db.execute(
            "SELECT id, kind FROM entries WHERE +location_id = ? AND parent_id IS NULL AND id != ?", (loc.id, loc.root_id)
        ).fetchall()
        if self.keep_orphans:
            orphans = []
        for entry_id, kind in orphans:
            self.removed += _delete_tree(db, loc.id, entry_id, kind == "dir")
        self.phase = "aggregation"
        self._aggregate(db, loc)

    def _aggregate(self, db: sqlite3.Connection, loc: Location) -> None:
        """Directory sizes and file counts, summed bottom-up; only directories whose totals changed are written."""
        self.phase = "search"
        if not (self.first_load or self.added or self.changed or self.moved or self.removed):
            return  # nothing changed (a canceled job aggregated what it had changed when it stopped)
        # A first load's entries are the rows after its root (ids only grow): read in rowid order, 3x cheaper than
        # through an index when they are most of the library; else the location's entries through its index.
        where, args = ("+location_id = ? AND id > ?", (loc.id, loc.root_id)) if self.first_load else ("location_id = ?", (loc.id,))
        direct: dict[int, tuple[int, int]] = {
            parent: (size or 0, files or 0)
            for parent, size, files in db.execute(
                f"SELECT parent_id, SUM(size), COUNT(*) FROM entries WHERE {where} AND kind = 'file' GROUP BY parent_id", args
            )
        }
        dirs = db.execute(
            "SELECT e.id, e.parent_id, e.size, e.files, p.path FROM entries e JOIN directory_paths p ON p.entry_id = e.id"
            " WHERE e.location_id = ? AND e.kind = 'dir' AND e.parent_id IS NOT NULL OR e.id = ?",
            (loc.id, loc.root_id),
        ).fetchall()
        totals = {d[0]: list(direct.get(d[0], (0, 0))) for d in dirs}
        for entry_id, parent_id, *_ in sorted(dirs, key=lambda d: d[4].count("/") + (d[4] != ""), reverse=True):
            if parent_id in totals:
                totals[parent_id][0] += totals[entry_id][0]
                totals[parent_id][1] += totals[entry_id][1]
        db.executemany(
            "UPDATE entries SET size = ?, files = ? WHERE id = ?",
            [(totals[d[0]][0], totals[d[0]][1], d[0]) for d in dirs if (d[2], d[3]) != tuple(totals[d[0]])],
        )

    def _build_search(self, db: sqlite3.Connection, loc: Location) -> None:
        """After a first load, the search index of the location in one pass (far faster than a trigger per row)."""
        resume_fts(db, loc.id)
        self.phase = "indexes"
        if not self.first_load:
            self._make_indexes(db, loc)

    def _make_indexes(self, db: sqlite3.Connection, loc: Location) -> None:
        """A first load's secondary indexes, in one pass each, once its entries are searchable (committed): until then
        it reads its rows in rowid order and needs none, and search needs none (they order and find duplicates)."""
        make_secondary_indexes(db)
        if loc.mode == "shallow":
            self.phase = "done"
        else:
            self.phase = "content"
            self.to_hash = db.execute(
                "SELECT COUNT(*) FROM entries WHERE location_id = ? AND kind = 'file' AND content_id IS NULL AND size > 0"
                " AND error IS NULL",
                (loc.id,),
            ).fetchone()[0]

    def _content(self, ctx: JobContext, loc: Location) -> None:
        """Hash the files a batch at a time: a child process hashes the next batch while this one is written."""
        library = ctx.library

        def files_after(cursor: int, count: int) -> list[tuple[int, str, str, str]]:
            return library.read().execute(
                "SELECT e.id, e.name, e.extension, p.path FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id"
                " WHERE +e.location_id = ? AND e.kind = 'file' AND +e.content_id IS NULL AND +e.size > 0"
                " AND e.error IS NULL AND e.id > ? ORDER BY e.id LIMIT ?",
                (loc.id, cursor, count),
            ).fetchall()

        def requests(rows: list[tuple[int, str, str, str]]) -> list[Request]:
            folders: dict[str, str] = {}  # a folder's path with its final '/', made once for all its files

            def folder(parent: str) -> str:
                path = folders.get(parent)
                if path is None:
                    path = folders[parent] = os.path.join(loc.absolute(from_db(parent)), "")
                return path

            return [(entry_id, folder(parent) + from_db(name), from_db(ext)) for entry_id, name, ext, parent in rows]

        rows = files_after(self.content_cursor, CONTENT_BATCH_MIN)
        if not rows:  # nothing left to read (a first load's walker read it all): no hashing process started
            self._write_content(ctx, loc, rows, [])
            return
        hasher = start_hasher()
        try:
            hasher.submit(requests(rows))
            asked = time.monotonic()
            while self.phase == "content" and not ctx.should_stop:
                with _paused_if_stopping(ctx):
                    results = hasher.result()
                if ctx.should_stop:
                    return
                rate = len(rows) / max(time.monotonic() - asked, 1e-3)  # files a second, as hashed just now
                count = min(max(int(rate * CONTENT_BATCH_SECONDS), CONTENT_BATCH_MIN), CONTENT_BATCH_MAX)
                upcoming = files_after(rows[-1][0], count) if rows else []
                if rows:
                    hasher.submit(requests(upcoming))
                    asked = time.monotonic()
                self._write_content(ctx, loc, rows, results)
                rows = upcoming
        finally:
            hasher.close()

    def _write_content(
        self, ctx: JobContext, loc: Location, rows: list[tuple[int, str, str, str]], results: list[Identified]
    ) -> None:
        library = ctx.library
        failed = [(error, entry_id) for entry_id, cas_id, _, _, error in results if error is not None]
        paths = {entry_id: _file_path(loc, parent, name) for entry_id, name, _, parent in rows} if failed else {}
        # A file gone from where it was looked for moved or was deleted since the walk: not unreadable.
        gone = {entry_id for _, entry_id in failed if not os.path.lexists(paths.get(entry_id, ""))}
        failed = [f for f in failed if f[1] not in gone]
        with library.write() as db:
            hashed = [r for r in results if r[1] is not None]
            db.executemany("UPDATE entries SET error = ? WHERE id = ?", failed)
            self.errors += len(failed)
            self.vanished += len(gone)
            _store_identities(db, hashed)
            self.hashed += len(results)
            if rows:
                self.content_cursor = rows[-1][0]
            elif self.vanished and not self.rewalked:
                # The tree changed under the job (a pause, a crash): walk it once more, which finds where the
                # files went (or removes them), then hash those.
                self.phase, self.rewalked, self.content_cursor, self.dirs, self.found = "start", True, 0, 0, 0
            else:
                self.phase = "media" if loc.mode == "deep" else "done"
            ctx.progress(self.hashed, max(self.to_hash, self.hashed), "content", "files")
            ctx.save(db)

    def _media_batch(self, ctx: JobContext, loc: Location) -> None:
        """Deep mode: metadata and a thumbnail for each image content of the location not described yet."""
        from sdcore.index.media import describe_image

        library = ctx.library
        rows = library.read().execute(
            "SELECT e.content_id, c.cas_id, e.name, p.path FROM entries e"
            " JOIN content_identities c ON c.id = e.content_id JOIN directory_paths p ON p.entry_id = e.parent_id"
            " WHERE e.location_id = ? AND e.object_kind = 'image' AND e.content_id > ?"
            " AND e.content_id NOT IN (SELECT content_id FROM media_data) GROUP BY e.content_id ORDER BY e.content_id LIMIT 50",
            (loc.id, self.media_cursor),
        ).fetchall()
        described: list[tuple[int, int | None, int | None, str | None, str | None, str | None]] = []
        for content_id, cas_id, name, parent_rel in rows:
            path = loc.absolute(from_db(f"{parent_rel}/{name}" if parent_rel else name))
            try:
                m = describe_image(path, library.thumbnails, cas_id)
                described.append((content_id, m.width, m.height, m.taken, m.camera, None))
            except (OSError, ValueError) as exc:
                described.append((content_id, None, None, None, None, str(exc)))
        with library.write() as db:
            db.executemany("INSERT OR REPLACE INTO media_data VALUES (?, ?, ?, ?, ?, ?)", described)
            if rows:
                self.media_cursor = rows[-1][0]
            else:
                self.phase = "done"
            self.described += len(described)
            ctx.progress(self.described, self.described, "thumbnails", "images")
            ctx.save(db)

    def _scan_state(self, library: Library, loc: Location, state: str, scanned: bool = False) -> None:
        if self.scope != "recursive" or self.subpaths not in ([], [""]):
            return  # a refresh of one directory does not change the location's state
        library.locations.set_state(loc.id, state, scanned)
        library.context.bus.publish(LocationScanState(library.id, loc.id, state))


class _Folders:
    """A location's folders as the database has them when a rescan starts: each one's listing fingerprint and the
    folders in it. Good for the walk: a folder's row changes only when its own listing is diffed, once, after it is
    looked up here, or when the listing of a folder it moves out of or into is (so that one is not skipped either)."""

    def __init__(self) -> None:
        self.fingerprints: dict[int, int | None] = {}
        self.subdirs: dict[int, list[tuple[str, int]]] = {}

    @classmethod
    def load(cls, db: sqlite3.Connection, location_id: int) -> _Folders | None:
        """None for a location of more than KNOWN_FOLDERS folders: those are looked up a batch at a time."""
        (count,) = db.execute("SELECT COUNT(*) FROM directory_paths WHERE location_id = ?", (location_id,)).fetchone()
        if count > KNOWN_FOLDERS:
            return None
        known = cls()
        for entry_id, parent_id, name, fingerprint in db.execute(
            "SELECT e.id, e.parent_id, e.name, e.fingerprint FROM directory_paths p JOIN entries e ON e.id = p.entry_id"
            " WHERE p.location_id = ?",
            (location_id,),
        ):
            known.fingerprints[entry_id] = fingerprint
            known.subdirs.setdefault(entry_id, [])
            known.subdirs.setdefault(parent_id, []).append((name, entry_id))  # a folder's parent is a folder of it
        return known


class _BatchWrites:
    """What a discovery batch writes once for all its directories (a statement per directory costs more)."""

    def __init__(self, db: sqlite3.Connection, dir_ids: list[int], known: _Folders | None = None) -> None:
        self.known = known
        self.fingerprints: dict[int, int | None] = {} if known is None else known.fingerprints
        for start in range(0, len(dir_ids) if known is None else 0, 500):
            chunk = dir_ids[start:start + 500]
            self.fingerprints.update(
                db.execute(f"SELECT id, fingerprint FROM entries WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            )
        self.folders: list[tuple] = []  # rows of `entries` that are folders (their ids handed out already)
        self.entries: list[tuple] = []  # and the others, whose ids come after the folders'
        self.directories: list[tuple[int, int, str]] = []  # rows of `directory_paths`
        self.queued: list[int] = []  # folders to scan (one statement for all: a statement a folder cost twice as much)
        self.listed: list[tuple[int, int]] = []  # (fingerprint, directory id)
        self.unreadable: list[tuple[str, int]] = []  # (error, directory id)

    def fingerprint(self, db: sqlite3.Connection, dir_id: int) -> int | None:
        if dir_id not in self.fingerprints:  # found in this batch; not in the table yet if it is new
            row = db.execute("SELECT fingerprint FROM entries WHERE id = ?", (dir_id,)).fetchone()
            self.fingerprints[dir_id] = row[0] if row else None
        return self.fingerprints[dir_id]

    def subdirs(self, db: sqlite3.Connection, dir_id: int) -> Iterable[tuple[str, int]]:
        """(name, id) of the folders in a folder whose listing is as it was."""
        if self.known is not None and dir_id in self.known.subdirs:
            return self.known.subdirs[dir_id]
        return db.execute("SELECT name, id FROM entries WHERE parent_id = ? AND kind = 'dir'", (dir_id,))

    def write_paths(self, db: sqlite3.Connection) -> None:
        """The paths of the folders new in this batch, now: the search triggers of an entry added or moved into
        one look its path up (else it would be missing from search)."""
        db.executemany("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, ?)", self.directories)
        self.directories.clear()

    def flush(self, db: sqlite3.Connection, job_id: str, first_load_of: int | None = None) -> int:
        """Write the batch; `first_load_of` a location: its first load, whose rows go in without a trigger a row.
        Returns how many files came with their content identity."""
        self.write_paths(db)
        rows = self.folders + self.entries
        identified = _write_identities(db, self.entries)
        if first_load_of is not None and rows:
            _insert_without_triggers(db, first_load_of, rows)
        else:
            db.executemany(_insert_for(rows), rows)
        if identified:
            _bring_back_by_content(db, self.entries)
        db.execute("INSERT OR IGNORE INTO scan_queue (job_id, entry_id) SELECT ?, value FROM json_each(?)",
                   (job_id, json.dumps(self.queued)))
        db.executemany("UPDATE entries SET fingerprint = ?, error = NULL WHERE id = ?", self.listed)
        db.executemany("UPDATE entries SET error = ? WHERE id = ?", self.unreadable)
        return identified


def _store_identities(db: sqlite3.Connection, hashed: list[Identified]) -> None:
    """Each entry hashed gets its content identity (made when new) and the object kind its bytes proved."""
    db.executemany(
        "INSERT INTO content_identities (cas_id, size, object_kind) VALUES (?, ?, ?) ON CONFLICT (cas_id) DO NOTHING",
        [(cas_id, size, object_kind) for _, cas_id, object_kind, size, _ in hashed],
    )
    db.executemany(
        "UPDATE entries SET content_id = (SELECT id FROM content_identities WHERE cas_id = ?1),"
        f" object_code = {object_code_sql('?2')} WHERE id = ?3",
        [(cas_id, object_kind, entry_id) for entry_id, cas_id, object_kind, _, _ in hashed],
    )


def identify_files(library: Library, files: list[tuple[int, str]]) -> None:
    """Read the content of these files of this device (entry id, path) now, as a content index would: a tag put on
    the content of a file in a shallow location, or one that a content index has not reached yet, needs its id."""
    marks = ",".join("?" * len(files))
    extensions = dict(library.read().execute(f"SELECT id, extension FROM entries WHERE id IN ({marks})", [i for i, _ in files]))
    results = identify_all([(entry_id, path, from_db(extensions.get(entry_id) or "")) for entry_id, path in files])
    with library.write() as db:
        _store_identities(db, [r for r in results if r[1] is not None])


def _insert_for(rows: list[tuple]) -> str:
    """The insert statement of these rows of entries: with their content's cas_id last, or without."""
    return _INSERT_IDENTIFIED if rows and len(rows[0]) > 13 else _INSERT


def _bring_back_by_content(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """The tags and notes of deleted files that wait by content (`detached`) for a file of that content: the trigger
    that brings them back fires when an entry's content id is set, not when a row is inserted with one; so these rows'
    content ids are set again (only for contents that something waits for)."""
    if db.execute("SELECT 1 FROM detached LIMIT 1").fetchone() is None:
        return
    back: list[tuple[str, int]] = []
    for start in range(0, len(rows), 500):
        part = rows[start : start + 500]
        cas_ids = {row[13] for row in part if row[13] is not None}
        marks = ",".join("?" * len(cas_ids))
        waiting = {cas_id for (cas_id,) in db.execute(f"SELECT cas_id FROM detached WHERE cas_id IN ({marks})", [*cas_ids])}
        back.extend((row[13], row[0]) for row in part if row[13] in waiting)
    db.executemany("UPDATE entries SET content_id = NULL WHERE id = ?", [(entry_id,) for _, entry_id in back])
    db.executemany("UPDATE entries SET content_id = (SELECT id FROM content_identities WHERE cas_id = ?) WHERE id = ?", back)


def _write_identities(db: sqlite3.Connection, rows: list[tuple]) -> int:
    """The content identities of these rows of entries found with their cas_id (`_INSERT_IDENTIFIED`); how many."""
    if not rows or len(rows[0]) <= 13:
        return 0
    identities = [(row[13], row[7], row[6]) for row in rows if row[13] is not None]
    db.executemany(
        "INSERT INTO content_identities (cas_id, size, object_kind) VALUES (?, ?, ?) ON CONFLICT (cas_id) DO NOTHING", identities
    )
    return len(identities)


_INSERT_TRIGGERS = ("search_entry_added", "catalogue_entry_added")
"""The triggers of a new entry: a row's search index (paused in a first load) and its change number (once shared)."""


def _insert_without_triggers(db: sqlite3.Connection, location_id: int, rows: list[tuple]) -> None:
    """Insert a first load's new entries with the insert triggers taken away and put back in the same transaction,
    doing what they would have done in one statement: any trigger on a table costs each row its share (a first
    index's inserts take 40% less time without). Nobody else sees the table without them (the writer's lock).

    The search trigger does nothing for these rows while the location's search index is paused (so it must be);
    the catalogue trigger numbers each new entry once the library is shared."""
    if db.execute("SELECT 1 FROM fts_pause WHERE location_id = ?", (location_id,)).fetchone() is None:
        db.executemany(_insert_for(rows), rows)  # resumed after a search indexed what was loaded: the triggers index the rest
        return
    marks = ",".join("?" * len(_INSERT_TRIGGERS))
    saved = db.execute(f"SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND name IN ({marks})", _INSERT_TRIGGERS).fetchall()
    for name, _ in saved:
        db.execute(f"DROP TRIGGER {name}")
    db.executemany(_insert_for(rows), rows)
    if db.execute(
        "SELECT 1 FROM catalogue_tracking t JOIN locations l ON l.device_id = t.device_id WHERE l.id = ?", (location_id,)
    ).fetchone():
        db.executemany("INSERT OR REPLACE INTO catalogue_log (entry_id) VALUES (?)", [(row[0],) for row in rows])
    for _, sql in saved:
        db.execute(sql)


def _folders(listed: Listing | list[Found] | OSError) -> int:
    """How many folders a directory walked holds."""
    if isinstance(listed, Listing):
        return len(listed.dirs)
    return 0 if isinstance(listed, OSError) else sum(1 for f in listed if f[KIND] == "dir")


def _nearest_indexed(db: sqlite3.Connection, loc: Location, subpath: str) -> tuple[int, str]:
    """The directory entry for `subpath`, or its nearest indexed ancestor."""
    rel = subpath.strip("/")
    while True:
        row = db.execute(
            "SELECT entry_id FROM directory_paths WHERE location_id = ? AND path = ?", (loc.id, to_db(rel))
        ).fetchone()
        if row is not None:
            return row[0], to_db(rel)
        if not rel:
            raise NotFound(f"location {loc.name!r} has no root entry; remove and add it again")
        rel = rel.rpartition("/")[0]


def _file_path(loc: Location, parent: str, name: str) -> str:
    """The absolute path of a file from its folder's path in the location and its name (as the database has them)."""
    return loc.absolute(from_db(f"{parent}/{name}" if parent else name))


def _subtree_where(prefix: str) -> tuple[str, tuple[str, str, str]]:
    # '/' sorts just before '0', so [prefix/, prefix0) is exactly what lies below prefix.
    return "(path = ? OR (path >= ? AND path < ?))", (prefix, prefix + "/", prefix + "0")


def _move_paths(db: sqlite3.Connection, location_id: int, old: str, new: str) -> None:
    where, params = _subtree_where(old)
    db.execute(
        f"UPDATE directory_paths SET path = ? || substr(path, ?) WHERE location_id = ? AND {where}",
        (new, len(old) + 1, location_id, *params),
    )


def _orphan(db: sqlite3.Connection, location_id: int, entry_id: int, is_dir: bool) -> None:
    """Detach a missing entry; it is re-attached if it turns up elsewhere in this scan, else cleaned up."""
    db.execute("UPDATE entries SET parent_id = NULL WHERE id = ?", (entry_id,))
    if is_dir:
        old = db.execute("SELECT path FROM directory_paths WHERE entry_id = ?", (entry_id,)).fetchone()
        if old is not None:
            _move_paths(db, location_id, old[0], f"//orphan-{entry_id}")


def _unscanned_children(library: Library, location_id: int, directories: list[str]) -> list[str]:
    """The subfolders of these folders that were never read (no listing fingerprint yet), as paths in the location."""
    db = library.read()
    out: list[str] = []
    for directory in directories:
        out.extend(
            from_db(row[0])
            for row in db.execute(
                "SELECT c.path FROM directory_paths p JOIN entries e ON e.parent_id = p.entry_id"
                " JOIN directory_paths c ON c.entry_id = e.id"
                " WHERE p.location_id = ? AND p.path = ? AND e.kind = 'dir' AND e.fingerprint IS NULL",
                (location_id, to_db(directory)),
            )
        )
    return sorted(set(out))


def _delete_tree(db: sqlite3.Connection, location_id: int, entry_id: int, is_dir: bool) -> int:
    removed = 0
    if is_dir:
        row = db.execute("SELECT path FROM directory_paths WHERE entry_id = ?", (entry_id,)).fetchone()
        if row is not None:
            where, params = _subtree_where(row[0])
            dir_ids = [
                (r[0],) for r in db.execute(f"SELECT entry_id FROM directory_paths WHERE location_id = ? AND {where}", (location_id, *params))
            ]
            for (d,) in dir_ids:
                removed += db.execute("DELETE FROM entries WHERE parent_id = ?", (d,)).rowcount
            db.executemany("DELETE FROM directory_paths WHERE entry_id = ?", dir_ids)
            db.executemany("DELETE FROM scan_queue WHERE entry_id = ?", dir_ids)
    removed += db.execute("DELETE FROM entries WHERE id = ?", (entry_id,)).rowcount
    return removed


@contextlib.contextmanager
def _paused_if_stopping(ctx: JobContext) -> Iterator[None]:
    """A child process that ends while the job is being paused (a Ctrl-C reached it too) is no failure."""
    try:
        yield
    except OSError:
        if not ctx.should_stop:
            raise


# -- entry points ----------------------------------------------------------------------------


async def index_location(
    library: Library, location: Location | int | str, scope: str = "recursive", *, confirm_drop: bool = False
) -> str:
    """Start indexing a location as a job; resumes its interrupted or paused index job if it has one, and gives
    the one already running (a catch-up as a core starts) rather than run a second beside it. `confirm_drop`: a
    location on a disk drops what is not there even when that is most of it (see volume_locations.UNCONFIRMED)."""
    loc = location if isinstance(location, Location) else library.locations.get(location)
    refuse_catalogue(library, loc)
    for record in library.jobs.list(states=("queued", "running")):
        if record.kind == "index" and record.location_id == loc.id and library.jobs.is_running(record.id):
            job = library.jobs.job(record.id)
            if isinstance(job, IndexJob) and job.scope == scope and job.subpaths in ([], [""]):
                return record.id
    for record in library.jobs.list(states=("interrupted", "paused")):
        if record.kind == "index" and record.location_id == loc.id:
            await library.jobs.resume(record.id)  # past its start: what it drops was looked at then
            return record.id
    return await library.jobs.start(IndexJob(loc.id, scope=scope, confirm_drop=confirm_drop))


async def catch_up(library: Library, location: Location, stop: asyncio.Event) -> dict[str, int]:
    """Index a location again, quietly, as the watcher's refresh does: what changed while no core watched it.

    No job: nothing is shown or kept (a core that starts does it again). Stops, consistent, when `stop` is set.
    """
    job = IndexJob(location.id)
    ctx = JobContext(f"catch-up-{uuid.uuid4().hex[:8]}", job, library, persistent=False)

    async def stop_when_asked() -> None:
        await stop.wait()
        ctx.cancel_requested = True

    stopper = asyncio.get_running_loop().create_task(stop_when_asked())
    try:
        return await job.run(ctx)
    except JobCanceled:
        await job.cleanup(ctx)
        return job.summary()
    finally:
        stopper.cancel()
        await job.forget_queue(ctx)


async def refresh(library: Library, directories: list[str], *, announce: bool = True) -> dict[str, int]:
    """Re-index these directories of this device (one level each) now, outside the job list.

    `announce=False`: the changes were announced already (by the operation that made them).

    A directory not indexed yet (made since the last scan) is reached through its parents, one
    level a pass; vanished entries are only removed after the last pass, so a move into a new
    directory keeps its entry (and its tags).
    """
    by_location: dict[int, set[str]] = {}
    for directory in directories:
        found = library.locations.containing(os.path.abspath(directory))
        if found is not None:
            by_location.setdefault(found[0].id, set()).add(found[1])
    totals: dict[str, int] = {}
    for location_id, targets in by_location.items():
        reached: list[str] | None = None
        moved: set[str] = set()
        for _ in range(64):
            job = IndexJob(
                location_id, scope="current", subpaths=sorted(targets), keep_orphans=True, announce=announce
            )
            ctx = JobContext(f"refresh-{uuid.uuid4().hex[:8]}", job, library, persistent=False)
            try:
                summary = await job.run(ctx)
            finally:
                await job.forget_queue(ctx)
            moved.update(job.moved_dirs)
            for key, value in summary.items():
                totals[key] = totals.get(key, 0) + value
            if job.subpaths == reached or set(job.subpaths) >= targets:
                break
            reached = job.subpaths
        # A folder new here (made, or moved in from outside) may hold entries no watch event told of:
        # the watch on it began only once it existed. So may a folder moved within the location: what
        # changed in it just after the move is told under its old path. Index such folders whole.
        new_dirs = sorted(set(_unscanned_children(library, location_id, job.subpaths)) | moved)
        if new_dirs:
            deep = IndexJob(location_id, scope="recursive", subpaths=new_dirs, keep_orphans=True, announce=announce)
            ctx = JobContext(f"refresh-{uuid.uuid4().hex[:8]}", deep, library, persistent=False)
            try:
                summary = await deep.run(ctx)
            finally:
                await deep.forget_queue(ctx)
            for key, value in summary.items():
                totals[key] = totals.get(key, 0) + value
        if _discovering(library, location_id):
            continue  # that job's cleanup removes what vanished; ours could remove a move it has yet to find
        final = IndexJob(location_id, scope="current", subpaths=[], phase="cleanup")
        await final.run(JobContext(f"refresh-{uuid.uuid4().hex[:8]}", final, library, persistent=False))
        totals["removed"] = totals.get("removed", 0) + final.removed
    return totals


def _discovering(library: Library, location_id: int) -> bool:
    """Whether an index job of the location is still walking it (its orphans may yet be found moved)."""
    for record in library.jobs.list(states=("running",)):
        if record.kind == "index" and record.location_id == location_id and library.jobs.is_running(record.id):
            job = library.jobs.job(record.id)
            if isinstance(job, IndexJob) and job.phase in ("start", "discovery"):
                return True
    return False
