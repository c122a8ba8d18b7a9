"""Discovery: directories read with os.scandir into rows ready for the database, on a thread of their own."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator

import msgpack
import xxhash

from sdcore.index.kinds import kind_from_extension
from sdcore.sdpath import to_db

# A found entry is a plain tuple (millions are made): the columns of `entries` in insert order.
NAME, EXTENSION, KIND, OBJECT_KIND, SIZE, INODE, MTIME, MODE, HIDDEN, LINK = range(10)
Found = tuple  # (name, extension, kind, object_kind, size, inode, mtime, mode, hidden, link_target), names in DB form

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux
PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size

_KIND_OF_FMT = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "device",
    stat.S_IFBLK: "device",
}


def listing_fingerprint(packed: bytes) -> int:
    """The fingerprint of a directory's listing from its found entries packed with msgpack (`msgpack.packb(found)`):
    kept on the directory's entry, a listing that has not changed is not diffed again."""
    return xxhash.xxh3_64_intdigest(packed) >> 1


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


def scan_dir(path: str, relative: str, rules: IgnoreRules, root: int | None = None) -> list[Found]:
    """The entries of one directory; an entry that vanishes while it is read is left out. With `root` (a
    descriptor of the location's folder, `open_root`), the directory is opened beneath it at the moment it is
    read, never through a symlink swapped in since it was found.

    Raises OSError when the directory itself cannot be read.
    """
    fd = open_dir(path, relative, root)
    try:
        return _scan(fd, relative, rules)
    finally:
        os.close(fd)


def open_dir(path: str, relative: str, root: int | None = None) -> int:
    """A descriptor of the folder to list (`scan_dir`); beneath `root` when given."""
    if root is None:  # the entries are read through a descriptor: a stat by name there is not a walk of the path
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    from sdcore.fs.beneath import open_beneath

    return open_beneath(root, relative, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _scan(dir_fd: int, relative: str, rules: IgnoreRules) -> list[Found]:
    found: list[Found] = []
    append = found.append
    kinds = _KIND_OF_FMT
    s_ifmt = stat.S_IFMT
    of_extension = _OF_EXTENSION
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
            kind = kinds.get(s_ifmt(st.st_mode), "other")
            db_name = name if name.isascii() else to_db(name)
            if kind == "file":
                stem, dot, tail = name.rpartition(".")
                ext_kind = of_extension.get(tail) if dot and stem.strip(".") else _NO_EXTENSION
                if ext_kind is None:
                    ext = tail.lower()
                    ext_kind = (to_db(ext), kind_from_extension(ext))
                    if len(of_extension) < _EXTENSIONS_KEPT:
                        of_extension[tail] = ext_kind
                append((db_name, ext_kind[0], "file", ext_kind[1], st.st_size, st.st_ino, st.st_mtime, st.st_mode,
                        name[0] == ".", None))
                continue
            link = None
            if kind == "symlink":
                try:
                    link = to_db(os.readlink(dirent.path, dir_fd=dir_fd))
                except OSError:
                    link = None
            append((db_name, "", kind, None, 0 if kind == "dir" else st.st_size, st.st_ino, st.st_mtime, st.st_mode,
                    name[0] == ".", link))
    return found


_NO_EXTENSION = ("", None)
_OF_EXTENSION: dict[str, tuple[str, str | None]] = {}
"""A file name's text after its last dot -> (its extension as the database holds it, its kind): a walk meets few,
so each is worked out once (a tree of names with made-up tails keeps no more than _EXTENSIONS_KEPT)."""
_EXTENSIONS_KEPT = 4096


class Walker:
    """Reads directories breadth-first on a background thread, a bounded distance ahead of its reader.

    Yields (relative path in DB form, found entries or the OSError that stopped the directory, the listing's
    fingerprint) in the order the directories were queued; descends into every directory it finds when `recursive`.
    """

    def __init__(
        self, root: str, start: list[str], rules: IgnoreRules, recursive: bool, ahead: int = 256, root_inode: int | None = None
    ) -> None:
        self.root = root
        self.root_inode = root_inode
        self.rules = rules
        self.recursive = recursive
        self._pending: deque[str] = deque(start)
        self._out: queue.Queue[tuple[str, list[Found] | OSError, int] | None] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-walker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from sdcore.sdpath import from_db

        root: int | OSError
        try:
            root = open_root(self.root, self.root_inode)
        except OSError as exc:
            root = exc
        try:
            while self._pending and not self._stop.is_set():
                rel_db = self._pending.popleft()
                rel = from_db(rel_db)
                try:
                    if isinstance(root, OSError):
                        raise root
                    found: list[Found] | OSError = scan_dir(self.root, rel, self.rules, root)
                except OSError as exc:
                    found = exc
                if self.recursive and isinstance(found, list):
                    prefix = rel_db + "/" if rel_db else ""
                    self._pending.extend(prefix + f[NAME] for f in found if f[KIND] == "dir")
                fingerprint = listing_fingerprint(msgpack.packb(found)) if isinstance(found, list) else 0
                self._put((rel_db, found, fingerprint))
        finally:
            if isinstance(root, int):
                os.close(root)
            self._put(None)

    def _put(self, item: tuple[str, list[Found] | OSError, int] | None) -> None:
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[str, list[Found] | OSError, int]]:
        while True:
            item = self._out.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


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

    def __iter__(self) -> Iterator[tuple[str, list[Found] | OSError, int]]:
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
    rules = IgnoreRules([*names, *paths])
    out = sys.stdout.buffer
    pack = msgpack.Packer(unicode_errors="surrogateescape").pack
    pending = deque(start)
    from sdcore.sdpath import from_db

    if reading:
        from sdcore.index.hasher import identify_listing
    listed = read = 0.0  # seconds spent listing folders, reading files
    try:
        root_fd: int | OSError = open_root(root, root_inode)
    except OSError as exc:
        root_fd = exc
    while pending:
        rel_db = pending.popleft()
        rel = from_db(rel_db)
        dir_fd = -1
        started = time.monotonic()
        try:
            if isinstance(root_fd, OSError):
                raise root_fd
            dir_fd = open_dir(root, rel, root_fd)
            found = _scan(dir_fd, rel, rules)
        except OSError as exc:
            if dir_fd >= 0:
                os.close(dir_fd)
            out.write(pack((rel_db, exc.strerror or str(exc), 0)))
            continue
        if recursive:
            prefix = rel_db + "/" if rel_db else ""
            pending.extend(prefix + f[NAME] for f in found if f[KIND] == "dir")
        body = pack(found)  # a frame is a 3-array: its header, the path, the entries (packed once), the fingerprint
        fingerprint = listing_fingerprint(body)  # of the listing alone: a later walk's listing has no content ids
        if reading:
            now = time.monotonic()
            listed += now - started
            body = pack(identify_listing(dir_fd, found, now + reading * listed + 1.0 - read))
            read += time.monotonic() - now
        os.close(dir_fd)
        out.write(b"\x93" + pack(rel_db) + body + pack(fingerprint))
    out.flush()


if __name__ == "__main__":
    _child_main()
