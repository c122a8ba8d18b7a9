"""The sync service of a core: membership of its libraries, the sync requests it answers, and one puller per
member device that fetches what this device lacks (operations by watermarks, the member's own catalogue by
sequence), woken by the member's "changed" notice, by its connecting, or by a slow timer.

The notice goes on a connection the member opened when there is one: a member it cannot dial (a plain `sdtui`,
which does not listen, or one with no route to it) keeps a `sync_watch` waiting on its own connection, answered when
a library shared with it changes here; otherwise the notice is a `sync_changed` sent to it.

Membership travels in the exchange itself: an answer to `sync_ops` carries the answerer's member list, merged
here as a last-writer-wins set (members.py), so with three devices B learns of C from A (and pulls from C when
it is paired with C; C's operations reach B through A in any case, as every origin's operations are relayed).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import sqlite3
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from sdcore.api.records import LibraryDevice
from sdcore.device import KEY_FILE
from sdcore.errors import Closing, NotFound, SdError
from sdcore.events import (
    CatalogueChanged,
    DeviceConnected,
    DeviceLost,
    DeviceRenamed,
    EntriesChanged,
    Event,
    LibraryChanged,
    LocationScanState,
    SharedDataChanged,
)
from sdcore.jobs.job import Job, JobContext
from sdcore.jobs.manager import RESUMABLE, JobRecord
from sdcore.net.frames import PermissionDenied, ProtocolError
from sdcore.sdpath import display, typed
from sdcore.sync import highwater, oplog, protocol, signing
from sdcore.sync.catalogue import (
    adopt_catalogue_file,
    catalogue_file_kept,
    catalogue_held,
    forget_catalogue,
    renamed,
)
from sdcore.sync.catalogue_transport import Outgoing, fetch_catalogue_file
from sdcore.sync.members import JOINED, MAX_MEMBERS, Member, Members, forget_departed

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.library.library import Library
    from sdcore.net.network import Network
    from sdcore.net.trust import Peer

log = logging.getLogger(__name__)
T = TypeVar("T")

PUSH_DELAY = 0.05
"""A burst of changes is told to the members once, this long after its first change."""
IDLE_PULL = 30.0
"""A member that told nothing is asked anyway this often (a notice lost with its connection)."""
RETRY = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Waits between attempts to reach a member that cannot be reached."""
REFETCH_GAP = 60.0
"""Seconds after a member's catalogue was forgotten for a restart of its log in which another restart is not taken: a
liar answering "restarted" at every ask and "changed" at once had its whole file fetched, checked and indexed at
every pull, several times a second."""
CALL_TIMEOUT = 60.0
MAX_SHARED_BY_ONE = 32
"""Libraries one device may share with this one."""
WATCH_HOLD = 25.0
"""Seconds a member's `sync_watch` waits for a change here before it is answered "none" (it asks again)."""
WATCH_GAP = 5.0
"""Seconds after a watch was answered in which a change is kept for the member's next one (the notice is not lost
in the round trip), not sent to it as `sync_changed`."""


@dataclass
class FirstSync(Job):
    """The first sync of a member's catalogue: its file fetched (progress in bytes), then the batches since (resumed
    with the sync service that started it; a fetch cut off starts again)."""

    kind: ClassVar[str] = "sync"
    device: str = ""
    name: str = ""

    def describe(self) -> str:
        return f"first sync from {display(self.name)}"

    async def run(self, ctx: JobContext) -> None:
        service = _serving.get((ctx.library.context.device_id, ctx.library.id))
        peer = service.net.trust.get(uuid.UUID(self.device)) if service is not None else None
        if service is None or peer is None:
            return  # no sync service here now: it carries on when one runs (`sd serve`, a listening sdtui)
        try:
            await service._pull_catalogue(peer, ctx.library, ctx)
        except Closing:
            raise asyncio.CancelledError from None  # cut off by the core's end: interrupted, resumed next time


class _Restarted(Exception):
    """A member's catalogue log restarted below what this device holds: what is kept of it is to be fetched again."""


@dataclass
class _Watch:
    """A member's `sync_watch` requests: how many wait, when the last one was answered, a change kept for it."""

    told: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0
    answered: float = 0.0


_serving: weakref.WeakValueDictionary[tuple[uuid.UUID, uuid.UUID], SyncService] = weakref.WeakValueDictionary()
"""The sync service of each (device, library) that runs a first sync (what its job carries on with; by device too: the
devices of one library may be cores of one process)."""


def sync_of(core: Core) -> SyncService:
    """The core's sync service (made, and its requests offered on the network, on first use)."""
    service = core.attached.get("sync")
    if service is None:
        service = core.attached["sync"] = SyncService(core, core.net())
        core.add_service(service)
    return cast(SyncService, service)


class SyncService:
    def __init__(self, core: Core, net: Network) -> None:
        self.core, self.net = core, net
        self.me = str(core.device.id)
        self._wanted: dict[str, asyncio.Event] = {}
        self._pullers: dict[str, asyncio.Task[None]] = {}
        self._watching: dict[str, asyncio.Task[None]] = {}  # device -> this device's watch on it
        self._watches: dict[str, _Watch] = {}  # device -> its watch on this one
        self._dirty: dict[uuid.UUID, set[str]] = {}  # library -> devices not to tell (the one it came from)
        self._flush: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._logs: dict[uuid.UUID, protocol.SharedData] = {}
        self._online: set[str] = set()
        self._by_watermarks: set[str] = set()
        """Devices from before a pull said which numbers it holds (asked by watermarks only: they refuse more)."""
        self._working: set[asyncio.Future[Any]] = set()  # threads at work on a library (`_in_thread`)
        self._fetching: dict[tuple[uuid.UUID, str], asyncio.Lock] = {}  # (library, device) -> its one fetch at a time
        self._fetched: collections.Counter[tuple[uuid.UUID, str]] = collections.Counter()  # (library, device) -> fetches
        self._refetched: dict[tuple[uuid.UUID, str], float] = {}  # (library, device) -> when forgotten for a restart
        self._starting: dict[tuple[uuid.UUID, str], asyncio.Lock] = {}  # (library, device) -> its first sync job's start
        self._background: set[asyncio.Task[None]] = set()  # catalogue files being made, names being written
        self._too_old: set[str] = set()  # devices that cannot send their catalogue as a file, said so in the log
        self._outgoing = Outgoing(self._in_thread)  # this device's catalogue files, as members fetch them
        self.started = False
        self.closed = False
        for name, handler in (
            ("sync_share", self._on_share), ("sync_unshare", self._on_unshare), ("sync_ops", self._on_ops),
            ("sync_catalogue", self._on_catalogue), ("sync_catalogue_file", self._on_catalogue_file),
            ("sync_changed", self._on_changed), ("sync_watch", self._on_watch),
        ):  # fmt: skip
            net.expose(name, handler, trust=("full",))

    # --- life -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Pull from every member of every shared library, now and whenever told; tell them of changes here."""
        if self.started:
            return
        self.started = True
        events = self.core.bus.subscribe()
        self._watch = asyncio.create_task(self._follow(events))
        for device in await self._in_thread(self._all_members):
            self._puller(device)
        for info in await self._in_thread(self.core.libraries.list):
            if info.id is not None and Members(info.folder).current():
                self._prepare(str(info.id))

    def _prepare(self, library_id: str) -> None:
        """Have this device's catalogue file of a shared library made, if it has none, in the background (made at a
        member's first ask instead, a first sync costs 2.5x an scp of the library rather than 1x)."""

        async def prepare() -> None:
            try:
                library = await self._in_thread(self.core.libraries.open, library_id)
                await self._outgoing.prepare(library)
            except Closing:
                pass
            except (SdError, OSError, sqlite3.Error) as exc:  # (made at the first ask then)
                log.warning("could not make the catalogue file of library %s: %s", library_id, exc)

        self._in_background(prepare())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task that `close` cancels."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self.closed = True
        tasks = [t for t in (self._watch, self._flush, *self._pullers.values(), *self._watching.values(), *self._background)
                 if t is not None]  # fmt: skip
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pullers.clear()
        self._watching.clear()
        await asyncio.gather(*self._working, return_exceptions=True)  # the libraries close next: not under a thread
        self._outgoing.close()  # (after the threads: one may be making a copy)

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on a worker thread (it reads or writes a library); `close` waits for it to end, as a task
        canceled leaves its thread running. None starts once the service is closing."""
        if self.closed:
            raise Closing("sync stopped: this device is shutting down")
        call = functools.partial(contextvars.copy_context().run, work, *args)
        future = asyncio.get_running_loop().run_in_executor(None, call)
        self._working.add(future)
        future.add_done_callback(self._working.discard)
        return await asyncio.shield(future)

    def _members(self, library: Library) -> Members:
        """The members of a library, to change or send (signed by this device)."""
        return Members(library.folder, library.id, signing.signer_of(self.core.data_dir / KEY_FILE))

    def _trusted(self) -> set[str]:
        """The devices paired with full trust here (who may remove a third device from a library: members.py)."""
        return {str(p.id) for p in self.net.trust.peers() if p.trust == "full"}

    def _all_members(self) -> set[str]:
        return {m.device_id for info in self.core.libraries.list() for m in Members(info.folder).current()}

    # --- membership -------------------------------------------------------------------------------

    async def share(self, library: Library, device: str) -> Member:
        """Share a library with a paired device (full trust only): it gets the same library (same id)."""
        peer = self.net.resolve(device)
        if peer.trust != "full":
            raise PermissionDenied(
                f"{display(peer.name)} is paired with {peer.trust} trust: a library is shared only with a device "
                "paired with full trust (unpair it and pair again with --trust full)"
            )
        members = self._members(library)
        members.refuse_if_full(peer.id, library.name, display(peer.name))  # before anything is sent
        await self._ext(peer.id, "sync_share", library=str(library.id), title=library.name,
                        members=members.packed(members.me(self.core.device.name)))  # fmt: skip
        member = members.add(peer.id, peer.name)
        self._prepare(str(library.id))
        if self.started:
            self._puller(str(peer.id)).set()
            self._changed(library.id)  # the others learn of the new member from the next exchange
        return member

    async def unshare(self, library: Library, device: str) -> Member:
        """Stop sharing a library with a device: it keeps its copy, and no longer syncs it with anyone."""
        peer_id = str(self.net.device_id_of(device))
        members = self._members(library)
        if not members.holds(peer_id):
            raise NotFound(f"library {library.name!r} is not shared with {display(device)}: "
                           f"`sd library devices {typed(library.name)}` lists who holds it")  # fmt: skip
        old = members.remove(peer_id)
        await self._in_thread(forget_departed, library)
        for m in [*members.current(), old]:  # the device itself, and the others, told now if they are reachable
            if m is not None:
                with contextlib.suppress(SdError, OSError, TimeoutError):
                    await self._ext(m.device_id, "sync_unshare", library=str(library.id), member=peer_id)
        assert old is not None
        return old

    def devices(self, library: Library) -> list[LibraryDevice]:
        """This device and the library's members, each online or not, with the time of the last sync."""
        conflicts = oplog.conflicts(library.read())
        here = LibraryDevice(self.me, self.core.device.name, True, True, None, conflicts.get(self.me, 0))
        members = Members(library.folder)
        named = sorted(((self._name(m, members), m) for m in members.current()), key=lambda t: t[0])
        trusted = self._trusted()
        return [here] + [LibraryDevice(m.device_id, name, False, self._is_online(m.device_id), m.last_sync,
                                       conflicts.get(m.device_id, 0), m.device_id in trusted)
                         for name, m in named]  # fmt: skip

    def _paired_name(self, peer: Peer) -> str:
        """The name `peer` is paired as now (a rename it said since `peer` was read, too)."""
        return (self.net.trust.get(peer.id) or peer).name

    def _name(self, m: Member, members: Members) -> str:
        """A member's name: as paired here, else as it calls itself (signed by it): never as a relay called it."""
        peer = self.net.trust.get(uuid.UUID(m.device_id))
        return peer.name if peer is not None else members.name_of(m)

    def _is_online(self, device: str) -> bool:
        if device in self._online or self._watched_by(device):
            return True
        try:
            return self.net.link(uuid.UUID(device)).connected
        except SdError:
            return False

    # --- requests from members ----------------------------------------------------------------------

    async def _member_library(self, peer: Peer, library: object) -> Library:
        """The library `library` names, if it is shared with `peer`; the same refusal whether it exists or not."""
        lib_id = _parsed(protocol.library_id, library)
        try:
            info = self.core.libraries.find(str(lib_id))
        except NotFound:
            info = None
        if info is None or info.id != lib_id or not Members(info.folder).holds(peer.id):
            raise PermissionDenied(f"no library {lib_id} is shared with {display(peer.name)} here")
        self._online.add(str(peer.id))
        return await self._in_thread(self.core.libraries.open, str(lib_id))

    async def _on_share(self, peer: Peer, library: object, title: object, members: object) -> dict[str, str]:
        lib_id = _parsed(protocol.library_id, library)
        if not isinstance(title, str) or not title.strip() or len(title) > 200:
            raise ProtocolError("sync_share: a library name of 1 to 200 characters")
        opened = await self._in_thread(self._library_shared_by, peer, lib_id, title)
        member_list = self._members(opened)
        if not member_list.holds(peer.id):  # listed as added before any removal: see members.JOINED
            member_list.add(peer.id, peer.name, when=JOINED)
        try:
            joined = member_list.merge(members, self.me, self._trusted())
        except ValueError as exc:
            raise ProtocolError(f"sync_share: {exc}") from None
        await self._in_thread(forget_departed, opened)
        log.info("library %s (%s) shared by %s: `sd library use %s` makes it the one sd and sdtui use here",
                 display(opened.name), lib_id, display(peer.name), typed(opened.name))  # fmt: skip
        self._prepare(str(lib_id))
        if self.started:
            for device in [str(peer.id), *(m.device_id for m in joined)]:
                self._puller(device).set()
        return {"name": self.core.device.name}

    def _library_shared_by(self, peer: Peer, lib_id: uuid.UUID, name: str) -> Library:
        """This device's library of that id, else a new one made with it (`NAME.sdlibrary`, or beside one)."""
        libraries = self.core.libraries
        infos = libraries.list()
        for info in infos:
            if info.id == lib_id:
                was = {m.device_id: m for m in Members(info.folder).all()}.get(str(peer.id))
                if was is not None and not was.current:  # it does not re-join by itself
                    raise PermissionDenied(
                        f"{display(peer.name)} was removed from library {display(info.name)} here: it comes back only "
                        f"when a member's user shares the library with it (`sd library share` on a member)"
                    )
                return libraries.open(str(lib_id))
        by_peer = sum(1 for info in infos if Members(info.folder).holds(peer.id))
        if by_peer >= MAX_SHARED_BY_ONE:
            raise PermissionDenied(f"{display(peer.name)} shares {by_peer} libraries with this device already")
        try:
            return libraries.create(name, library_id=lib_id)
        except SdError:  # a library of that name exists here: this one is told apart by its id
            return libraries.create(f"{name} ({str(lib_id)[:8]})", library_id=lib_id)

    async def _on_unshare(self, peer: Peer, library: object, member: object) -> None:
        lib = await self._member_library(peer, library)
        gone = _parsed(protocol.device_id, member)
        members = self._members(lib)
        if gone == self.me:
            # unshared from this device by the user of a member: it keeps its copy, as a library of its own, and
            # signs nothing (before, it signed the removal of every member, which the others took in)
            members.leave()
        elif gone == str(peer.id) or peer.trust == "full":  # a device leaving; another removed by a device
            members.remove(gone)                             # this user trusts fully (see members.py)
            await self._in_thread(forget_departed, lib)
        else:
            raise PermissionDenied(f"{display(peer.name)} may not remove another device from this library")

    async def _on_ops(
        self, peer: Peer, library: object, watermarks: object, limit: object, held: object = None, conflicts_after: object = None
    ) -> dict[str, Any]:
        lib = await self._member_library(peer, library)
        marks, most = _parsed(protocol.watermarks, watermarks), _parsed(protocol.count, limit, protocol.MAX_OPS)
        numbers = None if held is None else _parsed(protocol.held, held)
        after = None if conflicts_after is None else _parsed(protocol.seq, conflicts_after)
        log_ = await self._log(lib)
        budget = protocol.max_answer_bytes()
        ops, keys, up_to = await self._in_thread(log_.ops_since, marks, most, budget, numbers, after)
        if any(op[0] == self.me for op in ops):
            await self._in_thread(highwater.seen, lib)  # kept before they leave: a restore never reuses them
        cut = sum(len(op[3]) for op in ops) > budget - oplog.BODY_LIMIT  # the next op may not have fitted
        members = self._members(lib)
        answer = {"ops": ops, "more": len(ops) >= most or cut, "members": members.packed(members.me(self.core.device.name)), "keys": keys}
        if up_to is not None:
            answer["conflicts_up_to"] = up_to
        return answer

    async def _on_catalogue(self, peer: Peer, library: object, since: object, limit: object) -> dict[str, Any]:
        lib = await self._member_library(peer, library)
        after, most = _parsed(protocol.seq, since), _parsed(protocol.count, limit, protocol.MAX_CATALOGUE)
        batch, up_to, head = await self._in_thread(protocol.catalogue(lib).changes, after, most)
        await self._in_thread(highwater.seen, lib)  # its numbers are kept before they leave: a restore never reuses them
        if after > 0 and batch[3] == 0:  # from the start, for an asker holding what a restore lost (or past the head)
            return {"batch": batch, "up_to": up_to, "head": head, "restart": True}
        return {"batch": batch, "up_to": up_to, "head": head}

    async def _on_catalogue_file(self, peer: Peer, library: object, offset: object) -> dict[str, Any]:
        lib = await self._member_library(peer, library)
        return await self._outgoing.answer(lib, str(peer.id), _parsed(protocol.offset, offset))

    async def _on_changed(self, peer: Peer, library: object) -> None:
        await self._member_library(peer, library)
        if self.started:
            self._puller(str(peer.id)).set()

    async def _on_watch(self, peer: Peer) -> bool:
        """Answered when a library shared with `peer` changes here (True), or after WATCH_HOLD seconds (False): the
        notice of a change on the connection the member opened (see the module's docstring)."""
        device = str(peer.id)
        if device not in await self._in_thread(self._all_members):
            raise PermissionDenied(f"no library is shared with {display(peer.name)} here")
        watch = self._watches.setdefault(device, _Watch())
        if watch.waiting >= 2:
            raise PermissionDenied(f"{display(peer.name)} watches for changes here already")
        watch.waiting += 1
        self._online.add(device)
        try:
            async with asyncio.timeout(WATCH_HOLD):
                await watch.told.wait()
            watch.told.clear()
            return True
        except TimeoutError:
            return False
        finally:
            watch.waiting -= 1
            watch.answered = time.monotonic()

    def _watched_by(self, device: str) -> _Watch | None:
        """The watch `device` keeps on this one (one waiting, or answered so lately that the next is on its way)."""
        watch = self._watches.get(device)
        if watch is not None and (watch.waiting or time.monotonic() - watch.answered < WATCH_GAP):
            return watch
        return None

    async def _log(self, library: Library) -> protocol.SharedData:
        log_ = self._logs.get(library.id)
        if log_ is None:
            log_ = self._logs[library.id] = await self._in_thread(protocol.shared_data, library)
        return log_

    # --- pulling ------------------------------------------------------------------------------------

    def _puller(self, device: str) -> asyncio.Event:
        """The event that wakes the puller of `device` (started if it was not running)."""
        wanted = self._wanted.setdefault(device, asyncio.Event())
        task = self._pullers.get(device)
        if task is None or task.done():
            self._pullers[device] = asyncio.create_task(self._pull_forever(device, wanted))
        return wanted

    async def _pull_forever(self, device: str, wanted: asyncio.Event) -> None:
        failures = 0
        wanted.set()
        while True:
            wait = IDLE_PULL if failures == 0 else RETRY[min(failures, len(RETRY)) - 1]
            try:
                async with asyncio.timeout(wait):  # not wait_for: in 3.11 it may swallow a cancellation
                    await wanted.wait()
            except TimeoutError:
                pass
            if self.closed:
                return
            wanted.clear()
            try:
                if not await self.pull(device):
                    return  # no library is shared with it any more
                failures = 0
            except (SdError, OSError, TimeoutError, protocol.Refused) as exc:
                failures += 1
                self._online.discard(device)
                if failures == 1:  # once, not at every retry while it is away
                    log.info("sync with device %s stopped: %s", device, display(str(exc) or type(exc).__name__))
            except Exception:
                failures += 1
                log.exception("sync with %s failed", device)

    async def pull(self, device: str) -> bool:
        """Fetch from `device` what this device lacks of every library shared with it; False when none is."""
        peer_id = uuid.UUID(device)
        peer = self.net.trust.get(peer_id)
        infos = [i for i in await self._in_thread(self.core.libraries.list)
                 if i.id is not None and Members(i.folder).holds(device)]  # fmt: skip
        if not infos:
            return False
        if peer is None or peer.trust != "full":
            return True  # a member not paired (fully) with this one: its operations come through the others
        for info in infos:
            library = await self._in_thread(self.core.libraries.open, str(info.id))
            await self._pull_library(peer, library)
        self._online.add(device)
        task = self._watching.get(device)
        if task is None or task.done():
            self._watching[device] = asyncio.create_task(self._watch_on(device))
        return True

    async def _watch_on(self, device: str) -> None:
        """Keep a `sync_watch` waiting on `device` (told that way if it cannot dial this device) and pull when it
        is answered; ends when the device cannot be reached (the next pull from it starts it again)."""
        while not self.closed:
            try:
                told = await self._ext(device, "sync_watch", timeout=WATCH_HOLD + CALL_TIMEOUT)
            except (SdError, OSError, TimeoutError):
                return  # gone, or an older sdtui (which says "changed" only by dialing this device)
            if told is True:
                self._puller(device).set()
            else:
                await asyncio.sleep(RETRY[0])  # (a change meanwhile waits for the next: WATCH_GAP)

    async def _call(self, peer: Peer, request: str, **args: Any) -> Any:
        return await self._ext(peer.id, request, **args)

    async def _ext(self, device: object, request: str, timeout: float = CALL_TIMEOUT, **args: Any) -> Any:
        """A sync request to a paired device (its `Network.expose`d handler), within `timeout` seconds."""
        link = self.net.link(device if isinstance(device, uuid.UUID) else uuid.UUID(str(device)))
        async with asyncio.timeout(timeout):
            return await link.call("ext", name=request, args=args)

    async def _pull_library(self, peer: Peer, library: Library) -> None:
        log_ = await self._log(library)
        members = self._members(library)
        applied = 0
        def conflicts_found() -> int:
            return sum(oplog.conflicts(library.read()).values())

        found = await self._in_thread(conflicts_found)
        while True:
            answer = await self._ask_ops(peer, library, log_)
            if not (isinstance(answer, dict) and isinstance(answer.get("ops"), list)
                    and len(answer["ops"]) <= protocol.MAX_OPS and isinstance(answer.get("more"), bool)):  # fmt: skip
                raise protocol.Refused(f"{display(peer.name)} answered sync_ops with something else")
            new = await self._in_thread(log_.apply, answer["ops"], str(peer.id), answer.get("keys"))
            applied += new
            up_to = answer.get("conflicts_up_to")
            if isinstance(up_to, int) and not isinstance(up_to, bool) and 0 <= up_to <= protocol.MAX_HLC:
                await self._in_thread(log_.set_cursor, str(peer.id), up_to, answer["ops"])
            try:
                for m in members.merge(answer.get("members", []), self.me, self._trusted()):
                    if self.started:
                        self._puller(m.device_id)
            except ValueError as exc:
                raise protocol.Refused(f"{display(peer.name)}: {exc}") from None
            if not answer["more"] or not new:
                break  # (nothing new in a full batch: what it holds beyond is refused here, asked again later)
        await self._in_thread(forget_departed, library)  # (a member the others removed: its catalogue goes here too)
        await self._pull_catalogue(peer, library)
        members.synced(peer.id)
        # An op of the peer's that lost a conflict here leaves it holding what this device dropped: it is told too,
        # and gets the op kept when it asks (else it kept the loser until its next idle pull, 30 s later)
        conflicted = await self._in_thread(conflicts_found) > found
        if applied or conflicted:
            self._changed(library.id, told_by=None if conflicted else str(peer.id))

    async def _ask_ops(self, peer: Peer, library: Library, log_: protocol.SharedData) -> Any:
        """Ask `peer` for the ops this device lacks: by watermarks, and by the numbers it holds of each origin (a
        device from before numbers were asked for is asked by watermarks only)."""
        marks = await self._in_thread(log_.watermarks)
        args: dict[str, Any] = {"library": str(library.id), "watermarks": marks, "limit": protocol.MAX_OPS}
        if str(peer.id) not in self._by_watermarks:
            args["held"] = await self._in_thread(log_.held)
            args["conflicts_after"] = await self._in_thread(log_.cursor, str(peer.id))
            try:
                return await self._call(peer, "sync_ops", **args)
            except SdError as exc:  # (as the other device's error type is known here, or not)
                if "unexpected keyword argument 'held'" not in str(exc):
                    raise
                log.info("%s is an older sdtui: asked by watermarks only", display(peer.name))
                self._by_watermarks.add(str(peer.id))
                del args["held"], args["conflicts_after"]
        return await self._call(peer, "sync_ops", **args)

    async def _pull_catalogue(self, peer: Peer, library: Library, job: JobContext | None = None) -> None:
        """The member's own entries and locations since the last batch applied (it cannot send a third device's).

        A first sync (nothing kept of it, or its log restarted) fetches its catalogue file whole, as a job (`FirstSync`:
        its progress in the jobs screen); then numbered batches from the file's head, the next asked for while one is
        applied (the member builds it meanwhile)."""
        try:
            await self._pull_catalogue_of(peer, library, job)
        except (SdError, OSError, sqlite3.Error):  # (what was kept of it forgotten meanwhile, even between two steps)
            await self._refuse_if_departed(peer, library)
            raise

    async def _pull_catalogue_of(self, peer: Peer, library: Library, job: JobContext | None) -> None:
        cat = protocol.catalogue(library)
        device = str(peer.id)
        restarted = False
        while True:
            fetched = self._fetched[(library.id, device)]
            since = await self._in_thread(cat.watermark, device)
            if not await self._in_thread(catalogue_held, library, peer.id):
                if job is None:
                    await self._first_sync_job(peer, library)
                    return
                since = await self._fetch_file(peer, library, job)
                fetched = self._fetched[(library.id, device)]  # (its own fetch: a restart right after it is forgotten)
            asking = asyncio.ensure_future(self._catalogue_after(peer, library, since))
            try:
                while True:
                    answer = await asking
                    more = answer["up_to"] < answer["head"]
                    if more:
                        asking = asyncio.ensure_future(self._catalogue_after(peer, library, answer["up_to"]))
                    await self._in_thread(cat.apply, device, answer["batch"], functools.partial(self._paired_name, peer))
                    if not more:
                        return
                    if job is not None:
                        job.progress(answer["up_to"], answer["head"], f"sync from {display(peer.name)}", "changes")
                        await job.checkpoint()  # a pause or cancel takes effect here; the watermark keeps what came
            except _Restarted:
                if restarted:  # (again, right after its file: a liar would have it fetched forever)
                    raise SdError(f"the catalogue of {display(peer.name)} restarted again right after it was fetched:"
                                  " it is fetched again at the next sync from it") from None
                restarted = True
                await self._forget_restarted(peer, library, fetched)
                continue  # its catalogue is fetched again
            finally:
                asking.cancel()

    async def _first_sync_job(self, peer: Peer, library: Library) -> None:
        """Run the first sync from `peer` as a job and wait for it: the one not finished (resumed), else a new one; one
        paused by the user waits for the user."""
        device = str(peer.id)

        def unfinished() -> JobRecord | None:
            for record in library.jobs.list(states=("queued", "running", *RESUMABLE)):
                if record.kind == FirstSync.kind and getattr(library.jobs.state_of(record.id), "device", None) == device:
                    return record
            return None

        _serving[(library.context.device_id, library.id)] = self
        async with self._starting.setdefault((library.id, device), asyncio.Lock()):  # (pulls at once: one job)
            record = await self._in_thread(unfinished)
            if record is None:
                job_id = await library.jobs.start(FirstSync(device, peer.name))
            elif record.state == "paused" and not library.jobs.is_running(record.id):
                return
            else:
                job_id = record.id
                await library.jobs.resume(job_id)  # (nothing when it runs)
        await library.jobs.wait(job_id)

    async def _fetch_file(self, peer: Peer, library: Library, job: JobContext) -> int:
        """Fetch and keep the member's catalogue file (one fetch of a member and library at a time: they would share
        the staging file), its locations into the library's tables as soon as it is listable; the watermark once it is
        searchable. Returns the file's head. Cut off (a pause, the member gone, kill -9), it starts again next time."""
        device = str(peer.id)
        async with self._fetching.setdefault((library.id, device), asyncio.Lock()):
            if await self._in_thread(catalogue_held, library, peer.id):  # fetched by the one that held the lock
                return await self._in_thread(protocol.catalogue(library).watermark, device)

            async def progress(done: int, size: int) -> None:
                job.progress(done, size, f"first sync from {display(peer.name)}", "bytes")
                await job.checkpoint()  # a pause or cancel takes effect here: the part fetched is deleted

            try:
                held = await fetch_catalogue_file(
                    self, peer, library, progress, functools.partial(adopt_catalogue_file, library, peer.id, peer.name)
                )
            except SdError as exc:
                if "does not offer 'sync_catalogue_file'" not in str(exc):
                    raise
                why = (f"{display(peer.name)} runs an older sdtui, which cannot send its catalogue as a file: update "
                       "sdtui there to see its files here")  # fmt: skip
                if device not in self._too_old:  # (once: it is asked again at each pull, in case it was updated)
                    self._too_old.add(device)
                    log.warning("%s", why)
                raise SdError(why) from None
            await self._in_thread(catalogue_file_kept, library, peer.id, held.head)
            await self._refuse_if_departed(peer, library)
            self._fetched[(library.id, device)] += 1
            return held.head

    async def _refuse_if_departed(self, peer: Peer, library: Library) -> None:
        """Fail a sync from a device that is no longer a member here (unshared, told it left, removed by another
        member's list while its catalogue was fetched or kept): what the sync kept of it is forgotten again (the
        departure's forget may have come before it, or between its copy and its rename)."""
        def departed() -> bool:  # (not a member that this device left with its copy: it keeps what it has, `leave`)
            return any(m.device_id == str(peer.id) and not m.current for m in Members(library.folder).all())

        if not await self._in_thread(departed):
            return
        await self._in_thread(forget_catalogue, library, peer.id)
        raise SdError(f"library {library.name!r} is no longer shared with {display(peer.name)} here: nothing of its "
                      "catalogue is kept")

    async def _forget_restarted(self, peer: Peer, library: Library, fetched: int) -> None:
        """Forget what is kept of a member whose log restarted, unless it was fetched again since the pull that saw the
        restart began (`fetched`: the fetches counted then) or forgotten already: another pull at once saw it too. A
        restart within REFETCH_GAP of the last one taken fails the sync with one line (it is taken at a later one)."""
        key = (library.id, str(peer.id))
        async with self._fetching.setdefault(key, asyncio.Lock()):  # (not while a fetch keeps it)
            if self._fetched[key] != fetched or not await self._in_thread(catalogue_held, library, peer.id):
                return
            if time.monotonic() < self._refetched.get(key, -REFETCH_GAP) + REFETCH_GAP:
                raise SdError(f"the catalogue of {display(peer.name)} restarted again soon after it was fetched: it is"
                              " fetched again at a later sync from it")
            self._refetched[key] = time.monotonic()
            await self._in_thread(protocol.catalogue(library).forget, str(peer.id))

    async def _catalogue_after(self, peer: Peer, library: Library, since: int) -> dict[str, Any]:
        answer = await self._call(peer, "sync_catalogue", library=str(library.id), since=since, limit=protocol.MAX_CATALOGUE)
        if not (isinstance(answer, dict) and all(isinstance(answer.get(k), int) for k in ("up_to", "head"))
                and answer["up_to"] <= answer["head"]
                and (since <= answer["up_to"] or answer["head"] < since or answer.get("restart") is True)):  # fmt: skip
            raise protocol.Refused(f"{display(peer.name)} answered sync_catalogue with something else")
        if since > 0 and (answer["head"] < since or answer.get("restart") is True):
            # its log restarted below what this device holds, or past changes it lost (a library restored from a backup)
            log.warning("the catalogue of %s restarted below change %s: loading it again", display(peer.name), since)
            raise _Restarted
        # checked here, on a thread of its own: while the batch before is written (SQLite lets go of the GIL)
        answer["batch"] = await self._in_thread(protocol.catalogue(library).check, str(peer.id), answer["batch"])
        return answer

    # --- telling members of changes here ---------------------------------------------------------------

    async def _follow(self, events: Any) -> None:
        with events:
            async for event in events:
                self._on_event(event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, DeviceConnected):
            device = str(event.device_id)
            self._online.add(device)
            if device in self._pullers:
                self._puller(device).set()
        elif isinstance(event, DeviceLost):
            self._online.discard(str(event.device_id))
        elif isinstance(event, DeviceRenamed):
            self._in_background(self._renamed(event))
        elif isinstance(event, LibraryChanged | EntriesChanged | LocationScanState | SharedDataChanged | CatalogueChanged):
            library_id = getattr(event, "library_id", None)
            if isinstance(library_id, uuid.UUID):
                self._changed(library_id)

    async def _renamed(self, event: DeviceRenamed) -> None:
        """The libraries shared with a member that renamed itself name it so at once (its next batch would, but it may
        have none to send for long, or go off first: meanwhile its files were shown under its old name)."""

        def write() -> None:
            for info in self.core.libraries.list():
                if info.id is not None and Members(info.folder).holds(str(event.device_id)):
                    renamed(self.core.libraries.open(str(info.id)), event.device_id, event.name)

        try:
            await self._in_thread(write)
        except Closing:
            pass
        except (SdError, OSError, sqlite3.Error) as exc:  # (the next batch from it writes the name)
            log.warning("could not write the new name of device %s: %s", event.device_id, exc)

    def _changed(self, library_id: uuid.UUID, told_by: str | None = None) -> None:
        """Tell the members of a library that it changed here (once per burst), but the one the change came from."""
        skip = self._dirty.get(library_id)
        if skip is None:
            self._dirty[library_id] = {told_by} if told_by else set()
        elif not told_by or told_by not in skip:
            skip.clear()  # a change of its own too: everyone is told
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._tell())

    async def _tell(self) -> None:
        await asyncio.sleep(PUSH_DELAY)
        dirty, self._dirty = self._dirty, {}
        calls = []
        for library_id, skip in dirty.items():
            try:
                info = self.core.libraries.find(str(library_id))
            except NotFound:
                continue
            for m in Members(info.folder).current()[:MAX_MEMBERS]:
                if m.device_id in skip:
                    continue
                watch = self._watched_by(m.device_id)
                if watch is not None:
                    watch.told.set()  # on the connection it opened
                elif self._is_online(m.device_id):
                    calls.append(self._notify(m.device_id, library_id))
        await asyncio.gather(*calls)

    async def _notify(self, device: str, library_id: uuid.UUID) -> None:
        try:
            await self._ext(device, "sync_changed", timeout=10, library=str(library_id))
        except (SdError, OSError, TimeoutError):
            self._online.discard(device)


def _parsed(parse: Callable[..., T], *values: object) -> T:
    """What `parse` makes of what a member sent; a ProtocolError (said back to it) when that is not the protocol."""
    try:
        return parse(*values)
    except protocol.Refused as exc:
        raise ProtocolError(str(exc)) from None
