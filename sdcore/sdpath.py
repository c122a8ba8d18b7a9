"""SdPath: the address of a file on any device, and its text forms."""

from __future__ import annotations

import os
import re
import shlex
import uuid
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import quote_from_bytes, unquote_to_bytes

from sdcore.errors import SdError

DeviceId: TypeAlias = uuid.UUID
"""A device's id: the one type for it in every record, event and SdPath (never its text)."""

UNNAMED_DEVICE: DeviceId = uuid.UUID(int=0)
"""The device of a library opened without a core (its locations are recorded against it)."""

SCHEME = "sd://"
# Printable ASCII that stays as-is in the canonical text form; every other byte is %-escaped.
_SAFE = "/!$&'()*+,;=:@-._~ []{}#^`|<>\"\\"


@dataclass(frozen=True, slots=True)
class SdPath:
    """A file on a device: (device id, absolute POSIX path, optional library id).

    `path` is a str as `os.fsdecode` gives it: bytes that are not UTF-8 are kept as lone
    surrogates, so every name on disk survives a round trip.
    """

    device_id: DeviceId
    path: str
    library_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise InvalidPath(f"not an absolute path: {display(self.path)!s}")

    def __str__(self) -> str:
        return SCHEME + str(self.device_id) + quote_from_bytes(os.fsencode(self.path), safe=_SAFE)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1] or "/"

    @property
    def parent(self) -> SdPath:
        head = self.path.rstrip("/").rsplit("/", 1)[0] or "/"
        return SdPath(self.device_id, head, self.library_id)

    def child(self, name: str) -> SdPath:
        return SdPath(self.device_id, join(self.path, name), self.library_id)

    def on(self, device_id: uuid.UUID) -> bool:
        return self.device_id == device_id

    @classmethod
    def parse_canonical(cls, text: str) -> SdPath:
        """Parse `sd://DEVICE_ID/abs/path`."""
        if not text.startswith(SCHEME):
            raise InvalidPath(f"not an sd:// path: {text!r}")
        rest = text[len(SCHEME) :]
        device, slash, path = rest.partition("/")
        try:
            device_id = uuid.UUID(device)
        except ValueError:
            raise InvalidPath(f"not a device id in {text!r}: {device!r}") from None
        return cls(device_id, os.fsdecode(unquote_to_bytes("/" + path)) if slash else "/")


class InvalidPath(SdError):
    """A path text that is not one of the SdPath forms."""


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


def split_remote(text: str) -> tuple[str, str] | None:
    """`DEVICE:/path` (scp style) -> (DEVICE, /path); None for anything else."""
    if text.startswith(("/", ".", "~", SCHEME)):
        return None
    device, colon, path = text.partition(":")
    if colon and device and "/" not in device and path.startswith("/"):
        return device, path
    return None


_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))  # reorder what follows


def typed(text: str) -> str:
    """`text` as one word to type in a shell, quoted when it needs to be and shown through `display`: what a message
    suggests running (`sd tag create 'summer 2019'`) runs as it reads, whatever name a person or a peer chose."""
    return display(shlex.quote(text))


def display(text: str) -> str:
    """`text` for people and terminals: bytes that were not UTF-8 shown as \\xNN, control characters
    (C0, DEL, C1) and bidirectional overrides escaped, so a name can neither drive the terminal nor
    disguise itself. Everything a peer chose (names, file names, error text) is shown through it."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{code:02x}"))
        elif code in _BIDI:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def undisplay(shown: str, original: str) -> str:
    """`shown`, the `display` of `original` as a person edited it (a rename's field), with each escape that display
    wrote for a character of `original` put back as that character: the bytes of a name that is not UTF-8 survive an
    edit of its extension. Other backslashes stay as typed."""
    escapes = {display(ch): ch for ch in set(original) if display(ch) != ch}
    if not escapes:
        return shown
    written = re.compile("|".join(map(re.escape, escapes)))  # (all of one length per kind: \\xNN, \\n, \\uNNNN)
    return written.sub(lambda m: escapes[m.group(0)], shown)


# SQLite text must be valid UTF-8. A name that was not UTF-8 on disk carries lone surrogates
# (U+DC80..U+DCFF); in the database they are stored as U+F780..U+F7FF of the Private Use Area, so
# names stay TEXT (searchable, sortable) and convert back exactly.
_TO_DB = {c: c - 0xDC80 + 0xF780 for c in range(0xDC80, 0xDD00)}
_FROM_DB = {v: k for k, v in _TO_DB.items()}


def to_db(text: str) -> str:
    """A filesystem str as it is stored in SQLite."""
    return text.translate(_TO_DB) if not text.isascii() else text


def from_db(text: str) -> str:
    """A name or path from SQLite back to the filesystem str."""
    return text.translate(_FROM_DB) if not text.isascii() else text
