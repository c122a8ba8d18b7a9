"""Api: the root of the core API in-process (paths, listings, events), with its file operations and devices."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sdcore.api.admins import Admins
from sdcore.api.library import LibraryHandle, hit_entry, in_thread, started, wait_for
from sdcore.api.records import (
    DeviceId,
    DeviceInfo,
    Emptied,
    Entry,
    Health,
    Offline,
    PairedDevice,
    Preview,
    Renamed,
    SharedFolder,
    Trashed,
)
from sdcore.api.text import label
from sdcore.api.undo import Undo
from sdcore.errors import NotAdmin, NotFound, SdError
from sdcore.events import EntriesChanged, Event
from sdcore.fs import base as fs_base
from sdcore.fs.base import FsError
from sdcore.sdpath import SdPath, display

if TYPE_CHECKING:
    from sdcore.api.client import RemoteApi
    from sdcore.core import Core
    from sdcore.dedup import Duplicates
    from sdcore.fs.archive import ArchiveFS
    from sdcore.fs.base import FileSystem
    from sdcore.jobs.manager import JobRecord
    from sdcore.library.library import Library
    from sdcore.net import Network
    from sdcore.net.trust import Peer
    from sdcore.search import Query
    from sdcore.volumes import Volume


class Api:
    """The core as front ends reach it: `api.library().tags["work"].add(path)`, `await api.ops.copy(...)`.

    `library`: the library `api.library()` and `api.ops` use (name or id; None: the core's default one).
    `live`: a long-running front end (the explorer, `sd serve`): a library opened here resumes its cut-off
    jobs and watches its locations.
    """

    def __init__(self, core: Core, *, library: str | None = None, live: bool = False) -> None:
        self._core = core
        self._library_name = library
        self._live = live
        self._libraries: dict[str | None, Library] = {}
        self._opening = asyncio.Lock()
        self.device = DeviceInfo(core.device.id, core.device.name)
        """This device: the one the core runs on."""
        self._parts()

    def _parts(self) -> None:
        self.ops = Ops(self, self._library_name)
        self.devices = Devices(self)
        self.trash = Trash(self)
        self.admins = Admins(self)
        self.undo = Undo(self, self._library_name)
        """The undo history of the api's library: `await api.undo.undo()` undoes the last step."""

    async def _for_client(self, name: object) -> Api:
        """The api a front end attached to this core uses: the library it names (--library), else the default
        library as it is now (`sd library use` while this core runs moves it)."""
        if not isinstance(name, str):
            try:
                name = str((await asyncio.to_thread(self._core.library, None)).id)
            except SdError:  # damaged, or on a disk that is out: said when the front end uses it
                return self
        return self._for_library(name)

    def _for_library(self, name: str | None) -> Api:
        """This api with `name` as its library (a front end attached with --library): listings, search and
        catalogues of other devices come from that library. The same core, the libraries opened shared."""
        if not name or name == self._library_name:
            return self
        view = copy.copy(self)
        view._library_name = name
        view._parts()
        return view

    def library(self, name: str | None = None) -> LibraryHandle:
        """A library by name or id (None: the one this api was opened with); opened when first used."""
        return LibraryHandle(self, name or self._library_name)

    async def _open(self, name: str | None) -> Library:
        """The open library `name` (opened once, in a thread: it reads SQLite)."""
        async with self._opening:
            library = self._libraries.get(name)
            if library is None:
                library = await asyncio.to_thread(self._core.library, name)
                if self._live:
                    await self._core.go_live(library)  # resume cut-off jobs, watch the locations (live panes)
                elif any(loc.volume_id for loc in library.locations.list()):
                    from sdcore.library.volume_locations import follow

                    await in_thread(library, follow, library)  # a disk mounted elsewhere: its locations are there
                self._libraries[name] = library
            return library

    async def health(self) -> Health:
        """That the core answers, and where its SSH server listens (a client checks that it answers too)."""
        network = self._core.network  # not made here: a core that never listened has no SSH server to check
        return Health(self.device, os.getpid(), getattr(network, "local_address", None))

    # -- paths and listings --------------------------------------------------------------------

    async def resolve(self, text: str) -> SdPath:
        """A path as a user types it: a plain local path, `DEVICE:/path` or `sd://DEVICE_ID/path`."""
        try:
            return await asyncio.to_thread(self._core.resolve, text)  # a device name needs the network: its import is slow
        except NotFound:
            known = await self._catalogue_device(text)  # a device known only from the library's catalogue
            if known is None:
                raise
            return known

    async def _catalogue_device(self, text: str) -> SdPath | None:
        """`DEVICE:/path` for a device the library knows from its catalogue (not paired), by name or id prefix."""
        from sdcore.sdpath import split_remote
        from sdcore.sync.catalogue import devices

        remote = split_remote(text)
        if remote is None or not self._core.libraries.list():
            return None
        name, path = remote
        library = await self._open(self._library_name)
        known = await in_thread(library, devices, library)
        fits = [d for d, n in known.items() if n == name] or [d for d in known if str(d).startswith(name.lower())]
        return SdPath(fits[0], path) if len(fits) == 1 else None

    async def label(self, path: SdPath) -> str:
        """A path for people: `~/docs` here, `laptop:/home/me/docs` on a paired device."""
        names = {d.id: d.name for d in await self.devices.list()}
        library = self._libraries.get(self._library_name)
        if path.device_id != self.device.id and path.device_id not in names and library is not None:
            from sdcore.sync.catalogue import devices  # a device known from the library's catalogue only

            names.update(await in_thread(library, devices, library))
        return label(path, self.device.id, names)

    async def browse(self, path: SdPath, batch_size: int = 1000, *, index: bool = False) -> AsyncIterator[list[Entry]]:
        """A directory's entries in batches, straight from its device (never waits on indexing).

        With `index`: a directory of this device that the library has indexed is listed as the index knows it
        (entry and content ids, object kinds, folders' file counts), and anything else with object kinds.
        """
        members = self._archive(path)
        if members is not None:  # an archive file of this device: its members, as a read-only folder
            async for batch in members.list_dir(path.path, batch_size):
                yield [Entry.of(path, e) for e in batch]
            return
        offline = await self.offline(path)
        if offline is not None:  # a device out of reach: its files as its catalogue here has them
            async for entries in self._catalogue_listing(path):
                yield entries
            return
        async with self._core_holding_archive(path) as remote:
            if remote is not None:  # an archive of a paired device: listed by its core, there
                listed = 0
                async for entries in remote.browse(path, batch_size):
                    listed += len(entries)
                    if listed > fs_base.MAX_LISTED:
                        raise SdError(fs_base.too_many_listed(path.path))
                    yield entries
                return
        if index:
            async for entries in self._listing(path):
                yield entries
            return
        try:
            async for batch in self._core.fs_for(path.device_id).list_dir(path.path, batch_size):
                yield [Entry.of(path, e) for e in batch]
        except FsError:
            from sdcore.fs.archive_path import is_archive_name

            if self._core.is_local(path) or not is_archive_name(path.name):
                raise
            raise SdError(f"{display(path.name)} is an archive of a device that lets this one use its files, not its "
                          "core: its members are listed there, or here once it is copied here (F5)") from None

    async def peek(self, path: SdPath, limit: int) -> tuple[list[Entry], bool]:
        """A glance at a folder or an archive (a preview's): its first `limit` entries, and whether that is all of
        them. An archive not yet read is read no further than its first `limit` members (a tar of 100,000 members
        is not unpacked for a glance); one already read gives its whole folder."""
        members = self._archive(path)
        if members is not None:
            found, complete = await asyncio.to_thread(members.peek, path.path, limit)
            return [Entry.of(path, e) for e in found[:limit]], complete and len(found) <= limit
        entries: list[Entry] = []
        async with contextlib.aclosing(cast(AsyncGenerator[list[Entry], None], self.browse(path))) as batches:
            async for batch in batches:
                entries.extend(batch)
                if len(entries) >= limit:
                    return entries[:limit], False
        return entries, True

    async def usage(self, folder: SdPath, *, apparent: bool = False) -> AsyncIterator[list[Entry]]:
        """A folder's children with what each holds, as ncdu shows them: a folder's `size` is what is below it and
        `files` how many files. First the listing, then each folder again as its walk ends (a folder with `files`
        None is still being counted). Stop iterating to stop the walk.

        What is counted is the disk's blocks, as `du` counts them (a hard-linked file once); with `apparent`, the
        sizes the files say (`du --apparent-size`): those the index sums, so a location's folders come at once. A
        paired device's folders, walked through its files, and an archive's members give apparent sizes only."""
        from sdcore import usage

        entries = [e async for batch in self.browse(folder, index=True) for e in batch]
        local = self._core.is_local(folder) and self._archive(folder) is None
        seen: usage.Seen = set()
        if local and not apparent:  # the index sums apparent sizes: every folder is walked, every file stat'ed
            files = [e for e in entries if not e.is_dir]
            held = await asyncio.to_thread(usage.files_held, [e.path.path for e in files], False, seen)
            blocks = {e.name: n for e, n in zip(files, held, strict=True)}
            entries = [replace(e, files=None) if e.is_dir else replace(e, size=blocks[e.name] or 0) for e in entries]
        yield entries
        walked = [e for e in entries if e.is_dir and e.files is None]
        if walked and self._archive(folder) is not None:  # an archive's folders: summed from its index
            from sdcore.fs import archive
            from sdcore.fs.archive_path import split

            file, inner = split(folder.path) or (folder.path, "/")
            idx = await asyncio.to_thread(archive.index, file)
            yield [replace(e, size=s, files=n) for e in walked for s, n in [idx.total_of(f"{inner.rstrip('/')}/{e.name}")]]
            return
        fs = None if self._core.is_local(folder) else self._core.fs_for(folder.device_id)
        for entry in walked:
            size, count = await usage.total(fs, entry.path.path, apparent or not local, seen)
            yield [replace(entry, size=size, files=count)]

    async def offline(self, path: SdPath) -> Offline | None:
        """When `path` is on another device that cannot be reached now and the library holds its catalogue: that
        device and how old its catalogue is (listings of it come from there, read-only); else None."""
        if self._core.is_local(path):
            return await self._offline_volume(path)
        from sdcore.sync import catalogue  # not before: a local listing (`sd ls`) needs none of it

        if not self._core.libraries.list():
            return None
        library = await self._open(self._library_name)
        when = await catalogue.offline_since(library, path.device_id)
        if when is None:
            return None
        name = await in_thread(library, catalogue.device_name, library, path.device_id)
        return Offline(DeviceInfo(path.device_id, name), when)

    async def _offline_volume(self, path: SdPath) -> Offline | None:
        """When `path` is in a location on a disk that is out: that disk's label and when it was last seen."""
        library = self._libraries.get(self._library_name)  # open already in a front end: each listing asks this
        if library is None:
            if not self._core.libraries.list():
                return None
            library = await self._open(self._library_name)
        found = library.locations.containing(path.path)
        if found is None or not found[0].volume_id:
            return None
        from sdcore.library import volume_locations

        out = await in_thread(library, volume_locations.offline, library, found[0])
        return None if out is None else Offline(self.device, out.last_seen or 0.0, out.label)

    async def _catalogue_listing(self, path: SdPath) -> AsyncIterator[list[Entry]]:
        from sdcore.index.listing import list_indexed

        library = await self._open(self._library_name)
        entries = await in_thread(library, list_indexed, library, path.path, path.device_id)
        if entries is None:
            from sdcore.sync.catalogue import device_name

            name = device_name(library, path.device_id)
            raise NotFound(
                f"{display(path.path)} is not in the catalogue of {name}, which is offline; only its indexed "
                "folders can be listed until it is back"
            )
        for i in range(0, max(len(entries), 1), 1000):
            yield entries[i : i + 1000]

    async def _listing(self, path: SdPath) -> AsyncIterator[list[Entry]]:
        from sdcore.index.listing import listing

        local = self._core.is_local(path)
        library = await self._open(self._library_name) if local and self._core.libraries.list() else None
        async for batch in listing(self._core, path, library):
            yield batch

    async def stat(self, path: SdPath, *, cas_id: bool = False) -> Entry:
        """The entry at `path` (a final symlink not followed); with `cas_id`, a file's content id too."""
        members = self._archive(path, member=True)
        if members is not None:
            return Entry.at(path, await members.stat(path.path))
        async with self._core_holding_archive(path) as remote:
            if remote is not None:
                return await remote.stat(path)  # type: ignore[no-any-return]
        fs = self._core.fs_for(path.device_id)
        entry = Entry.at(path, await fs.stat(path.path))
        if cas_id and entry.kind == "file":
            entry = replace(entry, cas_id=await fs.cas_id(path.path))
        return entry

    async def read(self, path: SdPath, offset: int = 0) -> AsyncIterator[bytes]:
        """A file's bytes from `offset`, in chunks."""
        try:
            async with self._core_holding_archive(path) as remote:
                if remote is not None:
                    async for chunk in remote.read(path, offset):
                        yield chunk
                    return
            fs = self._archive(path, member=True) or self._core.fs_for(path.device_id)
            async for chunk in fs.open_read(path.path, offset):
                yield chunk
        except SdError:
            offline = await self._offline(path, "read")
            if offline is None:
                raise
            raise offline from None

    async def _offline(self, path: SdPath, what: str) -> SdError | None:
        """For a file of a device out of reach whose catalogue the library holds: the error that says so (its files
        listed and searched from the catalogue, not `what`), as a listing of it says it; None otherwise."""
        if self._core.is_local(path):
            return None
        off = await self.offline(path)
        if off is None:
            return None
        from sdcore.sync.catalogue import DeviceOffline

        return DeviceOffline(f"{display(off.device.name)} is {off.describe()}: its files are listed and searched from"
                             f" its catalogue, not {what}")  # fmt: skip

    @contextlib.asynccontextmanager
    async def _core_holding_archive(self, path: SdPath) -> AsyncIterator[RemoteApi | None]:
        """The core of the paired device `path` is on, when the path goes through a file named like an archive
        there (its members are read by that core: only the listing crosses), its session closed at the end of the
        block; None for any other path, and for a device that does not trust this one fully (it offers its files,
        not its core)."""
        from sdcore.fs.archive_path import is_archive_name

        async with contextlib.AsyncExitStack() as session:
            remote = None
            if not self._core.is_local(path) and any(is_archive_name(part) for part in path.path.split("/")):
                with suppress(NotAdmin):
                    remote = await session.enter_async_context((await self.devices._network()).core_session(path.device_id))
            yield remote

    async def preview(self, path: SdPath, width: int, height: int) -> Preview:
        """What can be shown of a file beyond its first bytes (`sdcore.preview`): its picture fitted in `width` x
        `height` pixels (from the library's thumbnail of it where there is one), a PDF's first page, a recording's
        duration and codecs. Made on the device that holds the file: a paired device's picture crosses as pixels."""
        from sdcore import preview

        box = (max(1, min(width, 512)), max(1, min(height, 512)))  # a client asks for a preview, not a copy
        if not self._core.is_local(path):
            network = await self.devices._network()
            try:
                made = await network.call(path.device_id, "preview", path=os.fsencode(path.path), box=list(box))
                return preview.from_wire(made, box)
            except SdError as exc:
                return Preview(note=str(await self._offline(path, "shown") or f"no preview from that device: {exc}"))
        if self._archive(path, member=True) is not None:
            return Preview(note="inside an archive: F5 unpacks it to see it")
        thumbnail = await self._thumbnail(path) if preview.extension_of(path.name) in preview.IMAGES else None
        return await asyncio.to_thread(preview.preview, path.path, box, thumbnail)

    async def _thumbnail(self, path: SdPath) -> Path | None:
        """The thumbnail the library made of this file's content when it indexed it deeply, if any."""
        from sdcore.index.media import thumbnail_path

        if not self._core.libraries.list():
            return None
        try:
            cas_id = await self._core.fs_for(path.device_id).cas_id(path.path)
        except SdError:
            return None
        library = await self._open(self._library_name)
        found = thumbnail_path(library.thumbnails, cas_id) if cas_id else None
        return found if found is not None and found.exists() else None

    def _archive(self, path: SdPath, *, member: bool = False) -> ArchiveFS | None:
        """The archive reader when `path` is an archive file of this device (`member`: a member inside one)."""
        if not self._core.is_local(path):
            return None
        from sdcore.fs.archive_path import split

        found = split(path.path)
        if found is None or (member and found[1] == "/"):
            return None
        from sdcore.fs.archive import ArchiveFS

        return ArchiveFS()

    async def duplicates_in(
        self, folders: builtins.list[SdPath], min_size: int = 1, include_empty: bool = False
    ) -> Duplicates:
        """Files with the same content under folders of this device, read from disk (indexed or not, nothing
        written): grouped by size and a hash of their start, proven by a full BLAKE3."""
        from sdcore import dedup

        elsewhere = [f for f in folders if f.device_id != self.device.id]
        if elsewhere:
            raise SdError(
                f"{display(elsewhere[0].path)} is on another device; index it there, or check it with `sd dupes` there"
            )
        return await asyncio.to_thread(dedup.find_in, [f.path for f in folders], min_size, include_empty)

    async def volumes(self) -> list[Volume]:
        """The volumes mounted on this device now; from this call on, VolumesChanged is published on the
        core's events when one is mounted or unmounted."""
        from sdcore.volumes import list_volumes

        self._core.watch_mounts()
        return await asyncio.to_thread(list_volumes, self._core.mount_table)

    async def eject(self, name: str) -> Volume:
        """Unmount the volume `name` names (mount point, label, device or id); raises with the reason when it
        stays mounted (files open on it, a system volume)."""
        from sdcore import volumes

        volume = volumes.find(await self.volumes(), name)
        volumes.refuse_if_used(volume, self._jobs_using_paths())
        await asyncio.to_thread(volumes.eject, volume)
        return volume

    def _jobs_using_paths(self) -> builtins.list[tuple[str, builtins.list[str]]]:
        """Each running job of this device's open libraries: what it is, and the local paths it reads or writes."""
        here = self.device.id
        found = []
        for library in self._core.libraries.opened():
            for record in library.jobs.list(states=("queued", "running")):
                if not library.jobs.is_running(record.id):
                    continue
                job = library.jobs.job(record.id)
                paths = [p for p in map(SdPath.parse_canonical, job.used_paths()) if p.device_id == here]
                texts = [p.path for p in paths]
                if record.location_id is not None:
                    with suppress(SdError):
                        location = library.locations.get(record.location_id)
                        if location.device_id == here:
                            texts.append(location.path)
                found.append((job.describe(), texts))
        return found

    # -- events ------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Every event the core publishes, as it publishes it (progress coalesced while queued)."""
        with self._core.bus.subscribe() as events:
            async for event in events:
                yield event

    async def watch(self, directory: SdPath) -> AsyncIterator[EntriesChanged]:
        """The changes of one directory while it is iterated (stop iterating when the directory is left)."""
        with self._core.bus.subscribe(EntriesChanged) as events:
            watch = self._core.watch(directory)  # a directory outside every location is watched too
            try:
                async for event in events:
                    assert isinstance(event, EntriesChanged)
                    if event.device_id == directory.device_id and event.directory == directory.path:
                        yield event
            finally:
                if watch is not None:
                    watch.close()


class Ops:
    """File operations, as jobs of a library (`lib.ops`; `api.ops`: the api's library): `await api.ops.trash(paths)`."""

    def __init__(self, api: Api, library: str | None = None) -> None:
        self._api = api
        self._library_name = library

    async def _library(self) -> Library:
        return await self._api._open(self._library_name)

    async def copy(
        self,
        sources: builtins.list[SdPath],
        destination: SdPath,
        *,
        on_conflict: str = "fail",
        verify: bool = False,
        unfit_names: str = "fail",
    ) -> JobRecord:
        """Start copying `sources` into folder `destination` (or to that name, for one source); the job
        (`await lib.jobs.wait(job.id)` waits for it: its `.result` is a CopyResult). `unfit_names`: names the
        destination cannot hold (FAT, exFAT) fail the job, or are renamed (`a:b` -> `a_b`) or skipped."""
        from sdcore import ops

        library = await self._library()
        self._refuse_writing_into([destination])
        await self._refuse_members_of_remote_archives(sources)
        members = [s for s in sources if ops.inside_archive(s, self._api.device.id) is not None]
        if members:  # copying out of an archive unpacks its members
            if len(members) < len(sources):
                raise SdError("copy the members of an archive apart from other files: they are unpacked, not copied")
            job = await ops.extract(library, sources, destination, on_conflict=on_conflict, unfit_names=unfit_names)
            return await started(library, job)
        job = await ops.copy(
            library, sources, destination, on_conflict=on_conflict, verify=verify, unfit_names=unfit_names
        )
        return await started(library, job)

    async def _refuse_members_of_remote_archives(self, sources: builtins.list[SdPath]) -> None:
        """A member of an archive of a paired device is unpacked by that device's core, into its own folders."""
        from sdcore.fs.archive_path import is_archive_name

        for source in sources:
            if source.device_id == self._api.device.id or not any(map(is_archive_name, source.path.split("/")[:-1])):
                continue
            try:
                await self._api._core.fs_for(source.device_id).stat(source.path)
            except NotFound:
                raise
            except SdError:  # not a directory: a component is an archive file
                raise SdError(
                    f"{display(source.path)} is inside an archive on another device, which unpacks it there: copy it "
                    "to a folder of that device first (F5 with both panes there, or `sd --device NAME cp`)"
                ) from None

    def _refuse_writing_into(self, paths: builtins.list[SdPath]) -> None:
        """Archives open as folders, read-only: nothing is written, moved or deleted inside one."""
        from sdcore import ops

        for path in paths:
            found = ops.inside_archive(path, self._api.device.id)
            if found is not None:
                raise SdError(
                    f"{display(path.path)} is inside an archive, which is read-only here: "
                    "copy (F5, sd cp) its members to a folder and change them there"
                )

    async def move(
        self,
        sources: builtins.list[SdPath],
        destination: SdPath,
        *,
        on_conflict: str = "fail",
        unfit_names: str = "fail",
    ) -> JobRecord:
        """Start moving `sources` into folder `destination`; the job."""
        from sdcore import ops

        library = await self._library()
        self._refuse_writing_into([*sources, destination])
        job = await ops.move(library, sources, destination, on_conflict=on_conflict, unfit_names=unfit_names)
        return await started(library, job)

    async def unfit_names(self, sources: builtins.list[SdPath], destination: SdPath) -> builtins.list[str]:
        """The names of `sources` (their trees too) that `destination`'s filesystem cannot hold (FAT, exFAT:
        `a:b`, `notes.`, `README` beside `readme`), as they would land; none on a filesystem without limits."""
        from sdcore.ops import limits

        core = self._api._core
        held = await limits.limits_of(core.fs_for(destination.device_id), destination.path)  # a paired device tells its own
        if held is None or not held.dos_names:
            return []
        found: builtins.list[str] = []
        for source in sources:
            members = self._api._archive(source, member=True)  # a member of an archive: listed by its reader
            fs = cast("FileSystem", members) if members is not None else core.fs_for(source.device_id)
            found += await limits.unfit_names_in(fs, source.path, source.name, await fs.stat(source.path))
        return found

    async def start_delete(self, paths: builtins.list[SdPath], *, permanent: bool = False) -> JobRecord:
        """Start sending `paths` to the trash (each device's own), or deleting them for good; the job (the same
        deletion paused or cut off before is carried on instead)."""
        from sdcore import ops

        self._refuse_writing_into(paths)
        library = await self._library()
        return await started(library, await ops.delete(library, paths, permanent=permanent))

    async def start_rename(self, path: SdPath, new_name: str) -> JobRecord:
        """Start renaming `path` within its folder; the job."""
        from sdcore import ops

        self._refuse_writing_into([path])
        library = await self._library()
        return await started(library, await ops.rename(library, path, new_name))

    async def start_rename_many(self, renames: builtins.list[tuple[SdPath, str]]) -> JobRecord | None:
        """Start giving each path its new name in its folder, as one job (a swap or a cycle of names is fine); the
        job, None when no name changes. A clash, a name that is not one, a file gone: refused before any rename."""
        from sdcore import ops

        library = await self._library()
        job_id = await ops.rename_many(library, [(p, n) for p, n in renames])
        return None if job_id is None else await started(library, job_id)

    async def rename_many(self, renames: builtins.list[tuple[SdPath, str]]) -> int:
        """Rename many, and wait (see `start_rename_many`); how many names changed."""
        job = await self.start_rename_many(renames)
        if job is None:
            return 0
        await wait_for(await self._library(), job.id)
        return sum(1 for p, n in renames if p.name != n)

    async def start_mkdir(self, path: SdPath, *, parents: bool = False) -> JobRecord:
        """Start making a folder (what would fail is refused first); the job."""
        from sdcore import ops

        self._refuse_writing_into([path])
        library = await self._library()
        return await started(library, await ops.mkdir(library, path, parents=parents))

    async def trash(self, paths: builtins.list[SdPath]) -> builtins.list[Trashed]:
        """Move to the trash (each device's own) and wait; where each item went (`restore` puts it back)."""
        from sdcore.jobs.results import DeleteResult, Outcome

        record = await wait_for(await self._library(), (await self.start_delete(paths)).id)
        result = record.result
        items = result.items if isinstance(result, DeleteResult) else ()
        return [
            Trashed(p, SdPath(p.device_id, item.trashed_at))
            for p, item in zip(paths, items, strict=False)
            if item.outcome is Outcome.TRASHED and item.trashed_at is not None
        ]

    async def restore(self, items: builtins.list[Trashed]) -> builtins.list[SdPath]:
        """Put trashed items back where they were, on their own device; where they are now."""
        from sdcore.ops.follow import follow_changes

        restored = []
        try:
            for item in items:
                back = await self._api._core.fs_for(item.in_trash.device_id).restore(item.in_trash.path)
                restored.append(SdPath(item.in_trash.device_id, back))
        finally:  # what came back before a failure is announced too
            if restored:
                from sdcore.ops import undo

                library = await self._library()
                undo.restored(library, [i.in_trash for i in items[: len(restored)]])  # undone: out of the undo history
                await follow_changes(library, entries=restored)  # the index follows; panes hear it
        return restored

    async def delete(self, paths: builtins.list[SdPath]) -> None:
        """Delete permanently, and wait."""
        await wait_for(await self._library(), (await self.start_delete(paths, permanent=True)).id)

    async def rename(self, path: SdPath, new_name: str) -> SdPath:
        """Rename within its folder, and wait; the new path."""
        await wait_for(await self._library(), (await self.start_rename(path, new_name)).id)
        return path.parent.child(new_name)

    async def mkdir(self, path: SdPath, *, parents: bool = False) -> None:
        """Make a folder, and wait."""
        await wait_for(await self._library(), (await self.start_mkdir(path, parents=parents)).id)


class Trash:
    """This device's trash (the home trash and those of its other mounted filesystems): `await api.trash.list()`."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def list(self) -> builtins.list[Trashed]:
        """What the trash holds, most recently trashed first."""
        from sdcore.fs import trash

        here = self._api.device.id
        return [
            Trashed(SdPath(here, i.original_path), SdPath(here, i.path), i.deleted, i.kind, i.size)
            for i in await asyncio.to_thread(trash.list_trash)
        ]

    async def restore(self, item: SdPath | str, to: SdPath | None = None) -> SdPath:
        """Put a trashed item back where it was (or at `to`), never replacing anything; where it is now.

        `item`: where it was or where it lies in the trash (a paired device's: from that device's own trash),
        or its name in this device's trash.
        """
        from sdcore.fs import trash
        from sdcore.ops.follow import follow_changes

        here = self._api.device.id
        if isinstance(item, SdPath) and item.device_id != here:
            if to is not None:
                raise SdError("an item of a paired device's trash goes back where it was: restore it elsewhere there")
            back = await self._api._core.fs_for(item.device_id).restore(item.path)
            return SdPath(item.device_id, back)
        if to is not None and to.device_id != here:
            raise SdError(f"{display(to.path)} is on another device: an item of this device's trash goes back here")

        def run() -> str:
            items = trash.list_trash()
            if isinstance(item, SdPath):
                found = trash.find(item.path, items)
            else:
                named = [i for i in items if i.name == item]
                if not named:
                    raise NotFound(f"nothing in the trash matches {display(item)}; `sd trash list` shows what it holds")
                found = named[0]
            back = trash.restore(found, to.path if to is not None else None)
            undo.restored(library, [SdPath(here, found.path)])  # undone: out of the undo history
            return back

        from sdcore.ops import undo

        library = await self._api._open(self._api._library_name)
        back = await in_thread(library, run)
        await follow_changes(library, [os.path.dirname(back)])  # the index follows; panes hear it
        return SdPath(here, back)

    async def empty(self, older_than: float | None = None) -> Emptied:
        """Delete what the trash holds for good (only what went there more than `older_than` seconds ago)."""
        from sdcore.fs import trash

        return Emptied(*await asyncio.to_thread(trash.empty, None, older_than))


class Devices:
    """This device's network: paired devices, their places, pairing and Spacedrop."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def _network(self) -> Network:
        """The network's client side, attached on first use (in a thread: importing asyncssh takes a while)."""
        core = self._api._core
        if core.network is None:
            return await asyncio.to_thread(core.net)
        return core.net()

    async def attach(self) -> None:
        """Make paired devices reachable (`browse`, `copy` and `list` attach on first use too)."""
        await self._network()

    async def list(self) -> builtins.list[PairedDevice]:
        """The paired devices (none known until the network is attached: see `attach`)."""
        core = self._api._core
        if core.network is None:
            return []
        return [_paired(p) for p in core.net().trust.peers()]

    async def label(self, path: SdPath) -> str:
        """A path for people: `laptop:/home/me/docs` on a paired device, `~/docs` here."""
        return await self._api.label(path)

    async def connect(self, device: DeviceId) -> None:
        """Connect to a paired device now (raises when it cannot be reached); DeviceConnected follows."""
        await (await self._network()).link(device).connect()

    async def places(self, device: DeviceId) -> builtins.list[Entry]:
        """Where to start on a paired device: the folders it lets this device browse (its shares, or `/` for
        full trust) and, when it trusts this device fully, its library's locations. Offline: its locations as this
        library's catalogue of it has them (their listings come from there too)."""
        if await self._api.offline(SdPath(device, "/")) is not None:
            return await self._catalogue_places(device)
        network = await self._network()
        fs = network.fs_for(device)
        roots = await fs.roots()
        paths = list(roots)
        if "/" in roots:
            try:
                paths += [os.fsdecode(loc["path"]) for loc in await network.call(device, "locations")]
            except SdError:
                pass  # an older sdtui there: its roots are all there is to show
        places = []
        for path in dict.fromkeys(paths):
            try:
                places.append(Entry.at(SdPath(device, path), await fs.stat(path)))
            except SdError:
                continue  # a location that is not there (an unplugged disk)
        return places

    async def _catalogue_places(self, device: DeviceId) -> builtins.list[Entry]:
        library = await self._api._open(self._api._library_name)
        locations = await in_thread(library, library.locations.list)
        return [
            Entry(SdPath(device, loc.path).parent, os.path.basename(loc.path) or "/", "dir", 0, loc.last_scanned or 0.0,
                  location_id=loc.id)
            for loc in locations if loc.device_id == device
        ]  # fmt: skip

    async def search(self, device: str | DeviceId, query: str | Query) -> builtins.list[Entry]:
        """Search the library of a paired device (by name or id): what its index knows, on that device."""
        from sdcore import search

        network = await self._network()
        asked = network.resolve(device)  # its hits are on the device asked, whatever they say
        q = search.Query(query) if isinstance(query, str) else query
        found = await network.call(asked.id, "search", query=q.to_json())
        if not isinstance(found, builtins.list) or not all(
            isinstance(h, dict) and all(isinstance(h.get(k), t) for k, t in _HIT_FIELDS.items()) for h in found
        ):  # a device of another version, or a hostile one
            raise SdError(f"{display(asked.name)} answered the search with something other than files found; "
                          "if its sdtui is another version, update both")
        return [hit_entry(search.Hit(**{**{k: h[k] for k in _HIT_FIELDS}, "device_id": asked.id})) for h in found]

    async def default_port(self) -> int:
        """The port a device listens at for paired devices unless told otherwise."""
        from sdcore.net import DEFAULT_PORT

        return DEFAULT_PORT

    async def listen(self, address: str) -> str:
        """Let paired devices reach this one at HOST:PORT (port 0: any free one); the address it listens at."""
        network = await self._network()
        try:
            listening: str = await network.start(address)
        except OSError as exc:
            raise SdError(f"cannot listen on {address}: {exc.strerror or exc}") from None
        network.announce_soon()  # a device that paired by joining is reached from now on
        await self.keep_in_sync()  # a device others reach keeps its shared libraries in sync
        return listening

    async def keep_in_sync(self, when_shared: bool = False) -> None:
        """Keep the libraries shared with other devices in sync from now on: pull from each device that holds one
        what this device lacks, and tell them of changes here (`sd serve`, sdtui). `when_shared`: only if a library
        is shared now (nothing is started otherwise; sharing one later starts it)."""
        from sdcore.sync.members import Members
        from sdcore.sync.service import sync_of

        core = self._api._core
        if when_shared and not await asyncio.to_thread(
            lambda: any(Members(info.folder).current() for info in core.libraries.list())
        ):
            return
        await self._network()
        await sync_of(core).start()

    async def address(self) -> str | None:
        """Where this device listens for paired devices (None: it does not)."""
        return (await self._network()).address  # type: ignore[no-any-return]

    async def pair_code(self, trust: str = "full") -> str:
        """A fresh 12-word code for the next device that joins (`wait_paired` waits for it)."""
        return (await self._network()).pair_generate(trust)

    async def wait_paired(self) -> PairedDevice:
        """Wait for a device to join with the current code."""
        return _paired(await (await self._network()).wait_paired())

    async def check_code(self, code: str) -> str:
        """The pairing code as the 12 words it must be, checked here before any device is asked (a word left out or
        mistyped fails the words' checksum); a PairingError says what to type."""
        from sdcore.net.pairing import normalize_code

        return normalize_code(code)

    async def pair_join(self, code: str | builtins.list[str], host: str, trust: str = "full") -> PairedDevice:
        """Join a device that shows a pairing code, at HOST:PORT, trusting it `full` or `shared`."""
        return _paired(await (await self._network()).pair_join(code, host, trust=trust))

    async def unpair(self, device: str | DeviceId) -> PairedDevice:
        """Forget a paired device (by name, id or id prefix): it can no longer connect; its connections close."""
        return _paired(await (await self._network()).unpair(device))

    async def rename_this(self, name: str) -> Renamed:
        """Rename this device (blank: keep its name) and tell the reachable paired devices now (`api.device` of a
        client attached before keeps the name it learnt)."""
        core = self._api._core
        core.device.rename(name)
        self._api.device = DeviceInfo(core.device.id, core.device.name)
        network = await self._network()
        paired = network.devices()
        told = await network.announce() if paired else []
        return Renamed(core.device.name, tuple(told), len(paired))

    async def shares(self) -> builtins.list[str]:
        """The folders of this device that devices paired with `shared` trust may use."""
        return (await self._network()).trust.shares()  # type: ignore[no-any-return]

    async def share(self, path: str) -> SharedFolder:
        """Share a folder of this device (an absolute path, or relative to where the core runs), never its data dir
        or a folder in it; a folder that holds the data dir is shared without it."""
        trust = (await self._network()).trust
        real = trust.add_share(path)
        home = os.path.realpath(os.path.expanduser("~"))
        return SharedFolder(
            real, trust.data_dir if trust.holds_data_dir(real) else None,
            holds_home=(home + "/").startswith(real.rstrip("/") + "/"),
        )

    async def unshare(self, path: str) -> None:
        """Stop sharing a folder of this device."""
        (await self._network()).trust.remove_share(path)

    async def spacedrop_dir(self) -> SdPath:
        """Where files other devices send land on this device."""
        return SdPath(self._api.device.id, str((await self._network()).spacedrop_dir))

    async def send(self, device: str | DeviceId, paths: builtins.list[SdPath]) -> builtins.list[str]:
        """Spacedrop: send files of this device to a paired device (by name or id); the names sent."""
        elsewhere = [p for p in paths if p.device_id != self._api.device.id]
        if elsewhere:
            raise SdError("Spacedrop sends files of this device: copy the others here first")
        sent: builtins.list[str] = await (await self._network()).drop(device, [p.path for p in paths])
        return sent

    async def answer(self, drop_id: str, accept: bool) -> None:
        """Accept or decline the files a DropOffered event offers."""
        (await self._network()).answer_drop(drop_id, accept)


_HIT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "entry_id": int, "location_id": int, "path": str, "relative": str, "name": str, "kind": str,
    "object_kind": (str, type(None)), "size": (int, type(None)), "mtime": (int, float, type(None)),
}  # fmt: skip
"""What a paired device's search answers for each file found (sdcore.search.Hit's fields but its device), in order."""


def _paired(peer: Peer) -> PairedDevice:
    """A paired device as the API tells it."""
    return PairedDevice(peer.id, peer.name, peer.trust, peer.addresses, peer.public_key, peer.paired_at)
