"""The watcher: keeps a library's local locations current while a core runs (watchfiles)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from sdcore.events import LibraryChanged
from sdcore.index.indexer import catch_up, index_location, refresh
from sdcore.sdpath import display

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

DEBOUNCE_MS = 200
UNDECODABLE = "Unable to decode path"
"""How watchfiles says a changed name is not UTF-8 (it then stops, whatever else changed)."""


class LocationWatcher:
    """Watches every location of a library on this device; each burst of changes refreshes the directories it touched."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._task: asyncio.Task[None] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        self._caught_up: set[str] = set()  # roots indexed again since this watcher started

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="sd-watcher")
        if self._follow is None:
            self._follow = loop.create_task(self._follow_locations(), name="sd-watcher-locations")

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
                if event.what in ("location added", "location removed"):
                    await self.restart()

    async def _run(self) -> None:
        roots = []
        for loc in self.library.locations.list():
            if loc.device_id != self.library.locations.device_id or not os.path.isdir(loc.path):
                continue
            if _utf8(loc.path):
                roots.append(loc.path)
            else:  # watchfiles takes UTF-8 paths only
                log.warning("location %s cannot be watched (its path is not UTF-8)", display(loc.path))
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
        import watchfiles

        while not self._stop.is_set():
            running = False
            try:
                async for changes in watchfiles.awatch(
                    root, stop_event=self._stop, debounce=DEBOUNCE_MS, step=50, recursive=True,
                    watch_filter=None, yield_on_timeout=True, rust_timeout=200,
                ):
                    if not running:
                        running = True
                        await self._catch_up(root)  # changes meanwhile wait in watchfiles for the next burst
                        started(root)
                    if not changes:
                        continue
                    directories = sorted({os.path.dirname(path) for _, path in changes})
                    try:
                        await refresh(self.library, directories)
                    except Exception:  # one bad burst must not stop the watching
                        log.exception("refreshing %s failed", directories)
            except Exception as exc:
                started(root)
                reason = _reason(exc)
                if not running and UNDECODABLE not in reason:  # e.g. the OS limit on watches
                    log.warning("location %s cannot be watched (%s); `sd location rescan` updates it", display(root), reason)
                    return
                # watchfiles fails a whole burst on a name that is not UTF-8 (merely reading such a file is one,
                # first burst included): index the location again (unchanged folders are skipped) and watch on.
                log.warning("watching %s was cut off (%s); indexing it again", display(root), reason)
                await self._rescan(root)

    async def _catch_up(self, root: str) -> None:
        """Index the location at `root` again once, as it starts being watched: what changed while nothing watched.

        Not a location that an index job is on (it does that) or that was never indexed (its first index does).
        """
        if root in self._caught_up:
            return
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
                except Exception:
                    log.exception("catching up with %s failed", display(root))
                    return
        if not self._stop.is_set():
            self._caught_up.add(root)

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
            await asyncio.gather(self._follow, return_exceptions=True)
            self._follow = None
        await self._stop_watching()

    async def _stop_watching(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class LibrariesGoingLive:
    """Makes each library of a live core live once it gets a location (one made after `sd serve` started)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="sd-libraries-going-live")

    async def _follow(self) -> None:
        with self.core.bus.subscribe(LibraryChanged) as events:
            async for event in events:
                if isinstance(event, LibraryChanged) and event.what == "location added":
                    try:
                        await self.core.go_live(self.core.libraries.open(str(event.library_id)))
                    except Exception:
                        log.exception("library %s cannot go live", event.library_id)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _reason(exc: BaseException) -> str:
    """What went wrong, from the first error inside the groups watchfiles wraps it in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
