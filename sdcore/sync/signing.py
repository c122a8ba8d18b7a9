"""Signatures of sync data by the device that made it, with the device's own Ed25519 key (its SSH identity).

A device id is a hash of its public key (sdcore.device.device_id_of), so a key proves itself: whoever relays a
device's operation can hand over that device's key too, and a receiver that never paired with it checks the key
against the id, then the signature. What is signed names the library and what it is for, so a signature made for
one library or one purpose is worth nothing in another.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import blake3
import msgpack

if TYPE_CHECKING:  # cryptography is imported when a key is used (it takes ~0.1 s: not for every `sd` command)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_SIZE = 32
SIG_SIZE = 64
_SSH_ED25519 = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"
"""The SSH wire form of an Ed25519 public key starts with this (its 32 bytes follow): what the device id hashes."""

log = logging.getLogger(__name__)


def device_of_key(public_key: bytes) -> str:
    """The device id a raw Ed25519 public key belongs to (as sdcore.device.device_id_of computes it)."""
    return str(uuid.UUID(bytes=blake3.blake3(_SSH_ED25519 + public_key).digest()[:16]))


class Signer:
    """This device's signing key (read from its SSH key file)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.device_id = device_of_key(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        key = load_ssh_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return cls(key)

    def sign(self, payload: bytes) -> bytes:
        return self._key.sign(payload)


def payload(purpose: str, library_id: uuid.UUID | str, fields: list[object]) -> bytes:
    """What is signed: the purpose ('op', 'member'), the library and the fields, as one msgpack list."""
    return msgpack.packb(["sdtui sync", purpose, str(library_id), *fields])  # type: ignore[no-any-return]


def verify(public_key: bytes, signed: bytes, signature: object) -> bool:
    """True when `signature` is the key's signature of `signed`."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(signature, bytes) or len(signature) != SIG_SIZE:
        return False
    try:
        _public(public_key).verify(signature, signed)
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=256)  # a library has a few devices
def _public(public_key: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(public_key)


def checked_keys(raw: object) -> dict[str, bytes]:
    """The keys a peer sent ({device id: raw public key}), each kept only if it is the key of that device id."""
    if not isinstance(raw, dict) or len(raw) > 1024:
        return {}
    return {
        device: key for device, key in raw.items()
        if isinstance(device, str) and isinstance(key, bytes) and len(key) == KEY_SIZE and device_of_key(key) == device
    }  # fmt: skip


class Refusals:
    """Says what was refused in the log, once a minute per sender at most (a peer that forges is not let flood it)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}

    def refused(self, sender: str, what: str) -> None:
        now = time.monotonic()
        last, held = self._last.get(sender, (float("-inf"), 0))
        if now - last < self.every:
            self._last[sender] = (last, held + 1)
            return
        more = f" (and {held} more since the last report)" if held else ""
        log.warning("refused from device %s: %s%s", sender, what, more)
        self._last[sender] = (now, 0)


refusals = Refusals()
"""The one log of refused sync data of this process."""


@functools.lru_cache(maxsize=8)
def signer_of(key_file: Path) -> Signer:
    """The signer of a device's key file (read once)."""
    return Signer.from_file(key_file)
