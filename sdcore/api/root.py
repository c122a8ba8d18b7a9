"""Api: the root of the core API in-process (paths, listings, events), with its file operations and devices."""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from sdcore.api.library import LibraryHandle, wait_for
from sdcore.api.records import DeviceId, DeviceInfo, Entry, PairedDevice, Trashed
from sdcore.api.text import label
from sdcore.errors import SdError
from sdcore.events import EntriesChanged, Event
from sdcore.sdpath import SdPath

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library
    from sdcore.net import Network


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
        self.ops = Ops(self, library)
        self.devices = Devices(self)

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
                self._libraries[name] = library
            return library

    # -- paths and listings --------------------------------------------------------------------

    async def resolve(self, text: str) -> SdPath:
        """A path as a user types it: a plain local path, `DEVICE:/path` or `sd://DEVICE_ID/path`."""
        return await asyncio.to_thread(self._core.resolve, text)  # a device name needs the network: its import is slow

    async def label(self, path: SdPath) -> str:
        """A path for people: `~/docs` here, `laptop:/home/me/docs` on a paired device."""
        return label(path, self.device.id, {d.id: d.name for d in await self.devices.list()})

    async def browse(self, path: SdPath, batch_size: int = 1000) -> AsyncIterator[list[Entry]]:
        """A directory's entries in batches, straight from its device (never waits on indexing)."""
        async for batch in self._core.fs_for(path.device_id).list_dir(path.path, batch_size):
            yield [
                Entry(path, e.name, e.kind, e.size, e.mtime, e.inode, e.mode, e.link_target) for e in batch
            ]

    async def stat(self, path: SdPath, *, cas_id: bool = False) -> Entry:
        """The entry at `path` (a final symlink not followed); with `cas_id`, a file's content id too."""
        fs = self._core.fs_for(path.device_id)
        entry = Entry.at(path, await fs.stat(path.path))
        if cas_id and entry.kind == "file":
            entry = replace(entry, cas_id=await fs.cas_id(path.path))
        return entry

    async def read(self, path: SdPath, offset: int = 0) -> AsyncIterator[bytes]:
        """A file's bytes from `offset`, in chunks."""
        async for chunk in self._core.fs_for(path.device_id).open_read(path.path, offset):
            yield chunk

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
        self, sources: builtins.list[SdPath], destination: SdPath, *, on_conflict: str = "fail", verify: bool = False
    ) -> str:
        """Start copying `sources` into folder `destination` (or to that name, for one source); the job's id
        (`api.library().jobs.wait(job_id)` waits for its result)."""
        from sdcore import ops

        return await ops.copy(await self._library(), sources, destination, on_conflict=on_conflict, verify=verify)

    async def move(self, sources: builtins.list[SdPath], destination: SdPath, *, on_conflict: str = "fail") -> str:
        """Start moving `sources` into folder `destination`; the job's id."""
        from sdcore import ops

        return await ops.move(await self._library(), sources, destination, on_conflict=on_conflict)

    async def trash(self, paths: builtins.list[SdPath]) -> builtins.list[Trashed]:
        """Move to the trash (each device's own) and wait; where each item went (`restore` puts it back)."""
        from sdcore import ops
        from sdcore.ops.results import DeleteResult, Outcome

        library = await self._library()
        record = await wait_for(library, await ops.delete(library, paths))
        result = record.result
        items = result.items if isinstance(result, DeleteResult) else ()
        return [
            Trashed(p, SdPath(p.device_id, item.trashed_at))
            for p, item in zip(paths, items, strict=False)
            if item.outcome is Outcome.TRASHED and item.trashed_at is not None
        ]

    async def restore(self, items: builtins.list[Trashed]) -> builtins.list[SdPath]:
        """Put trashed items back where they were, on their own device; where they are now."""
        restored = []
        for item in items:
            back = await self._api._core.fs_for(item.in_trash.device_id).restore(item.in_trash.path)
            restored.append(SdPath(item.in_trash.device_id, back))
        return restored

    async def delete(self, paths: builtins.list[SdPath]) -> None:
        """Delete permanently, and wait."""
        from sdcore import ops

        library = await self._library()
        await wait_for(library, await ops.delete(library, paths, permanent=True))

    async def rename(self, path: SdPath, new_name: str) -> SdPath:
        """Rename within its folder, and wait; the new path."""
        from sdcore import ops

        library = await self._library()
        await wait_for(library, await ops.rename(library, path, new_name))
        return path.parent.child(new_name)

    async def mkdir(self, path: SdPath, *, parents: bool = False) -> None:
        """Make a folder, and wait."""
        from sdcore import ops

        library = await self._library()
        await wait_for(library, await ops.mkdir(library, path, parents=parents))


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
        return [PairedDevice(p.id, p.name, p.trust, p.addresses) for p in core.net().trust.peers()]

    async def label(self, path: SdPath) -> str:
        """A path for people: `laptop:/home/me/docs` on a paired device, `~/docs` here."""
        return await self._api.label(path)

    async def connect(self, device: DeviceId) -> None:
        """Connect to a paired device now (raises when it cannot be reached); DeviceConnected follows."""
        await (await self._network()).link(device).connect()

    async def places(self, device: DeviceId) -> builtins.list[Entry]:
        """Where to start on a paired device: the folders it lets this device browse (its shares, or `/` for
        full trust) and, when it trusts this device fully, its library's locations."""
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

    async def listen(self, address: str) -> str:
        """Let paired devices reach this one at HOST:PORT (port 0: any free one); the address it listens at."""
        network = await self._network()
        try:
            listening: str = await network.start(address)
        except OSError as exc:
            raise SdError(f"cannot listen on {address}: {exc.strerror or exc}") from None
        return listening

    async def address(self) -> str | None:
        """Where this device listens for paired devices (None: it does not)."""
        return (await self._network()).address  # type: ignore[no-any-return]

    async def pair_code(self, trust: str = "full") -> str:
        """A fresh 12-word code for the next device that joins (`wait_paired` waits for it)."""
        return (await self._network()).pair_generate(trust)

    async def wait_paired(self) -> PairedDevice:
        """Wait for a device to join with the current code."""
        peer = await (await self._network()).wait_paired()
        return PairedDevice(peer.id, peer.name, peer.trust, peer.addresses)

    async def pair_join(self, code: str, host: str) -> PairedDevice:
        """Join a device that shows a pairing code, at HOST:PORT."""
        peer = await (await self._network()).pair_join(code, host)
        return PairedDevice(peer.id, peer.name, peer.trust, peer.addresses)

    async def spacedrop_dir(self) -> SdPath:
        """Where files other devices send land on this device."""
        return SdPath(self._api.device.id, str((await self._network()).spacedrop_dir))

    async def send(self, device: str | DeviceId, paths: builtins.list[SdPath]) -> builtins.list[str]:
        """Spacedrop: send files of this device to a paired device (by name or id); the names sent."""
        here = [p for p in paths if p.device_id != self._api.device.id]
        if here:
            raise SdError("Spacedrop sends files of this device: copy the others here first")
        sent: builtins.list[str] = await (await self._network()).drop(device, [p.path for p in paths])
        return sent

    async def answer(self, drop_id: str, accept: bool) -> None:
        """Accept or decline the files a DropOffered event offers."""
        (await self._network()).answer_drop(drop_id, accept)
