"""A library through the core API: its entries, tags, notes, favourites, searches, locations and jobs."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from sdcore.api.records import (
    DeviceInfo,
    Entry,
    EntryDetails,
    JobRoute,
    LibraryInfo,
    NoteVersion,
    TagChange,
    TaggedFile,
)
from sdcore.errors import NotFound, SdError
from sdcore.fs.base import why_not_a_folder
from sdcore.sdpath import SdPath, display, from_db, typed

if TYPE_CHECKING:
    from sdcore.api.root import Api
    from sdcore.dedup import CrossDeviceGroup, Duplicates
    from sdcore.jobs.manager import JobRecord
    from sdcore.library.library import Library
    from sdcore.library.locations import Location
    from sdcore.search import Hit, Query, SavedSearch
    from sdcore.tags import Tag

T = TypeVar("T")
log = logging.getLogger(__name__)


async def wait_for(library: Library, job_id: str) -> JobRecord:
    """Wait for a job and raise its error as ours."""
    record = await library.jobs.wait(job_id)
    if record.state == "failed":
        raise SdError(record.error or f"{record.kind} failed")
    return record


async def started(library: Library, job_id: str) -> JobRecord:
    """The record of a job just started (its id, kind, state; `jobs.wait(job.id)` gives its result)."""
    return await in_thread(library, library.jobs.get, job_id)


async def in_thread(library: Library, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a thread (it reads or writes the library's SQLite): an SQLite error comes out as the SdError
    that says it in one line (a damaged database, a full disk), never as itself."""
    import sqlite3

    try:
        return await asyncio.to_thread(call, *args)
    except sqlite3.Error as exc:
        told = library.explain(exc)
        if told is None:
            raise
        raise told from exc


class _Part:
    """A part of one library (its tags, its jobs...): the library is opened when a call first needs it."""

    def __init__(self, api: Api, name: str | None) -> None:
        self._api = api
        self._name = name

    async def _library(self) -> Library:
        return await self._api._open(self._name)

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        """`call(library, *args)` in a thread (SQLite reads and writes)."""
        library = await self._library()
        return await in_thread(library, call, library, *args)

    async def _entry_ids(self, paths: Sequence[SdPath]) -> builtins.list[int]:
        return [e.entry_id for e in await Entries(self._api, self._name).find(*paths, index=True) if e.entry_id]

    async def _split(self, paths: Sequence[SdPath]) -> tuple[builtins.list[SdPath], dict[uuid.UUID, builtins.list[SdPath]]]:
        """The paths this library can name (this device's, indexed first when need be, and other devices' that their
        catalogue here holds), and, by device, other devices' paths it does not know yet."""
        from sdcore.library import entries

        library = await self._library()
        here = self._api.device.id
        known: builtins.list[SdPath] = []
        elsewhere: dict[uuid.UUID, builtins.list[SdPath]] = {}
        for path in paths:
            if path.device_id != here:
                try:
                    await in_thread(library, entries.entry_at, library, path.path, path.device_id)
                except (entries.NotInLibrary, entries.NotIndexed):
                    elsewhere.setdefault(path.device_id, []).append(path)
                    continue
            known.append(path)
        return known, elsewhere

    @contextlib.asynccontextmanager
    async def _on_owner(self, device: uuid.UUID, path: SdPath) -> AsyncIterator[Any]:
        """This library on `device` itself (its core API), for a file of that device this device's copy of the
        library does not know yet: there its folder is indexed first, as here for a file of this device; the change
        comes back as any of that device's changes do. Raises NotInLibrary when the library is not shared with it.
        The session of its core is closed on leaving (a device allows a few at once)."""
        from sdcore.library.entries import NotInLibrary

        library = await self._library()
        shared = await in_thread(library, _holds_files_of, library, str(device))
        where = await self._api.label(path)
        name = where.partition(":")[0] if where.partition(":")[1] else str(device)[:8]
        if not shared:
            raise NotInLibrary(
                f"{where} is on {name}, and library {library.name!r} is not shared with {name}; "
                f"`sd library share {typed(library.name)} {typed(name)}` shares it"
            )
        network = await self._api.devices._network()
        async with network.core_session(device) as core:
            yield core.library(str(library.id))

    async def _device_names(self) -> dict[str, str]:
        """Device id -> name, for people: this device's and its paired devices' (others by the start of their id)."""
        names = {str(d.id): d.name for d in await self._api.devices.list()}
        names[str(self._api.device.id)] = self._api.device.name
        return names


class LibraryHandle(_Part):
    """One library: `lib.tags["work"].add(path)`, `await lib.search("beach")`."""

    def __init__(self, api: Api, name: str | None) -> None:
        super().__init__(api, name)
        self.entries = Entries(api, name)
        self.tags = Tags(api, name)
        self.notes = Notes(api, name)
        self.favourites = Favourites(api, name)
        self.saved = SavedSearches(api, name)
        self.locations = Locations(api, name)
        self.jobs = Jobs(api, name)
        from sdcore.api.sync import Sharing

        self.sharing = Sharing(api, name)
        """The devices that hold this library: sharing it with another device, or no more."""
        from sdcore.api.root import Ops  # root builds library handles: imported here, not at the top

        self.ops = Ops(api, name)
        """File operations as jobs of this library."""

    async def info(self) -> LibraryInfo:
        library = await self._library()
        return LibraryInfo(library.id, library.name)

    async def search(self, query: str | Query, limit: int = 1000) -> builtins.list[Entry]:
        """Entries matching: every word a substring of a name, a path or a note (or a full Query)."""
        from sdcore import search

        q = search.Query(query, limit=limit) if isinstance(query, str) else query
        return [hit_entry(h) for h in await self._in_thread(search.run, q)]

    async def holds_files_of(self, device: uuid.UUID) -> bool:
        """Whether the library is shared with that device (or holds its catalogue), so tags, notes and favourites
        on that device's files are written here (or, for a file it does not know yet, on that device in the same
        library)."""
        return await self._in_thread(_holds_files_of, str(device))

    async def incomplete(self) -> builtins.list[str]:
        """A line for each location whose first index has not finished (search sees only part of it)."""
        from sdcore import search

        return await self._in_thread(search.incomplete)

    async def duplicates(
        self, location: int | str | None = None, min_size: int = 1, include_empty: bool = False
    ) -> Duplicates:
        """Files of the library's locations on this device (or of one) with the same content, proven by a full
        BLAKE3, biggest waste first; files changed since they were indexed are left out and named."""
        from sdcore import dedup

        return await self._in_thread(dedup.find, location, min_size, include_empty)


    async def duplicates_across_devices(self, min_size: int = 1) -> builtins.list[CrossDeviceGroup]:
        """Contents held on more than one device of the library (this one and those known from its catalogue): by
        cas_id, then proven with a full BLAKE3 that each device reachable now makes of its own copy (nothing but the
        hash crosses); a group with copies on a device out of reach says so (`offline`: by the sampled id only)."""
        from sdcore import dedup

        library = await self._library()
        groups = await self._in_thread(dedup.across_devices, min_size)
        by_device: dict[uuid.UUID, builtins.list[int]] = {}
        for g in groups:
            for c in g.copies:
                by_device.setdefault(c.device_id, []).append(c.entry_id)
        hashes: dict[int, str | None] = {}
        offline: set[uuid.UUID] = set()
        for device, ids in by_device.items():
            try:
                hashes.update(await self._full_hashes_on(library, device, ids))
            except (SdError, OSError, TimeoutError) as exc:
                if device == self._api.device.id:
                    raise
                log.info("no full hashes from device %s: %s", device, exc)
                offline.add(device)
        return builtins.list(dedup.proven_by(groups, hashes, offline))

    async def _full_hashes_on(self, library: Library, device: uuid.UUID, ids: builtins.list[int]) -> dict[int, str | None]:
        """Entry id (here) -> the full BLAKE3 its device makes of it (SdError or OSError: that device is out of reach)."""
        from sdcore import dedup
        from sdcore.sync import catalogue

        if device == self._api.device.id:
            local: dict[int, str | None] = {}
            for start in range(0, len(ids), dedup.MAX_HASHED):
                chunk = ids[start : start + dedup.MAX_HASHED]
                local.update(zip(chunk, await in_thread(library, dedup.full_hashes, library, chunk), strict=True))
            return local
        if not await catalogue.reachable(library, device):
            raise catalogue.DeviceOffline(f"device {device} is out of reach")
        refs = await in_thread(library, _owner_ids, library, ids)  # its own ids for them (the catalogue maps them)
        async with (await self._api.devices._network()).core_session(device) as core:  # one session for the lot
            remote = core.library(str(library.id))
            out: dict[int, str | None] = {}
            for start in range(0, len(ids), dedup.MAX_HASHED):
                chunk = ids[start : start + dedup.MAX_HASHED]
                got = await remote.full_hashes([refs[i] for i in chunk])
                if not isinstance(got, builtins.list) or len(got) != len(chunk):
                    raise SdError(f"device {device} answered full_hashes with something else")
                out.update((i, h if isinstance(h, str) and len(h) == 64 else None) for i, h in zip(chunk, got, strict=True))
            return out

    async def full_hashes(self, entry_ids: builtins.list[int]) -> builtins.list[str | None]:
        """The full BLAKE3 of each of this device's own indexed files of the library named by entry id (at most
        `dedup.MAX_HASHED`), read whole here; None for one that is not this device's, changed since it was indexed
        or unreadable. What a device of the library asks another to prove a duplicate without moving the file."""
        from sdcore import dedup

        if not isinstance(entry_ids, builtins.list) or len(entry_ids) > dedup.MAX_HASHED:
            raise SdError(f"full_hashes takes a list of at most {dedup.MAX_HASHED} entry ids")
        return await self._in_thread(dedup.full_hashes, entry_ids)

    async def devices(self) -> builtins.list[DeviceInfo]:
        """The other devices whose catalogue the library holds (their files are listed and searched here)."""
        from sdcore.sync import catalogue

        known = await self._in_thread(catalogue.devices)
        return [DeviceInfo(device, name) for device, name in known.items()]


class Entries(_Part):
    """The library's entries, by path."""

    async def at(self, path: SdPath, *, index: bool = False) -> Entry:
        """The library's entry at `path`; with `index`, a file of a location that the index has not reached
        yet is indexed first (raises NotInLibrary for a file outside every location)."""
        (entry,) = await self.find(path, index=index)
        return entry

    async def find(self, *paths: SdPath, index: bool = False) -> builtins.list[Entry]:
        """The library's entries at `paths` (see `at`)."""
        from sdcore.library import entries

        library = await self._library()
        here = self._api.device.id

        def look_up() -> builtins.list[int]:
            return [
                entries.entry_at(library, p.path, None if p.device_id == here else p.device_id) for p in paths
            ]

        try:
            ids = await in_thread(library, look_up)
        except entries.NotIndexed:
            if not index:
                raise
            from sdcore.index.indexer import refresh

            local = [p for p in paths if p.device_id == here]
            for p in local:
                if not await asyncio.to_thread(os.path.lexists, p.path):
                    raise NotFound(f"{display(p.path)} {why_not_a_folder(p.path)}") from None
            await refresh(library, sorted({os.path.dirname(p.path) or "/" for p in local}))
            ids = await in_thread(library, look_up)
        found = await in_thread(library, _entries_by_id, library, here, ids)
        if len(found) < len(ids):  # one went between its lookup and reading its row
            known = {e.entry_id for e in found}
            gone = next(p for p, i in zip(paths, ids, strict=True) if i not in known)
            raise NotFound(f"{display(gone.path)} no longer exists (it went while it was looked up)")
        return found

    async def make_known(self, *paths: SdPath) -> builtins.list[Location]:
        """Make these files entries of the library, as tagging, a note or a favourite needs: a file of a location
        that the index has not reached is indexed, and the folder of a file outside every location becomes a
        location (shallow) and is indexed first. Another device's file that its catalogue here lacks is made known
        on that device, by its core. The locations it added."""
        from sdcore.library.entries import refuse_archive_members

        mine = [p for p in paths if p.device_id == self._api.device.id]
        refuse_archive_members([p.path for p in mine])
        locations = Locations(self._api, self._name)
        added: builtins.list[Location] = []
        for path in sorted(mine, key=lambda p: p.path.count("/")):  # a folder added may hold the deeper ones
            if await locations.containing(path) is not None:
                continue
            if not await asyncio.to_thread(os.path.lexists, path.path):
                raise NotFound(f"{display(path.path)} {why_not_a_folder(path.path)}")
            added.append(await locations.add(path.parent, "shallow", index=True))
        if mine:
            await self.find(*mine, index=True)
        _, elsewhere = await self._split([p for p in paths if p.device_id != self._api.device.id])
        for device, there in elsewhere.items():
            async with self._on_owner(device, there[0]) as owner:
                try:
                    added += await owner.entries.make_known(*there)
                except NotFound as exc:  # its own path, in its words: `/a does not exist` is said `beta:/a ...`
                    if not str(exc).startswith("/"):
                        raise
                    raise NotFound(f"{(await self._api.label(SdPath(device, '/')))[:-1]}{exc}") from None
        return added

    async def details(self, path: SdPath) -> EntryDetails | None:
        """What the library knows of the entry at `path` (None when it is in no location, or not indexed)."""
        from sdcore.library.entries import InsideArchive, NotIndexed, NotInLibrary

        try:
            entry = await self.at(path)
        except (NotIndexed, NotInLibrary, InsideArchive):
            return None
        assert entry.entry_id is not None
        return await self._in_thread(_details, entry.entry_id)


class Tags(_Part):
    """The library's tags: `await lib.tags.list()`, `await lib.tags["work/acme"].add(path)`."""

    async def history(self, path: SdPath) -> builtins.list[TagChange]:
        """The tags put on and taken off `path` (and its content), on any device of the library, oldest first."""
        from sdcore import tags

        (entry_id,) = await self._entry_ids([path])
        names = await self._device_names()
        return [
            TagChange(e.tag, e.added, e.content, e.when, names.get(e.origin, e.origin[:8]))
            for e in await self._in_thread(tags.history, entry_id)
        ]

    async def list(self) -> builtins.list[Tag]:
        from sdcore import tags

        return await self._in_thread(tags.list)

    async def create(self, name: str, color: str | None = None) -> Tag:
        from sdcore import tags

        return await self._in_thread(tags.create, name, color)

    def __getitem__(self, name: str) -> TagHandle:
        return TagHandle(self._api, self._name, name)


class TagHandle(_Part):
    """One tag of a library, by name (nested with '/')."""

    def __init__(self, api: Api, library: str | None, tag: str) -> None:
        super().__init__(api, library)
        self._tag = tag

    async def add(self, *paths: SdPath, content: bool = False) -> int:
        """Put the tag on these files or folders (made when it is new; a file of a location that the index has
        not reached is indexed first); how many took it."""
        from sdcore import tags

        known, elsewhere = await self._split(paths)
        ids = await self._entry_ids(known)
        if content:
            await self._identify(known)

        def run(library: Library) -> int:
            from sdcore.ops import undo

            created = tags.normalize(self._tag) not in {t.name for t in tags.list(library)}
            if created:
                tags.create(library, self._tag)
            before = {t.entry_id for t in tags.entries(library, self._tag, nested=False)}
            count = tags.assign(library, self._tag, ids, content=content)
            fresh = [i for i in dict.fromkeys(ids) if i not in before]
            if fresh:  # undone by taking the tag off these only: those that had it keep it
                what = f"tag {display(known[0].name) if len(known) == 1 else f'{len(fresh)} items'} “{self._tag}”"
                undo.record(library, "tag", what, {"tag": self._tag, "entries": fresh, "content": content, "created": created})
            return count

        count = await self._in_thread(run) if known or not elsewhere else 0
        for device, there in elsewhere.items():
            async with self._on_owner(device, there[0]) as owner:
                count += await owner.tags[self._tag].add(*there, content=content)
        return count

    async def _identify(self, paths: Sequence[SdPath]) -> None:
        """This device's files among `paths` whose content the index has not read (in a shallow location, or not
        reached yet by a content index) read now: a tag on their content needs its id."""
        from sdcore.index.indexer import identify_files

        here = [p for p in paths if p.device_id == self._api.device.id]
        found = await Entries(self._api, self._name).find(*here) if here else []
        unread = [(e.entry_id, e.path.path) for e in found if e.entry_id and e.kind == "file" and e.size and not e.cas_id]
        if unread:
            await self._in_thread(identify_files, unread)

    async def remove(self, *paths: SdPath, content: bool = False) -> int:
        from sdcore import tags

        known, elsewhere = await self._split(paths)
        ids = await self._entry_ids(known)
        if content:
            await self._identify(known)

        def run(library: Library) -> int:
            from sdcore.ops import undo

            had = {t.entry_id for t in tags.entries(library, self._tag, nested=False) if t.via_content == content}
            count = tags.remove(library, self._tag, ids, content)
            taken = [i for i in dict.fromkeys(ids) if i in had]
            if taken:  # undone by putting it back on these
                names = dict(zip(ids, known, strict=False)) if len(ids) == len(known) else {}
                one = names.get(taken[0]) if len(taken) == 1 else None
                what = f"untag {display(one.name) if one else f'{len(taken)} items'} “{self._tag}”"
                undo.record(library, "untag", what, {"tag": self._tag, "entries": taken, "content": content})
            return count

        count = await self._in_thread(run) if known or not elsewhere else 0
        for device, there in elsewhere.items():
            async with self._on_owner(device, there[0]) as owner:
                count += await owner.tags[self._tag].remove(*there, content=content)
        return count

    async def files(self, nested: bool = True) -> builtins.list[Entry]:
        """The files carrying the tag (or one nested below it), as they are now (gone ones left out); another
        device's as its catalogue here has them."""
        from sdcore import tags
        from sdcore.library.entries import paths_of

        here = self._api.device.id

        def run(library: Library) -> tuple[dict[int, str], dict[int, Entry]]:
            ids = sorted({t.entry_id for t in tags.entries(library, self._tag, nested)})
            return paths_of(library, ids), {e.entry_id: e for e in _entries_by_id(library, here, ids) if e.entry_id}

        found = []
        paths, known = await self._in_thread(run)
        for entry_id, path in paths.items():
            elsewhere = known.get(entry_id)
            if elsewhere is not None and elsewhere.path.device_id != here:
                found.append(elsewhere)  # it may be offline: the catalogue's word
                continue
            try:
                entry = await self._api.stat(SdPath(self._api.device.id, path))
            except SdError:
                continue  # gone since it was tagged
            found.append(replace(entry, entry_id=entry_id))
        return found

    async def tagged(self, nested: bool = True) -> builtins.list[TaggedFile]:
        """What carries the tag (or, `nested`, one below it), itself or through its content, as the index knows it."""
        from sdcore import tags

        def run(library: Library) -> builtins.list[TaggedFile]:
            found = tags.entries(library, self._tag, nested)
            ids = sorted({t.entry_id for t in found})
            at = {e.entry_id: e.path for e in _entries_by_id(library, self._api.device.id, ids)}
            return [TaggedFile(at[t.entry_id], t.tag, t.via_content) for t in found if t.entry_id in at]

        return await self._in_thread(run)

    async def get(self) -> Tag:
        """The tag (raises NotFound, saying how to make it, when there is none of that name)."""
        from sdcore import tags

        return await self._in_thread(tags.get, self._tag)

    async def rename(self, new_name: str) -> Tag:
        from sdcore import tags

        return await self._in_thread(tags.rename, self._tag, new_name)

    async def recolor(self, color: str | None) -> Tag:
        """Give the tag a colour (#rrggbb, #rgb or a colour name; None or "none" takes it off)."""
        from sdcore import tags

        return await self._in_thread(tags.recolor, self._tag, color)

    async def delete(self, recursive: bool = False) -> int:
        from sdcore import tags

        return await self._in_thread(tags.delete, self._tag, recursive)


class Notes(_Part):
    """Notes on entries (searched with names); every text a note held is kept (`history`, `restore`)."""

    async def history(self, path: SdPath) -> builtins.list[NoteVersion]:
        """Every text the note of `path` held, on any device of the library, oldest first."""
        from sdcore import metadata

        (entry_id,) = await self._entry_ids([path])
        names = await self._device_names()
        return [
            NoteVersion(v.number, v.value, v.when, names.get(v.origin, v.origin[:8]), v.current)
            for v in await self._in_thread(metadata.note_history, entry_id)
        ]

    async def restore(self, path: SdPath, number: int) -> str | None:
        """Put back version `number` of `history` (a new edit: the text it replaces stays in the history too)."""
        from sdcore import metadata

        (entry_id,) = await self._entry_ids([path])
        return await self._in_thread(metadata.restore_note, entry_id, number)

    async def get(self, path: SdPath) -> str | None:
        from sdcore import metadata

        if await self._elsewhere(path):
            async with self._on_owner(path.device_id, path) as there:
                return await there.notes.get(path)  # type: ignore[no-any-return]
        (entry_id,) = await self._entry_ids([path])
        return await self._in_thread(metadata.note, entry_id)

    async def set(self, path: SdPath, text: str | None) -> None:
        """Write the note of `path` (None or blank removes it)."""
        from sdcore import metadata

        if await self._elsewhere(path):
            async with self._on_owner(path.device_id, path) as there:
                await there.notes.set(path, text)
            return
        (entry_id,) = await self._entry_ids([path])

        def run(library: Library) -> None:
            from sdcore.ops import undo

            before = metadata.note(library, entry_id)
            metadata.set_note(library, entry_id, text)
            after = metadata.note(library, entry_id)
            if after != before:
                what = f"{'note on' if after else 'remove the note of'} {display(path.name)}"
                undo.record(library, "note", what, {"entry": entry_id, "before": before, "after": after})

        await self._in_thread(run)

    async def _elsewhere(self, path: SdPath) -> bool:
        """Whether `path` is a file of another device this device's copy of the library does not know yet."""
        _, elsewhere = await self._split([path])
        return bool(elsewhere)


class Favourites(_Part):
    """Favourite files and folders."""

    async def list(self) -> builtins.list[Entry]:
        """The favourites on this device, oldest favourite first."""
        from sdcore import metadata

        def run(library: Library) -> builtins.list[Entry]:
            return _entries_by_id(library, self._api.device.id, metadata.favorites(library))

        return await self._in_thread(run)

    async def set(self, *paths: SdPath, favourite: bool = True) -> int:
        """Mark (or unmark) these as favourites; how many changed."""
        from sdcore import metadata

        known, elsewhere = await self._split(paths)
        count = await self._in_thread(metadata.set_favorite, await self._entry_ids(known), favourite)
        for device, there in elsewhere.items():
            async with self._on_owner(device, there[0]) as owner:
                count += await owner.favourites.set(*there, favourite=favourite)
        return count

    async def toggle(self, *paths: SdPath) -> bool:
        """Favourite them, or un-favourite them when the first one is; the new state."""
        from sdcore import metadata

        if not paths:
            raise SdError("nothing to mark as favourite: name a file or folder")
        _, elsewhere = await self._split(paths[:1])
        if elsewhere:  # the first one decides, on its device
            async with self._on_owner(paths[0].device_id, paths[0]) as owner:
                now: bool = await owner.favourites.toggle(paths[0])
        else:
            (first,) = await self._entry_ids(paths[:1])
            now = not await self._in_thread(metadata.is_favorite, first)
        if elsewhere and len(paths) > 1:
            await self.set(*paths[1:], favourite=now)
        elif not elsewhere:
            await self.set(*paths, favourite=now)
        return now


class SavedSearches(_Part):
    """Searches kept under a name."""

    async def list(self) -> builtins.list[SavedSearch]:
        from sdcore import search

        return await self._in_thread(search.saved)

    async def get(self, name: str) -> SavedSearch:
        """A saved search by name (raises NotFound, saying how to list them)."""
        from sdcore import search

        return await self._in_thread(search.get_saved, name)

    async def save(self, name: str, query: str | Query) -> SavedSearch:
        from sdcore import search

        q = search.Query(query) if isinstance(query, str) else query
        return await self._in_thread(search.save, name, q)

    async def run(self, name: str) -> builtins.list[Entry]:
        from sdcore import search

        def run(library: Library) -> builtins.list[Any]:
            q = search.get_saved(library, name).query
            return search.run(library, q)

        return [hit_entry(h) for h in await self._in_thread(run)]

    async def forget(self, name: str) -> None:
        from sdcore import search

        await self._in_thread(search.forget, name)


class Locations(_Part):
    """The folders the library indexes."""

    async def list(self) -> builtins.list[Location]:
        library = await self._library()
        return await in_thread(library, library.locations.list)

    async def get(self, key: int | str) -> Location:
        """A location by id, name or path (raises NotFound, saying how to list them)."""
        library = await self._library()
        return await in_thread(library, library.locations.get, key)

    async def containing(self, path: SdPath) -> Location | None:
        """The location holding `path` (None: it is in no location)."""
        library = await self._library()
        found = await in_thread(library, library.locations.containing, path.path, path.device_id)
        return found[0] if found is not None else None

    async def add(
        self,
        path: SdPath | str,
        mode: str = "content",
        name: str | None = None,
        *,
        ignore: Sequence[str] = (),
        index: bool = False,
    ) -> Location:
        """Make a folder of this device a location (`ignore`: globs it does not index); with `index`, index it
        now and wait (the jobs show it; `index()` starts the job to follow instead)."""
        library = await self._library()
        folder = path.path if isinstance(path, SdPath) else path
        location = await in_thread(library, library.locations.add, folder, mode, name, builtins.list(ignore))
        if location.volume_id:
            self._api._core.watch_mounts()  # the disk's coming and going moves the location or makes it offline
        if index:
            from sdcore.index.indexer import index_location

            await wait_for(library, await index_location(library, location))
        return location

    async def index(
        self, key: int | str, *, scope: str = "recursive", below: SdPath | None = None, confirm_drop: bool = False
    ) -> JobRecord:
        """Start indexing a location (or, with `below`, one of its folders; scope current: one level); the job.
        A location's interrupted or paused index job is resumed, a running one given, rather than a second.
        `confirm_drop`: a location on a disk that waits for a decision (most of its files are not on the disk
        mounted as it) forgets what is not there."""
        from sdcore.index.indexer import IndexJob, index_location

        library = await self._library()
        location = await self.get(key)
        if below is None:
            return await started(library, await index_location(library, location, scope, confirm_drop=confirm_drop))
        rel = location.relative(below.path)
        if rel is None or below.device_id != location.device_id:
            raise NotFound(f"{display(below.path)} is not in location {location.id} ({location.name})")
        return await started(library, await library.jobs.start(IndexJob(location.id, scope=scope, subpaths=[rel])))

    async def set_mode(self, key: int | str, mode: str) -> Location:
        """Index the location in another mode from its next index (`index()` starts one)."""
        library = await self._library()
        return await in_thread(library, library.locations.set_mode, key, mode)

    async def set_ignore(self, key: int | str, patterns: Sequence[str]) -> Location:
        """The globs the location does not index, from its next index."""
        library = await self._library()
        location = await self.get(key)
        await in_thread(library, library.locations.set_ignore, location.id, builtins.list(patterns))
        return await self.get(location.id)

    async def remove(self, key: int | str) -> Location:
        library = await self._library()
        return await in_thread(library, library.locations.remove, key)


class Jobs(_Part):
    """The library's jobs: `await lib.jobs.pause(job_id)`."""

    async def list(self, states: tuple[str, ...] | None = None, limit: int = 200) -> builtins.list[JobRecord]:
        library = await self._library()
        return await in_thread(library, library.jobs.list, states, limit)

    async def get(self, job_id: str) -> JobRecord:
        library = await self._library()
        return await in_thread(library, library.jobs.get, job_id)

    async def wait(self, job_id: str) -> JobRecord:
        """Wait until the job stops running (finished, paused, failed or canceled); its record."""
        return await (await self._library()).jobs.wait(job_id)

    async def route(self, job_id: str) -> JobRoute:
        """What the job works on: its sources and where they go (a copy, a move), what it deletes, renames or makes."""
        return await self._in_thread(_route, job_id)

    async def pause(self, job_id: str) -> None:
        (await self._library()).jobs.pause(job_id)

    async def resume(self, job_id: str) -> None:
        await (await self._library()).jobs.resume(job_id)

    async def cancel(self, job_id: str) -> None:
        (await self._library()).jobs.cancel(job_id)


# -- reading entries -------------------------------------------------------------------------------------


def hit_entry(hit: Hit) -> Entry:
    """A search's hit as an entry (its kind by content, its location)."""
    directory, _, name = hit.path.rpartition("/")
    return Entry(SdPath(hit.device_id, directory or "/"), name or "/", hit.kind, hit.size or 0, hit.mtime or 0.0,
                 entry_id=hit.entry_id, object_kind=hit.object_kind, location_id=hit.location_id)


def _entries_by_id(library: Library, here: uuid.UUID, ids: Sequence[int]) -> builtins.list[Entry]:
    """Entries of the library by id, in that order, as the index knows them (gone ones left out); another device's
    (a global id) as the file of its catalogue kept here has it."""
    from sdcore.library.entries import paths_of
    from sdcore.sync.kept_entries import sources

    paths = paths_of(library, ids)
    devices = {loc.id: loc.device_id for loc in library.locations.list()}
    rows: dict[int, tuple] = {}
    for source, numbered in sources(library, ids):
        for start in range(0, len(numbered), 500):
            chunk = numbered[start : start + 500]
            for row in source.conn.execute(
                "SELECT e.id, e.location_id, e.kind, e.size, e.mtime, e.inode, e.mode, e.link_target, c.cas_id"
                " FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id"
                f" WHERE e.id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                location_id = source.location(row[1])
                if location_id is not None:
                    rows[row[0] | source.high] = (row[0] | source.high, location_id, *row[2:])
    found = []
    for entry_id in ids:
        row, path = rows.get(entry_id), paths.get(entry_id)
        if row is None or path is None:
            continue
        where = SdPath(devices.get(row[1], here), path)
        found.append(
            Entry(where.parent if where.path != "/" else where, where.name, row[2], row[3] or 0, row[4] or 0.0,
                  row[5] or 0, row[6] or 0, from_db(row[7]) if row[7] else None, entry_id, row[8],
                  location_id=row[1])
        )
    return found


def _owner_ids(library: Library, ids: builtins.list[int]) -> dict[int, int]:
    """Entry id here -> the id its owner device has for it (a global id of a kept catalogue's entry: below its slot)."""
    from sdcore.sync.catalogue import ref_of

    conn = library.read()
    return {i: ref_of(conn, i).entry_id for i in ids}


def _holds_files_of(library: Library, device_id: str) -> bool:
    """Whether the library is shared with that device (a member), or holds its locations (its catalogue, as in a
    library folder copied from it)."""
    from sdcore.sync.members import Members

    return Members(library.folder).holds(device_id) or library.read().execute(
        "SELECT 1 FROM locations WHERE device_id = ? LIMIT 1", (device_id,)
    ).fetchone() is not None


def _route(library: Library, job_id: str) -> JobRoute:
    job: Any = library.jobs.state_of(job_id)

    def paths(texts: Sequence[str]) -> tuple[SdPath, ...]:
        return tuple(SdPath.parse_canonical(t) for t in texts)

    if getattr(job, "targets", None):  # a copy or a move
        return JobRoute(paths(job.sources), paths(job.targets[:1])[0].parent)
    if getattr(job, "paths", None) is not None:  # a delete
        return JobRoute(paths(job.paths), to_trash=not job.permanent)
    if getattr(job, "new_name", None) is not None:  # a rename
        return JobRoute(paths([job.path]), new_name=job.new_name)
    if getattr(job, "path", None):  # a mkdir
        return JobRoute(destination=SdPath.parse_canonical(job.path))
    return JobRoute()


def _details(library: Library, entry_id: int) -> EntryDetails | None:
    from sdcore import dedup, metadata, tags
    from sdcore.sync.kept_entries import sources

    row = None
    for source, (numbered,) in sources(library, [entry_id]):  # (another device's: from its kept catalogue)
        row = source.conn.execute("SELECT kind, size, files FROM entries WHERE id = ?", (numbered,)).fetchone()
    if row is None:  # removed (the watcher saw it go) since `details` found it
        return None
    kind, size, files = row
    return EntryDetails(
        entry_id,
        kind,
        files if kind == "dir" else None,
        size or 0,
        tuple(t.tag for t in tags.of(library, entry_id)),
        metadata.is_favorite(library, entry_id),
        metadata.note(library, entry_id),
        tuple(dedup.copies_of(library, entry_id)),
    )
