"""Pairing: a 12-word BIP39 code as the SPAKE2 password, with a key confirmation that binds both SSH keys."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mnemonic import Mnemonic
from spake2 import SPAKE2_A, SPAKE2_B

from sdcore.errors import SdError
from sdcore.net.frames import FrameWriter, Reader, Writer, read_frame
from sdcore.sdpath import display

CODE_TTL = 600.0  # a code expires 10 minutes after it was made
PAIRING_FRAME = 16 << 10  # a pairing message is under 2 KiB: a stranger may not make us read 64 MiB
_ID_JOINER = b"sdtui-pair-joiner"
_ID_HOST = b"sdtui-pair-host"
_WORDS = Mnemonic("english")


class PairingError(SdError):
    """Pairing failed; nothing was stored on this device."""


def new_code() -> str:
    """12 BIP39 words: 128 random bits with a valid checksum."""
    return _WORDS.generate(strength=128)


def normalize_code(words: str | list[str] | tuple[str, ...]) -> str:
    """The code as 12 lower-case words separated by one space; raises PairingError if it is not valid."""
    text = " ".join(words) if not isinstance(words, str) else words
    code = " ".join(text.lower().split())
    if len(code.split()) != 12 or not _WORDS.check(code):
        raise PairingError(
            "that is not a valid pairing code: type the 12 words exactly as the other device shows them"
        )
    return code


@dataclass
class PairingOffer:
    """A code this device handed out: single-use, expires, burnt by the first failed attempt."""

    code: str
    trust: str = "full"
    expires_at: float = field(default_factory=lambda: time.monotonic() + CODE_TTL)
    state: str = "waiting"  # waiting | in use | used | burnt | expired | withdrawn
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __post_init__(self) -> None:
        # nobody may be waiting on `done`: mark its exception as seen
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())

    def usable(self) -> str | None:
        """None when the code may be tried now, else why not."""
        if self.state == "waiting" and time.monotonic() > self.expires_at:
            self.state = "expired"
            if not self.done.done():
                self.done.set_exception(PairingError("the pairing code expired before anyone used it"))
        if self.state == "waiting":
            return None
        return {
            "used": "the pairing code was already used",
            "in use": "another device is trying the pairing code right now",
            "burnt": "the pairing code was burnt by a failed attempt",
            "expired": "the pairing code expired (codes last 10 minutes)",
            "withdrawn": "the pairing code was withdrawn (the command that showed it has ended)",
        }[self.state]

    def withdraw(self) -> None:
        """End the offer now (its command ended): it no longer pairs, even an attempt under way."""
        if self.state in ("waiting", "in use"):
            self.state = "withdrawn"
        if not self.done.done():
            self.done.set_exception(PairingError(self.usable() or "the pairing code was withdrawn"))


def _lp(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def transcript(host: dict[str, Any], joiner: dict[str, Any]) -> bytes:
    """Both devices' keys, names and addresses: what the confirmation MACs prove both sides saw."""
    return _lp(
        b"sdtui-pair-v1",
        host["key"].encode(),
        host["name"].encode(),
        str(host.get("id")).encode(),
        joiner["key"].encode(),
        joiner["name"].encode(),
        str(joiner.get("id")).encode(),
        "\n".join(joiner.get("addresses", [])).encode(),
    )


def mac(key: bytes, role: bytes, data: bytes) -> bytes:
    return hmac.new(key, role + data, hashlib.sha256).digest()


WRONG_CODE = "a device tried a wrong pairing code; the code is burnt, generate a new one"
NO_CODE = "this device has no pairing code waiting: {why}. Run `sd network pair generate` on it for a new one"


async def host_side(
    offer: PairingOffer | None,
    me: dict[str, Any],
    reader: Reader,
    writer: Writer,
    accept: Callable[[dict[str, Any]], object],
) -> dict[str, Any] | None:
    """Run the host's half over a pairing channel; returns the joiner's info once it proved the code.

    `me` is {"key", "name", "id"} of this device. `accept(info)` stores the joiner as soon as it
    proved the code, before the host proves it back. On a wrong code the offer is burnt.
    """
    out = FrameWriter(writer)
    why = "none was generated" if offer is None else offer.usable()
    if offer is None or why is not None:
        await out.send({"error": NO_CODE.format(why=why)})
        return None
    offer.state = "in use"
    try:
        spake = SPAKE2_B(offer.code.encode(), idA=_ID_JOINER, idB=_ID_HOST)
        await out.send({"v": 1, "spake": spake.start(), **me})
        joiner = await asyncio.wait_for(read_frame(reader, PAIRING_FRAME), 60)
        if not isinstance(joiner, dict) or not all(k in joiner for k in ("spake", "key", "name", "mac")):
            raise PairingError("the joining device sent a malformed pairing message")
        key = spake.finish(joiner["spake"])
        data = transcript(me, joiner)
        if not hmac.compare_digest(mac(key, b"joiner", data), joiner["mac"]):
            raise PairingError(WRONG_CODE)
        info = {k: joiner.get(k) for k in ("key", "name", "id")}
        info["addresses"] = list(joiner.get("addresses", []))
        accept(info)  # raises PairingError if the joiner's claims do not hold: the code burns
        offer.state = "used"
        await out.send({"mac": mac(key, b"host", data), "trust": offer.trust})
        return info
    except BaseException as exc:
        if offer.state != "used":
            offer.state = "burnt"
            err = exc if isinstance(exc, PairingError) else PairingError(f"pairing attempt failed: {exc}")
            if not offer.done.done():
                offer.done.set_exception(err)
            told = "wrong pairing code" if str(err) == WRONG_CODE else f"pairing refused: {err}"
            try:
                await out.send({"error": f"{told}; the code is now burnt, ask for a new one"})
            except Exception:
                pass
            if isinstance(exc, PairingError | ValueError):
                return None
        raise


async def joiner_side(
    code: str, me: dict[str, Any], host_key: str, reader: Reader, writer: Writer
) -> dict[str, Any]:
    """Run the joiner's half; returns the host's info once it proved the code too.

    `host_key` is the SSH host key the pairing channel presented: the host must claim that same key.
    """
    out = FrameWriter(writer)
    first = await asyncio.wait_for(read_frame(reader, PAIRING_FRAME), 60)
    if not isinstance(first, dict):
        raise PairingError("the other device sent a malformed pairing message")
    if "error" in first:
        raise PairingError(display(str(first["error"])))
    if first.get("key") != host_key:
        raise PairingError("the other device claimed a key that is not its SSH host key: pairing stopped")
    spake = SPAKE2_A(code.encode(), idA=_ID_JOINER, idB=_ID_HOST)
    my_msg = spake.start()
    try:
        key = spake.finish(first["spake"])
    except Exception:
        raise PairingError("the other device sent a malformed pairing message") from None
    host = {"key": first["key"], "name": str(first.get("name", "")), "id": str(first.get("id"))}
    data = transcript(host, me)
    await out.send({"spake": my_msg, **me, "mac": mac(key, b"joiner", data)})
    try:
        reply = await asyncio.wait_for(read_frame(reader, PAIRING_FRAME), 60)
    except asyncio.IncompleteReadError:
        raise PairingError("the other device closed the pairing channel") from None
    if not isinstance(reply, dict):
        raise PairingError("the other device sent a malformed pairing message")
    if "error" in reply:
        raise PairingError(display(str(reply["error"])))
    if not hmac.compare_digest(mac(key, b"host", data), reply.get("mac", b"")):
        raise PairingError(
            "the other device could not prove it knows the code (a man in the middle?): nothing was stored"
        )
    return host | {"trust_given": reply.get("trust", "full")}
