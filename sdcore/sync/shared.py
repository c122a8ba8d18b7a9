"""Shared data of a library (tags, tag assignments, notes, favourites, saved searches) as a merged operation log.

Every change is an Op kept in `sync_ops`, written in the transaction of the change it makes. The state is a
function of the set of ops held, whatever their order:

- a field (a tag's name, colour or gone mark; an entry's note or favourite mark; a saved search) is a register:
  the op with the highest (HLC, origin) wins (`sync_fields`); every op that wrote it stays in the log, listed
  by `sync_history`, so an overwritten value can be read and put back;
- a tag on an entry or a content is an add-wins set (`sync_tagged`): a removal names the adds it saw, so an add
  it did not see (made meanwhile on another device) stays.

An origin signs each op with a number of its own (oplog.Op.seq). Two different ops it signed with one number or one
stamp (a device restored with its data dir from a backup, or one that lies) are a conflict: the earlier is kept on
every device, the other undone where it was merged and kept as evidence (`_wins_conflicts`).

What users see (the `tags`, `tag_assignments`, `user_metadata` and `saved_searches` tables that listing and
search read) is made from that state. Another device's entry is named there by its global id when its catalogue is
kept as a file (sdcore.sync.catalogue_store; shown at once, whether the file holds it yet or not); an op about an
entry of a device whose catalogue is not kept (nor merged into the tables yet) changes the state only, and
`reapply_pending` shows it once the entry arrives (`named_by_slot`: once the device's file is kept).

A location another device had and this one took over (its disk plugged in here: sdcore.library.adopt.take) holds
this device's entries: an op that names one by its old owner's id (made there, or on a third device, before it heard
of it) shows nowhere by that id; this device says it again of its own entry, as its own op (`_follow_taken`), which
every device shows on the same file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from sdcore.events import LibraryChanged, SharedDataChanged
from sdcore.sync import highwater, hlc, kept_entries, oplog, signing
from sdcore.sync.catalogue import EntryRef, entry_of, ref_of, taken_entry
from sdcore.sync.members import Members
from sdcore.sync.oplog import Op

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

_WHAT = {"tag": "tags", "tag+": "tags", "tag-": "tags", "note": "notes", "fav": "favorites", "search": "saved searches"}
"""The LibraryChanged each kind of op makes (what the explorer reloads)."""


@dataclass(frozen=True)
class Version:
    """One value a field had: who wrote it and when; `current` for the one that holds now."""

    number: int
    """1 for the oldest: `restore` takes this number."""
    origin: str
    when: float
    value: Any
    current: bool


@dataclass(frozen=True)
class TagEvent:
    """A tag put on or taken off an entry (or its content) by a device, at a time."""

    when: float
    origin: str
    tag: str
    added: bool
    content: bool


QUOTA_OPS = 200_000
QUOTA_BYTES = 64 << 20
"""What one other device's ops may add here in an hour (operations, bytes they take: `oplog.stored_size`), in a burst or spread:
past it, its further ops wait (its watermark stays below them: they come again at later pulls). 10,000 tag
operations made offline come in one burst well within it."""
QUOTA_PERIOD = 3600.0
MAX_HELD_BYTES = 1 << 30
"""Bytes the ops of one other device take here in all (the log is never compacted)..."""
MAX_HELD_BYTES_STRANGER = 16 << 20
"""...of a device that is not a member of the library (a copy's old device; a member making up devices)."""
MAX_HELD_BYTES_STRANGERS = 64 << 20
"""...of all devices not members together (a member making up 128 devices, the most this device takes, had them
add 2 GiB here)."""
MAX_HELD_OPS = 10_000_000


class Quota:
    """What each other device's ops may still add to a library here (`QUOTA_*` per hour, `MAX_HELD_*` in all)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float, float]] = {}  # origin -> (ops left, bytes left, when)
        self._held: dict[str, list[int]] = {}  # origin -> [ops, bytes] held (counted once, then kept up to date)
        self.full: dict[str, int] = {}
        """Origins whose ops were refused for their quota (`resting`), each with the bytes it may hold in all."""
        self._strangers: set[str] = set()
        self._strangers_held: int | None = None
        """Bytes held of the ops of all devices not members (counted once, then kept up to date)."""

    def room(self, conn: sqlite3.Connection, origin: str, members: Collection[str]) -> tuple[float, float]:
        """(ops, bytes) `origin` may add now (`members`: the library's members and this device)."""
        now = time.monotonic()
        ops, size, when = self._buckets.get(origin, (float(QUOTA_OPS), float(QUOTA_BYTES), now))
        refill = (now - when) / QUOTA_PERIOD
        ops, size = min(QUOTA_OPS, ops + refill * QUOTA_OPS), min(QUOTA_BYTES, size + refill * QUOTA_BYTES)
        self._buckets[origin] = (ops, size, now)
        held = self._held.get(origin)
        if held is None:
            row = conn.execute(f"SELECT count(*), {oplog.STORED_SIZE_SQL} FROM sync_ops WHERE origin = ?", (origin,)).fetchone()
            held = self._held[origin] = [int(row[0]), int(row[1])]
        if origin in members:
            return min(ops, MAX_HELD_OPS - held[0]), min(size, MAX_HELD_BYTES - held[1])
        if self._strangers_held is None:
            self._strangers.update(o for o in oplog.origins(conn) if o not in members)
            self._strangers_held = sum(
                int(conn.execute(f"SELECT {oplog.STORED_SIZE_SQL} FROM sync_ops WHERE origin = ?", (o,)).fetchone()[0])
                for o in self._strangers
            )  # fmt: skip
        if origin not in self._strangers:  # (a device no longer a member, say: what it holds counts from now on)
            self._strangers.add(origin)
            self._strangers_held += held[1]
        strangers_room = MAX_HELD_BYTES_STRANGERS - self._strangers_held
        return min(ops, MAX_HELD_OPS - held[0]), min(size, MAX_HELD_BYTES_STRANGER - held[1], strangers_room)

    def resting(self) -> set[str]:
        """The origins refused for their quota that have not got room for a tenth of it back yet: not asked for (their
        ops, oldest of all, would fill every answer, ahead of the ops of other devices)."""
        now = time.monotonic()
        out = set()
        for origin, most in list(self.full.items()):
            ops, size, when = self._buckets[origin]
            refill = (now - when) / QUOTA_PERIOD
            held = self._held[origin]
            if (ops + refill * QUOTA_OPS < QUOTA_OPS / 10 or size + refill * QUOTA_BYTES < QUOTA_BYTES / 10
                    or held[0] >= MAX_HELD_OPS or held[1] >= most - oplog.BODY_LIMIT
                    or (origin in self._strangers and self._strangers_held is not None
                        and self._strangers_held >= MAX_HELD_BYTES_STRANGERS - oplog.BODY_LIMIT)):  # fmt: skip
                out.add(origin)
            else:
                del self.full[origin]
        return out

    def took(self, origin: str, ops: int, size: int) -> None:
        left_ops, left_bytes, when = self._buckets[origin]
        self._buckets[origin] = (left_ops - ops, left_bytes - size, when)
        held = self._held[origin]
        held[0] += ops
        held[1] += size
        if origin in self._strangers and self._strangers_held is not None:
            self._strangers_held += size


def _field_key(kind: str, fields: dict[str, Any]) -> str:
    """The field an op of a register kind writes (`sync_fields.key`)."""
    if kind == "tag":
        return f"tag:{fields['uid']}:{fields['field']}"
    if kind == "search":
        return "search:" + fields["name"].strip().casefold()
    return f"{kind}:{fields['target']}"


_UNSET = {"note": None, "fav": False}
"""What an entry's note or favourite mark is while no op has set it."""


class _Followed:
    """What the ops of a batch say of the entries of a location taken over here by their old owner's ids (made there,
    or on a third device, before it heard of it; or a log replayed): each field and tagging they change, with this
    device's target for the entry (sdcore.library.adopt.take) and the field's value before the batch."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._any = db.execute("SELECT 1 FROM taken_entries LIMIT 1").fetchone() is not None
        self.tagged: dict[tuple[str, str], tuple[str, set[str]]] = {}
        """(tag uid, old target) -> (this device's target, the kinds of op that came: tag+, tag-)."""
        self.removed: dict[tuple[str, str], int] = {}
        """(tag uid, old target) -> the stamp of the latest removal that came."""
        self.fields: dict[str, tuple[str, Any]] = {}
        """Old field key (note:TARGET, fav:TARGET) -> (this device's key, the old field's value before the batch)."""

    def before(self, op: Op, shared: SharedData, member: bool) -> None:
        """Note `op` (before it is merged) if it names an entry taken over here and its origin is a member of the
        library or this device (what this device says again is signed by it and counts against its quota on the
        others: never for a device that is not a member, of which a member may make up many)."""
        if not self._any or not member or op.kind not in ("tag+", "tag-", "note", "fav"):
            return
        fields = op.fields()
        place = oplog.parse_target(fields["target"])
        if not isinstance(place, tuple) or place[0] == shared.device:
            return
        entry_id = taken_entry(self.db, EntryRef(uuid.UUID(place[0]), place[1]))
        if entry_id is None:
            return
        ref = ref_of(self.db, entry_id)
        if str(ref.device_id) != shared.device:
            return
        mine = oplog.entry_target(shared.device, ref.entry_id)
        if op.kind in ("tag+", "tag-"):
            self.tagged.setdefault((fields["uid"], fields["target"]), (mine, set()))[1].add(op.kind)
            if op.kind == "tag-":
                self.removed[fields["uid"], fields["target"]] = max(op.hlc, self.removed.get((fields["uid"], fields["target"]), 0))
            return
        key = _field_key(op.kind, fields)
        if key not in self.fields:
            self.fields[key] = (f"{op.kind}:{mine}", shared._field(self.db, key, _UNSET[op.kind]))


_said: dict[str, float] = {}


def _say_conflict(origin: str, kept: Op, dropped: Op) -> None:
    """Say in the log that `origin` signed two different ops as one (once a minute per origin at most)."""
    now = time.monotonic()
    if now - _said.get(origin, float("-inf")) < 60:
        return
    _said[origin] = now
    number = f"its operation {dropped.seq}" if dropped.seq is not None and dropped.seq == kept.seq else "one stamp"
    log.warning(
        "device %s signed conflicting operations (%s twice, differently): kept the earlier, as every device does; "
        "`sd library devices` names it (a device restored from a backup with its data dir, or one not to trust)",
        origin, number,
    )


def tag_uid(name: str) -> str:
    """The id a new tag of this name gets: the same on every device, so two devices making 'work' make one tag."""
    return hashlib.sha256(("tag:" + name.casefold()).encode()).hexdigest()[:32]


class SharedData:
    """The shared data of one library: `library.sync`. Local changes come through the methods that take the
    write transaction `db`; other devices' ops through `apply`."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._clock: hlc.Clock | None = None
        self._adopted = False
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        """The kinds of change made in the write transaction under way (told once it commits)."""
        self.quota = Quota()
        self._names: dict[str, dict[str, tuple[tuple[int, str], str]]] | None = None
        """While a batch of other devices' ops is merged (`apply`): every tag name, casefolded -> {uid: (stamp of its
        name, name)}, read once (`_name_group` read them all for each op: 8,000 new tags took 32 s)."""
        self._naming = False
        self._remade: list[tuple[str, dict[str, Any]]] = []
        """This device's own ops dropped in the batch being merged (`_wins_conflicts`), to make again."""

    @property
    def device(self) -> str:
        return str(self.library.context.device_id)

    @property
    def clock(self) -> hlc.Clock:
        with self._lock:
            if self._clock is None:
                last = max(oplog.watermarks(self.library.read()).values(), default=0)  # (max(hlc): every op read)
                restored = self.library.read().execute("SELECT coalesce(max(hlc_to), 0) FROM sync_restores").fetchone()[0]
                self._clock = hlc.Clock(max(last, restored))  # past a restored library's lost ops (sync.highwater)
            return self._clock

    # -- what other devices call (through syncwire) ---------------------------------------------------

    def watermarks(self) -> dict[str, int]:
        """Origin device id -> the highest stamp held from it; what this device asks with: the devices past their
        quota here (`Quota.resting`) marked as held up to the last stamp, so that none of their ops is sent."""
        self._adopt_now()
        conn = self.library.read()
        marks = oplog.watermarks(conn)
        highwater.own_watermark(conn, marks)  # a restored library asks its lost ops back
        for origin in self.quota.resting():
            marks[origin] = hlc.MAX_STAMP
        return marks

    def held(self) -> dict[str, list[Any]]:
        """Which numbers of each origin's ops this device holds (`oplog.held`), what it asks with beside its
        watermarks: the devices past their quota here as holding every number, so that none of their ops is sent."""
        self._adopt_now()
        numbers = oplog.held(self.library.read())
        for origin in self.quota.resting():
            numbers[origin] = [oplog.MAX_SEQ, []]
        return numbers

    def ops_since(
        self, watermarks: dict[str, int], limit: int = 1000, max_bytes: int | None = None, verifiable: bool = False,
        numbers: dict[str, list[Any]] | None = None,
    ) -> list[Op]:
        """Up to `limit` ops that a device holding `watermarks` (and `numbers`: `held`) lacks, oldest first, their
        bodies `max_bytes` at most; `verifiable`: only those the other device can check (oplog.ops_since). This
        device's own ops made before ops were signed are signed on the way out."""
        self._adopt_now()
        only = None
        members = {m.device_id for m in Members(self.library.folder).all()} | {self.device}
        if len(set(watermarks) - members) >= oplog.MAX_STRANGERS:
            # the asker holds as many devices that are not members as it takes: the ops of others it lacks would be
            # refused there, and, older than what it can take, fill every answer (its sync would stall for good)
            only = set(watermarks) | members
        ops = oplog.ops_since(self.library.read(), watermarks, limit, max_bytes, self.device if verifiable else "", only, numbers)
        if any(op.sig is None and op.origin == self.device for op in ops):
            ops = [self._signed(op) if op.origin == self.device else op for op in ops]
        return ops

    def keys_of(self, origins: Iterable[str]) -> dict[str, bytes]:
        """The public keys of these origins held here (what a receiver needs to check their ops' signatures)."""
        wanted = set(origins)
        keys = dict(self.library.read().execute("SELECT device, key FROM sync_keys"))
        signer = self._signer()
        if signer is not None:
            keys[signer.device_id] = signer.public_key
        return {device: key for device, key in keys.items() if device in wanted}

    def receive(self, ops: Sequence[Op], sender: str, keys: dict[str, bytes]) -> int:
        """Merge the ops a member sent, its own and those of other devices it relays, each only if its origin's
        signature of it in this library verifies; the others are refused and logged. How many were new.

        The sender's own ops are checked too: one kept here unsigned would be relayed to devices that refuse it,
        and a batch of them, oldest of all, would be every answer those devices get from here (their sync stalls).
        An honest device signs its own ops made before ops were signed as it sends them (`ops_since`)."""
        known = self.keys_of({op.origin for op in ops})
        good: list[Op] = []
        learnt: dict[str, bytes] = {}
        for op in ops:
            key = known.get(op.origin) or keys.get(op.origin)
            ok = op.sig is not None and key is not None and signing.verify(key, op.signed_part(self.library.id), op.sig)
            if not ok:
                signing.refusals.refused(sender, f"an operation of device {op.origin} not signed by it (forged or altered)")
                continue
            good.append(op)
            if key is not None and op.origin not in known:
                learnt[op.origin] = key
        good = self._within_origins(good, sender)  # (whatever keys are held: a key kept does not make a member)
        kept = {op.origin for op in good}  # the key of an origin left out is not kept (else it would count as known)
        learnt = {origin: key for origin, key in learnt.items() if origin in kept}
        return self.apply(good, learnt, sender)

    def _within_origins(self, ops: list[Op], sender: str) -> list[Op]:
        """The ops but those of devices that are not members of the library, new here past `oplog.MAX_STRANGERS` of
        them (a member making up devices by the hundred would make the requests this device asks with, naming every
        device it holds ops of, too long to be answered: its sync would stop for good)."""
        members = {m.device_id for m in Members(self.library.folder).all()} | {self.device}
        held = set(oplog.origins(self.library.read())) | members
        room = oplog.MAX_STRANGERS - len(held - members)
        taken, left_out = set(held), 0
        for origin in dict.fromkeys(op.origin for op in ops):
            if origin not in taken:
                if room <= 0:
                    left_out += 1
                    continue
                taken.add(origin)
                room -= 1
        if left_out:
            signing.refusals.refused(sender, f"operations of {left_out} more devices that are not members of the library")
        return [op for op in ops if op.origin in taken]

    def apply(self, ops: Iterable[Op], keys: dict[str, bytes] | None = None, sender: str = "") -> int:
        """Merge other devices' ops (validated by `Op.unpack`); how many were new. Idempotent, in any order. An op
        stamped more than a day ahead of this device's clock is refused with every later op of its origin here:
        the watermark stays below it, so it comes again once the clocks agree. So is an origin's numbered op
        whose predecessor is not held (`oplog.without_gaps`): a relay cannot make this device skip an origin's ops.
        And another device's ops past its quota (`Quota`), with its later ones: they wait for room."""
        clock = self.clock
        refused: set[str] = set()
        taken = []
        for op in sorted(ops, key=lambda o: o.stamp):
            if op.origin in refused:
                continue
            try:
                clock.check(op.hlc)
            except hlc.ClockSkew as exc:
                log.warning("refused the ops of device %s from %s on: %s", op.origin, op.hlc, exc)
                refused.add(op.origin)
                continue
            taken.append(op)
        if not taken:
            return 0  # no write lock taken for nothing
        new = 0
        with self.library.write() as db, self._names_read_once():
            self.adopt(db)
            arrived = taken
            taken, missing = oplog.without_gaps(db, taken)
            if missing:
                origin, seq = next(iter(missing.items()))
                signing.refusals.refused(
                    sender or "(local)", f"operations of device {origin} after a gap (its operation {seq} is missing): waiting for it"
                )
            room: dict[str, list[float]] = {}
            follow = _Followed(db)
            over: set[str] = set()
            kept: set[str] = set()
            members: set[str] | None = None
            for op in sorted(taken, key=lambda o: o.stamp):
                if op.origin in over:
                    continue
                mine = op.origin == self.device
                if not mine and op.origin not in room:
                    if members is None:
                        members = {m.device_id for m in Members(self.library.folder).all()} | {self.device}
                    room[op.origin] = list(self.quota.room(db, op.origin, members))
                size = oplog.stored_size(op)
                if not mine and (room[op.origin][0] < 1 or room[op.origin][1] < size):
                    over.add(op.origin)
                    stranger = members is not None and op.origin not in members
                    self.quota.full[op.origin] = MAX_HELD_BYTES_STRANGER if stranger else MAX_HELD_BYTES
                    continue
                kept.add(op.origin)
                if not self._wins_conflicts(db, op):
                    if not mine:  # (kept as evidence, for the first few)
                        room[op.origin][1] -= size
                        self.quota.took(op.origin, 0, size)
                elif oplog.insert(db, op):
                    clock.observe(op.hlc)
                    follow.before(op, self, mine or members is not None and op.origin in members)
                    self._merge(db, op)
                    new += 1
                    if not mine:
                        room[op.origin][0] -= 1
                        room[op.origin][1] -= size
                        self.quota.took(op.origin, 1, size)
            through = {id(op) for op in taken if op.origin not in over}
            for op in arrived:  # (an op that waits, for a gap or its origin's quota, still drops the ops it beats here)
                if id(op) not in through:
                    self._drops_what_it_beats(db, op)
            self._follow_taken(db, follow)
            remade, self._remade = self._remade, []
            for kind, fields in remade:
                self.record(db, kind, **fields)
            # the keys of the origins of ops held only: one whose ops all waited (a gap, its quota) is not known yet
            db.executemany("INSERT OR IGNORE INTO sync_keys (device, key) VALUES (?, ?)",
                           [(origin, key) for origin, key in (keys or {}).items() if origin in kept])  # fmt: skip
            if over:
                signing.refusals.refused(
                    sender or "(local)",
                    f"operations of device {sorted(over)[0]}{f' (and {len(over) - 1} more devices)' if len(over) > 1 else ''} "
                    f"past what one device may add here (at most {QUOTA_OPS:,} operations or {QUOTA_BYTES >> 20} MiB an hour, "
                    f"{MAX_HELD_BYTES >> 20} MiB in all, {MAX_HELD_BYTES_STRANGER >> 20} MiB for a device not a member, "
                    f"{MAX_HELD_BYTES_STRANGERS >> 20} MiB for all of them): "
                    "the rest waits",
                )
        if new:
            self.tell()
        return new

    @contextlib.contextmanager
    def _names_read_once(self) -> Iterator[None]:
        self._naming, self._names = True, None
        try:
            yield
        finally:
            self._naming, self._names = False, None

    def digest(self) -> str:
        """A hash of the shared state: equal on devices that hold the same ops."""
        self._adopt_now()
        conn = self.library.read()
        h = hashlib.sha256()
        for row in conn.execute("SELECT key, hlc, origin, value FROM sync_fields ORDER BY key"):
            h.update(msgpack.packb(list(row)))
        for row in conn.execute("SELECT uid, target, hlc, origin, removed > 0 FROM sync_tagged ORDER BY uid, target, hlc, origin"):
            h.update(msgpack.packb(list(row)))
        return h.hexdigest()

    def reapply_pending(self, conn: sqlite3.Connection, device_id: str, origin_ids: Iterable[int] | None = None) -> None:
        """Show what the shared data says of another device's entries that its catalogue just brought (their ids
        on that device; None: all of them, `named_by_slot`); in the catalogue's write transaction `conn`."""
        arrived = None if origin_ids is None else set(origin_ids)
        prefix = f"e:{device_id}:"
        low, high = prefix, prefix[:-1] + ";"  # every target of that device sorts between these
        targets: set[str] = set()
        for kind in ("note", "fav"):
            keys = conn.execute("SELECT key FROM sync_fields WHERE key >= ? AND key < ?", (f"{kind}:{low}", f"{kind}:{high}"))
            targets.update(key.partition(":")[2] for (key,) in keys)
        for target in targets:
            if arrived is None or int(target.rpartition(":")[2]) in arrived:
                self._show_metadata(conn, target)
        rows = conn.execute(
            "SELECT DISTINCT uid, target FROM sync_tagged WHERE target >= ? AND target < ? AND removed = 0", (low, high)
        ).fetchall()
        for uid, target in rows:
            if arrived is None or int(target.rpartition(":")[2]) in arrived:
                self._show_tagging(conn, uid, target)

    def named_by_slot(self, db: sqlite3.Connection, device_id: str) -> None:
        """Another device was given its slot (sdcore.sync.catalogue_store.slot_of): the shared data on its entries
        shown by their global ids from now on, no longer on the rows of them that the library's tables held."""
        for table in ("tag_assignments", "user_metadata"):
            db.execute(f"DELETE FROM {table} WHERE entry_id IN (SELECT entry_id FROM catalogue_entries WHERE device_id = ?)",
                       (device_id,))  # fmt: skip
        self.reapply_pending(db, device_id)

    # -- local changes: each an op, in the caller's write transaction ---------------------------------

    def record(self, db: sqlite3.Connection, kind: str, **fields: Any) -> Op:
        """Make an op of this device and merge it, in the write transaction `db`."""
        self.adopt(db)
        self._keep_key(db)
        op = self._signed(oplog.make(self.device, self.clock.tick(), kind, oplog.next_seq(db, self.device), **fields))
        oplog.insert(db, op)
        self._merge(db, op)
        return op

    def _keep_key(self, db: sqlite3.Connection) -> None:
        """Keep this device's public key beside its ops: a copy of the library taken to another device (a new
        laptop) relays them with it, so the devices it is shared with can check them (without it, refused there)."""
        signer = self._signer()
        if signer is not None:
            db.execute("INSERT OR IGNORE INTO sync_keys (device, key) VALUES (?, ?)", (signer.device_id, signer.public_key))

    def _signer(self) -> signing.Signer | None:
        """This device's signer (None for a library opened without a core: its ops stay unsigned)."""
        key_file = self.library.context.key_file
        if key_file is None:
            return None
        signer = signing.signer_of(key_file)
        return signer if signer.device_id == self.device else None

    def _signed(self, op: Op) -> Op:
        """This device's op with its signature (kept with it: a copy of the library relays it as it is)."""
        signer = self._signer()
        if signer is None:
            return op
        return dataclasses.replace(op, sig=signer.sign(op.signed_part(self.library.id)))

    def tell(self) -> None:
        """Say what changed (after the write transaction committed): the explorer reloads, syncwire pushes."""
        bus = self.library.context.bus
        changed, self._changed = self._changed, set()
        for what in sorted(changed):
            bus.publish(LibraryChanged(self.library.id, what))
        bus.publish(SharedDataChanged(self.library.id))

    def new_tag(self, db: sqlite3.Connection, name: str, color: str | None = None) -> str:
        """Make a tag (its name normalized, no tag of that name shown); its uid."""
        uid = tag_uid(name)
        gone = self._field(db, f"tag:{uid}:gone")
        if self._field(db, f"tag:{uid}:name") is not None and not gone:
            uid = hashlib.sha256(f"{self.device}:{self.clock.tick()}".encode()).hexdigest()[:32]  # the name's id is taken
            gone = None
        self.record(db, "tag", uid=uid, field="name", value=name)
        if color is not None or self._field(db, f"tag:{uid}:color") is not None:
            self.record(db, "tag", uid=uid, field="color", value=color)
        if gone:
            self.record(db, "tag", uid=uid, field="gone", value=False)
        return uid

    def uid_of(self, db: sqlite3.Connection, tag_id: int) -> str:
        """The id every device knows a tag by (one written into the table without an op gets one, and its op)."""
        self.adopt(db)
        uid, name, color = db.execute("SELECT uid, name, color FROM tags WHERE id = ?", (tag_id,)).fetchone()
        return str(uid) if uid is not None else self._adopt_tag(db, tag_id, name, color)

    def set_tag(self, db: sqlite3.Connection, uid: str, field: str, value: Any) -> None:
        """Set a tag's name, colour or gone mark."""
        if self._field(db, f"tag:{uid}:{field}") != value or self._field(db, f"tag:{uid}:name") is None:
            self.record(db, "tag", uid=uid, field=field, value=value)

    def tag(self, db: sqlite3.Connection, uid: str, targets: Sequence[str]) -> None:
        """Record a tag put on targets (oplog.entry_target or oplog.content_target): an op for each it is not on
        yet. The caller shows them: it has their rows (ops written in bulk: tagging 10,000 files is one call)."""
        self.adopt(db)
        if len(targets) > 64:
            live = set(self.targets_of(db, uid))
        else:
            live = {t for t in targets if self._live_adds(db, uid, t)}
        new = [t for t in dict.fromkeys(targets) if t not in live]
        if not new:
            return
        self._keep_key(db)
        first = oplog.next_seq(db, self.device)
        ops = [
            self._signed(oplog.make(self.device, self.clock.tick(), "tag+", first + n, uid=uid, target=t))
            for n, t in enumerate(new)
        ]
        db.executemany(
            "INSERT INTO sync_ops (origin, hlc, kind, body, sig, seq) VALUES (?, ?, ?, ?, ?, ?)",
            [(op.origin, op.hlc, op.kind, op.body, op.sig, op.seq) for op in ops],
        )
        oplog.note_held(db, self.device, first, first + len(ops) - 1)
        db.executemany(
            "INSERT INTO sync_history (key, hlc, origin) VALUES (?, ?, ?)",
            [("tagged:" + t, op.hlc, op.origin) for t, op in zip(new, ops, strict=True)],
        )
        db.executemany(
            "INSERT INTO sync_tagged (uid, target, hlc, origin) VALUES (?, ?, ?, ?)",
            [(uid, t, op.hlc, op.origin) for t, op in zip(new, ops, strict=True)],
        )
        self._changed.add("tags")

    def targets_of(self, conn: sqlite3.Connection, uid: str) -> list[str]:
        """What a tag is on (entry and content targets)."""
        return [r[0] for r in conn.execute("SELECT DISTINCT target FROM sync_tagged WHERE uid = ? AND removed = 0", (uid,))]

    def untag(self, db: sqlite3.Connection, uid: str, target: str, before: int | None = None) -> None:
        """Take a tag off a target: every add of it seen here is removed (one made elsewhere meanwhile stays); given
        `before`, a stamp, only the adds stamped before it."""
        seen = [add for add in self._live_adds(db, uid, target) if before is None or add[1] < before]
        for start in range(0, len(seen), oplog.SEEN_LIMIT):
            self.record(db, "tag-", uid=uid, target=target, seen=seen[start : start + oplog.SEEN_LIMIT])

    def set_note(self, db: sqlite3.Connection, entry_id: int, text: str | None) -> None:
        target = self.target_of(db, entry_id)
        if self._field(db, f"note:{target}", missing=...) != text:
            self.record(db, "note", target=target, value=text)

    def set_favorite(self, db: sqlite3.Connection, entry_id: int, favorite: bool) -> None:
        target = self.target_of(db, entry_id)
        if self._field(db, f"fav:{target}", missing=...) != favorite:
            self.record(db, "fav", target=target, value=favorite)

    def set_search(self, db: sqlite3.Connection, name: str, query: str | None) -> None:
        """Keep (or, None, delete) a saved search."""
        self.record(db, "search", name=name, value=query)

    def target_of(self, conn: sqlite3.Connection, entry_id: int) -> str:
        ref = ref_of(conn, entry_id)
        return oplog.entry_target(str(ref.device_id), ref.entry_id)

    # -- history --------------------------------------------------------------------------------------

    def history(self, key: str) -> list[Version]:
        """Every value a field had, oldest first (`note:TARGET`, `fav:TARGET`, `tag:UID:name`...)."""
        conn = self.library.read()
        current = conn.execute("SELECT hlc, origin FROM sync_fields WHERE key = ?", (key,)).fetchone()
        out = []
        rows = conn.execute("SELECT hlc, origin FROM sync_history WHERE key = ? ORDER BY hlc, origin", (key,)).fetchall()
        for number, (stamp, origin) in enumerate(rows, 1):
            op = oplog.get(conn, origin, stamp)
            if op is None:
                continue
            out.append(Version(number, origin, hlc.seconds(stamp), op.fields()["value"], current == (stamp, origin)))
        return out

    def note_history(self, entry_id: int) -> list[Version]:
        return self.history(f"note:{self.target_of(self.library.read(), entry_id)}")

    def tag_history(self, entry_id: int) -> list[TagEvent]:
        """Tags put on and taken off an entry and its content, oldest first."""
        conn = self.library.read()
        targets = [self.target_of(conn, entry_id)]
        found = kept_entries.cas_id_of(self.library, entry_id)  # (another device's entry: from its kept catalogue)
        if found is not None and found[1] is not None:
            targets.append(oplog.content_target(found[1]))
        names = self._tag_names(conn)
        events = []
        for target in targets:
            for stamp, origin in conn.execute("SELECT hlc, origin FROM sync_history WHERE key = ?", ("tagged:" + target,)):
                op = oplog.get(conn, origin, stamp)
                if op is None:
                    continue
                uid = op.fields()["uid"]
                events.append(TagEvent(hlc.seconds(stamp), origin, names.get(uid, uid[:8]), op.kind == "tag+", target.startswith("c:")))
        return sorted(events, key=lambda e: e.when)

    # -- the merge ------------------------------------------------------------------------------------

    def _merge(self, db: sqlite3.Connection, op: Op) -> None:
        """Fold one new op into the state and show its effect."""
        fields = op.fields()
        self._changed.add(_WHAT[op.kind])
        if op.kind == "tag+" or op.kind == "tag-":
            uid, target = fields["uid"], fields["target"]
            db.execute("INSERT OR IGNORE INTO sync_history (key, hlc, origin) VALUES (?, ?, ?)", ("tagged:" + target, op.hlc, op.origin))
            live = None
            if op.kind == "tag+":
                before = db.total_changes
                db.execute(
                    "INSERT OR IGNORE INTO sync_tagged (uid, target, hlc, origin) VALUES (?, ?, ?, ?)", (uid, target, op.hlc, op.origin)
                )
                live = db.total_changes > before or None  # a new add is live; an old one may have been removed
            else:
                db.executemany(
                    "INSERT INTO sync_tagged (uid, target, hlc, origin, removed) VALUES (?, ?, ?, ?, 1)"
                    " ON CONFLICT DO UPDATE SET removed = removed + 1",  # (how many removals saw it: `_unmerge`)
                    [(uid, target, stamp, origin) for origin, stamp in fields["seen"]],
                )
            self._show_tagging(db, uid, target, live)
            return
        key = _field_key(op.kind, fields)
        value: Any
        if op.kind == "search":
            value = [fields["name"].strip(), fields["value"]] if fields["value"] is not None else None
        else:
            value = fields["value"]
        db.execute("INSERT OR IGNORE INTO sync_history (key, hlc, origin) VALUES (?, ?, ?)", (key, op.hlc, op.origin))
        row = db.execute("SELECT hlc, origin, value FROM sync_fields WHERE key = ?", (key,)).fetchone()
        if row is not None and (row[0], row[1]) >= op.stamp:
            return  # an op written later holds the field
        db.execute(
            "INSERT INTO sync_fields (key, hlc, origin, value) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE"
            " SET hlc = excluded.hlc, origin = excluded.origin, value = excluded.value",
            (key, op.hlc, op.origin, msgpack.packb(value)),
        )
        if op.kind == "tag":
            old = msgpack.unpackb(row[2]) if row is not None and fields["field"] == "name" else None
            if fields["field"] == "name" and self._names is not None:
                if old is not None:
                    self._names.get(old.casefold(), {}).pop(fields["uid"], None)
                self._names.setdefault(value.casefold(), {})[fields["uid"]] = (op.stamp, value)
            self._show_tag(db, fields["uid"], old)
        elif op.kind == "search":
            self._show_search(db, fields["name"].strip(), value)
        else:
            self._show_metadata(db, fields["target"])

    def _follow_taken(self, db: sqlite3.Connection, followed: _Followed) -> None:
        """Say again, as this device's ops, what the batch's ops changed of the entries of a location taken over here
        by their old owner's ids: each device shows only what is said of an entry by its owner's id (`entry_of`),
        so every device holding this device's ops shows it on the same file. A tag put on there is put on here, one
        taken off there taken off here (not an add made here after the removal: it did not see it); a note or favourite
        set there is set here unless this device's entry was given another since (by a later op: what the take over
        said of it, `_shared_data_follows`, is not)."""
        for (uid, target), (mine, kinds) in followed.tagged.items():
            there, here = bool(self._live_adds(db, uid, target)), bool(self._live_adds(db, uid, mine))
            if "tag+" in kinds and there and not here:
                self.tag(db, uid, [mine])
                self._show_tagging(db, uid, mine, True)
            elif "tag-" in kinds and not there and here:  # (an add made here since was not seen by the removal)
                self.untag(db, uid, mine, before=followed.removed[uid, target])
        for key, (mine, before) in followed.fields.items():
            kind, _, target = mine.partition(":")
            now, said = self._field(db, key, _UNSET[kind]), self._field(db, mine, _UNSET[kind])
            if now == before or now == said:
                continue
            if said == before or self._stamp(db, key) > self._stamp(db, mine):
                self.record(db, kind, target=target, value=now)

    def _stamp(self, conn: sqlite3.Connection, key: str) -> tuple[int, str]:
        """The stamp of the op that holds a field ((0, ''): none)."""
        row = conn.execute("SELECT hlc, origin FROM sync_fields WHERE key = ?", (key,)).fetchone()
        return (0, "") if row is None else (int(row[0]), str(row[1]))

    def _wins_conflicts(self, db: sqlite3.Connection, op: Op) -> bool:
        """Whether to keep `op`: no op its origin signed with its number or its stamp is held here, or `op` ranks
        before each that is (`oplog.rank`: every device keeps the same one), which are dropped and their effects
        undone. A conflict is kept as evidence (`oplog.record_conflict`) and said in the log."""
        rivals = oplog.rivals(db, op)
        if not rivals:
            return True
        best = min(rivals, key=oplog.rank)
        if oplog.rank(best) < oplog.rank(op):
            if oplog.record_conflict(db, best, op):
                _say_conflict(op.origin, best, op)
            return False
        for rival in rivals:
            if oplog.record_conflict(db, op, rival):
                _say_conflict(op.origin, op, rival)
            self._unmerge(db, rival)
            if rival.origin == self.device:
                # this device's own change, numbered again after a restore from a backup that took its data dir
                # too (no high-water mark): made again, past the numbers it holds, so the user's edit is not lost
                fields = rival.fields()
                self._remade.append((rival.kind, fields))
        return True

    def _drops_what_it_beats(self, db: sqlite3.Connection, op: Op) -> None:
        """For an op that waits: drop the ops held here that it beats, all of them (one that beats it: nothing done,
        nothing kept). Else this device, holding a rival of a kept op it refuses for good (its origin's quota full),
        stopped its cursor of a member's conflicts there (`set_cursor`): no conflict after it reached it."""
        rivals = oplog.rivals(db, op)
        if rivals and all(oplog.rank(op) < oplog.rank(rival) for rival in rivals):
            self._wins_conflicts(db, op)

    def _unmerge(self, db: sqlite3.Connection, op: Op) -> None:
        """Undo a held op (it lost a conflict): drop it and its line of history, and fold what it wrote again from
        the ops left."""
        oplog.delete(db, op)
        fields = op.fields()
        self._changed.add(_WHAT[op.kind])
        self._names = None  # (read again when next needed)
        if op.kind == "tag+" or op.kind == "tag-":
            uid, target = fields["uid"], fields["target"]
            db.execute("DELETE FROM sync_history WHERE key = ? AND hlc = ? AND origin = ?", ("tagged:" + target, op.hlc, op.origin))
            if op.kind == "tag+":  # (its row stays while removals that saw it are held: as where it never came)
                db.execute("DELETE FROM sync_tagged WHERE uid = ? AND target = ? AND hlc = ? AND origin = ? AND removed <= 0",
                           (uid, target, op.hlc, op.origin))  # fmt: skip
            else:  # each add it saw: seen by one removal fewer (on again when none is left; forgotten if not held)
                seen = [(uid, target, stamp, origin) for origin, stamp in fields["seen"]]
                db.executemany("UPDATE sync_tagged SET removed = removed - 1 WHERE uid = ? AND target = ? AND hlc = ? AND origin = ?", seen)
                for row in seen:  # (the add by its stamp: an op of the stamp may be another, a liar's)
                    add = oplog.get(db, row[3], row[2])
                    if add is None or add.kind != "tag+" or add.fields() != {"uid": uid, "target": target}:
                        db.execute("DELETE FROM sync_tagged WHERE uid = ? AND target = ? AND hlc = ? AND origin = ? AND removed <= 0", row)
            self._show_tagging(db, uid, target)
            return
        key = _field_key(op.kind, fields)
        db.execute("DELETE FROM sync_history WHERE key = ? AND hlc = ? AND origin = ?", (key, op.hlc, op.origin))
        row = db.execute("SELECT hlc, origin FROM sync_fields WHERE key = ?", (key,)).fetchone()
        if row is None or tuple(row) != op.stamp:
            return  # a later op holds the field
        db.execute("DELETE FROM sync_fields WHERE key = ?", (key,))
        last = db.execute("SELECT hlc, origin FROM sync_history WHERE key = ? ORDER BY hlc DESC, origin DESC LIMIT 1", (key,)).fetchone()
        before = oplog.get(db, last[1], last[0]) if last is not None else None
        if before is not None:
            self._merge(db, before)
        if op.kind == "tag":
            self._show_tag(db, fields["uid"], fields["value"] if fields["field"] == "name" else None)
        elif op.kind == "search":
            self._show_search(db, fields["name"].strip(), self._field(db, key))
        else:
            self._show_metadata(db, fields["target"])

    def _field(self, conn: sqlite3.Connection, key: str, missing: Any = None) -> Any:
        row = conn.execute("SELECT value FROM sync_fields WHERE key = ?", (key,)).fetchone()
        return msgpack.unpackb(row[0]) if row else missing

    def _live_adds(self, conn: sqlite3.Connection, uid: str, target: str) -> list[list[Any]]:
        rows = conn.execute("SELECT origin, hlc FROM sync_tagged WHERE uid = ? AND target = ? AND removed = 0", (uid, target))
        return [list(r) for r in rows]

    # -- showing the state: the tables listing and search read ---------------------------------------

    def _show_tag(self, db: sqlite3.Connection, uid: str, old_name: str | None) -> None:
        name = self._field(db, f"tag:{uid}:name")
        row = db.execute("SELECT id FROM tags WHERE uid = ?", (uid,)).fetchone()
        if name is None or self._field(db, f"tag:{uid}:gone"):
            if row is not None:
                db.execute("DELETE FROM tag_assignments WHERE tag_id = ?", (row[0],))
                db.execute("DELETE FROM detached WHERE tag_id = ?", (row[0],))
                db.execute("DELETE FROM tags WHERE id = ?", (row[0],))
        else:
            color = self._field(db, f"tag:{uid}:color")
            if row is None:
                stamp = db.execute("SELECT hlc FROM sync_fields WHERE key = ?", (f"tag:{uid}:name",)).fetchone()[0]
                db.execute("INSERT INTO tags (name, color, created, uid) VALUES (?, ?, ?, ?)", ("\x01" + uid, color, hlc.seconds(stamp), uid))
                for (target,) in db.execute("SELECT DISTINCT target FROM sync_tagged WHERE uid = ? AND removed = 0", (uid,)).fetchall():
                    self._show_tagging(db, uid, target)
            else:  # its old name set aside: the tags of that name take it again below, whatever the order
                db.execute("UPDATE tags SET color = ?, name = ? WHERE id = ?", (color, "\x01" + uid, row[0]))
        for group in {n.casefold() for n in (name, old_name) if n is not None}:
            self._name_group(db, group)

    def _name_group(self, db: sqlite3.Connection, folded: str) -> None:
        """Show the live tags named `folded` (two devices may give two tags one name): the one named first keeps
        the name, the others show it with the start of their id."""
        members = [(stamp, uid, name) for uid, (stamp, name) in self._named(db, folded).items()
                   if not self._field(db, f"tag:{uid}:gone")]  # fmt: skip
        members.sort()
        db.executemany("UPDATE tags SET name = ? WHERE uid = ?", [("\x01" + uid, uid) for _, uid, _ in members])
        for rank, (_, uid, name) in enumerate(members):
            db.execute("UPDATE tags SET name = ? WHERE uid = ?", (name if rank == 0 else f"{name} ({uid[:6]})", uid))

    def _named(self, db: sqlite3.Connection, folded: str) -> dict[str, tuple[tuple[int, str], str]]:
        """The tags (live or gone) named `folded` once casefolded: {uid: (stamp of its name, name)}."""
        if self._names is not None:
            return self._names.get(folded, {})
        names: dict[str, dict[str, tuple[tuple[int, str], str]]] = {}
        for key, stamp, origin, value in db.execute("SELECT key, hlc, origin, value FROM sync_fields WHERE key LIKE 'tag:%:name'"):
            name = msgpack.unpackb(value)
            names.setdefault(name.casefold(), {})[key.split(":")[1]] = ((stamp, origin), name)
        if self._naming:
            self._names = names
        return names.get(folded, {})

    def _show_tagging(self, db: sqlite3.Connection, uid: str, target: str, live: bool | None = None) -> None:
        """Show whether the tag is on the target (`live`: known to be, else looked up)."""
        tag = db.execute("SELECT id FROM tags WHERE uid = ?", (uid,)).fetchone()
        if tag is None:
            return  # the tag is gone, or not known here yet: shown when it comes
        place = oplog.parse_target(target)
        value: int | str | None
        if isinstance(place, tuple):
            column, value = "entry_id", entry_of(db, EntryRef(uuid.UUID(place[0]), place[1]), self.library.context.device_id)
            if value is None:
                return  # not known here yet: shown when it comes
        else:
            column, value = "cas_id", place
        if live or db.execute("SELECT 1 FROM sync_tagged WHERE uid = ? AND target = ? AND removed = 0", (uid, target)).fetchone():
            db.execute(
                f"INSERT OR IGNORE INTO tag_assignments (tag_id, {column}, created) VALUES (?, ?, unixepoch())", (tag[0], value)
            )
        else:
            db.execute(f"DELETE FROM tag_assignments WHERE tag_id = ? AND {column} = ?", (tag[0], value))

    def _show_metadata(self, db: sqlite3.Connection, target: str) -> None:
        place = oplog.parse_target(target)
        assert isinstance(place, tuple)
        entry_id = entry_of(db, EntryRef(uuid.UUID(place[0]), place[1]), self.library.context.device_id)
        if entry_id is None:
            return
        note = self._field(db, f"note:{target}")
        favorite = bool(self._field(db, f"fav:{target}"))
        now = db.execute("SELECT note, favorite FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
        if now is not None and (now[0], bool(now[1])) == (note, favorite):
            return
        if note is None and not favorite:
            db.execute("DELETE FROM user_metadata WHERE entry_id = ?", (entry_id,))
        else:
            db.execute(
                "INSERT INTO user_metadata (entry_id, note, favorite, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (entry_id) DO UPDATE SET note = excluded.note, favorite = excluded.favorite,"
                " updated = CASE WHEN favorite IS excluded.favorite THEN updated ELSE excluded.updated END",
                (entry_id, note, int(favorite), time.time()),
            )

    def _show_search(self, db: sqlite3.Connection, name: str, value: Sequence[str] | None) -> None:
        db.execute("DELETE FROM saved_searches WHERE name = ?", (name,))
        if value is not None:
            db.execute("INSERT INTO saved_searches (name, query, created) VALUES (?, ?, ?)", (value[0], value[1], time.time()))

    def _tag_names(self, conn: sqlite3.Connection) -> dict[str, str]:
        names = {}
        for key, value in conn.execute("SELECT key, value FROM sync_fields WHERE key LIKE 'tag:%:name'"):
            names[key.split(":")[1]] = msgpack.unpackb(value)
        return names

    # -- shared data made before the log ---------------------------------------------------------------

    def _adopt_tag(self, db: sqlite3.Connection, tag_id: int, name: str, color: str | None) -> str:
        """Ops for a tag row made without them (before the log, or by a tool): its name, colour and assignments."""
        uid = tag_uid(name)
        if self._field(db, f"tag:{uid}:name") is not None:
            uid = hashlib.sha256(f"{self.device}:{self.clock.tick()}".encode()).hexdigest()[:32]
        db.execute("UPDATE tags SET uid = ? WHERE id = ?", (uid, tag_id))
        self.record(db, "tag", uid=uid, field="name", value=name)
        if color is not None:
            self.record(db, "tag", uid=uid, field="color", value=color)
        rows = db.execute("SELECT entry_id, cas_id FROM tag_assignments WHERE tag_id = ? ORDER BY rowid", (tag_id,)).fetchall()
        self.tag(db, uid, [self.target_of(db, e) if e is not None else oplog.content_target(c) for e, c in rows])
        return uid

    def _adopt_now(self) -> None:
        if self._adopted:
            return
        conn = self.library.read()  # most libraries have nothing to adopt: no write, no lock taken
        if conn.execute("SELECT 1 FROM sync_ops LIMIT 1").fetchone() or not any(
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in ("tags", "user_metadata", "saved_searches")
        ):
            self._adopted = True
            return
        with self.library.write() as db:
            self.adopt(db)

    def adopt(self, db: sqlite3.Connection) -> None:
        """Make ops of the shared data this library held before it had a log (once: the log is empty then)."""
        if self._adopted:
            return
        self._adopted = True
        if db.execute("SELECT 1 FROM sync_ops LIMIT 1").fetchone():
            return
        for tag_id, name, color in db.execute("SELECT id, name, color FROM tags WHERE uid IS NULL ORDER BY id").fetchall():
            self._adopt_tag(db, tag_id, name, color)
        for entry_id, note, favorite in db.execute("SELECT entry_id, note, favorite FROM user_metadata ORDER BY updated").fetchall():
            if note is not None:
                self.set_note(db, entry_id, note)
            if favorite:
                self.set_favorite(db, entry_id, True)
        for name, query in db.execute("SELECT name, query FROM saved_searches ORDER BY created").fetchall():
            self.set_search(db, name, query)
