"""The operation log: every change of shared data as an Op stamped (HLC, origin device), kept for good in `sync_ops`.

An Op crosses the wire as `Op.pack()`; `Op.unpack()` takes what a peer sent and checks every field, so the merge
only ever sees well-formed operations of known kinds and bounded sizes.

Why the log is not compacted, even of ops every member holds: it is the history (`sync_history` names ops; the
values `sd note --history` and `sd tag history` show are their bodies), and a device that joins later, or one
restored from a backup, takes an origin's ops only as signed by it and without a gap in their numbers; a dropped
op leaves a gap no one can prove is harmless (taking another device's word for it is how a relay hides ops).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgpack

from sdcore.errors import SdError
from sdcore.sync import hlc, signing

NOTE_LIMIT = 64 * 1024
"""Characters a note may hold (a peer's longer note is refused, a local one too)."""
QUERY_LIMIT = 16 * 1024
"""Characters of a saved search's query (JSON)."""
SEEN_LIMIT = 4096
"""Adds one removal may name."""
BODY_LIMIT = 3 * NOTE_LIMIT + SEEN_LIMIT * 64
"""Bytes of one op's body: a 64 Ki-character note of 3-byte characters fits, a 10 MB one does not."""
NAME_LIMIT = 200
MAX_SEQ = (1 << 63) - 1
MAX_STRANGERS = 128
"""Devices not members of a library (the devices of copies of it) whose ops it takes from others: with its members
(64 at most) an asker names each in its watermarks (256 at most, sdcore.sync.protocol.MAX_WATERMARKS)."""

KINDS = ("tag", "tag+", "tag-", "note", "fav", "search")
"""tag: one field of a tag (name, color, gone); tag+/tag-: a tag put on / taken off an entry or a content;
note, fav: an entry's note and favourite mark; search: a saved search (None: deleted)."""
TAG_FIELDS = ("name", "color", "gone")

_UID = re.compile(r"[0-9a-f]{32}")
_TARGET = re.compile(r"e:([0-9a-f-]{36}):([0-9]{1,18})|c:([0-9a-zA-Z]{1,64})")


class BadOp(SdError):
    """An operation a peer sent that is not well-formed (it is refused, nothing of it is applied)."""


@dataclass(frozen=True, slots=True)
class Op:
    """One change of shared data: who made it (`origin`, a device id), when (`hlc`), what (`kind`, `body`)."""

    origin: str
    hlc: int
    kind: str
    body: bytes
    """msgpack of the kind's fields (see `make`)."""
    sig: bytes | None = None
    """The origin's signature of the op in its library (`signed_part`); None for an op made before ops were signed."""
    seq: int | None = None
    """The op's number among its origin's ops (1, 2, 3...: signed with it, so a receiver sees a gap and waits for
    what is missing, never taking an origin's later ops without its earlier ones); None for an op made before."""

    @property
    def stamp(self) -> tuple[int, str]:
        """What orders ops: the HLC, the origin breaking ties."""
        return self.hlc, self.origin

    def fields(self) -> dict[str, Any]:
        return msgpack.unpackb(self.body, raw=False)  # type: ignore[no-any-return]

    def pack(self) -> list[Any]:
        """[origin, hlc, kind, body] and the signature, if any, then the number, if any (with the signature or None
        before it). A device from before numbers refuses a numbered op as malformed, saying so."""
        if self.seq is not None:
            return [self.origin, self.hlc, self.kind, self.body, self.sig, self.seq]
        return [self.origin, self.hlc, self.kind, self.body, *([self.sig] if self.sig is not None else [])]

    def signed_part(self, library_id: object) -> bytes:
        """What the origin signs: the op in its library (so it cannot be passed off as another's, or elsewhere),
        and its number when it has one (so a relay cannot renumber it)."""
        numbered = [self.seq] if self.seq is not None else []
        return signing.payload("op", str(library_id), [self.origin, self.hlc, self.kind, self.body, *numbered])

    @classmethod
    def unpack(cls, raw: Any) -> Op:
        """An Op from what a peer sent; raises BadOp, saying what is wrong, unless every field is valid (the
        signature is checked by whoever knows the library and the origin's key: `SharedData.receive`)."""
        if not isinstance(raw, list | tuple) or len(raw) not in (4, 5, 6):
            raise BadOp("an operation is a list of origin, hlc, kind, body, signature and number")
        origin, stamp, kind, body, *rest = raw
        sig, seq = (rest + [None, None])[:2]
        if sig is not None and not (isinstance(sig, bytes) and len(sig) == signing.SIG_SIZE):
            raise BadOp(f"an operation's signature is {signing.SIG_SIZE} bytes")
        if len(raw) == 6 and not (type(seq) is int and 0 < seq <= MAX_SEQ):
            raise BadOp("an operation's number is an integer of 1 or more")
        if not isinstance(origin, str) or not _is_device_id(origin):
            raise BadOp("an operation's origin is not a device id")
        if type(stamp) is not int or not 0 < stamp <= hlc.MAX_STAMP:
            raise BadOp("an operation's hlc is not a stamp")
        if kind not in KINDS:
            raise BadOp(f"unknown kind of operation {str(kind)[:20]!r}")
        if not isinstance(body, bytes) or len(body) > BODY_LIMIT:
            raise BadOp(f"the body of a {kind} operation is not bytes of at most {BODY_LIMIT}")
        try:
            fields = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=0, max_ext_len=0)
        except Exception as exc:  # msgpack raises several types for bad input
            raise BadOp(f"the body of a {kind} operation is not msgpack ({type(exc).__name__})") from None
        validate(kind, fields)
        return cls(origin, stamp, kind, body, sig, seq)


def make(origin: str, stamp: int, kind: str, seq: int | None = None, **fields: Any) -> Op:
    """An op of this device (`seq`: its number, `last_seq(...) + 1`), its fields checked as a peer's would be."""
    validate(kind, fields)
    return Op(origin, stamp, kind, msgpack.packb(fields), None, seq)


def validate(kind: str, fields: Any) -> None:
    """Raise BadOp unless `fields` are exactly what an op of `kind` carries, each of its type and size."""
    if not isinstance(fields, dict):
        raise BadOp(f"the body of a {kind} operation is not a map")
    expected = {
        "tag": {"uid", "field", "value"},
        "tag+": {"uid", "target"},
        "tag-": {"uid", "target", "seen"},
        "note": {"target", "value"},
        "fav": {"target", "value"},
        "search": {"name", "value"},
    }[kind]
    if set(fields) != expected:
        raise BadOp(f"a {kind} operation carries {sorted(expected)}, not {sorted(map(str, fields))[:8]}")
    if "uid" in fields and not (isinstance(fields["uid"], str) and _UID.fullmatch(fields["uid"])):
        raise BadOp(f"a {kind} operation names no tag id")
    if "target" in fields:
        target = fields["target"]
        if not isinstance(target, str) or not parse_target(target):
            raise BadOp(f"a {kind} operation's target is not an entry or a content")
        if kind in ("note", "fav") and not target.startswith("e:"):
            raise BadOp(f"a {kind} operation's target is not an entry")
    value = fields.get("value")
    if kind == "tag":
        _check_tag_field(fields["field"], value)
    elif kind == "tag-":
        seen = fields["seen"]
        if not isinstance(seen, list) or len(seen) > SEEN_LIMIT or not all(
            isinstance(s, list) and len(s) == 2 and isinstance(s[0], str) and _is_device_id(s[0])
            and type(s[1]) is int and 0 < s[1] <= hlc.MAX_STAMP
            for s in seen
        ):
            raise BadOp(f"a tag removal names at most {SEEN_LIMIT} adds, each a device id and a stamp")
    elif kind == "note":
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= NOTE_LIMIT):
            raise BadOp(f"a note is text of at most {NOTE_LIMIT} characters")
    elif kind == "fav":
        if not isinstance(value, bool):
            raise BadOp("a favourite mark is true or false")
    elif kind == "search":
        name = fields["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_LIMIT or not _printable(name):
            raise BadOp(f"a saved search's name is plain text of at most {NAME_LIMIT} characters")
        if value is not None and not (isinstance(value, str) and len(value) <= QUERY_LIMIT and _is_query(value)):
            raise BadOp(f"a saved search's query is a search's JSON of at most {QUERY_LIMIT} characters")


def _check_tag_field(field: Any, value: Any) -> None:
    from sdcore import tags

    if field == "gone":
        if not isinstance(value, bool):
            raise BadOp("a tag's gone mark is true or false")
        return
    if field not in TAG_FIELDS:
        raise BadOp(f"a tag has no field {str(field)[:20]!r}")
    if field == "color" and value is None:
        return
    if not isinstance(value, str):
        raise BadOp(f"a tag's {field} is text")
    try:
        ok = (tags.normalize(value) if field == "name" else tags.normalize_color(value)) == value
    except SdError as exc:
        raise BadOp(str(exc)) from None
    if not ok:
        raise BadOp(f"a tag's {field} is not written as this device writes it")


_QUERY_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,), "ext": (list,), "kind": (list,), "tags": (list,), "min_size": (int, type(None)),
    "max_size": (int, type(None)), "modified_after": (int, float, str, type(None)),
    "modified_before": (int, float, str, type(None)), "location": (int, str, type(None)), "favorites": (bool,),
    "sort": (str,), "reverse": (bool,), "limit": (int,),
}  # fmt: skip
"""What each field of a saved search (sdcore.search.Query as JSON) may hold (another: a JSON scalar)."""


_SCALAR = (str, int, float, bool, type(None))


def _is_query(text: str) -> bool:
    from dataclasses import fields

    from sdcore.search import Query

    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # ("[[[[...": a peer's pull stopped by a traceback at every retry)
        return False
    known = {f.name for f in fields(Query)}
    return (
        isinstance(data, dict)
        and all(k in known and isinstance(v, _QUERY_TYPES.get(k, _SCALAR)) for k, v in data.items())
        and all(isinstance(x, str) for k in ("ext", "kind", "tags") for x in data.get(k, ()))
        and not isinstance(data.get("limit", 1), bool)
    )


def _printable(text: str) -> bool:
    return not any(ord(c) < 0x20 or c == "\x7f" or 0xD800 <= ord(c) <= 0xDFFF for c in text)


@functools.lru_cache(maxsize=256)  # a library has a few devices: each op names one
def _is_device_id(text: str) -> bool:
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text
    except ValueError:
        return False


# -- targets: what shared data is about ---------------------------------------------------------------


def entry_target(device_id: str, entry_id: int) -> str:
    """An entry, by its owner's device id and its owner's entry id (stable across renames and moves there)."""
    return f"e:{device_id}:{entry_id}"


def content_target(cas_id: str) -> str:
    """A content: every copy of it, on every device."""
    return f"c:{cas_id}"


def parse_target(target: str) -> tuple[str, int] | str | None:
    """(device id, entry id) of an entry target, the cas_id of a content one; None when it is neither."""
    m = _TARGET.fullmatch(target)
    if m is None:
        return None
    if m[3] is not None:
        return m[3]
    return (m[1], int(m[2])) if _is_device_id(m[1]) else None


# -- the log in the database -------------------------------------------------------------------------


def insert(db: sqlite3.Connection, op: Op) -> bool:
    """Keep an op; False when it was kept already."""
    before = db.total_changes
    db.execute(
        "INSERT OR IGNORE INTO sync_ops (origin, hlc, kind, body, sig, seq) VALUES (?, ?, ?, ?, ?, ?)",
        (op.origin, op.hlc, op.kind, op.body, op.sig, op.seq),
    )
    if db.total_changes == before:
        return False
    if op.seq is not None:
        note_held(db, op.origin, op.seq, op.seq)
    return True


OP_ROW_BYTES = 340
"""What keeping an op costs here beyond its body: its row (origin, stamp, signature, number), its number's index
entry and its line of history (measured: ~330 bytes a note of one character, whose body is 59)."""
TAGGED_ROW_BYTES = 300
"""...and, for a tag put on a target, its row of the add-wins set and that row's index entry (~620 in all)."""


SEEN_ROWS_PER_BODY_BYTE = 9
"""...and, for a removal, each add it names (~48 bytes of its body) a row of the add-wins set (measured: 405 bytes
each for 200 named, 503 for 4,000: written in no order, its pages half full): counted as 9 bytes a byte of body,
else removals naming made-up adds took ~9 times the quota."""


def stored_size(op: Op) -> int:
    """The bytes an op takes here once kept (what a device's quota counts: its body alone let tiny ops take ~7
    times the bytes the quota allows)."""
    extra = TAGGED_ROW_BYTES if op.kind == "tag+" else SEEN_ROWS_PER_BODY_BYTE * len(op.body) if op.kind == "tag-" else 0
    return len(op.body) + OP_ROW_BYTES + extra


STORED_SIZE_SQL = (
    f"total(length(body)) + count(*) * {OP_ROW_BYTES} + total(kind = 'tag+') * {TAGGED_ROW_BYTES}"
    f" + total((kind = 'tag-') * length(body)) * {SEEN_ROWS_PER_BODY_BYTE}"
)
"""`stored_size` summed over the ops a query selects."""


def delete(db: sqlite3.Connection, op: Op) -> None:
    """Drop an op (one that lost to another its origin signed with its number or stamp: `rivals`); its number stays
    held only if the op kept in its place carries it: one that won by stamp has a number of its own, and another
    op of the dropped one's number (one it beat, dropped here and kept elsewhere) must be asked for again, else
    devices that saw a chain of conflicts in other orders differ for good."""
    db.execute("DELETE FROM sync_ops WHERE origin = ? AND hlc = ?", (op.origin, op.hlc))
    if op.seq is not None and not db.execute(
        "SELECT 1 FROM sync_ops WHERE origin = ? AND seq = ? AND seq IS NOT NULL", (op.origin, op.seq)
    ).fetchone():
        _note_not_held(db, op.origin, op.seq)


# -- which numbers are held: what an asker names, so that whoever holds an op it lacks sends it ----------------

MAX_RANGES = 32
"""Runs of held numbers above the first one an asker names per origin (more: the middle ones are left out, and
their ops come again, harmlessly: an op is kept once)."""
MAX_HELD_RANGES = 1024
"""Runs an asker names in all (each costs the answerer a seek or two)."""


def note_held(db: sqlite3.Connection, origin: str, lo: int, hi: int) -> None:
    """Count numbers lo..hi of `origin` as held (merged with the runs they touch)."""
    runs = db.execute(  # (from the last run starting before lo - 1: a seek, not every run below: gaps made by
        "SELECT lo, hi FROM sync_held WHERE origin = ?1 AND hi >= ?2 AND lo <= ?3 AND lo >= coalesce("  # conflicts)
        "(SELECT max(lo) FROM sync_held WHERE origin = ?1 AND lo < ?2), ?2)", (origin, lo - 1, hi + 1),
    ).fetchall()  # fmt: skip
    if len(runs) == 1 and runs[0][0] <= lo and runs[0][1] >= hi:
        return
    if runs:
        db.executemany("DELETE FROM sync_held WHERE origin = ? AND lo = ?", [(origin, r[0]) for r in runs])
        lo, hi = min(lo, *(r[0] for r in runs)), max(hi, *(r[1] for r in runs))
    db.execute("INSERT INTO sync_held (origin, lo, hi) VALUES (?, ?, ?)", (origin, lo, hi))


def _note_not_held(db: sqlite3.Connection, origin: str, seq: int) -> None:
    """Count number `seq` of `origin` as not held (the run holding it split around it)."""
    row = db.execute("SELECT lo, hi FROM sync_held WHERE origin = ? AND lo <= ? ORDER BY lo DESC LIMIT 1", (origin, seq)).fetchone()
    if row is None or row[1] < seq:
        return
    lo, hi = row
    db.execute("DELETE FROM sync_held WHERE origin = ? AND lo = ?", (origin, lo))
    db.executemany("INSERT INTO sync_held (origin, lo, hi) VALUES (?, ?, ?)",
                   [(origin, a, b) for a, b in ((lo, seq - 1), (seq + 1, hi)) if a <= b])  # fmt: skip


def held(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    """Origin -> [n, [[lo, hi], ...]]: numbers 1..n held, and the runs held above n (`MAX_RANGES` at most: the first
    ones and the last). What this device asks with, beside its watermarks."""
    out: dict[str, list[Any]] = {}
    total = 0
    for origin in origins(conn):
        runs = conn.execute(  # (the first ones and the last only: a liar's conflicts can leave many gaps)
            "SELECT lo, hi FROM sync_held WHERE origin = ? ORDER BY lo LIMIT ?", (origin, MAX_RANGES + 2)
        ).fetchall()
        first = runs.pop(0)[1] if runs and runs[0][0] == 1 else 0
        if len(runs) > MAX_RANGES:
            last = conn.execute("SELECT lo, hi FROM sync_held WHERE origin = ? ORDER BY lo DESC LIMIT 1", (origin,)).fetchone()
            runs = runs[: MAX_RANGES - 1] + [last]
        runs = runs[: max(0, MAX_HELD_RANGES - total)]
        total += len(runs)
        out[origin] = [first, [list(r) for r in runs]]
    return out


def _missing(first: int, runs: list[list[int]]) -> list[tuple[int, int]]:
    """The numbers not held, as (after, up to) bounds: between the runs, and past the last."""
    gaps, after = [], first
    for lo, hi in runs:
        if lo > after + 1:
            gaps.append((after, lo - 1))
        after = max(after, hi)
    return [*gaps, (after, MAX_SEQ)]


# -- equivocation: two different ops one origin signed with one number (or one stamp) -------------------------

EVIDENCE_KEPT = 16
"""Conflicts of one origin kept with both ops as signed (the others: their numbers and stamps only)."""


def same(a: Op, b: Op) -> bool:
    """Whether two ops are one (their signatures aside: an op kept unsigned is signed when sent)."""
    return (a.hlc, a.kind, a.body, a.seq) == (b.hlc, b.kind, b.body, b.seq)


def rank(op: Op) -> tuple[int, bytes]:
    """Of two ops that conflict, the one of lower rank is kept, on every device: the earlier (so what is kept of an
    origin stays in order of time: `without_gaps`), then the lower hash."""
    return op.hlc, hashlib.sha256(msgpack.packb([op.kind, op.body, op.seq])).digest()


def rivals(conn: sqlite3.Connection, op: Op) -> list[Op]:
    """The ops held of `op`'s origin with its stamp or its number that are not `op`."""
    stamps = {op.hlc}
    if op.seq is not None:  # (the stamps alone, from the numbers index: asked for whole rows, SQLite read every op
        stamps.update(stamp for (stamp,) in conn.execute(  # of the origin, 0.5 ms each with 10,000 ops)
            "SELECT hlc FROM sync_ops WHERE origin = ? AND seq = ? AND seq IS NOT NULL", (op.origin, op.seq)
        ))  # fmt: skip
    held = (get(conn, op.origin, stamp) for stamp in sorted(stamps))
    return [h for h in held if h is not None and not same(h, op)]


def record_conflict(db: sqlite3.Connection, kept: Op, dropped: Op) -> bool:
    """Keep the evidence of a conflict (both ops as signed, for the first few of an origin); False when known."""
    shown = db.execute(  # (the first EVIDENCE_KEPT of an origin have it, the rest not: counting its conflicts, up
        "SELECT count(*) FROM (SELECT 1 FROM sync_conflicts WHERE origin = ? LIMIT ?)",  # to that, is enough, where
        (kept.origin, EVIDENCE_KEPT),  # counting those with evidence read every one: a liar's 20,000th cost 20,000)
    ).fetchone()[0]  # fmt: skip
    evidence = msgpack.packb([kept.pack(), dropped.pack()]) if shown < EVIDENCE_KEPT else None
    before = db.total_changes
    db.execute(
        "INSERT OR IGNORE INTO sync_conflicts (origin, seq, hlc, kept_hlc, evidence, found) VALUES (?, ?, ?, ?, ?, ?)",
        (kept.origin, dropped.seq if dropped.seq == kept.seq else None, dropped.hlc, kept.hlc, evidence, time.time()),
    )
    return db.total_changes > before


def conflicts(conn: sqlite3.Connection) -> dict[str, int]:
    """Origin -> how many conflicting ops of it were found here."""
    return dict(conn.execute("SELECT origin, count(*) FROM sync_conflicts GROUP BY origin"))


def kept_in_conflicts(conn: sqlite3.Connection, after: int, limit: int, max_bytes: int) -> tuple[list[Op], int]:
    """The ops kept in the conflicts found here after conflict number `after` (so that a device holding the dropped
    one, which says it holds that number, gets the kept one too and drops its own: every device converges), and
    the number of the last conflict they cover."""
    ops: list[Op] = []
    size, up_to = 0, after
    for number, origin, kept in conn.execute(
        "SELECT id, origin, kept_hlc FROM sync_conflicts WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    ).fetchall():
        op = get(conn, origin, kept)
        if op is not None:
            if ops and size + len(op.body) > max_bytes:
                break
            size += len(op.body)
            ops.append(op)
        up_to = number
    return ops, up_to


def last_seq(conn: sqlite3.Connection, origin: str) -> int:
    """The number of the last op of `origin` held here (0: none numbered)."""
    # (`seq IS NOT NULL`: read from the index sync_ops_by_seq; without it, every op of the origin: a local edit
    # in a library of 300,000 ops of this device read them all, 40 ms each)
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM sync_ops WHERE origin = ? AND seq IS NOT NULL", (origin,)).fetchone()[0])


_ORIGINS = """WITH RECURSIVE o(origin) AS (
    SELECT min(origin) FROM sync_ops
    UNION ALL SELECT (SELECT min(origin) FROM sync_ops WHERE origin > o.origin) FROM o WHERE o.origin IS NOT NULL
) SELECT origin FROM o WHERE origin IS NOT NULL"""
"""The origins of the log, one primary-key seek each (DISTINCT or GROUP BY read every op: 0.1 s for 900,000 ops,
at every request of a pull and every answer)."""


def origins(conn: sqlite3.Connection) -> list[str]:
    """Every device whose ops are held here."""
    return [r[0] for r in conn.execute(_ORIGINS)]


def next_seq(conn: sqlite3.Connection, origin: str) -> int:
    """The number the next op of `origin` (this device) gets: after its last held here, and after every number a
    restore from a backup found the other devices may hold (sdcore.sync.highwater: never given twice)."""
    return int(conn.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM sync_ops WHERE origin = ?1 AND seq IS NOT NULL), 0),"
        " coalesce((SELECT max(ops_to) FROM sync_restores WHERE origin = ?1), 0)) + 1", (origin,),
    ).fetchone()[0])  # fmt: skip


def without_gaps(conn: sqlite3.Connection, ops: list[Op]) -> tuple[list[Op], dict[str, int]]:
    """The ops that keep what is held of each origin without a gap, in number and in time: an origin's op numbered
    n > 1 is taken only with an op n - 1 of that origin stamped before it (held here, or taken with it); the others
    wait (the watermark stays below them: they come again). So what this device holds, and serves oldest first,
    never opens with ops that another device must refuse: an origin numbering its ops against their time (its op 1
    stamped after its ops 2, 3...) had them fill every answer to others, refused there at every pull, ahead of the
    ops of every other device. Ops without a number (made before numbers) are taken as they come. Also: of each
    origin whose ops stopped, the number that is missing."""
    by_origin: dict[str, list[Op]] = {}
    out: list[Op] = []
    for op in ops:
        if op.seq is None:
            out.append(op)
        else:
            by_origin.setdefault(op.origin, []).append(op)
    missing: dict[str, int] = {}
    for origin, numbered in by_origin.items():
        first: dict[int, int] = {}  # number -> the earliest stamp of an op of that number held or taken

        def earliest(seq: int, origin: str = origin, first: dict[int, int] = first) -> int:
            if seq not in first:
                row = conn.execute("SELECT min(hlc) FROM sync_ops WHERE origin = ? AND seq = ? AND seq IS NOT NULL", (origin, seq)).fetchone()
                first[seq] = row[0] if row[0] is not None else 1 << 63
            return first[seq]

        for op in sorted(numbered, key=lambda o: (o.seq or 0, o.hlc)):
            assert op.seq is not None
            if op.seq == 1 or earliest(op.seq - 1) < op.hlc:  # (two of one number: the conflict is settled on insert)
                out.append(op)
                first[op.seq] = min(earliest(op.seq), op.hlc)
            elif origin not in missing:
                missing[origin] = op.seq - 1
    return out, missing


def watermarks(conn: sqlite3.Connection) -> dict[str, int]:
    """Origin device id -> the highest stamp held from it."""
    return {o: conn.execute("SELECT max(hlc) FROM sync_ops WHERE origin = ?", (o,)).fetchone()[0] for o in origins(conn)}


def ops_since(
    conn: sqlite3.Connection, marks: dict[str, int], limit: int, max_bytes: int | None = None, verifiable_by_others: str = "",
    only: set[str] | None = None, numbers: dict[str, list[Any]] | None = None,
) -> list[Op]:
    """Up to `limit` ops the holder of `marks` lacks, oldest first (so what it keeps of each origin has no gap);
    their bodies `max_bytes` at most in all (one op at least), so that an answer fits in a frame.

    What it lacks: of each origin, the ops stamped after its watermark, and the ops whose numbers it does not hold
    (`numbers`, as `held` makes them: an asker that got a restored device's newer ops first holds a later stamp than
    the ops the restore lost, which watermarks alone never sent it).

    `verifiable_by_others` (this device's id): of other origins, only the ops signed by a key held here, the ones
    another device can check; the rest (kept before ops were signed, or in a copy made without its origin's key)
    would be refused there, and, oldest of all, asked for and refused again at every pull, ahead of everything else.
    `only`: the origins whose ops to send (None: all)."""
    wanted = [o for o in origins(conn) if only is None or o in only]
    if verifiable_by_others:
        keyed = {r[0] for r in conn.execute("SELECT device FROM sync_keys")} | {verifiable_by_others}
        wanted = [o for o in wanted if o in keyed]
    streams = []
    for origin in wanted:
        signed = " AND sig IS NOT NULL" if verifiable_by_others and origin != verifiable_by_others else ""
        rows = conn.execute(
            f"SELECT origin, hlc, kind, body, sig, seq FROM sync_ops WHERE origin = ? AND hlc > ?{signed} ORDER BY hlc LIMIT ?",
            (origin, marks.get(origin, 0), limit),
        ).fetchall()
        if numbers is not None and origin in numbers:
            first, runs = numbers[origin]
            by_number = 0
            for after, up_to in _missing(first, runs):  # (`limit` ops in all: an asker naming many gaps costs no more)
                found = conn.execute(
                    "SELECT origin, hlc, kind, body, sig, seq FROM sync_ops WHERE origin = ? AND seq > ? AND seq <= ? AND seq IS NOT NULL"
                    f"{signed} ORDER BY seq LIMIT ?", (origin, after, up_to, limit - by_number),
                ).fetchall()  # fmt: skip
                rows += found
                by_number += len(found)
                if by_number >= limit:
                    break
            rows = sorted(set(rows), key=lambda r: r[1])[:limit]
        streams.append([Op(*row) for row in rows])
    ops: list[Op] = []
    size = 0
    for op in heapq.merge(*streams, key=lambda op: op.stamp):
        size += len(op.body)
        if len(ops) >= limit or (ops and max_bytes is not None and size > max_bytes):
            break
        ops.append(op)
    return ops


def get(conn: sqlite3.Connection, origin: str, stamp: int) -> Op | None:
    row = conn.execute("SELECT origin, hlc, kind, body, sig, seq FROM sync_ops WHERE origin = ? AND hlc = ?", (origin, stamp)).fetchone()
    return Op(*row) if row else None
