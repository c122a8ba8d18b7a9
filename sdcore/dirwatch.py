"""DirectoryWatch: watch one shown directory (not its subdirectories) and publish its changes as events.

A file manager shows directories that lie in no location (an external disk, /tmp): the location
watcher does not see them. `core.watch(path)` watches one such directory with inotify (changes only,
names of any bytes), in a thread of its own, and publishes `EntriesChanged` on the core's bus for each burst of changes,
naming the entries that changed; the UI renders the event as it renders any other. A change the core
announced already (an operation of ours, the location watcher) is not told again (`EventBus.watching`).
Closing the watch (leaving the directory) stops the thread within a step.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import TYPE_CHECKING

from sdcore.events import EntriesChanged, EventBus
from sdcore.inotify import Change, Inotify, Overflow
from sdcore.sdpath import DeviceId, SdPath, display

if TYPE_CHECKING:
    from sdcore.core import Core

log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
"""A burst of changes is published at the latest this long after its first change."""

STEP_MS = 50
"""A burst ends when nothing changed for this long; also how soon a closed watch notices it."""


class DirectoryWatch:
    """A running watch of one local directory; `close()` stops it (it is cheap and never blocks)."""

    def __init__(self, path: SdPath, bus: EventBus, device_id: DeviceId) -> None:
        self.path = path
        """The directory watched."""
        self.ready = threading.Event()
        """Set once the watch is in place (or has failed: see `error`)."""
        self.error: str | None = None
        """Why the directory cannot be watched, if it cannot (a name that is not UTF-8, no such folder)."""
        self._publish = bus.publish
        self._unwatch = bus.watching(device_id, path.path)
        self._device_id = device_id
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sd-dirwatch {display(path.path)}", daemon=True
        )

    def start(self) -> DirectoryWatch:
        self._thread.start()
        return self

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop watching (the thread ends within STEP_MS)."""
        self._stop.set()
        self._unwatch()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the watching thread to end (after `close`)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        directory = self.path.path
        try:
            notify = Inotify()
        except OSError as exc:  # the OS limit on inotify instances
            self._cannot(f"{display(directory)} cannot be watched ({exc})")
            return
        try:
            try:
                notify.watch(directory)
            except OSError as exc:  # gone, not a directory, the OS limit on watches
                self._cannot(f"{display(directory)} cannot be watched ({exc.strerror or exc})")
                return
            self.ready.set()
            poller = select.poll()
            poller.register(notify.fd, select.POLLIN)
            while not self._stop.is_set():
                if not poller.poll(STEP_MS):
                    continue
                try:
                    event = self._event(self._burst(notify))
                except Overflow:
                    event = EntriesChanged(self._device_id, directory)
                if event is not None:
                    self._send(event)
                    if not event.names:  # the folder itself went away or moved: nothing more to watch here
                        return
        finally:
            notify.close()
            self._unwatch()

    def _burst(self, notify: Inotify) -> list[Change]:
        """The changes of one burst: until nothing changed for STEP_MS, at most DEBOUNCE_MS."""
        changes = notify.read()
        ends = time.monotonic() + DEBOUNCE_MS / 1000
        while time.monotonic() < ends and not self._stop.is_set():
            time.sleep(STEP_MS / 1000)
            more = notify.read()
            if not more:
                break
            changes += more
        return changes

    def _cannot(self, why: str) -> None:
        self.error = why
        log.info("%s", why)
        self.ready.set()

    def _send(self, event: EntriesChanged) -> None:
        if self._stop.is_set():
            return  # closed: nobody looks at this directory any more (and the loop may be gone)
        try:
            self._publish(event)
        except RuntimeError:  # the core's loop closed under us
            self._stop.set()

    def _event(self, changes: list[Change]) -> EntriesChanged | None:
        """The event of a burst: the names that changed, or none (list it all again) if the folder itself did."""
        directory = self.path.path
        names: set[str] = set()
        for change in changes:
            if not change.name:
                return EntriesChanged(self._device_id, directory)
            if not _unnamed_file(os.path.join(directory, change.name)):
                names.add(change.name)
        return EntriesChanged(self._device_id, directory, tuple(sorted(names))) if names else None


def _unnamed_file(path: str) -> bool:
    """A file being written before it has a name (O_TMPFILE, as copies write): Linux reports it as `#INODE`."""
    name = os.path.basename(path)
    return name[:1] == "#" and name[1:].isdigit() and not os.path.lexists(path)


def watch_directory(core: Core, path: SdPath) -> DirectoryWatch:
    """Start watching directory `path` of this device for `core` (see `Core.watch`)."""
    if not core.is_local(path):
        raise ValueError("only a directory of this device can be watched")
    return DirectoryWatch(path, core.bus, core.device.id).start()
