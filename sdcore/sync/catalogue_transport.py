"""A first sync's transport of a catalogue file (issue 16) over the devices' own SSH channel: the owner keeps one file
of its own catalogue per library and serves a member a frozen copy of it in chunks (`Outgoing`, answering
`sync_catalogue_file`); the receiver asks them in order into its staging file and keeps it (`fetch_catalogue_file`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from sdcore.library.damage import uri
from sdcore.net.frames import ProtocolError
from sdcore.sync import catalogue_store

if TYPE_CHECKING:
    from sdcore.library.library import Library
    from sdcore.net.trust import Peer
    from sdcore.sync.catalogue_file import CatalogueFile
    from sdcore.sync.service import SyncService

CHUNK = 1 << 20
"""Bytes of the file in one answer (well under frames.MAX_FRAME)."""
MIN_PART = 64 << 10
"""Bytes of the file a receiver takes in one answer, at least, but the last one (an owner answering a few bytes at a
time would keep it asking a round trip a byte, over gigabytes)."""
IDLE = 600.0
"""Seconds a copy made for an asker is kept after its last ask."""
FRESH = 60.0
"""Seconds a copy made for an asker is kept at least, and answers its asks from 0 (a copy is the whole file written
again: an asker asking from 0 in a loop would have one made at each ask)."""
OUTGOING = "outgoing.db"
"""The owner's own catalogue file of a library, in its `catalogues` folder (beside other devices' kept ones)."""
_COPY = "outgoing-{}.copy"


@dataclass
class _Copy:
    path: Path
    size: int
    head: int
    made: float = 0.0
    idle: asyncio.TimerHandle | None = None


class Outgoing:
    """The owner's side: its catalogue file of each library (made the first time, refreshed when a copy is made), and
    a frozen copy of it per (asker, library) while the asker fetches it (the kept file may be refreshed meanwhile), one
    FRESH seconds at most."""

    def __init__(self, in_thread: Callable[..., Awaitable[Any]]) -> None:
        self._in_thread = in_thread  # (the service's: its close waits for the thread)
        self._copies: dict[tuple[str, uuid.UUID], _Copy] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._making: dict[tuple[str, uuid.UUID], asyncio.Future[_Copy]] = {}

    async def answer(self, library: Library, asker: str, offset: int) -> dict[str, Any]:
        """{"size", "head", "data"}: at most CHUNK bytes from `offset` of the copy made for `asker` (made again at
        offset 0 once FRESH), deleted once the asker has its end and it is FRESH old."""
        key, now = (asker, library.id), asyncio.get_running_loop().time()
        copy = self._copies.get(key)
        if copy is None or (offset == 0 and now >= copy.made + FRESH):
            if offset != 0:
                raise ProtocolError("sync: a catalogue file is asked from offset 0 first (its copy is made then)")
            making = self._making.get(key)
            if making is None:  # (a second ask from 0 meanwhile gets the copy being made)
                self._drop(key)
                making = self._making[key] = asyncio.ensure_future(self._make(key, library))
            copy = await asyncio.shield(making)
        if offset > copy.size:
            raise ProtocolError(f"sync: offset {offset} is past the catalogue file's end ({copy.size} bytes)")
        data = await self._in_thread(_read, copy.path, offset)
        if self._copies.get(key) is copy:
            self._idle_from_now(key, copy, copy.made + FRESH - now if offset + len(data) >= copy.size else IDLE)
        return {"size": copy.size, "head": copy.head, "data": data}

    async def _make(self, key: tuple[str, uuid.UUID], library: Library) -> _Copy:
        """The asker's copy, made and kept for it even if its ask is cancelled meanwhile (its thread runs on: the lock
        is held until it ends, and the copy is the asker's to delete)."""
        try:
            async with self._locks.setdefault(library.id, asyncio.Lock()):  # one refresh of the kept file at a time
                live = {c.path for c in self._copies.values()}
                made: _Copy = await self._in_thread(_frozen_copy, library, live)
        finally:
            del self._making[key]
        made.made = asyncio.get_running_loop().time()
        self._copies[key] = made
        self._idle_from_now(key, made, IDLE)
        return made

    async def prepare(self, library: Library) -> None:
        """Make the library's catalogue file if it has none (a member's first ask then only refreshes it)."""
        async with self._locks.setdefault(library.id, asyncio.Lock()):
            await self._in_thread(_made, library)

    def _idle_from_now(self, key: tuple[str, uuid.UUID], copy: _Copy, seconds: float) -> None:
        if copy.idle is not None:
            copy.idle.cancel()
        copy.idle = asyncio.get_running_loop().call_later(max(seconds, 0.0), self._drop, key, copy)

    def close(self) -> None:
        for key in list(self._copies):
            self._drop(key)

    def _drop(self, key: tuple[str, uuid.UUID], only: _Copy | None = None) -> None:
        copy = self._copies.get(key)
        if copy is None or (only is not None and copy is not only):
            return
        del self._copies[key]
        if copy.idle is not None:
            copy.idle.cancel()
        copy.path.unlink(missing_ok=True)


def _made(library: Library) -> None:
    from sdcore.sync.catalogue_file import make

    kept = library.folder / catalogue_store.FOLDER / OUTGOING
    kept.parent.mkdir(exist_ok=True)
    if not kept.is_file():
        make(library, kept)


def _frozen_copy(library: Library, live: set[Path]) -> _Copy:
    """The library's catalogue file brought up to date (made if there is none or it is unreadable), and a copy of it
    by the backup API. Copies no asker holds (left by a kill) are deleted first."""
    from sdcore.sync.catalogue_file import make, refresh

    folder = library.folder / catalogue_store.FOLDER
    folder.mkdir(exist_ok=True)
    for old in folder.glob(_COPY.format("*")):
        if old not in live:
            old.unlink(missing_ok=True)
    kept = folder / OUTGOING
    try:
        if not kept.is_file():
            raise FileNotFoundError(kept)
        refresh(library, kept)
    except (FileNotFoundError, sqlite3.DatabaseError):  # (none yet, or a file broken: one made anew)
        kept.unlink(missing_ok=True)
        make(library, kept)
    path = folder / _COPY.format(uuid.uuid4().hex)
    try:
        with contextlib.closing(sqlite3.connect(uri(kept, "mode=ro"), uri=True)) as source, \
             contextlib.closing(sqlite3.connect(path)) as target:  # fmt: skip
            source.backup(target)
            (head,) = target.execute("SELECT head FROM catalogue").fetchone()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _Copy(path, path.stat().st_size, head)


def _read(path: Path, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(CHUNK)


async def fetch_catalogue_file(
    service: SyncService,
    peer: Peer,
    library: Library,
    progress: Callable[[int, int], Awaitable[None]] | None = None,
    listable: Callable[[], None] | None = None,
) -> CatalogueFile:
    """The catalogue file of `peer` in `library`, asked chunk by chunk (the next asked while one is written) into the
    staging file, then kept (catalogue_store.keep checks it; `listable()` is called, on a thread, once it lists). A
    part cut off (the peer gone, a cancel) is deleted. `progress(bytes so far, size)` after each chunk written."""
    from sdcore.sync.catalogue_file import Limits, refused

    most = Limits().file_bytes
    staged = await service._in_thread(catalogue_store.staging_path, library, peer.id)

    def ask(offset: int) -> asyncio.Future[Any]:
        return asyncio.ensure_future(service._ext(peer.id, "sync_catalogue_file", library=str(library.id), offset=offset))

    asking: asyncio.Future[Any] | None = None
    try:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()  # a part left by a fetch cut off (kill -9)
        with open(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb") as out:
            asking, at, first = ask(0), 0, None
            while asking is not None:
                size, head, data = _chunk(await asking, at, most)
                if first is None:
                    first = size, head
                elif first != (size, head):
                    raise refused(f"the catalogue file changed while it was sent ({first} then {(size, head)})")
                at += len(data)
                asking = ask(at) if at < size else None
                await service._in_thread(out.write, data)
                if progress is not None:
                    await progress(at, size)
    except BaseException:
        if asking is not None:
            asking.cancel()
        staged.unlink(missing_ok=True)
        raise
    return await service._in_thread(catalogue_store.keep, library, peer.id, None, listable)


def _chunk(answer: object, at: int, most: int) -> tuple[int, int, bytes]:
    """(size, head, data) of an answer to `sync_catalogue_file` at offset `at`, checked."""
    from sdcore.sync.catalogue_file import refused

    if not isinstance(answer, dict):
        raise refused("an answer to sync_catalogue_file is not a map")
    size, head, data = answer.get("size"), answer.get("head"), answer.get("data")
    if not _whole(size) or not _whole(head) or not isinstance(data, bytes):
        raise refused("an answer to sync_catalogue_file lacks its size, head or data")
    if size > most:
        raise refused(f"the catalogue file has {size} bytes, more than this device keeps of one ({most})")
    if not data or at + len(data) > size:
        raise refused(f"the catalogue file's part at {at} ({len(data)} bytes) does not fit its size ({size})")
    if len(data) < min(MIN_PART, size - at):
        raise refused(f"the catalogue file's part at {at} ({len(data)} bytes) is shorter than {MIN_PART} bytes")
    return size, head, data


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
