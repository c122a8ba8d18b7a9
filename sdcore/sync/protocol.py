"""The sync wire: what devices sharing a library send each other, bounded and checked, and the adapters that
reach the shared data (operations) and the catalogue of a library in those terms.

Every request names the library by id; the device answering serves it only to a current member of that library
(a library not shared with a device is never sent to it). Each device PULLS from each member it reaches:

    sync_share(library, title, members) -> {"name"}     the library is shared with you (a full-trust device only)
    sync_unshare(library, member)       -> None         `member` (maybe you) no longer holds the library (another
                                                    device than the caller and you: the caller is fully trusted)
    sync_ops(library, watermarks, limit, held, conflicts_after) -> {"ops", "more", "members", "keys",
                                                    "conflicts_up_to"}   operations of every origin you lack (stamped
                                                    past your watermark, or numbered as none you hold: `held`), each
                                                    signed by its origin (and numbered by it: see oplog.Op.seq), and
                                                    the origins' public keys; first, the ops kept here in conflicts
                                                    found after your `conflicts_after` (a device from before `held`
                                                    refuses both arguments: asked without them)
    sync_catalogue(library, since, limit) -> {"batch", "up_to", "head"}  the answerer's OWN catalogue after `since`
                                                    (with "restart": true, from the start instead: the asker holds
                                                    changes the answerer lost to a restore; it loads it again)
    sync_catalogue_file(library, offset) -> {"size", "head", "data"}  the answerer's OWN catalogue as a file
                                                    (sdcore.sync.catalogue_file), at most 1 MiB of it from `offset`,
                                                    of a copy made for you when asked at 0 and deleted when you have
                                                    its end, ask from 0 again, or after 10 minutes idle
                                                    (sdcore.sync.catalogue_transport)
    sync_changed(library)               -> None         "I changed": pull from me (coalesced by the receiver)
    sync_watch()                        -> bool         held until a library shared with you changes (true) or
                                                    25 s pass (false): "I changed" to a device you cannot dial
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from sdcore.errors import SdError

MAX_OPS = 2000
"""Operations in one answer (an asker may ask fewer)."""
MAX_CATALOGUE = 5000
"""Entries and locations in one catalogue answer."""
def max_answer_bytes() -> int:
    """Bytes of operations in one answer: a quarter of a frame (the rest is room for msgpack, keys and members),
    so many long notes come in several answers, never in one that the asker's reader refuses at every pull."""
    from sdcore.net import frames

    return frames.MAX_FRAME // 4


MAX_WATERMARKS = 256
"""Origins an asker may name in its watermarks."""
MAX_HLC = (1 << 63) - 1


class Refused(Exception):
    """A peer sent something that is not the sync protocol (said back to it as a ProtocolError)."""


def library_id(value: object) -> uuid.UUID:
    if not isinstance(value, str):
        _bad("a library id (text)")
    try:
        return uuid.UUID(value)
    except ValueError:
        _bad("a library id (a UUID)")


def device_id(value: object) -> str:
    if not isinstance(value, str):
        _bad("a device id (text)")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        _bad("a device id (a UUID)")


def watermarks(value: object) -> dict[str, int]:
    """Checked watermarks: {device id: highest HLC held from it}."""
    if not isinstance(value, dict) or len(value) > MAX_WATERMARKS:
        _bad(f"watermarks: a map of at most {MAX_WATERMARKS} device ids to HLCs")
    out = {}
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_HLC:
            _bad("a watermark is an HLC (an integer of 0 or more)")
        out[device_id(k)] = v
    return out


def held(value: object) -> dict[str, list[Any]]:
    """Checked numbers held: {device id: [n, [[lo, hi], ...]]} (1..n held, and runs above, in order, apart)."""
    from sdcore.sync.oplog import MAX_HELD_RANGES, MAX_RANGES, MAX_SEQ

    if not isinstance(value, dict) or len(value) > MAX_WATERMARKS:
        _bad(f"held numbers: a map of at most {MAX_WATERMARKS} device ids to [n, runs]")
    out, total = {}, 0
    for k, v in value.items():
        if not (isinstance(v, list) and len(v) == 2 and _number(v[0]) and isinstance(v[1], list)
                and len(v[1]) <= MAX_RANGES):  # fmt: skip
            _bad(f"held numbers of a device: [n, at most {MAX_RANGES} runs [lo, hi]]")
        after = v[0]
        for run in v[1]:
            if not (isinstance(run, list) and len(run) == 2 and _number(run[0]) and _number(run[1])
                    and after < run[0] <= run[1] <= MAX_SEQ):  # fmt: skip
                _bad("a run of held numbers: [lo, hi], past n and the run before")
            after = run[1]
        total += len(v[1])
        if total > MAX_HELD_RANGES:
            _bad(f"held numbers: at most {MAX_HELD_RANGES} runs in all")
        out[device_id(k)] = [v[0], [list(r) for r in v[1]]]
    return out


def _number(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_HLC


def count(value: object, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        _bad("a limit is an integer of 1 or more")
    return min(value, most)


def seq(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_HLC:
        _bad("a catalogue sequence is an integer of 0 or more")
    return value


def offset(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_HLC:
        _bad("an offset in a file is an integer of 0 or more")
    return value


def _bad(what: str) -> NoReturn:
    raise Refused(f"sync: expected {what}")


# --- what a library's sync needs from syncops (shared data) and synccat (catalogue) -------------------


class SharedData(Protocol):
    """A library's operation log, in packed (msgpack-able) operations."""

    def watermarks(self) -> dict[str, int]: ...

    def held(self) -> dict[str, list[Any]]: ...

    def ops_since(
        self, watermarks: dict[str, int], limit: int, max_bytes: int, numbers: dict[str, list[Any]] | None = None,
        conflicts_after: int | None = None,
    ) -> tuple[list[Any], dict[str, bytes], int | None]:
        """(packed ops, the public keys of their origins, the last conflict found here they cover): `limit` at most,
        their bodies `max_bytes` at most; with `conflicts_after`, the ops kept in conflicts found after it first."""
        ...

    def cursor(self, device: str) -> int:
        """The last of `device`'s conflicts it sent here."""
        ...

    def set_cursor(self, device: str, up_to: int, packed: list[Any]) -> None:
        """After `packed` (an answer's ops) was applied: `device`'s conflicts up to `up_to` were sent here, unless one
        of those ops waits (a gap) while this device holds an op it would drop: then they come again."""
        ...

    def apply(self, packed: list[Any], sender: str, keys: object) -> int:
        """Merge ops `sender` sent, those signed by their origins (`keys`: public keys it sent); how many were new."""
        ...

    def digest(self) -> str: ...


class Catalogue(Protocol):
    """A library's device-owned data: this device's changes out, another device's changes in."""

    def changes(self, since: int, limit: int) -> tuple[Any, int, int]:
        """(packed batch, up_to, head) of this device's own entries and locations changed after `since` (more to
        come while up_to < head)."""
        ...

    def check(self, device: str, packed: Any) -> Any:
        """A member's own batch validated (Refused if it is not), for `apply`: checked while the one before is
        applied."""
        ...

    def apply(self, device: str, packed: Any, name: Callable[[], str] | None = None, bulk: Any = None) -> None:
        """Apply a member's own batch (packed, or as `check` gave it) into its read-only catalogue here (validated;
        idempotent); `name()`: what the device is called here (as paired) when it is written, kept instead of the name
        the batch says;
        `bulk`: what bounds its bulk load (catalogue.BulkWatch)."""
        ...

    def watermark(self, device: str) -> int: ...

    def forget(self, device: str) -> None:
        """Drop a member's catalogue here (its log restarted below the watermark: it is loaded again)."""
        ...


def shared_data(library: Any) -> SharedData:
    """The library's operation log (syncops' `library.sync`), its ops packed for the wire."""
    return _Ops(library.sync)


def catalogue(library: Any) -> Catalogue:
    """The library's catalogue stream (synccat's), its batches packed for the wire."""
    return _Catalogue(library)


class _Ops:
    """syncops' log, its Op packed for the wire and unpacked (validated) from it."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def watermarks(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.log.watermarks().items()}

    def held(self) -> dict[str, list[Any]]:
        return {str(k): v for k, v in self.log.held().items()}

    def ops_since(
        self, watermarks: dict[str, int], limit: int, max_bytes: int, numbers: dict[str, list[Any]] | None = None,
        conflicts_after: int | None = None,
    ) -> tuple[list[Any], dict[str, bytes], int | None]:
        from sdcore.sync import oplog

        kept: list[Any] = []
        up_to = None
        if conflicts_after is not None:  # (a quarter of the room at most: they never crowd out the ops asked for)
            kept, up_to = oplog.kept_in_conflicts(self.log.library.read(), conflicts_after, limit // 4 or 1, max_bytes // 4)
        ops = self.log.ops_since(watermarks, limit - len(kept), max_bytes - sum(len(op.body) for op in kept),
                                 verifiable=True, numbers=numbers)  # fmt: skip
        ops = kept + ops
        return [op.pack() for op in ops], self.log.keys_of({op.origin for op in ops}), up_to

    def cursor(self, device: str) -> int:
        row = self.log.library.read().execute("SELECT conflicts FROM sync_cursors WHERE device = ?", (device,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, device: str, up_to: int, packed: list[Any]) -> None:
        conn = self.log.library.read()
        if up_to <= self.cursor(device):
            return
        from sdcore.sync import oplog

        for op in packed:  # (well-formed: `apply` refused the answer otherwise)
            done = conn.execute("SELECT 1 FROM sync_ops WHERE origin = ?1 AND hlc = ?2 UNION ALL"
                                " SELECT 1 FROM sync_conflicts WHERE origin = ?1 AND hlc = ?2", (op[0], op[1])).fetchone()  # fmt: skip
            # (one waiting that this device holds no rival of needs no conflict of the answer: it comes by its number
            # or stamp; one refused for good, say for a full quota, held back every conflict after it)
            if not done and oplog.rivals(conn, oplog.Op.unpack(op)):
                return
        with self.log.library.write() as db:
            db.execute(
                "INSERT INTO sync_cursors (device, conflicts) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET conflicts = excluded.conflicts",
                (device, up_to),
            )

    def apply(self, packed: list[Any], sender: str, keys: object) -> int:
        from sdcore.sync.oplog import Op
        from sdcore.sync.signing import checked_keys

        try:
            ops = [Op.unpack(p) for p in packed]
        except SdError as exc:
            raise Refused(f"sync: a malformed operation ({exc})") from None
        return int(self.log.receive(ops, sender, checked_keys(keys)))

    def digest(self) -> str:
        return str(self.log.digest())


class _Catalogue:
    def __init__(self, library: Any) -> None:
        self.library = library

    def changes(self, since: int, limit: int) -> tuple[Any, int, int]:
        from sdcore.sync.catalogue import catalogue_changes

        batch = catalogue_changes(self.library, since, limit)
        return batch.pack(), batch.up_to, batch.head

    def check(self, device: str, packed: Any) -> Any:
        from sdcore.sync.catalogue import CatalogueBatch

        try:
            batch = CatalogueBatch.unpack(packed)
        except SdError as exc:
            raise Refused(f"sync: {exc}") from None
        if str(batch.device_id) != device:  # a device sends its own catalogue only, never a third device's
            raise Refused("sync: a catalogue batch of another device than the one that sent it")
        return batch

    def apply(self, device: str, packed: Any, name: Callable[[], str] | None = None, bulk: Any = None) -> None:
        from sdcore.sync.catalogue import CatalogueBatch, apply_catalogue

        batch = packed if isinstance(packed, CatalogueBatch) else self.check(device, packed)
        apply_catalogue(self.library, uuid.UUID(device), batch, bulk, name)  # (which refuses a batch of another device too)

    def watermark(self, device: str) -> int:
        from sdcore.sync.catalogue import catalogue_watermark

        return catalogue_watermark(self.library, uuid.UUID(device))

    def forget(self, device: str) -> None:
        from sdcore.sync.catalogue import forget_catalogue

        forget_catalogue(self.library, uuid.UUID(device))
