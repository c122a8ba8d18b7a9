"""The core API on the wire: msgpack with ext types for registered records, enums, UUIDs and tuples, and frames."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import operator
import struct
import threading
import uuid
from typing import Any, TypeVar

import msgpack

from sdcore import unpacking
from sdcore.errors import SdError
from sdcore.sdpath import display

T = TypeVar("T", bound=type)

_RECORD, _ENUM, _UUID, _TUPLE, _RECORDS = 1, 2, 3, 4, 6
_ROWS_FROM = 8
"""A list of at least this many records of one class travels as columns of their fields (a listing's batch)."""
_SAME = "same"
"""A column whose every value is one object travels once, as {_SAME: value} (a listing's directory, its Nones)."""
_LEN = struct.Struct(">I")
_TEXT = "surrogatepass"  # a name that is not UTF-8 (a lone surrogate from os.fsdecode) crosses unchanged

_classes: dict[str, type] = {}
"""Registered record, enum and error classes by name: the only classes decoding ever builds."""
_fields: dict[type, tuple[str, ...]] = {}
_getters: dict[type, tuple[Any, ...]] = {}
"""A registered dataclass's getter of each field."""
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
        _getters[cls] = tuple(map(operator.attrgetter, _fields[cls]))
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
    "sdcore.ops.transfer", "sdcore.net.frames", "sdcore.api.health", "sdcore.library", "sdcore.sync.oplog",
    "sdcore.sync.catalogue", "sdcore.volumes", "sdcore.fs.archive", "sdcore.fs.sevenzip",
    "sdcore.library.volume_locations", "sdcore.sync.members",
)  # fmt: skip
"""Where the core's errors are defined: a client re-raises them as the same classes."""
_loaded = 0
"""How many of _load_known's steps have run."""


def _load_known(name: str) -> None:
    """Register classes until `name` is one (or all are: an unknown name), on first need, in steps of more
    start-up time: the records of `sdcore.api.records` (attach's hello, a listing), the rest of its `RECORDS`
    (0.13 s), the core's errors (most of the core, asyncssh too: 0.3 s)."""
    global _loaded
    import importlib

    from sdcore.api import records

    while _loaded < 3 and name not in _classes:
        _loaded += 1
        if _loaded < 3:
            for cls in records.OWN if _loaded == 1 else records.RECORDS:
                if _classes.get(cls.__name__) is not cls:
                    register(cls)
            continue
        for module in _ERROR_MODULES:
            importlib.import_module(module)
        errors = [SdError]
        while errors:  # every SdError subclass imported by now
            for error in errors.pop().__subclasses__():
                errors.append(error)
                if error.__name__ not in _classes:
                    register(error)


_CACHED = 64
_encoded: dict[int, tuple[Any, msgpack.ExtType]] = {}
"""Records encoded lately, by identity: a listing's entries share their directory's SdPath."""


def _default(obj: Any) -> Any:
    cached = _encoded.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    cls = type(obj)
    if _classes.get(cls.__name__) is not cls and cls not in (uuid.UUID, tuple):
        _load_known(cls.__name__)
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
        _load_known(items[0])
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
    return msgpack.unpackb(
        data, ext_hook=_ext, raw=False, strict_map_key=True, unicode_errors=_TEXT, **unpacking.limits(data)
    )


def _as_rows(value: Any) -> Any:
    """A long list of records of one class as one ext of columns: a packer per list instead of one per record."""
    if type(value) is not list or len(value) < _ROWS_FROM:
        return value
    cls = type(value[0])
    if cls not in _getters and dataclasses.is_dataclass(cls):
        _load_known(cls.__name__)
    getters = _getters.get(cls)
    if not getters or _classes.get(cls.__name__) is not cls:
        return value
    if not all(map(operator.is_, map(type, value), itertools.repeat(cls))):
        return value
    columns: list[Any] = []
    for getter in getters:
        column = list(map(getter, value))
        first = column[0]
        same = column[-1] is first and all(map(operator.is_, column, itertools.repeat(first)))
        columns.append({_SAME: first} if same else column)
    return msgpack.ExtType(_RECORDS, _pack([cls.__name__, len(value), columns]))


def _rows(items: Any) -> list[Any]:
    """The records an ext of columns holds: [class name, how many, a list of values or {_SAME: value} per field]."""
    if not isinstance(items, list) or len(items) != 3 or not isinstance(items[0], str):
        raise WireError("malformed rows of records")
    name, count, columns = items
    if name not in _classes:
        _load_known(name)
    cls = _classes.get(name)
    if cls is None or cls not in _fields:
        raise WireError(f"{name[:80]!r} is not a record of the core API")
    width = len(_fields[cls])
    if type(count) is not int or not 0 < count <= unpacking.MAX_ARRAY or type(columns) is not list or len(columns) != width:
        raise WireError(f"malformed rows of {cls.__name__}")
    unpacking.spend(count * (unpacking.SLOT + 8 * width))  # the records: the frame's bytes did not count them
    values: list[Any] = []
    for column in columns:
        if type(column) is list and len(column) == count:
            values.append(column)
        elif type(column) is dict and len(column) == 1 and _SAME in column:
            values.append(itertools.repeat(column[_SAME], count))
        else:
            raise WireError(f"a malformed column of {cls.__name__}")
    return list(map(_builders.get(cls) or _builder(cls), *values))


_builders: dict[type, Any] = {}
"""What builds each registered dataclass from its fields when it comes in columns."""


def _builder(cls: type) -> Any:
    """What builds a record from its fields: for a frozen slotted dataclass that checks nothing, a function that
    sets its slots (a frozen dataclass's __init__ takes twice as long: 0.65 s for 100,000 entries), else `cls`."""
    build: Any = cls
    fields = _fields[cls]
    if (cls in _frozen and "__slots__" in cls.__dict__ and not hasattr(cls, "__post_init__")
            and len(fields) == len(dataclasses.fields(cls)) and cls.__new__ is object.__new__):  # fmt: skip
        setters = {f"set_{name}": cls.__dict__[name].__set__ for name in fields}
        code = "".join(f"\n    set_{name}(o, {name})" for name in fields)
        namespace = {"new": object.__new__, "cls": cls, **setters}
        exec(f"def build({', '.join(fields)}):\n    o = new(cls){code}\n    return o", namespace)
        build = namespace["build"]
    _builders[cls] = build
    return build


def encode(message: Any) -> bytes:
    """One message as bytes; TypeError names what cannot cross the wire."""
    if type(message) is dict:
        message = {key: _as_rows(value) for key, value in message.items()}
    return _pack(message)


def decode(data: bytes) -> Any:
    """The message in `data`, building only registered classes; WireError when it is not one (or when it would
    take more memory than the `unpacking.bounded` budget in force)."""
    try:
        return _unpack(data)
    except WireError:
        raise
    except unpacking.Overspent as exc:
        raise WireError(f"a frame too big: {exc}") from None
    except Exception as exc:  # msgpack's errors, and whatever a record's own checks raise on fields of wrong types
        raise WireError(f"a malformed frame: {type(exc).__name__}: {exc}"[:300]) from None


def error_of(exc: BaseException) -> list[str]:
    """An error as the wire carries it: (class name, message)."""
    if isinstance(exc, SdError):
        return [type(exc).__name__, str(exc)]
    return ["SdError", f"the core failed: {type(exc).__name__}: {exc}"]


def raise_error(carried: Any, peers: bool = False) -> SdError:
    """The error a (class name, message) pair names: the same SdError subclass when registered, else SdError
    (`peers`: another device's core chose its text, shown escaped as any a peer chose)."""
    name, message = (carried + ["", ""])[:2] if isinstance(carried, list) else ("SdError", str(carried))
    if peers:
        message = display(str(message))
    if str(name) not in _classes:
        _load_known(str(name))
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
