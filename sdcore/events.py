"""Typed events and the one async bus that carries them from the core to every subscriber."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sdcore.sdpath import DeviceId


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event."""

    def coalesce_key(self) -> Any:
        """Events with the same non-None key replace each other while queued (progress)."""
        return None


@dataclass(frozen=True, slots=True)
class EntriesChanged(Event):
    """Entries in one directory were created, modified, renamed or deleted."""

    device_id: DeviceId
    directory: str
    names: tuple[str, ...] = ()
    library_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class JobProgress(Event):
    job_id: str
    name: str
    done: int
    total: int
    message: str = ""
    unit: str = "items"
    rate: float = 0.0

    def coalesce_key(self) -> Any:
        return ("progress", self.job_id)


@dataclass(frozen=True, slots=True)
class JobStateChanged(Event):
    job_id: str
    name: str
    state: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LocationScanState(Event):
    library_id: uuid.UUID
    location_id: int
    state: str


@dataclass(frozen=True, slots=True)
class LibraryChanged(Event):
    """A library was created, renamed, deleted, or its tags/locations changed."""

    library_id: uuid.UUID
    what: str = ""


LOCATION_MOVED = "location moved"
"""What LibraryChanged says when a disk's locations follow it to another mount point."""
LOCATION_NEEDS_DECISION = "location needs a decision"
"""What LibraryChanged says when a location on a disk waits for a person to say the disk mounted as it is the same
disk (most of what is indexed is not on it), and when a confirmed rescan ends that."""


@dataclass(frozen=True, slots=True)
class CatalogueChanged(Event):
    """This device's entries or locations changed in a library whose catalogue it numbers (sync tells its peers)."""

    library_id: uuid.UUID
    device_id: DeviceId

    def coalesce_key(self) -> Any:
        return ("catalogue", self.library_id)


@dataclass(frozen=True, slots=True)
class VolumesChanged(Event):
    """A volume was mounted or unmounted on this device (`api.volumes()` lists them as they are now)."""

    def coalesce_key(self) -> Any:
        return "volumes"


@dataclass(frozen=True, slots=True)
class SharedDataChanged(Event):
    """A library's shared data (tags, notes, favourites, saved searches) has operations that other devices lack."""

    library_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DeviceConnected(Event):
    device_id: DeviceId
    name: str = ""


@dataclass(frozen=True, slots=True)
class DeviceRenamed(Event):
    """A paired device calls itself by another name now: `name`, as this device names it (unique among its devices)."""

    device_id: DeviceId
    name: str


@dataclass(frozen=True, slots=True)
class DeviceLost(Event):
    device_id: DeviceId
    name: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PairingProgress(Event):
    stage: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DropOffered(Event):
    """A paired device offers files (Spacedrop); answer with the drop id."""

    drop_id: str
    device_id: DeviceId
    device_name: str
    names: tuple[str, ...] = field(default_factory=tuple)
    total_bytes: int = 0


class Subscription:
    """An async iterator of events with a bounded queue; progress events coalesce, the core never waits."""

    def __init__(self, bus: EventBus, maxsize: int, types: tuple[type[Event], ...]) -> None:
        self._bus = bus
        self._types = types
        self._maxsize = maxsize
        self._pending: OrderedDict[Any, Event] = OrderedDict()
        self._seq = 0
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.dropped = 0

    def _offer(self, event: Event) -> None:
        if self._types and not isinstance(event, self._types):
            return
        key = event.coalesce_key()
        if key is not None and key in self._pending:
            self._pending[key] = event
        else:
            if len(self._pending) >= self._maxsize:
                self._pending.popitem(last=False)
                self.dropped += 1
            if key is None:
                self._seq += 1
                key = ("seq", self._seq)
            self._pending[key] = event
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._pending.popitem(last=False)[1]

    def get_nowait(self) -> Event | None:
        return self._pending.popitem(last=False)[1] if self._pending else None

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Signature = tuple[int, int, int, int, int] | None
"""An entry as it stands on disk (inode, mode, size, mtime and ctime in ns), or None when it is not there."""

_UNKNOWN = object()

KNOWN_PER_DIRECTORY = 10_000
"""Entries remembered per watched directory; past it the memory starts again (a change may then be told twice)."""

CHECKED_PER_EVENT = 1_000
"""An event naming more entries is told as it is, unchecked (a UI lists the directory again for it anyway)."""


def _signature(path: str) -> Signature:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Announced:
    """What was last announced of each entry of the directories a UI watches, as it stood on disk then.

    A change is seen by up to three layers: the one that made it (an operation), the location watcher (its
    index refresh) and the watch of a shown directory. Whoever announces it first does; the others, finding
    the entry as it was announced, say nothing. A directory no one watches is not remembered (no one shows it).
    """

    def __init__(self) -> None:
        self._watched: dict[tuple[str, str], int] = {}
        self._known: dict[tuple[str, str], dict[str, Signature]] = {}

    def watch(self, device_id: object, directory: str) -> None:
        key = (str(device_id), directory)
        self._watched[key] = self._watched.get(key, 0) + 1

    def unwatch(self, device_id: object, directory: str) -> None:
        key = (str(device_id), directory)
        left = self._watched.get(key, 0) - 1
        if left > 0:
            self._watched[key] = left
        else:
            self._watched.pop(key, None)
            self._known.pop(key, None)

    def news(self, event: EntriesChanged) -> EntriesChanged | None:
        """The event with only the names not announced as they stand now; None when nothing is left."""
        key = (str(event.device_id), event.directory)
        if key not in self._watched or not event.names or len(event.names) > CHECKED_PER_EVENT:
            return event  # not watched here, the whole directory or most of it: always told
        known = self._known.setdefault(key, {})
        if len(known) > KNOWN_PER_DIRECTORY:
            known.clear()
        fresh = []
        for name in event.names:
            now = _signature(os.path.join(event.directory, name))
            if known.get(name, _UNKNOWN) != now:
                known[name] = now
                fresh.append(name)
        if not fresh:
            return None
        return event if len(fresh) == len(event.names) else replace(event, names=tuple(fresh))


class EventBus:
    """Publish from any thread; each subscriber gets its own bounded, coalescing queue.

    An `EntriesChanged` for a directory a UI watches is published once per change (see `Announced`).
    """

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._announced = Announced()
        self._announcing = threading.Lock()

    def watching(self, device_id: object, directory: str) -> Callable[[], None]:
        """Say a UI watches this directory (its changes get told once); returns what to call when it stops."""
        with self._announcing:
            self._announced.watch(device_id, directory)
        done = threading.Event()

        def stop() -> None:
            if not done.is_set():
                done.set()
                with self._announcing:
                    self._announced.unwatch(device_id, directory)

        return stop

    def subscribe(self, *types: type[Event], maxsize: int = 10_000) -> Subscription:
        """Subscribe to events of these types (all when none); call from the event loop."""
        sub = Subscription(self, maxsize, types)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        if isinstance(event, EntriesChanged):
            with self._announcing:  # check and tell at once: two layers telling the same change race here
                news = self._announced.news(event)
                if news is not None:
                    self._deliver(news)
            return
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is sub._loop:
                sub._offer(event)
            elif not sub._loop.is_closed():
                sub._loop.call_soon_threadsafe(sub._offer, event)
