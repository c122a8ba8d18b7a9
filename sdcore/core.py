"""Core: one per process; owns the data dir, the device identity, libraries, jobs, events and network."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sdcore.device import KEY_FILE, Device, load_or_create, usable_data_dir
from sdcore.errors import SdError
from sdcore.events import EventBus
from sdcore.fs.base import EntryInfo, FileSystem
from sdcore.fs.local import LocalFS
from sdcore.library import Libraries, Library, LibraryContext, LibraryDamaged, damage
from sdcore.library.damage import recovery
from sdcore.privacy import default_data_dir, write_private
from sdcore.sdpath import SCHEME, DeviceId, SdPath, split_remote

if TYPE_CHECKING:
    from sdcore.dirwatch import DirectoryWatch
    from sdcore.index.watcher import LocationWatcher
    from sdcore.net import Network
    from sdcore.volumes import MountWatcher

DEFAULT_LIBRARY = "My Library"


class Service(Protocol):
    """Something that lives as long as the core (watchers, the network, a forwarded port)."""

    async def close(self) -> None: ...


class NetworkService(Service, Protocol):
    """What the core asks of its network (sdcore.net.Network): the files of paired devices and their names."""

    def device_id_of(self, name_or_id: str) -> DeviceId: ...

    def fs_for(self, device_id: DeviceId) -> FileSystem: ...


class Core:
    """The core of one data dir. Use as `async with Core(data_dir) as core:` (or `Core(...)` + `await close()`)."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.device: Device = load_or_create(usable_data_dir(self.data_dir))
        self.bus = EventBus()
        self.local_fs = LocalFS()
        self.libraries = Libraries(self.data_dir / "libraries", LibraryContext(
            self.device.id, self.bus, self.fs_for, self.device.name, self.data_dir / KEY_FILE, self.data_dir / "highwater"
        ))
        self.network: NetworkService | None = None
        """The network once used (`net()` makes it): sdcore.net.Network, or a test's."""
        self._services: list[Service] = []
        self.attached: dict[str, Any] = {}
        """What other modules keep for this core, one of each by name (its sync service, the server of its `sd`
        commands): kept here, not in a module's map keyed by the core, which would keep every core alive."""
        self._watchers: dict[uuid.UUID, LocationWatcher] = {}
        self._directory_watches: set[DirectoryWatch] = set()
        self._first_run = threading.Lock()
        self._checks: set[asyncio.Future[list[str]]] = set()  # live libraries' integrity checks in the background
        self.mount_table = "/proc/self/mountinfo"  # sdcore.volumes.MOUNTINFO (not imported: a listing needs none of it)
        """The mount table volumes are listed from and watched in (a test may give its own, in mountinfo's format)."""
        self._mount_watcher: MountWatcher | None = None

    async def __aenter__(self) -> Core:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._close_directory_watches()
        if self._mount_watcher is not None:
            await asyncio.to_thread(self._mount_watcher.close)
            self._mount_watcher = None
        await asyncio.gather(*self._checks, return_exceptions=True)
        for service in reversed(self._services):
            await service.close()
        self._services.clear()
        await self.libraries.close()

    def watch_mounts(self) -> None:
        """Publish VolumesChanged on the bus whenever a volume is mounted or unmounted (from the first call on)."""
        if self._mount_watcher is None:
            from sdcore.events import VolumesChanged
            from sdcore.volumes import MountWatcher

            with suppress(OSError):  # a mount table that is not there is listed as empty, and not watched
                self._mount_watcher = MountWatcher(lambda: self.bus.publish(VolumesChanged()), self.mount_table)

    def add_service(self, service: Service) -> None:
        """Close `service` when the core closes."""
        self._services.append(service)

    # -- libraries -------------------------------------------------------------------------

    def library(self, name: str | None = None) -> Library:
        """An open library by name or id; without a name, the default one (made on first run only).

        A damaged library is never replaced: opening it raises LibraryDamaged, and no library is made
        and the default is not moved while any library folder exists.
        """
        if name:
            return self.libraries.open(name)
        preferred = self.settings().get("default_library")
        with self._first_run:  # the explorer and a command it carries out may both ask first
            infos = self.libraries.list()
            if not infos:
                library = self.libraries.create(DEFAULT_LIBRARY)
                self.save_settings(default_library=str(library.id))
                return library
        usable = [i for i in infos if i.unusable is None]  # not a copy of another folder's library, not too new
        chosen = next((i for i in usable if preferred in (str(i.id), i.name)), None)
        unreadable = [i for i in infos if i.id is None and i.problem]
        gone = next((i for i in infos if preferred and str(i.id) == preferred and i.unusable), None)
        if chosen is None and gone is not None:  # on a disk not mounted, or too new: never another one in its place
            raise SdError(f"the default library cannot be used: {gone.unusable}")
        if chosen is None and preferred and unreadable:  # the default may be the one whose library.json is lost
            raise LibraryDamaged(
                f"the default library cannot be found, and library {unreadable[0].name!r} cannot be used: "
                f"{unreadable[0].problem}; {recovery(unreadable[0].name)}, or pick another with `sd library use NAME`"
            )
        chosen = chosen or next((i for i in usable if i.id is not None), infos[0])
        return self.libraries.open(chosen.key)

    async def go_live(self, library: Library | None = None, *, lock_wait: float | None = None) -> None:
        """For a long-running core (sdtui, `sd serve`): resume interrupted jobs and watch the locations (the watcher
        first catches up with what changed while no core watched). Without a library: every library; one that
        another process holds goes live once that process lets go.

        `lock_wait`: seconds to wait for another process holding the library (default the libraries' lock_wait).
        """
        import logging

        from sdcore.errors import SdError
        from sdcore.index.watcher import LibrariesGoingLive, LocationWatcher
        from sdcore.library.library import LibraryLocked

        if library is None:
            going_live = next((s for s in self._services if isinstance(s, LibrariesGoingLive)), None)
            if going_live is None:
                going_live = LibrariesGoingLive(self)  # and those that get their first location later
                self.add_service(going_live)
            for info in self.libraries.list():
                try:
                    opened = self.libraries.open(info.key)
                    try:
                        await self.go_live(opened, lock_wait=0)
                    except LibraryLocked:
                        going_live.when_free(opened)
                except SdError as exc:  # a damaged library: the others still go live
                    logging.getLogger(__name__).warning("library %s cannot go live: %s", info.name, exc)
            return
        if library.id in self._watchers:
            return
        # a live core writes at any moment: it is the library's writer
        await asyncio.to_thread(library.hold_lock, lock_wait)
        if (library.folder / "database.db").stat().st_size > damage.QUICK_CHECK_LIMIT:  # smaller ones were checked on open
            self._checks.add(asyncio.ensure_future(asyncio.to_thread(library.verify)))
        from sdcore.library.volume_locations import follow

        if any(loc.volume_id for loc in library.locations.list()):
            await asyncio.to_thread(follow, library)  # a disk mounted elsewhere since: its locations are there now
        self.watch_mounts()  # and follow disks from now on (another device's disk plugged in here becomes this one's)
        await library.jobs.resume_interrupted()
        watcher = LocationWatcher(library)
        watcher.start()
        self._watchers[library.id] = watcher
        self.add_service(watcher)

    def watcher(self, library: Library) -> LocationWatcher | None:
        """The watcher of a live library (None when the library is not live)."""
        return self._watchers.get(library.id)

    # -- watching a shown directory ------------------------------------------------------------

    def watch(self, path: SdPath) -> DirectoryWatch | None:
        """Watch one directory of this device (not its subdirectories) while a UI shows it.

        Each burst of changes in it is published as `EntriesChanged` on the bus, so a directory outside
        every location updates live too. Close the watch when the directory is left. None for a
        directory of another device.
        """
        if not self.is_local(path):
            return None
        from sdcore.dirwatch import watch_directory

        self._directory_watches = {w for w in self._directory_watches if not w.closed}
        watch = watch_directory(self, path)
        self._directory_watches.add(watch)
        return watch

    async def _close_directory_watches(self) -> None:
        watches, self._directory_watches = self._directory_watches, set()
        for watch in watches:
            watch.close()

        def join_all() -> None:
            for watch in watches:
                watch.join(1.0)

        if watches:
            await asyncio.to_thread(join_all)

    def settings(self) -> dict:
        try:
            return json.loads((self.data_dir / "settings.json").read_text())
        except (OSError, ValueError):
            return {}

    def save_settings(self, **values: Any) -> None:
        write_private(self.data_dir / "settings.json", json.dumps({**self.settings(), **values}, indent=1))

    # -- paths and filesystems -------------------------------------------------------------

    def resolve(self, text: str) -> SdPath:
        """A path as a user types it: a plain local path, `DEVICE:/path`, or `sd://DEVICE_ID/path`."""
        if text.startswith(SCHEME):
            return SdPath.parse_canonical(text)
        remote = split_remote(text)
        if remote is not None:
            device, path = remote
            return SdPath(self.device_id_of(device), path)
        return SdPath(self.device.id, os.path.abspath(os.path.expanduser(text)))

    def local_path(self, text: str) -> SdPath:
        return SdPath(self.device.id, os.path.abspath(os.path.expanduser(text)))

    def device_id_of(self, name_or_id: str) -> DeviceId:
        """A device by name or id prefix: this one, or a paired one; one that fits both is refused."""
        return self.net().device_id_of(name_or_id)

    def is_local(self, path: SdPath) -> bool:
        return path.device_id == self.device.id

    def fs_for(self, device_id: DeviceId) -> FileSystem:
        """The filesystem of a device: LocalFS for this one, RemoteFS for a paired one."""
        if device_id == self.device.id:
            return self.local_fs
        return self.net().fs_for(device_id)

    def net(self) -> Network:
        """The network (sdcore.net.Network), its client side made on first use: paired devices by name, RemoteFS."""
        from sdcore.net import attach

        return attach(self)

    async def browse(self, path: SdPath, batch_size: int = 1000) -> AsyncIterator[list[EntryInfo]]:
        """A directory's entries in batches, straight from its filesystem (never waits on indexing)."""
        async for batch in self.fs_for(path.device_id).list_dir(path.path, batch_size):
            yield batch
