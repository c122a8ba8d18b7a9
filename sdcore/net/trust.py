"""The trust store: paired devices (id, name, public key, addresses, trust level) and this device's shares."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdcore.device import device_id_of
from sdcore.errors import NotFound, SdError
from sdcore.sdpath import _BIDI, DeviceId, display
from sdcore.sshlib import asyncssh

TRUST_FILE = "trust.json"
TRUST_LEVELS = ("full", "shared")
NAME_LIMIT = 64  # a peer chooses its name: keep it to what fits a table


class AmbiguousDevice(SdError):
    """A device name or id prefix that matches more than one paired device."""


@dataclass(frozen=True)
class Peer:
    """A paired device as this device trusts it."""

    id: DeviceId
    name: str
    public_key: str  # OpenSSH one-line form
    trust: str = "full"  # "full": anything the OS user may read; "shared": only this device's shares
    addresses: tuple[str, ...] = ()
    paired_at: float = field(default_factory=time.time)

    def key(self) -> asyncssh.SSHKey:
        return asyncssh.import_public_key(self.public_key)


def key_text(key: asyncssh.SSHKey) -> str:
    """A key's public half in OpenSSH one-line form, without its comment."""
    algo, data = key.export_public_key("openssh").decode().split()[:2]
    return f"{algo} {data}"


def id_matches_key(device_id: DeviceId, public_key: str) -> bool:
    """Whether `device_id` is the one derived from `public_key` (so nobody claims an id without its key)."""
    return device_id == device_id_of(asyncssh.import_public_key(public_key))


def parse_device_id(text: object) -> DeviceId | None:
    """The device id another device sent in its text form; None when it is not one (the caller refuses it)."""
    if not isinstance(text, str):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _checked(device_id: DeviceId) -> DeviceId:
    # a device id as text would silently match no paired device: a bug to see, never "not paired"
    if not isinstance(device_id, uuid.UUID):
        raise TypeError(f"a device id is a DeviceId (uuid.UUID), not {type(device_id).__name__}")
    return device_id


class TrustStore:
    """`trust.json` in the data dir; re-read when another process changed it, written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / TRUST_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._peers: dict[DeviceId, Peer] = {}
        self._shares: list[str] = []

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._peers, self._shares = None, {}, []
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text() or "{}")
            peers = [_peer_from_json(p) for p in data.get("peers", [])]
            shares = list(data.get("shares", []))
        except (ValueError, KeyError, TypeError, AttributeError):  # never written over: it may be mended
            raise SdError(
                f"{display(str(self.path))} (the paired devices) is damaged; restore it from a backup, or move it"
                " away and pair the devices again"
            ) from None
        self._peers = {p.id: p for p in peers}
        self._shares = shares
        self._stamp = stamp

    def _save(self) -> None:
        peers = [{**asdict(p), "id": str(p.id)} for p in self._peers.values()]
        data = {"peers": peers, "shares": self._shares}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{TRUST_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)
        self._stamp = None
        self._reload()

    def peers(self) -> list[Peer]:
        with self._lock:
            self._reload()
            return sorted(self._peers.values(), key=lambda p: (p.name, p.id))

    def get(self, device_id: DeviceId) -> Peer | None:
        _checked(device_id)
        with self._lock:
            self._reload()
            return self._peers.get(device_id)

    def peer_for_key(self, key: asyncssh.SSHKey) -> Peer | None:
        """The paired device whose stored key is exactly this one."""
        text = key_text(key)
        with self._lock:
            self._reload()
            return next((p for p in self._peers.values() if p.public_key == text), None)

    def add(self, peer: Peer) -> None:
        if peer.trust not in TRUST_LEVELS:
            raise SdError(f"unknown trust level {peer.trust!r}: use one of {', '.join(TRUST_LEVELS)}")
        with self._lock:
            self._reload()
            self._peers[peer.id] = peer
            self._save()

    def remove(self, device_id: DeviceId) -> Peer:
        _checked(device_id)
        with self._lock:
            self._reload()
            peer = self._peers.pop(device_id, None)
            if peer is None:
                raise NotFound(f"no paired device with id {device_id}: see `sd network devices`")
            self._save()
            return peer

    def resolve(self, name_or_id: str, this_device: Peer | None = None) -> Peer:
        """A paired device (or `this_device`) by id, name or id prefix as a person writes it; more than one match
        is refused."""
        devices = [*([this_device] if this_device else []), *self.peers()]
        exact = [d for d in devices if str(d.id) == name_or_id]
        prefix = name_or_id.lower()
        found = exact or [d for d in devices if d.name == name_or_id or str(d.id).startswith(prefix)]
        if len(found) == 1:
            return found[0]
        if found:
            which = ", ".join(
                "this device" if d is this_device else f"{display(d.name)} ({str(d.id)[:8]})" for d in found
            )
            raise AmbiguousDevice(
                f"'{display(name_or_id)}' could be {which}: write more of the device id "
                "(`sd device show` prints this device's, `sd network devices` the others')"
            )
        raise NotFound(
            f"no paired device called '{display(name_or_id)}': see `sd network devices`, or pair it first"
        )

    def free_name(self, wanted: str, device_id: DeviceId, taken: Iterable[str] = ()) -> str:
        """`wanted`, else `wanted-2`, `wanted-3`...: the first name that no other paired device has,
        nor any of `taken` (this device's own name), so a name always says which device it is."""
        # without invisible format characters (zero-width ones), which would make it look like another's name;
        # control characters stay, shown escaped, for people to see what the peer tried
        visible = "".join(ch for ch in wanted if unicodedata.category(ch) != "Cf" or ord(ch) in _BIDI)
        base = " ".join(visible.split())[:NAME_LIMIT] or "device"
        used = {p.name for p in self.peers() if p.id != device_id} | set(taken)
        candidates = itertools.chain([base], (f"{base}-{i}" for i in itertools.count(2)))
        return next(n for n in candidates if n not in used)

    @property
    def data_dir(self) -> str:
        """This device's data dir (its real path), which no share may expose."""
        return os.path.realpath(self.path.parent)

    def holds_data_dir(self, folder: str) -> bool:
        return within(self.data_dir, folder)

    def shares(self) -> list[str]:
        with self._lock:
            self._reload()
            return list(self._shares)

    def add_share(self, path: str) -> str:
        """Share a folder (its real path): never the data dir or a folder in it; one that holds it is shared without it."""
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise NotFound(f"{path}: not a directory; a share is a folder")
        if within(real, self.data_dir):
            raise SdError(
                f"{display(path)} is {'' if real == self.data_dir else 'in '}this device's data dir (its keys and "
                "paired devices), which is never shared: share a folder outside it"
            )
        with self._lock:
            self._reload()
            if real not in self._shares:
                self._shares.append(real)
                self._save()
        return real

    def remove_share(self, path: str) -> None:
        real = os.path.realpath(path)
        with self._lock:
            self._reload()
            if real not in self._shares:
                raise NotFound(f"{path} is not shared: see `sd share list`")
            self._shares.remove(real)
            self._save()


def within(path: str, folder: str) -> bool:
    """Whether the real path `path` is `folder` or in it."""
    return (path.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")


def _peer_from_json(p: dict[str, Any]) -> Peer:
    """A paired device as trust.json stores it (its id as text)."""
    return Peer(
        id=uuid.UUID(p["id"]),
        name=p["name"],
        public_key=p["public_key"],
        trust=p.get("trust", "full"),
        addresses=tuple(p.get("addresses", ())),
        paired_at=p.get("paired_at", 0.0),
    )
