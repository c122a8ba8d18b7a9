"""The watcher: keeps a library's local locations current while a core runs (inotify)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from sdcore.events import LibraryChanged, VolumesChanged
from sdcore.index.indexer import catch_up, index_location, refresh
from sdcore.inotify import Change, Inotify, Overflow
from sdcore.library import volume_locations
from sdcore.sdpath import display
from sdcore.volumes import Volume, list_volumes, mount_points

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

STEP_MS = 50
"""A burst of changes ends when nothing changed for this long..."""
DEBOUNCE_MS = 200
"""...or this long after it began (a file written for minutes is refreshed every DEBOUNCE_MS)."""


class LocationWatcher:
    """Watches every location of a library on this device; each burst of changes refreshes the directories it touched."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._task: asyncio.Task[None] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._volumes: asyncio.Task[None] | None = None
        self._mounted: set[str] = set()  # ids of the disks seen mounted and not yet noted gone
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self._caught_up: set[str] = set()  # roots indexed again since this watcher started
        self._inside: set[str] = set()  # where something is mounted inside a root watched, as of the last look

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="sd-watcher")
        if self._follow is None:
            self._follow = loop.create_task(self._follow_locations(), name="sd-watcher-locations")
            self._volumes = loop.create_task(self._follow_volumes(), name="sd-watcher-volumes")

    async def restart(self) -> None:
        """Watch again after locations were added or removed."""
        await self._stop_watching()
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.start()

    async def _follow_locations(self) -> None:
        with self.library.context.bus.subscribe(LibraryChanged) as events:
            async for event in events:
                if not isinstance(event, LibraryChanged) or event.library_id != self.library.id:
                    continue
                if event.what in ("location added", "location removed", volume_locations.MOVED, volume_locations.NEEDS_DECISION):
                    await self.restart()
                elif event.what == "catalogue locations changed":  # another device's location on a disk plugged in here?
                    await self._take_over()

    async def _follow_volumes(self) -> None:
        """A disk plugged in or out: its locations follow it (and are watched there), or are not watched (offline)."""
        def on_disks() -> bool:
            return any(loc.volume_id for loc in self.library.locations.list())

        with self.library.context.bus.subscribe(VolumesChanged) as events:
            await self._take_over()  # a disk plugged in before this core started
            async for _ in events:
                await self._mounted_inside()
                if not on_disks():
                    continue
                mounted = await asyncio.to_thread(list_volumes)
                now = {v.id for v in mounted}
                gone, self._mounted = self._mounted - now, now  # unplugged this moment: seen till now
                for loc in self.library.locations.list():  # back, it may have changed elsewhere: caught up again
                    if loc.volume_id in gone:
                        self._caught_up.discard(loc.path)
                if not await asyncio.to_thread(volume_locations.follow, self.library, mounted, gone):
                    await self.restart()  # else the move's LibraryChanged restarts it
                await self._take_over(mounted)

    def _mounts_inside(self) -> set[str]:
        """Where something is mounted on a folder inside a location of this device (a disk, a bind mount)."""
        here = self.library.locations.device_id
        inside = [loc.path.rstrip("/") + "/" for loc in self.library.locations.list() if loc.device_id == here]
        return {point for point in mount_points() if any(point.startswith(root) for root in inside)}

    async def _mounted_inside(self) -> None:
        """A folder inside a location that something was mounted on or unmounted from (a bind mount's unmount tells
        inotify nothing, nor does a mount): another folder is there now, watched anew and indexed again (the folder
        left by an unmount at once; a disk mounted, maybe a big one, by a rescan of its location as a job)."""
        inside = await asyncio.to_thread(self._mounts_inside)
        mounted, unmounted = inside - self._inside, self._inside - inside
        self._inside = inside
        if not mounted and not unmounted:
            return
        await self.restart()
        await self.ready.wait()

        def folders() -> list[str]:
            return [d for point in sorted(unmounted) if os.path.isdir(point)
                    for d in [os.path.dirname(point), *(d for d, _, _ in os.walk(point))]]  # fmt: skip

        try:
            await refresh(self.library, await asyncio.to_thread(folders))
        except Exception:
            log.exception("refreshing %s failed", sorted(unmounted))
        here = self.library.locations.device_id
        for loc in self.library.locations.list():
            if loc.device_id == here and any(point.startswith(loc.path.rstrip("/") + "/") for point in mounted):
                await self._rescan(loc.path)

    async def _take_over(self, mounted: list[Volume] | None = None) -> None:
        """Other devices' locations on the disks mounted here become this device's, and are indexed again as a job
        (what changed on the disk since their device last indexed it)."""
        if not any(loc.volume_id for loc in self.library.locations.list()):
            return
        try:
            for loc in await asyncio.to_thread(volume_locations.take_over, self.library, mounted):
                await index_location(self.library, loc)
        except Exception:
            log.exception("taking over the locations of a disk plugged in failed")

    async def _run(self) -> None:
        here = self.library.locations.device_id
        mine = [loc for loc in self.library.locations.list() if loc.device_id == here]
        mounted = await asyncio.to_thread(list_volumes) if any(loc.volume_id for loc in mine) else []
        self._mounted |= {v.id for v in mounted}  # not reset: a disk that went since the last look is still gone
        self._inside |= await asyncio.to_thread(self._mounts_inside)  # (one gone since the last look: still to refresh)
        present = [  # not a disk's location while the disk is out (its mount point is an empty folder)
            loc for loc in mine if os.path.isdir(loc.path) and volume_locations.offline(self.library, loc, mounted) is None
        ]
        roots = [  # nor while another disk may be mounted as it (a change there would drop the real disk's entries)
            loc.path
            for loc in present
            if not loc.undecided or not await asyncio.to_thread(volume_locations.still_undecided, self.library, loc)
        ]
        if not roots:
            self.ready.set()
            await self._stop.wait()
            return
        waiting = set(roots)

        def started(root: str) -> None:
            waiting.discard(root)
            if not waiting:
                self.ready.set()

        try:  # a watch per location: one that cannot be watched leaves the others watched
            await asyncio.gather(*(self._watch(root, started) for root in roots))
        finally:
            self.ready.set()

    async def _watch(self, root: str, started: Any) -> None:
        try:
            notify = Inotify()
        except OSError as exc:  # the OS limit on inotify instances
            started(root)
            log.warning("location %s cannot be watched (%s); `sd location rescan` updates it", display(root), exc)
            return
        try:
            try:
                await asyncio.to_thread(notify.watch_tree, root)
            except OSError as exc:  # e.g. the OS limit on watches
                started(root)
                log.warning("location %s cannot be watched (%s); `sd location rescan` updates it", display(root), exc)
                return
            if not await self._catch_up(root):  # changes meanwhile wait in the kernel for the first burst
                started(root)
                return  # most of what is indexed is not on the disk mounted there: a person decides first
            started(root)
            readable = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_reader(notify.fd, readable.set)
            try:
                while not self._stop.is_set():
                    if not await _either(readable, self._stop):
                        break
                    try:
                        changes = await _burst(notify, readable)
                    except Overflow:
                        log.warning("changes to %s came faster than they could be followed; indexing it again", display(root))
                        await self._rescan(root)
                        continue
                    await self._apply(notify, changes)
            finally:
                loop.remove_reader(notify.fd)
        finally:
            with suppress(Overflow):
                notify.read()  # (what came since the last burst: the disk unplugged as the watching stopped?)
            if root in notify.unmounted:  # whatever is mounted there next is caught up with (a clone swapped in at once)
                self._caught_up.discard(root)
            notify.close()

    async def _apply(self, notify: Inotify, changes: list[Change]) -> None:
        """Refresh the folders a burst of changes touched; a folder made or moved in is watched too."""
        directories = {c.directory if c.name else os.path.dirname(c.directory) for c in changes}
        for change in changes:
            if (folder := change.new_folder) is not None:
                try:
                    directories.update(await asyncio.to_thread(notify.watch_tree, folder))
                except OSError as exc:
                    log.warning("%s cannot be watched (%s); `sd location rescan` updates it", display(folder), exc)
        if not directories:
            return
        try:
            await refresh(self.library, sorted(directories))
        except Exception:  # one bad burst must not stop the watching
            log.exception("refreshing %s failed", sorted(directories))

    async def _catch_up(self, root: str) -> bool:
        """Index the location at `root` again once, as it starts being watched: what changed while nothing watched.
        Whether to watch it: not when the disk mounted there lacks most of what is indexed of it (then it waits for
        a person's decision, see volume_locations.refuse_mass_drop).

        Not a location that an index job is on (it does that) or that was never indexed (its first index does).
        """
        if root in self._caught_up:
            return True
        busy = {
            r.location_id
            for r in self.library.jobs.list(states=("queued", "running", "paused", "interrupted"))
            if r.kind == "index"
        }
        for loc in self.library.locations.list():
            if loc.path != root or loc.device_id != self.library.locations.device_id:
                continue
            if loc.id not in busy and loc.last_scanned is not None:
                try:
                    await catch_up(self.library, loc, self._stop)
                except volume_locations.RescanWouldDrop as exc:
                    log.warning("%s", exc)
                    return False
                except Exception:
                    log.exception("catching up with %s failed", display(root))
                    return True
        if not self._stop.is_set():
            self._caught_up.add(root)
        return True

    async def _rescan(self, root: str) -> None:
        """Index the location at `root` again as a job (unless one is indexing it already)."""
        busy = {r.location_id for r in self.library.jobs.list(states=("queued", "running")) if r.kind == "index"}
        for loc in self.library.locations.list():
            if loc.path == root and loc.device_id == self.library.locations.device_id and loc.id not in busy:
                try:
                    await index_location(self.library, loc)
                except Exception:
                    log.exception("indexing %s again failed", display(loc.path))

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            if self._volumes is not None:
                self._volumes.cancel()
            await asyncio.gather(self._follow, *([self._volumes] if self._volumes else []), return_exceptions=True)
            self._follow = None
        await self._stop_watching()

    async def _stop_watching(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class LibrariesGoingLive:
    """Makes each library of a live core live once it gets a location (one made after `sd serve` started), and
    each that another process held when the core went live once that process lets go."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._freed: asyncio.Queue[Library] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            self._loop.create_task(self._follow(), name="sd-libraries-going-live"),
            self._loop.create_task(self._go_live_when_freed(), name="sd-libraries-going-live-when-freed"),
        ]

    def when_free(self, library: Library) -> None:
        """Make `library` live once no other process holds it (a thread blocks on its lock meanwhile)."""
        if str(library.id) in self._waiting:
            return
        self._waiting.add(str(library.id))
        try:
            holder = (library.folder / ".lock").read_text().strip() or "another process"
        except OSError:
            holder = "another process"
        log.warning("library %s is open in %s; it goes live once that lets go", library.name, holder)

        def wait() -> None:
            library.wait_until_free()
            with suppress(RuntimeError):  # the core's loop closed meanwhile: nothing left to make live
                self._loop.call_soon_threadsafe(self._freed.put_nowait, library)

        # a daemon: a wait that never ends must not keep the process from exiting
        threading.Thread(target=wait, name=f"sd-wait-for-{library.name}", daemon=True).start()

    async def _follow(self) -> None:
        with self.core.bus.subscribe(LibraryChanged) as events:
            async for event in events:
                if not isinstance(event, LibraryChanged):
                    continue
                if event.what == "location added":
                    await self._go_live(self.core.libraries.open(str(event.library_id)))
                elif event.what == "catalogue locations changed":  # another device's disk may be plugged in here
                    library = self.core.libraries.open(str(event.library_id))
                    if any(loc.volume_id for loc in library.locations.list()):
                        await self._go_live(library)

    async def _go_live_when_freed(self) -> None:
        while True:
            library = await self._freed.get()
            self._waiting.discard(str(library.id))
            await self._go_live(library)

    async def _go_live(self, library: Library) -> None:
        from sdcore.library.library import LibraryLocked

        try:
            await self.core.go_live(library, lock_wait=0)
        except LibraryLocked:  # another process took it first (or holds it now): wait for it in turn
            self.when_free(library)
        except Exception:
            log.exception("library %s cannot go live", library.name)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _burst(notify: Inotify, readable: asyncio.Event) -> list[Change]:
    """The changes of one burst (see STEP_MS and DEBOUNCE_MS); raises Overflow when the kernel dropped some."""
    changes: list[Change] = []
    ends = time.monotonic() + DEBOUNCE_MS / 1000
    while True:
        await asyncio.sleep(STEP_MS / 1000)
        readable.clear()
        more = notify.read()
        changes += more
        if not more or time.monotonic() >= ends:
            return changes


async def _either(event: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for `event` or `stop`; whether it was `event`."""
    if stop.is_set():
        return False
    waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return not stop.is_set()
