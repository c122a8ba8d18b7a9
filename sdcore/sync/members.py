"""Which devices hold a library: its `members.json`, merged between members as a last-writer-wins set.

Each entry (a device added, or removed) is signed by the device that made that change, with the signer's public
key beside it (its hash is the signer's device id). A list from another member is taken in entry by entry: an
entry counts only when its signature verifies and its signer is a member here (or this device), so a member
relaying the list cannot change what others wrote, and a device that is not a member (or no longer) changes
nothing.

Who may remove whom: a device may always leave (its own removal, signed by itself); another device's removal
counts here only when this device signed it or a device this device's user trusts fully did (paired with full
trust here: `trusted`). So a member that this user never paired with cannot take a third device (or all) out.
A device never adds itself (only its list's own entry, stamped 0, which changes nothing once it is known): a
removed device comes back only when a member's user shares the library with it again.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdcore.errors import SdError
from sdcore.privacy import write_private
from sdcore.sdpath import typed
from sdcore.sync import hlc, signing

if TYPE_CHECKING:
    from sdcore.library.library import Library

FILE = "members.json"
MAX_MEMBERS = 64
"""Devices one library's list may hold, those unshared since included (their removal is kept: see `Member.removed`):
what sharing it here and a member's list taken in may make it hold."""
NAME_LIMIT = 200
JOINED = 1.0
"""The time a device that shared a library with this one is listed as added (by this device, which did not ask
for it): earlier than any removal, so a removed device that shares the library back with a member that did not
know of its removal is not brought back everywhere by that member's list."""
MAX_AHEAD = hlc.MAX_AHEAD_MS / 1000
"""Seconds ahead of this device's clock an entry may be dated, as an op's stamp may (a later one would win over
every change to come: a member removed in the year 4000 could never be shared with again), so it is refused. One
within it does not hold up the changes made here after it was seen: they are dated past it (`Members.add`)."""


@dataclass(frozen=True, slots=True)
class Member:
    """A device a library is shared with (this device is one too, implicitly: it is never listed)."""

    device_id: str
    name: str
    added: float
    removed: float | None = None
    """When it was unshared (kept, so that an older list from another member cannot bring it back)."""
    last_sync: float | None = None
    """When this device last pulled from it (this device's own knowledge: never merged)."""
    by: str = ""
    """The device that made this change (added or removed it), which signed it ('' in a list made before that)."""
    key: bytes = b""
    """The public key of `by`."""
    sig: bytes = b""
    own: tuple[str, bytes, bytes] | None = None
    """The name the device gives itself, with its public key and its signature of it (its list's own entry, `me`),
    relayed as it is: what this device calls a member it is not paired with (`name` is what the entry's signer,
    maybe a relay, called it). Never merged as a change of the list."""

    def signed_part(self, library_id: object) -> bytes:
        return signing.payload("member", str(library_id), [self.device_id, self.name, self.added, self.removed, self.by])

    def signed_by(self, signer: signing.Signer, library_id: object) -> Member:
        made = dataclasses.replace(self, by=signer.device_id, key=signer.public_key)
        return dataclasses.replace(made, sig=signer.sign(made.signed_part(library_id)))

    def verifies(self, library_id: object) -> bool:
        return signing.device_of_key(self.key) == self.by and signing.verify(self.key, self.signed_part(library_id), self.sig)

    @property
    def current(self) -> bool:
        return self.removed is None or self.removed < self.added

    @property
    def stamp(self) -> float:
        return max(self.added, self.removed or 0.0)


class LibraryFull(SdError):
    """A library's list of devices holds MAX_MEMBERS already."""


def _full(members: dict[str, Member], device_id: str) -> bool:
    """Whether one more device, `device_id`, would take the list past MAX_MEMBERS."""
    return device_id not in members and len(members) >= MAX_MEMBERS


class Members:
    """The members of one library, in its folder (so a copied library folder keeps them). Changing or sending
    them takes the library's id and this device's signer."""

    def __init__(self, folder: Path, library_id: uuid.UUID | None = None, signer: signing.Signer | None = None) -> None:
        self.path = folder / FILE
        self.library_id, self.signer = library_id, signer
        self._lock = threading.Lock()

    def _sign(self, m: Member) -> Member:
        assert self.signer is not None and self.library_id is not None, "Members(folder, library_id, signer) to change it"
        return m.signed_by(self.signer, self.library_id)

    def _load(self) -> dict[str, Member]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        members = {}
        for device_id, m in (raw.get("devices") or {}).items() if isinstance(raw, dict) else ():
            try:
                own = m.get("own")
                members[device_id] = Member(
                    device_id, str(m["name"]), float(m["added"]), _opt_float(m.get("removed")),
                    _opt_float(m.get("last_sync")), str(m.get("by", "")), bytes.fromhex(m.get("key", "")),
                    bytes.fromhex(m.get("sig", "")),
                    (str(own[0]), bytes.fromhex(own[1]), bytes.fromhex(own[2])) if own else None,
                )  # fmt: skip
            except (KeyError, TypeError, ValueError):
                continue
        return members

    def _save(self, members: dict[str, Member]) -> None:
        data = {
            "devices": {
                m.device_id: {"name": m.name, "added": m.added, "removed": m.removed, "last_sync": m.last_sync,
                              "by": m.by, "key": m.key.hex(), "sig": m.sig.hex(),
                              "own": [m.own[0], m.own[1].hex(), m.own[2].hex()] if m.own else None}
                for m in members.values()
            }
        }
        write_private(self.path, json.dumps(data, indent=1))

    def all(self) -> list[Member]:
        """Every device ever shared with (unshared ones too: see `Member.current`)."""
        with self._lock:
            return list(self._load().values())

    def current(self) -> list[Member]:
        return [m for m in self.all() if m.current]

    def holds(self, device_id: object) -> bool:
        m = self._load().get(str(device_id))
        return m is not None and m.current

    def refuse_if_full(self, device_id: object, library_name: str, device_name: str) -> None:
        """Raise LibraryFull when the library cannot be shared with one more device, `device_id`."""
        with self._lock:
            members = self._load()
        if _full(members, str(device_id)):
            unshared = sum(1 for m in members.values() if not m.current)
            kept = f" ({unshared} of them unshared since, kept in its list so that no old list brings them back)" if unshared else ""
            raise LibraryFull(
                f"library {library_name!r} is not shared with {device_name}: it has been shared with {len(members)} "
                f"devices{kept}, the most one library may be; `sd library devices {typed(library_name)}` lists them"
            )

    def add(self, device_id: object, name: str, when: float | None = None) -> Member:
        with self._lock:
            members = self._load()
            if _full(members, str(device_id)):
                raise LibraryFull(f"this library has been shared with {MAX_MEMBERS} devices, the most one library may be")
            old = members.get(str(device_id))
            m = Member(str(device_id), name[:NAME_LIMIT], when or _after(old), None, old.last_sync if old else None)
            members[m.device_id] = m = dataclasses.replace(self._sign(m), own=old.own if old else None)
            self._save(members)
            return m

    def remove(self, device_id: object, when: float | None = None) -> Member | None:
        with self._lock:
            members = self._load()
            old = members.get(str(device_id))
            if old is None:
                return None
            gone = self._sign(Member(old.device_id, old.name, old.added, when or _after(old), old.last_sync))
            members[old.device_id] = dataclasses.replace(gone, own=old.own)
            self._save(members)
            if old.current:
                self._forget_catalogue(old.device_id)
            return old

    def synced(self, device_id: object, when: float | None = None) -> None:
        with self._lock:
            members = self._load()
            old = members.get(str(device_id))
            if old is not None:
                members[old.device_id] = dataclasses.replace(old, last_sync=when or time.time())
                self._save(members)

    def leave(self) -> None:
        """This device no longer syncs the library (another member's user unshared it from this one): every
        member is forgotten here. Nothing is signed: what others hold of the library is theirs to change."""
        with self._lock:
            self._save({})

    def packed(self, *extra: Member) -> list[list[Any]]:
        """The list as it goes to another member, `extra` first: [device id, name, added, removed, by, key, sig]
        each (an entry of a list made before entries were signed is signed by this device on the way out, an
        addition only: this device does not vouch for a removal it did not make)."""
        out = []
        held = self.all()
        for m in [*extra, *held]:
            if not m.sig:
                if not m.current:
                    continue
                m = self._sign(m)
            out.append([m.device_id, m.name, m.added, m.removed, m.by, m.key, m.sig])
        for m in held:  # each member's own name, as it signed it
            if m.own is not None:
                out.append([m.device_id, m.own[0], 0.0, None, m.device_id, m.own[1], m.own[2]])
        return out

    def name_of(self, m: Member) -> str:
        """What to call a member not paired with this device: the name it gives itself (signed by it), never one a
        relay gave it; else the start of its id."""
        return m.own[0] if m.own is not None else m.device_id[:8]

    def me(self, name: str) -> Member:
        """This device as an entry of the list it sends (stamped 0: it never overrides what a member knows)."""
        assert self.signer is not None
        return self._sign(Member(self.signer.device_id, name[:NAME_LIMIT], 0.0))

    def merge(self, packed: object, this_device: object, trusted: Collection[str] = ()) -> list[Member]:
        """Take in another member's list (validated: a peer sends it); the devices that became members here.
        Entries not signed by a member here are left out (and logged), and so are removals of another device
        than their signer by a device not in `trusted` (the devices paired with full trust here), and additions
        of a device by itself."""
        if not isinstance(packed, list) or len(packed) > 2 * MAX_MEMBERS + 1:
            raise ValueError(f"a list of members, {2 * MAX_MEMBERS + 1} at most")
        theirs = [_unpack(row) for row in packed]
        joined, left = [], []
        with self._lock:
            members = self._load()
            changed = False
            waiting = [m for m in theirs if m.device_id != str(this_device) and not (m.by == m.device_id and m.added == 0.0)]
            while waiting:  # an entry signed by a member this list makes known comes after it
                later = []
                for m in waiting:
                    signer = members.get(m.by)
                    if not (m.by == str(this_device) or (signer is not None and signer.current)):
                        later.append(m)
                        continue
                    if not m.verifies(self.library_id):
                        signing.refusals.refused(m.by, f"a member list entry of {m.device_id} not signed by {m.by}")
                        continue
                    if m.stamp > time.time() + MAX_AHEAD:
                        signing.refusals.refused(m.by, f"a member list entry of {m.device_id} dated in the future")
                        continue
                    if not m.current and m.by not in (m.device_id, str(this_device)) and m.by not in trusted:
                        signing.refusals.refused(m.by, f"the removal of device {m.device_id} by a device not paired here with full trust")
                        continue
                    if m.current and m.by == m.device_id and m.stamp > 0:
                        signing.refusals.refused(m.by, "a device adding itself to the library")
                        continue
                    old = members.get(m.device_id)
                    if (old is not None and old.stamp >= m.stamp) or _full(members, m.device_id):
                        continue
                    members[m.device_id] = dataclasses.replace(
                        m, last_sync=old.last_sync if old else None, own=old.own if old else None
                    )
                    changed = True
                    if m.current and (old is None or not old.current):
                        joined.append(m)
                    elif old is not None and old.current and not m.current:
                        left.append(old)
                if len(later) == len(waiting):
                    break  # signed by devices that are not members here: left out
                waiting = later
            for m in theirs:  # a device's own name, signed by it (its list's own entry, stamped 0)
                old = members.get(m.device_id)
                if (m.by == m.device_id and m.added == 0.0 and m.removed is None and old is not None
                        and (old.own is None or old.own[0] != m.name) and m.verifies(self.library_id)):  # fmt: skip
                    members[m.device_id] = dataclasses.replace(old, own=(m.name, m.key, m.sig))
                    changed = True
            if changed:
                self._save(members)
        for m in left:
            self._forget_catalogue(m.device_id)
        return joined

    def _forget_catalogue(self, device_id: str) -> None:
        """A device that left the library: its catalogue file kept here is deleted (sdcore.sync.catalogue_store; its
        slot stays, never given again). Not when this device leaves (`leave`): it keeps its copy, the others' too."""
        from sdcore.sync.catalogue_store import forget_in

        forget_in(self.path.parent, device_id)


def forget_departed(library: Library) -> list[str]:
    """Forget what the library holds of the devices that left it (in its list of members, no longer current): their
    catalogues (locations, watermark and kept file; their slots stay, never given again), so that nothing lists
    them any more (`sd library devices`, the explorer's sidebar and its places). Their ids. Idempotent: what the
    sync service calls once its list changed (unshare, a device told it left, another member's list merged)."""
    from sdcore.sync import catalogue, catalogue_store

    members = Members(library.folder).all()
    gone = {m.device_id for m in members if not m.current} - {str(library.context.device_id)}
    left = []
    for device in sorted(gone):
        device_id = uuid.UUID(device)
        held = catalogue.has_catalogue(library, device_id) or catalogue.as_of(library, device_id) is not None
        if held or catalogue_store.path_of(library, device_id).exists():
            catalogue.forget_catalogue(library, device_id)
            catalogue_store.forget(library, device_id)
            left.append(device)
    return left


def _after(old: Member | None) -> float:
    """When a change of a member made now is dated: now, or just after the entry it replaces when that is dated
    ahead of this clock (another device's clock ahead, by up to MAX_AHEAD), as an HLC dates an edit after what it
    saw: else a removal dated a day ahead beat this device's user sharing the library again, everywhere but here."""
    now = time.time()
    return now if old is None or old.stamp < now else old.stamp + 0.001


def _unpack(row: object) -> Member:
    if not (isinstance(row, list) and len(row) == 7 and isinstance(row[1], str) and len(row[1]) <= NAME_LIMIT
            and _is_time(row[2])
            and (row[3] is None or _is_time(row[3])) and isinstance(row[4], str)
            and isinstance(row[5], bytes) and len(row[5]) == signing.KEY_SIZE
            and isinstance(row[6], bytes) and len(row[6]) == signing.SIG_SIZE):  # fmt: skip
        raise ValueError("a member is [device id, name, added, removed, by, key, signature]")
    try:
        device_id = str(uuid.UUID(str(row[0])))
    except ValueError:
        raise ValueError("a member's device id is a UUID") from None
    return Member(device_id, row[1], float(row[2]), _opt_float(row[3]), None, row[4], row[5], row[6])


def _is_time(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e11


def _opt_float(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]
