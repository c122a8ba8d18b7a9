"""What a library, its jobs and its indexer need from the core that opened them: a frozen context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdcore.errors import NotFound
from sdcore.events import EventBus
from sdcore.fs.base import FileSystem
from sdcore.fs.local import LocalFS
from sdcore.sdpath import UNNAMED_DEVICE, DeviceId


@dataclass(frozen=True)
class LibraryContext:
    """The device a library runs on, the bus it tells its changes on, and the filesystems of devices."""

    device_id: DeviceId
    bus: EventBus
    fs_for: Callable[[DeviceId], FileSystem]
    """The filesystem of a device: this one's, or a paired one's (raises when that device is out of reach)."""
    device_name: str = ""
    """This device's name as it started (what the catalogue it sends calls it)."""
    key_file: Path | None = None
    """This device's key, which signs its changes of shared data (None: a library opened without a core)."""
    marks: Path | None = None
    """Where this device keeps each library's high-water mark, outside the library (sdcore.sync.highwater)."""

    @classmethod
    def this_device_only(cls, device_id: DeviceId = UNNAMED_DEVICE) -> LibraryContext:
        """For a library opened without a core (tests, tools): local files only, events that nobody hears."""
        local = LocalFS()

        def fs_for(device: DeviceId) -> FileSystem:
            if device != device_id:
                raise NotFound(f"device {device} cannot be reached from here; open the library through `sd` or sdtui")
            return local

        return cls(device_id, EventBus(), fs_for)
