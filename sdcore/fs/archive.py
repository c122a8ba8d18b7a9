"""Archives as read-only folders: a path such as `/home/me/a.zip/inner/dir` lists, stats and reads the members of
`a.zip` (zip, tar, tar.gz, tar.bz2, tar.xz, tar.zst; 7z through the 7-Zip command, sdcore.fs.sevenzip), and the limits that keep a hostile archive from escaping or
exploding."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import itertools
import lzma
import os
import stat as statmod
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from zstandard import ZstdError

from sdcore.errors import NotFound
from sdcore.fs.archive_path import split
from sdcore.fs.base import CHUNK, EntryInfo, FsError
from sdcore.sdpath import display

MAX_RATIO = 200
"""An archive unpacks to at most this many times its own size (a zip bomb unpacks to thousands)."""
MAX_TOTAL = 8 << 30
"""... and to at most this many bytes in all."""
MAX_MEMBERS = 500_000
"""Members one archive may hold (each costs ~160 bytes of memory while its index is kept: 500,000 take ~80 MB)."""
MAX_DIRECTORY = 256 << 20
"""Bytes of a zip's central directory read at most (100,000 members take ~10 MB)."""
_CACHED = 4
"""Archives whose member index is kept (the pane, its preview and a copy share one reading)..."""
MAX_CACHED_BYTES = 64 << 20
"""... within this many bytes of memory in all (the last one read is kept whatever its size)."""


class ArchiveError(FsError):
    """An archive that cannot be read, or that is refused (it would escape its folder or explode)."""


_DAMAGED = (ZstdError, zlib.error, lzma.LZMAError)
"""What decoders raise on damaged data besides OSError (a deflated zip member, a tar.xz: neither is one)."""


KINDS = ("dir", "file", "symlink", "fifo", "device", "other")
"""A member's kind, as its index keeps it: the number of one of these."""
_DIR, _FILE = 0, 1
Row = tuple[str, int, float, int, "str | None"]
"""A member as a reader gives it: (kind, size, mtime, mode, link target)."""
_FOLDER_MODE = statmod.S_IFDIR | 0o755
MEMBER_COST = 150
"""Bytes a member's record takes in an index, besides its name (measured with tracemalloc: 100,000 members of a
tar.gz whose names are 20 characters, 159 bytes a member in all)."""


@dataclass
class ArchiveIndex:
    """An archive's members as a tree of folders (names cleaned: no `..`, none absolute), and what it holds that
    no extraction may write: members named to land outside, or through a link.

    Compact: a folder maps each name to the member's number, and a member's facts are that number's place in a few
    arrays of plain numbers (a tar's TarInfo of each member took ~760 bytes: 100,000 members 76 MB; now ~150)."""

    path: str
    size: int
    folders: dict[str, dict[str, int]] = field(default_factory=lambda: {"/": {}})
    kinds: bytearray = field(default_factory=bytearray)
    sizes: array = field(default_factory=lambda: array("Q"))
    mtimes: array = field(default_factory=lambda: array("d"))
    modes: array = field(default_factory=lambda: array("I"))
    keys: array = field(default_factory=lambda: array("q"))
    """Where its reader finds a member: a tar header's offset, a zip's central directory record, a 7z member's
    number (-1: a folder made for the members below it)."""
    links: dict[int, str] = field(default_factory=dict)
    raw: list[str] | None = None  # a 7z: each member's name as stored, by number (7-Zip unpacks a member by name)
    unsafe: list[str] = field(default_factory=list)
    total: int = 0  # bytes its files unpack to, as it declares
    names_size: int = 0  # characters of the names it holds (what its memory costs, with MEMBER_COST a member)
    complete: bool = False  # every member read (an index is cached only then)
    _tar: tarfile.TarFile | None = None  # kept open: a compressed tar read on from where it is, not from its start
    _tar_free: threading.Lock = field(default_factory=threading.Lock)
    _tar_kept: contextlib.ExitStack | None = None  # what keeps `_tar` open (a zstd stream: its file and decoder)
    _tar_read: int = -1  # a kept zstd stream: the offset of the last member it read (it reads on, never back)
    _closing: bool = False  # closed while a read used `_tar`: that read closes it as it ends

    @property
    def cost(self) -> int:
        """Bytes of memory the index takes, roughly."""
        return len(self.kinds) * MEMBER_COST + self.names_size

    def folder(self, inner: str) -> dict[str, int]:
        """The members of folder `inner` by name (their numbers)."""
        found = self.folders.get(inner)
        if found is None:
            what = "is not a folder" if self.member(inner) is not None else "does not exist"
            raise NotFound(f"{display(self.path)}{display(inner)} {what} in the archive")
        return found

    def number(self, inner: str) -> int | None:
        """The number of the member at `inner` (numbers go in the order the archive stores its members)."""
        if inner == "/":
            return None
        parent, _, name = inner.rpartition("/")
        return self.folders.get(parent or "/", {}).get(name)

    def member(self, inner: str) -> EntryInfo | None:
        n = self.number(inner)
        return None if n is None else self.info(inner.rpartition("/")[2], n)

    def info(self, name: str, n: int) -> EntryInfo:
        """Member `n` as a listing gives it, named `name`."""
        return EntryInfo(name, KINDS[self.kinds[n]], self.sizes[n], self.mtimes[n], 0, self.modes[n], self.links.get(n))

    def total_of(self, inner: str) -> tuple[int, int]:
        """(bytes, files) its folder `inner` holds, summed below it, as the archive declares them."""
        size = files = 0
        stack = [inner]
        kinds, sizes = self.kinds, self.sizes
        while stack:
            folder = stack.pop()
            for name, n in self.folders.get(folder, {}).items():
                if kinds[n] == _DIR:
                    stack.append(folder.rstrip("/") + "/" + name)
                elif kinds[n] == _FILE:
                    size, files = size + sizes[n], files + 1
        return size, files

    @contextlib.contextmanager
    def tar_file(self, offset: int) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
        """The tar archive opened to read the member whose header is at `offset`, and that member: the archive kept
        open when no other read uses it (members read in the order they are stored unpack the archive once), else one
        of its own. A zstd stream is read on up to the member (it cannot seek), and opened again for one behind it."""
        if not self._tar_free.acquire(blocking=False):
            with open_tar(self.path) as own:
                yield own, _tar_member(own, offset, _is_zst(self.path))
            return
        try:
            if self._tar is not None and _is_zst(self.path) and self._tar_read >= offset:
                self._close_tar()
            if self._tar is None:
                self._tar_kept = contextlib.ExitStack()
                self._tar = self._tar_kept.enter_context(open_tar(self.path))
            member = _tar_member(self._tar, offset, _is_zst(self.path))
            self._tar_read = offset
            yield self._tar, member
        except BaseException:
            self._close_tar()  # a stream left anywhere is read again from its start
            raise
        finally:
            if self._closing:
                self._closing = False
                self._close_tar()
            self._tar_free.release()

    def _close_tar(self) -> None:
        if self._tar_kept is not None:
            self._tar_kept.close()
        self._tar, self._tar_kept, self._tar_read = None, None, -1

    def close(self) -> None:
        """Close the kept tar: now, or as the read using it ends. Never waited for: a read lasts as long as its reader
        takes (a copy to a slow device, a preview left open), and the cache drops an index holding its lock (every
        other archive's reading waited on it)."""
        self._closing = True
        if self._tar_free.acquire(blocking=False):
            try:
                self._closing = False
                self._close_tar()
            finally:
                self._tar_free.release()

    def add(self, raw: str, row: Row, key: int) -> None:
        """Put a member at its cleaned place; one named to land elsewhere goes to `unsafe` instead."""
        name = raw.rstrip("/")
        if name in ("", "."):
            return  # the archive's own top ("./" of `tar -C dir -cf x.tar .`, or "/"): it is the folder shown
        if name.startswith(("/", "./")) or ".." in name or "//" in name or "/./" in name or "\0" in name:
            name = self._cleaned(raw)
            if not name:
                return
        elif len(name) > 1 and name[1] == ":":
            self.unsafe.append(f"{raw!r} (an absolute path)")
            return
        parent, _, leaf = name.rpartition("/")
        folder = "/" + parent
        inside = self.folders.get(folder)
        if inside is None:
            inside = self._make_folders(folder, raw, row[2])
            if inside is None:
                return
        existing = inside.get(leaf)
        kind = _KIND[row[0]]
        if kind == _DIR:
            if existing is not None and self.kinds[existing] == _DIR:
                self.mtimes[existing], self.modes[existing] = row[2], row[3]  # its own, over those made for members
                self.keys[existing] = key
                return
            self.folders.setdefault(folder.rstrip("/") + "/" + leaf, {})
        elif existing is not None and self.kinds[existing] == _DIR:
            self.unsafe.append(f"{raw!r} (a {row[0]} over a folder of the same name)")
            return
        inside[leaf] = self._new(kind, row, key, len(name))
        if kind == _FILE:
            self.total += row[1]

    def _new(self, kind: int, row: Row, key: int, name_size: int) -> int:
        """A new member's number, its facts appended to the arrays."""
        n = len(self.kinds)
        self.kinds.append(kind)
        size = row[1]
        self.sizes.append(size if 0 <= size <= _MAX_SIZE else min(max(size, 0), _MAX_SIZE))
        self.mtimes.append(row[2])
        self.modes.append(row[3] & 0xFFFFFFFF)
        self.keys.append(key)
        if row[4] is not None:
            self.links[n] = row[4]
        self.names_size += name_size
        return n

    def _cleaned(self, raw: str) -> str:
        """`raw` without `.` and empty parts; "" (and a note in `unsafe`) when it is absolute or climbs out."""
        if raw.startswith("/"):
            self.unsafe.append(f"{raw!r} (an absolute path)")
            return ""
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if ".." in parts or any("\0" in p for p in parts):
            self.unsafe.append(f"{raw!r} (it climbs out with ..)")
            return ""
        return "/".join(parts)

    def _make_folders(self, folder: str, raw: str, mtime: float) -> dict[str, int] | None:
        """The folder `folder` (and those above it, dated `mtime`: the member's) made where missing; None when a
        member that is no folder is in the way (a link a naive unpacker would write through). A loop, not a
        recursion: a member may be named thousands of folders deep."""
        missing = []
        at = folder
        while at not in self.folders:  # "/" always is
            missing.append(at)
            at = at.rpartition("/")[0] or "/"
        for path in reversed(missing):
            parent, _, leaf = path.rpartition("/")
            above = self.folders[parent or "/"]
            existing = above.get(leaf)
            if existing is not None and self.kinds[existing] != _DIR:
                self.unsafe.append(f"{raw!r} (it goes through the {KINDS[self.kinds[existing]]} {leaf!r})")
                return None
            if existing is None:
                above[leaf] = self._new(_DIR, ("dir", 0, mtime, _FOLDER_MODE, None), -1, len(path))
            self.folders[path] = {}
        return self.folders[folder]


_KIND = {kind: n for n, kind in enumerate(KINDS)}
_MAX_SIZE = (1 << 64) - 1


_cache: OrderedDict[tuple[str, int, int, int], ArchiveIndex] = OrderedDict()
_cache_lock = threading.Lock()


def index(path: str) -> ArchiveIndex:
    """The member index of the archive file at `path` (read once while the file is unchanged)."""
    key, found = _cached(path)
    if found is not None:
        return found
    return collections.deque(index_in_steps(path, key), maxlen=1)[0]


def _cached(path: str) -> tuple[tuple[str, int, int, int], ArchiveIndex | None]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise NotFound(f"{display(path)}: {exc.strerror or exc}") from None
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return key, found


def index_in_steps(
    path: str, key: tuple[str, int, int, int], step: int = 4000, limit: int | None = None
) -> Iterator[ArchiveIndex]:
    """The index of an archive as it is read: the same object after its first 1,000 members and every `step`
    after (a listing shows its first screen meanwhile), and complete at the end, when it is cached too. With `limit`:
    no more members than that are read (a preview's glance), and the index is `complete` only if that was all."""
    size = key[2]
    idx = ArchiveIndex(path, size, raw=[] if path.lower().endswith(".7z") else None)
    count = 0
    try:
        if path.lower().endswith(".7z"):
            from sdcore.fs import sevenzip

            members: Generator[tuple[str, Row, int], None, None] = sevenzip.members(path)
        elif path.lower().endswith(".zip"):
            members = zip_members(path, size)
        else:
            members = tar_members(path, size)
        with contextlib.closing(members):
            for raw, row, where in members:
                if count == limit:
                    yield idx  # not complete, not cached
                    return
                if idx.raw is not None:
                    idx.raw.append(raw)
                idx.add(raw, row, where)
                count += 1
                if count % step == 0 or count == 1000:
                    yield idx
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, OverflowError, struct.error,
            *_DAMAGED) as exc:  # fmt: skip
        raise ArchiveError(f"{display(path)} cannot be read as an archive: {exc}") from None
    idx.complete = True
    with _cache_lock:
        _cache[key] = idx
        held = sum(i.cost for i in _cache.values())
        while len(_cache) > 1 and (len(_cache) > _CACHED or held > MAX_CACHED_BYTES):
            dropped = _cache.popitem(last=False)[1]
            held -= dropped.cost
            dropped.close()
    yield idx


def tar_members(path: str, size: int) -> Generator[tuple[str, Row, int], None, None]:
    """A tar's members as its headers declare them, with each header's offset. Refused as it goes, before unpacking
    what lies past a header: more than MAX_MEMBERS members, or members declaring more than MAX_RATIO times the
    archive's size (a tar bomb would otherwise be unpacked to find the next header)."""
    budget = max(size, 1 << 20) * MAX_RATIO
    declared = count = 0
    with open_tar(path) as tf:
        while (ti := tf.next()) is not None:
            tf.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every TarInfo it read: ~760 bytes each
            count += 1
            if count > MAX_MEMBERS:
                raise ArchiveError(f"{display(path)} holds more than {MAX_MEMBERS:,} members")
            declared += max(ti.size, 0)
            if declared > budget or tf.offset > budget:
                raise ArchiveError(_bomb(path, size, max(declared, tf.offset)))
            yield ti.name, _tar_row(ti), ti.offset


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_READ = 1 << 18
"""Bytes of a zip's central directory read at a time (the first members are listed before the rest is read)."""


def zip_members(path: str, size: int) -> Generator[tuple[str, Row, int], None, None]:
    """The members a zip's central directory lists, with the offset of each one's record there, read straight from
    it as it streams in (zipfile builds an object of each, three times slower, after reading all: 100,000 members
    must list in a blink)."""
    with open(path, "rb") as f:
        tail_size = min(size, (1 << 16) + _EOCD.size)
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0:
            raise zipfile.BadZipFile("no end of central directory: not a zip file")
        _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
        end = size - tail_size + at  # where the end record starts
        if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:  # zip64
            f.seek(end - _EOCD64_LOCATOR.size)
            sig, _, record_at, _ = _EOCD64_LOCATOR.unpack(f.read(_EOCD64_LOCATOR.size))
            if sig != b"PK\x06\x07":
                raise zipfile.BadZipFile("a zip64 archive without its locator")
            f.seek(record_at)
            record = _EOCD64.unpack(f.read(_EOCD64.size))
            count, cd_size, end = record[7], record[8], record_at
        if count > MAX_MEMBERS or cd_size > MAX_DIRECTORY:
            raise zipfile.BadZipFile(f"it holds {count:,} members in {cd_size:,} bytes, more than {MAX_MEMBERS:,} "
                                     f"members or {MAX_DIRECTORY >> 20} MiB are opened")  # fmt: skip
        start_of_cd = end - cd_size
        if start_of_cd < 0:
            raise zipfile.BadZipFile("a central directory larger than the file")
        cd = _Pieces(f, start_of_cd, cd_size)
        days: dict[int, float] = {}
        unpack, header = _CENTRAL.unpack_from, _CENTRAL.size
        for _ in range(count):
            at = cd.ensure(header)
            (sig, _, _, flags, _, dos_time, dos_date, _, _, usize, name_len, extra_len, comment_len, _, _, attr,
             _) = unpack(cd.data, at)  # fmt: skip
            if sig != b"PK\x01\x02":
                raise zipfile.BadZipFile("a damaged central directory")
            length = header + name_len + extra_len + comment_len
            at = cd.ensure(length)
            data, record_at = cd.data, cd.base + at
            cd.pos = at + length
            start = at + header
            raw = data[start : start + name_len]
            name = raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437")
            if usize == 0xFFFFFFFF:
                usize = _zip64_size(data[start + name_len : start + name_len + extra_len])
            day = days.get(dos_date)
            if day is None:
                try:
                    day = time.mktime(((dos_date >> 9) + 1980, (dos_date >> 5) & 15, dos_date & 31, 0, 0, 0, 0, 0, -1))
                except (OverflowError, ValueError):
                    day = 0.0
                days[dos_date] = day
            mtime = day + (dos_time >> 11) * 3600 + ((dos_time >> 5) & 63) * 60 + (dos_time & 31) * 2
            unix = attr >> 16
            if name.endswith("/"):
                yield name, ("dir", 0, mtime, statmod.S_IFDIR | (unix & 0o7777 or 0o755), None), record_at
                continue
            if not statmod.S_IFMT(unix):  # written without a file type (zipfile's writestr, most tools but Info-ZIP)
                unix |= statmod.S_IFREG | (0 if unix & 0o777 else 0o644)
            if statmod.S_ISREG(unix):
                yield name, ("file", usize, mtime, unix, None), record_at
            else:  # a link's target is its content: never read to list it
                link = "?" if statmod.S_ISLNK(unix) else None
                yield name, ("symlink" if link else "other", 0, mtime, unix, link), record_at


class _Pieces:
    """A zip's central directory read a piece at a time: `ensure(n)` makes its next `n` bytes be in `data` and says
    where they start there (`base`: the file offset of data[0]); the caller moves `pos` past what it read."""

    def __init__(self, f: IO[bytes], start: int, size: int) -> None:
        f.seek(start)
        self.f, self.left, self.data, self.pos, self.base = f, size, b"", 0, start

    def ensure(self, n: int) -> int:
        while len(self.data) - self.pos < n:
            more = self.f.read(min(self.left, max(_READ, n)))
            if not more:
                raise zipfile.BadZipFile("a damaged central directory (cut short)")
            self.left -= len(more)
            self.base += self.pos
            self.data = self.data[self.pos :] + more
            self.pos = 0
        return self.pos


_LOCAL = struct.Struct("<4s5H3L2H")


def zip_open(f: IO[bytes], record_at: int) -> zipfile.ZipExtFile:
    """The member whose central directory record is at `record_at`, opened to read (unpacked, its CRC checked at its
    end) from its own header: zipfile.ZipFile would first build an object of every member (100,000 of them: half a
    second and 60 MB, for one member)."""
    f.seek(record_at)
    record = f.read(_CENTRAL.size)
    if len(record) < _CENTRAL.size or record[:4] != b"PK\x01\x02":
        raise zipfile.BadZipFile("a damaged central directory (changed while it was read?)")
    (_, _, _, flags, method, _, _, crc, packed, size, name_len, extra_len, _, _, _, _, offset) = _CENTRAL.unpack(record)
    raw = f.read(name_len)
    extra = f.read(extra_len)
    if flags & 0x1:
        raise zipfile.BadZipFile("it is encrypted: sdtui does not unpack encrypted members")
    big = [i for i, value in enumerate((size, packed, offset)) if value == 0xFFFFFFFF]
    if big:
        wide = _zip64_values(extra, len(big))
        values = [size, packed, offset]
        for i, value in zip(big, wide, strict=True):
            values[i] = value
        size, packed, offset = values
    info = zipfile.ZipInfo(raw.decode("utf-8", "surrogateescape") if flags & 0x800 else raw.decode("cp437"))
    info.flag_bits, info.compress_type, info.CRC = flags, method, crc
    info.compress_size, info.file_size, info.header_offset = packed, size, offset
    f.seek(offset)
    local = f.read(_LOCAL.size)
    if len(local) < _LOCAL.size or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("a member's header is not where the central directory says")
    fields = _LOCAL.unpack(local)
    f.seek(offset + _LOCAL.size + fields[9] + fields[10])
    return zipfile.ZipExtFile(f, "r", info)  # type: ignore[arg-type]  # a file of its own: no _SharedFile needed


def _zip64_size(extra: bytes) -> int:
    """The uncompressed size a zip64 extra field holds (its first value, when the header's says 0xFFFFFFFF)."""
    return _zip64_values(extra, 1)[0]


def _zip64_values(extra: bytes, count: int) -> list[int]:
    """The first `count` values of a zip64 extra field: those of (size, packed size, header offset) whose field in
    the record says 0xFFFFFFFF, in that order."""
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        if kind == 1 and length >= 8 * count:
            return list(struct.unpack_from(f"<{count}Q", extra, pos + 4))
        pos += 4 + length
    raise zipfile.BadZipFile("a zip64 member without its sizes")


def _tar_row(ti: tarfile.TarInfo) -> Row:
    mtime = float(ti.mtime) if -(1 << 40) < ti.mtime < 1 << 40 else 0.0  # a base-256 field may hold any number
    if ti.isdir():
        return ("dir", 0, mtime, statmod.S_IFDIR | (ti.mode & 0o7777), None)
    if ti.issym() or ti.islnk():
        return ("symlink", 0, mtime, statmod.S_IFLNK | 0o777, ti.linkname)
    kind = "file" if ti.isreg() else "fifo" if ti.isfifo() else "device" if ti.isdev() else "other"
    return (kind, ti.size if kind == "file" else 0, mtime, statmod.S_IFREG | (ti.mode & 0o777), None)


def _bomb(path: str, size: int, unpacked: int) -> str:
    return (
        f"{display(path)} would unpack to more than {unpacked:,} bytes from {size:,} ({unpacked // max(size, 1):,} "
        f"times its size; sdtui opens archives up to {MAX_RATIO} times their size and {MAX_TOTAL >> 30} GiB): "
        "a zip bomb? Unpack it with a tool you trust if you are sure"
    )


def check_extractable(idx: ArchiveIndex, total: int | None = None) -> None:
    """Refuse an extraction from this archive (before anything is written) when it holds members named to land
    outside their folder, or when it would unpack past the stated limits."""
    if idx.unsafe:
        more = f" and {len(idx.unsafe) - 1} more" if len(idx.unsafe) > 1 else ""
        raise ArchiveError(
            f"{display(idx.path)} holds a member named {idx.unsafe[0]}{more}, which would land outside the folder it "
            "is unpacked to: nothing unpacked from it"
        )
    unpacked = idx.total if total is None else total
    if unpacked > MAX_TOTAL or unpacked > MAX_RATIO * max(idx.size, 1 << 20):
        raise ArchiveError(_bomb(idx.path, idx.size, unpacked))


def read_member(idx: ArchiveIndex, inner: str) -> Iterator[bytes]:
    """A file member's bytes in chunks, never more than it declared (a lying header cannot make it unpack more)."""
    member = idx.member(inner)
    if member is None or member.is_dir:
        raise NotFound(f"{display(idx.path)}{display(inner)} is no file in the archive")
    if member.kind != "file":
        raise ArchiveError(f"{display(idx.path)}{display(inner)} is a {member.kind} member: only files are read")
    check_extractable(idx, total=member.size)
    n = idx.number(inner)
    assert n is not None
    key = idx.keys[n]
    try:
        if idx.path.lower().endswith(".7z"):
            from sdcore.fs import sevenzip

            assert idx.raw is not None
            yield from sevenzip.read(idx.path, idx.raw[key], member.size)
            return
        if idx.path.lower().endswith(".zip"):
            with open(idx.path, "rb") as f, zip_open(f, key) as stream:
                yield from _capped(stream, member.size)
            return
        with idx.tar_file(key) as (tf, current):
            got = tf.extractfile(current)
            if got is None:
                raise ArchiveError(f"{display(idx.path)}{display(inner)} cannot be read")
            with got as stream:
                yield from _capped(stream, member.size)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, RuntimeError, KeyError, *_DAMAGED) as exc:
        raise ArchiveError(f"{display(idx.path)}{display(inner)} cannot be read: {exc}") from None


def _tar_member(tf: tarfile.TarFile, offset: int, stream: bool) -> tarfile.TarInfo:
    """The member whose header is at `offset`: read there (a stream: read on to it, forgetting what it passes)."""
    if not stream:
        tf.fileobj.seek(offset)  # type: ignore[union-attr]
        return tf.tarinfo.fromtarfile(tf)
    while (ti := tf.next()) is not None:
        tf.members.clear()  # type: ignore[attr-defined]
        if ti.offset == offset:
            return ti
    raise ArchiveError("a member is gone from the archive (changed while it was read?)")


def _is_zst(path: str) -> bool:
    return path.lower().endswith((".zst", ".tzst"))


MAX_HEADER = 1 << 20
"""Bytes of a tar's long-name or pax header read at most (tarfile reads one whole: a few bytes of a .tar.gz could
declare gigabytes)."""
_LONG_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                 tarfile.SOLARIS_XHDTYPE)  # fmt: skip


MAX_CHAIN = 16
"""Long-name and pax headers one member may have before its own (tarfile reads each next one by recursing: a
thousand of them was a RecursionError; real archives have two or three)."""


class _Header(tarfile.TarInfo):
    """A tar header whose long name or pax record is refused past MAX_HEADER bytes, before tarfile reads it; and
    whose headers in all (a chain of long names, a GNU sparse map's extension blocks, which tarfile reads on while
    each says one more follows) are read through a _Budget of MAX_HEADER bytes and MAX_CHAIN headers."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _LONG_HEADERS and self.size > MAX_HEADER:
            raise tarfile.ReadError(
                f"a header declares {self.size:,} bytes of name or attributes (more than {MAX_HEADER >> 20} MiB: "
                "refused)"
            )
        f: Any = tarfile_.fileobj
        if isinstance(f, _Budget):  # a header after a long name or pax header of the same member
            f.headers += 1
            if f.headers > MAX_CHAIN:
                raise tarfile.ReadError(f"a member has more than {MAX_CHAIN} long-name or pax headers: refused")
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]
        budget: Any = _Budget(f)
        tarfile_.fileobj = budget
        try:
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]
        finally:
            tarfile_.fileobj = f


class _Budget:
    """A tar's file while one member's headers are read: refused past MAX_HEADER bytes, or cut short (a sparse map
    cut by the end of the file was an IndexError)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f, self.left, self.headers = f, MAX_HEADER, 0

    def read(self, size: int) -> bytes:
        if size > self.left:
            raise tarfile.ReadError(f"a member's headers take more than {MAX_HEADER >> 20} MiB: refused")
        data = self._f.read(size)
        self.left -= len(data)
        if len(data) < size:
            raise tarfile.ReadError("a member's headers are cut short")
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self._f, name)


@contextlib.contextmanager
def open_tar(path: str) -> Iterator[tarfile.TarFile]:
    """A tar archive opened for reading, compressed or not (zstd as a stream: read in order only)."""
    if not _is_zst(path):
        with tarfile.open(path, "r:*", tarinfo=_Header) as tf:
            yield tf
        return
    import zstandard

    with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as stream:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_Header) as tf:  # type: ignore[arg-type]
            yield tf


def _capped(stream: IO[bytes] | io.BufferedIOBase, size: int) -> Iterator[bytes]:
    left = size
    while left > 0 and (chunk := stream.read(min(CHUNK, left))):
        left -= len(chunk)
        yield chunk


class ArchiveFS:
    """The members of archive files of this machine, through the read side of the filesystem interface."""

    async def list_dir(self, path: str, batch_size: int = 1000) -> AsyncIterator[list[EntryInfo]]:
        archive, inner = _split_or_fail(path)
        key, idx = await asyncio.to_thread(_cached, archive)
        shown = 0
        if idx is None:  # read now: what is found of this folder is listed as the reading goes
            steps = index_in_steps(archive, key)
            while (step := await asyncio.to_thread(next, steps, None)) is not None:  # type: ignore[arg-type]
                idx = step
                folder = idx.folders.get(inner, {})
                if len(folder) - shown >= batch_size or (not shown and folder):  # the first found show at once
                    yield _infos(idx, itertools.islice(folder.items(), shown, None))
                    shown = len(folder)
            assert idx is not None
        members = list(itertools.islice(idx.folder(inner).items(), shown, None))
        for i in range(0, len(members), batch_size):
            yield _infos(idx, members[i : i + batch_size])

    def peek(self, path: str, members: int) -> tuple[list[EntryInfo], bool]:
        """What a glance at a folder of an archive finds in its first `members` members (all of them once the archive
        is indexed), and whether that is the whole folder. Blocking: run it in a thread."""
        archive, inner = _split_or_fail(path)
        key, idx = _cached(archive)
        if idx is None:
            idx = collections.deque(index_in_steps(archive, key, limit=members), maxlen=1)[0]
        folder = idx.folders.get(inner) if not idx.complete else idx.folder(inner)
        return _infos(idx, (folder or {}).items()), idx.complete

    async def stat(self, path: str) -> EntryInfo:
        archive, inner = _split_or_fail(path)
        idx = await asyncio.to_thread(index, archive)
        if inner == "/":
            raise NotFound(f"{display(path)} is the archive itself")
        member = idx.member(inner)
        if member is None:
            raise NotFound(f"{display(path)}: no such member in {display(archive)}")
        return member

    async def open_read(self, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        archive, inner = _split_or_fail(path)
        idx = await asyncio.to_thread(index, archive)
        chunks = read_member(idx, inner)
        done = object()
        skip = offset
        while (chunk := await asyncio.to_thread(next, chunks, done)) is not done:
            assert isinstance(chunk, bytes)
            if skip:
                cut, skip = min(skip, len(chunk)), max(0, skip - len(chunk))
                chunk = chunk[cut:]
            if chunk:
                yield chunk


def _infos(idx: ArchiveIndex, members: Iterable[tuple[str, int]]) -> list[EntryInfo]:
    return [idx.info(name, n) for name, n in members]


def _split_or_fail(path: str) -> tuple[str, str]:
    found = split(path)
    if found is None:
        raise NotFound(f"{display(path)}: no such file or directory")
    return found
