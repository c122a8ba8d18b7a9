"""Discovery: directories read with os.scandir into rows ready for the database, in this process or a child."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import os
import resource
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator

import msgpack
import xxhash

from sdcore.index.kinds import kind_from_extension
from sdcore.sdpath import from_db, to_db

# A found entry is a plain tuple (millions are made): the columns of `entries` in insert order.
NAME, EXTENSION, KIND, OBJECT_KIND, SIZE, INODE, MTIME, MODE, HIDDEN, LINK = range(10)
Found = tuple  # (name, extension, kind, object_kind, size, inode, mtime, mode, hidden, link_target), names in DB form

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux
PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
HELD = 256  # folders a walk holds open at once (the rest are opened by their path beneath the root)...
HELD_SHARE = 4  # ...and all the walks of a process at most this fraction of its limit of open files (`ulimit -n`)

_KIND_OF_FMT = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "device",
    stat.S_IFBLK: "device",
}


def fingerprinter() -> Callable[[Listing], int]:
    """The fingerprint of a directory's listing as read (`read_dir`): kept on the directory's entry, a listing that
    has not changed is not diffed again, nor turned into found tuples. One for each walk: its packer is made once
    (a packer a listing cost a sixth of the fingerprint), and never shared by two threads."""
    pack = msgpack.Packer(unicode_errors="surrogateescape").pack
    digest = xxhash.xxh3_64_intdigest
    return lambda listing: digest(pack(listing)) >> 1


class IgnoreRules:
    """Glob patterns deciding what is indexed (never what a listing shows).

    A pattern without '/' matches a name anywhere (`node_modules`, `*.tmp`); one with '/' matches
    the path relative to the location (`build/cache`).
    """

    def __init__(self, patterns: tuple[str, ...] | list[str]) -> None:
        self.names = [p for p in patterns if "/" not in p.strip("/")]
        self.paths = [p.strip("/") for p in patterns if "/" in p.strip("/")]

    def __bool__(self) -> bool:
        return bool(self.names or self.paths)

    def ignores(self, name: str, relative: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.names) or any(
            fnmatch.fnmatchcase(relative, p) for p in self.paths
        )


def open_root(path: str, inode: int | None) -> int:
    """A descriptor of a location's folder to walk beneath. A symlink at `path` is followed only to the folder the
    location was made with (`inode`): one put there since leads to another folder, and is refused."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if os.fstat(fd).st_ino != inode:
        os.close(fd)
        raise OSError(errno.ELOOP, "a symlink to another folder stands where the location's folder was", path)
    return fd


class Listing(list):  # type: ignore[type-arg]
    """A directory's entries as read, each (name, st_mode, st_ino, st_size, st_mtime, a symlink's target or None):
    what its fingerprint covers (a file changed in place changes it); `dirs`: the names of its folders."""

    __slots__ = ("dirs",)

    def __init__(self) -> None:
        super().__init__()
        self.dirs: list[str] = []


def scan_dir(path: str, relative: str, rules: IgnoreRules, root: int | None = None) -> list[Found]:
    """The entries of one directory; an entry that vanishes while it is read is left out. With `root` (a
    descriptor of the location's folder, `open_root`), the directory is opened beneath it at the moment it is
    read, never through a symlink swapped in since it was found.

    Raises OSError when the directory itself cannot be read.
    """
    return found_of(read_dir(path, relative, rules, root))


def read_dir(path: str, relative: str, rules: IgnoreRules, root: int | None = None) -> Listing:
    """The listing of one directory (see `scan_dir`), before it is turned into found tuples."""
    fd = open_dir(path, relative, root)
    try:
        return _read(fd, relative, rules)
    finally:
        os.close(fd)


def open_dir(path: str, relative: str, root: int | None = None) -> int:
    """A descriptor of the folder to list (`read_dir`); beneath `root` when given."""
    if root is None:  # the entries are read through a descriptor: a stat by name there is not a walk of the path
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    from sdcore.fs.beneath import open_beneath

    return open_beneath(root, relative, _DIR_FLAGS)


def _read(dir_fd: int, relative: str, rules: IgnoreRules) -> Listing:
    listing = Listing()
    append = listing.append
    dirs = listing.dirs
    ignoring = bool(rules)
    with os.scandir(dir_fd) as it:
        for dirent in it:
            name = dirent.name
            if ignoring and rules.ignores(name, f"{relative}/{name}" if relative else name):
                continue
            try:
                st = dirent.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = st.st_mode
            fmt = mode & 0o170000
            if fmt == stat.S_IFDIR:
                dirs.append(name)
            elif fmt == stat.S_IFLNK:
                try:
                    link: str | None = os.readlink(name, dir_fd=dir_fd)
                except OSError:
                    link = None
                append((name, mode, st.st_ino, st.st_size, st.st_mtime, link))
                continue
            append((name, mode, st.st_ino, st.st_size, st.st_mtime, None))
    return listing


_NO_EXTENSION = ("", None)
_OF_EXTENSION: dict[str, tuple[str, str | None]] = {}
"""A file name's text after its last dot -> (its extension as the database holds it, its kind): a walk meets few,
so each is worked out once (a tree of names with made-up tails keeps no more than _EXTENSIONS_KEPT)."""
_EXTENSIONS_KEPT = 4096


def found_of(listing: Listing) -> list[Found]:
    """A listing's entries as found tuples: the rows of `entries`, names in DB form."""
    found: list[Found] = []
    append = found.append
    kinds = _KIND_OF_FMT
    of_extension = _OF_EXTENSION
    for name, mode, inode, size, mtime, link in listing:
        kind = kinds.get(mode & 0o170000, "other")
        db_name = name if name.isascii() else to_db(name)
        if kind == "file":
            stem, dot, tail = name.rpartition(".")
            ext_kind = of_extension.get(tail) if dot and stem.strip(".") else _NO_EXTENSION
            if ext_kind is None:
                ext = tail.lower()
                ext_kind = (to_db(ext), kind_from_extension(ext))
                if len(of_extension) < _EXTENSIONS_KEPT:
                    of_extension[tail] = ext_kind
            append((db_name, ext_kind[0], "file", ext_kind[1], size, inode, mtime, mode, name[0] == ".", None))
            continue
        append((db_name, "", kind, None, 0 if kind == "dir" else size, inode, mtime, mode, name[0] == ".",
                None if link is None else to_db(link)))
    return found


Walked = tuple[str, Listing | list[Found] | OSError, int]
"""A directory walked: (its path in the location in DB form, its listing as read (in this process) or its found
tuples (from the child), or the OSError that stopped it, its listing's fingerprint)."""


class _HeldFolders:
    """How many more folders the walks of this process may hold open (rescans of several locations run at once, each
    in its thread): together they leave the process most of its descriptors, for its database and its connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left: int | None = None

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                self._left = resource.getrlimit(resource.RLIMIT_NOFILE)[0] // HELD_SHARE
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def close(self, fd: int) -> None:
        try:
            os.close(fd)
        finally:
            with self._lock:
                self._left += 1  # type: ignore[operator]


_HELD_FOLDERS = _HeldFolders()


def walk(root: str, start: list[str], rules: IgnoreRules, recursive: bool, root_inode: int | None = None
         ) -> Generator[tuple[str, Listing | OSError, int], None, None]:
    """(path in DB form, listing or the OSError that stopped it, a descriptor of the folder open until the walk goes on
    (-1 after an error)) of each directory, breadth-first from `start`, in the order they were queued; descends into
    every directory it finds when `recursive`.

    A folder is opened by its name in its parent's descriptor (never through a symlink swapped in: O_NOFOLLOW), held
    until the folders in it are opened, so no path is resolved from the root again (but past HELD folders held at
    once, or a quarter of the process's limit of open files held by all its walks, whose folders are opened by their
    path beneath the root)."""
    from sdcore.fs.beneath import open_beneath

    try:
        root_fd = open_root(root, root_inode)
    except OSError as exc:
        for rel_db in start:
            yield rel_db, exc, -1
        return
    pending: deque[tuple[int | None, str, str]] = deque((None, rel_db, rel_db) for rel_db in start)  # (parent, name, path)
    left: dict[int, int] = {}  # a folder held open -> how many of its folders are still to be opened
    try:
        while pending:
            parent, name, rel_db = pending.popleft()
            rel = from_db(rel_db)
            try:
                folder = os.open(name, _DIR_FLAGS, dir_fd=parent) if parent is not None else open_beneath(root_fd, rel, _DIR_FLAGS)
                try:
                    listing = _read(folder, rel, rules)
                except OSError:
                    os.close(folder)
                    raise
            except OSError as exc:
                yield rel_db, exc, -1
                continue
            finally:
                if parent is not None:
                    left[parent] -= 1
                    if not left[parent]:
                        del left[parent]
                        _HELD_FOLDERS.close(parent)
            held = folder if recursive and listing.dirs and len(left) < HELD and _HELD_FOLDERS.take() else None
            if recursive and listing.dirs:
                prefix = rel_db + "/" if rel_db else ""
                if held is not None:
                    left[folder] = len(listing.dirs)
                pending.extend((held, name, prefix + (name if name.isascii() else to_db(name))) for name in listing.dirs)
            try:
                yield rel_db, listing, folder
            finally:
                if held is None:
                    os.close(folder)
    finally:
        for fd in left:
            _HELD_FOLDERS.close(fd)
        os.close(root_fd)


class Walker:
    """The walk in this process, a directory at a time as its reader asks: a rescan, where most listings are as
    they were and cost only their reading (no child process to start, nothing to pack and unpack)."""

    def __init__(
        self, root: str, start: list[str], rules: IgnoreRules, recursive: bool, root_inode: int | None = None
    ) -> None:
        self._walk = walk(root, start, rules, recursive, root_inode)

    def __iter__(self) -> Iterator[Walked]:
        fingerprint = fingerprinter()
        for rel_db, listing, _ in self._walk:
            yield rel_db, listing, fingerprint(listing) if isinstance(listing, Listing) else 0

    def close(self) -> None:
        self._walk.close()


class ProcessWalker:
    """The same walk in a child process, so reading the disk and writing SQLite use two cores.

    The child streams msgpack frames `(relative path, entries | error text, fingerprint)`: the listing's fingerprint
    is hashed there, beside the walk, off the writer's core. The pipe's buffer is the bound on how far ahead it runs.

    `reading` > 0: the child also reads each file's content identity as it lists its folder (a content index's first
    load) while the time spent reading stays within `reading` times the time spent listing, plus a second; each entry
    then has its cas_id appended (None: not read, left to the content phase). See `hasher.identify_listing`.
    """

    def __init__(
        self, root: str, start: list[str], rules: IgnoreRules, recursive: bool = True, root_inode: int | None = None,
        reading: float = 0.0,
    ) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "sdcore.index.walker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            process_group=0,  # a Ctrl-C at the terminal pauses the job; the child is stopped by us, quietly
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        with contextlib.suppress(OSError):  # a deeper pipe lets the walk run ahead while SQLite writes a batch
            fcntl.fcntl(self._child.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        self._child.stdin.write(
            msgpack.packb(
                [root, start, [*rules.names], [*rules.paths], recursive, root_inode, reading], unicode_errors="surrogateescape"
            )
        )
        self._child.stdin.close()

    def __iter__(self) -> Iterator[Walked]:
        assert self._child.stdout is not None
        for rel_db, found, fingerprint in msgpack.Unpacker(self._child.stdout, use_list=False, unicode_errors="surrogateescape"):
            yield rel_db, (list(found) if isinstance(found, tuple) else OSError(0, found)), fingerprint
        if self._child.wait() != 0:
            raise OSError(f"the directory walker stopped with status {self._child.returncode}")

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()


def _child_main() -> None:
    try:
        _walk_to_stdout()
    except (BrokenPipeError, KeyboardInterrupt):  # the indexer stopped (or was killed): nothing to say
        os._exit(1)


def _walk_to_stdout() -> None:
    root, start, names, paths, recursive, root_inode, reading = msgpack.unpackb(
        sys.stdin.buffer.read(), unicode_errors="surrogateescape"
    )
    out = sys.stdout.buffer
    pack = msgpack.Packer(unicode_errors="surrogateescape").pack
    fingerprint = fingerprinter()
    if reading:
        from sdcore.index.hasher import identify_listing
    listed = read = 0.0  # seconds spent listing folders, reading files
    started = time.monotonic()
    for rel_db, listing, folder in walk(root, start, IgnoreRules([*names, *paths]), recursive, root_inode):
        if isinstance(listing, OSError):
            out.write(pack((rel_db, listing.strerror or str(listing), 0)))
        else:  # a frame is a 3-array: its header, the path, the entries (packed once), the fingerprint
            found = found_of(listing)
            if reading:
                now = time.monotonic()
                listed += now - started
                found = identify_listing(folder, found, now + reading * listed + 1.0 - read)
                read += time.monotonic() - now
            out.write(b"\x93" + pack(rel_db) + pack(found) + pack(fingerprint(listing)))
        started = time.monotonic()
    out.flush()


if __name__ == "__main__":
    _child_main()
