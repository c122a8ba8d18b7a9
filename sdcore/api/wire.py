"""The core API on the wire: msgpack with ext types for registered records, enums, UUIDs and tuples, and frames."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import operator
import struct
import threading
import uuid
from typing import Any, TypeVar

import msgpack

from sdcore.errors import SdError

T = TypeVar("T", bound=type)

_RECORD, _ENUM, _UUID, _TUPLE, _RECORDS = 1, 2, 3, 4, 5
_ROWS_FROM = 8
"""A list of at least this many records of one class travels as rows of their fields (a listing's batch)."""
_LEN = struct.Struct(">I")
_TEXT = "surrogatepass"  # a name that is not UTF-8 (a lone surrogate from os.fsdecode) crosses unchanged

_classes: dict[str, type] = {}
"""Registered record, enum and error classes by name: the only classes decoding ever builds."""
_fields: dict[type, tuple[str, ...]] = {}
_getters: dict[type, Any] = {}
_frozen: set[type] = set()
"""Registered dataclasses that are frozen: one object can stand for equal bytes."""


class WireError(SdError):
    """A frame that is not a message of the core API (malformed, too large, or naming an unknown record)."""


def register(cls: T) -> T:
    """Let `cls` (a dataclass, an Enum or an SdError subclass) cross the wire; usable as a class decorator."""
    name = cls.__name__
    known = _classes.get(name)
    if known is not None and known is not cls:
        raise TypeError(f"two wire records are called {name}: {known.__module__} and {cls.__module__}")
    if dataclasses.is_dataclass(cls):
        _fields[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        _getters[cls] = operator.attrgetter(*_fields[cls]) if len(_fields[cls]) > 1 else None
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            _frozen.add(cls)
    elif not issubclass(cls, (enum.Enum, SdError)):
        raise TypeError(f"{name} is not a dataclass, an Enum or an SdError: it cannot cross the wire")
    _classes[name] = cls
    return cls


register(SdError)
register(WireError)


_ERROR_MODULES = (
    "sdcore.errors", "sdcore.sdpath", "sdcore.search", "sdcore.tags", "sdcore.fs.base", "sdcore.fs.trash",
    "sdcore.library.entries", "sdcore.library.library", "sdcore.library.damage", "sdcore.ops.localcopy",
    "sdcore.ops.transfer", "sdcore.net.frames",
)  # fmt: skip
"""Where the core's errors are defined: a client re-raises them as the same classes."""
_known_loaded = False


def _load_known() -> None:
    """Register the API's records (`sdcore.api.records.RECORDS`) and the core's errors, on first need: importing
    them all costs start-up time a first screen does not need."""
    global _known_loaded
    if _known_loaded:
        return
    _known_loaded = True
    import importlib

    from sdcore.api import records

    for cls in records.RECORDS:
        if _classes.get(cls.__name__) is not cls:
            register(cls)
    for name in _ERROR_MODULES:
        importlib.import_module(name)
    errors = [SdError]
    while errors:  # every SdError subclass imported by now
        for cls in errors.pop().__subclasses__():
            errors.append(cls)
            if cls.__name__ not in _classes:
                register(cls)


_CACHED = 64
_encoded: dict[int, tuple[Any, msgpack.ExtType]] = {}
"""Records encoded lately, by identity: a listing's entries share their directory's SdPath."""


def _default(obj: Any) -> Any:
    cached = _encoded.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    cls = type(obj)
    if _classes.get(cls.__name__) is not cls and cls not in (uuid.UUID, tuple):
        _load_known()
    fields = _fields.get(cls)
    if fields is not None and _classes.get(cls.__name__) is cls:
        ext = msgpack.ExtType(_RECORD, _pack([cls.__name__, *[getattr(obj, f) for f in fields]]))
        if cls in _frozen:
            if len(_encoded) >= _CACHED:
                _encoded.clear()
            _encoded[id(obj)] = obj, ext  # kept alive while cached, so its id is not reused
        return ext
    if isinstance(obj, enum.Enum) and _classes.get(cls.__name__) is cls:
        return msgpack.ExtType(_ENUM, _pack([cls.__name__, obj.value]))
    if cls is uuid.UUID:
        return msgpack.ExtType(_UUID, obj.bytes)
    if cls is tuple:
        return msgpack.ExtType(_TUPLE, _pack(list(obj)))
    raise TypeError(f"a {cls.__module__}.{cls.__qualname__} cannot cross the wire (register it in sdcore.api.wire)")


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True, unicode_errors=_TEXT)


_decoded: dict[bytes, Any] = {}
"""Records decoded lately, by their bytes (records are frozen: equal bytes can share one object)."""
MAX_NESTING = 16
"""Records, tuples and rows nested in one another at most this deep: each level copies what it holds."""
_nesting = threading.local()


def _ext(code: int, data: bytes) -> Any:
    if code == _UUID:
        return uuid.UUID(bytes=data)
    if code == _RECORD and data in _decoded:
        return _decoded[data]
    depth = getattr(_nesting, "depth", 0)
    if depth >= MAX_NESTING:
        raise WireError(f"records nested more than {MAX_NESTING} deep")
    _nesting.depth = depth + 1
    try:
        items = _unpack(data)
    finally:
        _nesting.depth = depth
    if code == _TUPLE:
        return tuple(items)
    if code == _RECORDS:
        return _rows(items)
    if code not in (_RECORD, _ENUM) or not isinstance(items, list) or not items or not isinstance(items[0], str):
        raise WireError(f"unknown ext type {code}")
    if items[0] not in _classes:
        _load_known()
    cls = _classes.get(items[0])
    if cls is None or issubclass(cls, SdError):
        raise WireError(f"{items[0][:80]!r} is not a record of the core API")
    if code == _ENUM and issubclass(cls, enum.Enum) and len(items) == 2:
        return cls(items[1])
    if code == _RECORD and cls in _fields and len(items) == len(_fields[cls]) + 1:
        record = cls(*items[1:])
        if cls in _frozen and len(data) < 4096:
            if len(_decoded) >= _CACHED:
                _decoded.clear()
            _decoded[data] = record
        return record
    raise WireError(f"a malformed {cls.__name__}")


def _unpack(data: bytes) -> Any:
    # map keys are text or bytes only: a UUID or a tuple key's hash can be chosen to collide (quadratic inserts)
    return msgpack.unpackb(data, ext_hook=_ext, raw=False, strict_map_key=True, unicode_errors=_TEXT)


def _as_rows(value: Any) -> Any:
    """A long list of records of one class as one ext of rows: a packer per list instead of one per record."""
    if type(value) is not list or len(value) < _ROWS_FROM:
        return value
    cls = type(value[0])
    getter = _getters.get(cls)
    if getter is None or _classes.get(cls.__name__) is not cls or any(type(v) is not cls for v in value):
        return value
    return msgpack.ExtType(_RECORDS, _pack([cls.__name__, [list(getter(v)) for v in value]]))


def _rows(items: Any) -> list[Any]:
    if not isinstance(items, list) or len(items) != 2 or not isinstance(items[0], str) or not isinstance(items[1], list):
        raise WireError("malformed rows of records")
    if items[0] not in _classes:
        _load_known()
    cls = _classes.get(items[0])
    if cls is None or cls not in _fields:
        raise WireError(f"{items[0][:80]!r} is not a record of the core API")
    width = len(_fields[cls])
    if not all(isinstance(row, list) and len(row) == width for row in items[1]):
        raise WireError(f"a malformed {cls.__name__}")
    return [cls(*row) for row in items[1]]


def encode(message: Any) -> bytes:
    """One message as bytes; TypeError names what cannot cross the wire."""
    if type(message) is dict:
        message = {key: _as_rows(value) for key, value in message.items()}
    return _pack(message)


def decode(data: bytes) -> Any:
    """The message in `data`, building only registered classes; WireError when it is not one."""
    try:
        return _unpack(data)
    except WireError:
        raise
    except Exception as exc:  # msgpack's errors, and whatever a record's own checks raise on fields of wrong types
        raise WireError(f"a malformed frame: {type(exc).__name__}: {exc}"[:300]) from None


def error_of(exc: BaseException) -> list[str]:
    """An error as the wire carries it: (class name, message)."""
    if isinstance(exc, SdError):
        return [type(exc).__name__, str(exc)]
    return ["SdError", f"the core failed: {type(exc).__name__}: {exc}"]


def raise_error(carried: Any) -> SdError:
    """The error a (class name, message) pair names: the same SdError subclass when registered, else SdError."""
    name, message = (carried + ["", ""])[:2] if isinstance(carried, list) else ("SdError", str(carried))
    if str(name) not in _classes:
        _load_known()
    cls = _classes.get(str(name))
    if cls is None or not issubclass(cls, SdError):
        cls = SdError
    try:
        return cls(str(message))
    except TypeError:  # an error class whose constructor wants more than a message
        return SdError(str(message))


class FrameTooLarge(WireError):
    """A frame's length prefix is over the cap: the stream cannot be resynchronised."""


async def read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    """The next frame's body; IncompleteReadError at the end, FrameTooLarge over `limit` bytes."""
    (size,) = _LEN.unpack(await reader.readexactly(4))
    if size > limit:
        raise FrameTooLarge(f"a frame of {size} bytes (at most {limit})")
    return await reader.readexactly(size)


def frame(message: Any) -> bytes:
    """A message with its length prefix, ready to write."""
    body = encode(message)
    return _LEN.pack(len(body)) + body
