"""Typed events and the one async bus that carries them from the core to every subscriber."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class DeviceConnected(Event):
    device_id: DeviceId
    name: str = ""


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


class EventBus:
    """Publish from any thread; each subscriber gets its own bounded, coalescing queue."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()

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
