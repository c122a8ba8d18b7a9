"""What a paired device may touch: everything for `full` trust, only this device's shares for `shared`.

A `shared` device's path is resolved at the moment of use beneath an open descriptor of the share
(`sdcore.fs.beneath`), and the operation is made on what that resolution returned; a `full` device's
path is used as it is.

This device's data dir (its SSH key, its trust store) is never a `shared` device's, even in a share that
holds it: what was opened is compared with the data dir by device and inode, never by the path the peer
wrote (a symlink in the share, a share above the data dir), and a name that leads to the data dir may not
be renamed, replaced or deleted, so it cannot be swapped for one the peer made.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import posixpath
import stat
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sdcore.fs import held
from sdcore.fs.beneath import MAX_LINKS, O_PATH, Escape, parent_beneath
from sdcore.net.frames import PermissionDenied
from sdcore.sdpath import display

MODE_BITS = 0o777  # modes from peers: no setuid, setgid or sticky bit
MAX_DEPTH = 1024  # folders above one a peer opens that are looked at (a real path of 4,096 bytes has fewer)
PROC_SUPER_MAGIC = 0x9FA0  # statfs(2): procfs, where a process's memory is a file
_DIR = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def outside(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"{display(path)}: outside the folders this device shares with you "
        "(ask its owner to `sd share add` it, or to pair you with full trust)"
    )


def never_shared(path: str, how: str = "is") -> PermissionDenied:
    return PermissionDenied(f"{display(path)} {how} this device's data dir: never shared")


def _holds(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"{display(path)} holds this device's data dir or a library of it: another device may not rename, replace, "
        "change or delete it (what else it holds it may)"
    )


def _too_deep(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"{display(path)}: more than {MAX_DEPTH} folders deep (through links), deeper than any real path: "
        "name a folder nearer the top"
    )


def _of_processes(path: str) -> PermissionDenied:
    return PermissionDenied(f"{display(path)}: the files of running processes (/proc) are never shared")


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _on_procfs(fd: int) -> bool:
    """Whether the open `fd` is in a procfs (/proc/self/mem is the memory of the process holding the key)."""
    if sys.platform != "linux":
        return False
    buf = ctypes.create_string_buffer(256)  # a struct statfs: its first field, a long, is the filesystem's type
    return _libc().fstatfs(fd, buf) == 0 and ctypes.c_long.from_buffer(buf).value == PROC_SUPER_MAGIC


def _names_to(path: str) -> set[tuple[int, int]]:
    """The identity of each name the resolution of the absolute `path` passes: its folders and every symlink on
    the way, those in a link's target too, and a `..` after a link taken from where the link led (as the kernel)."""
    names = set()
    todo = deque(path.split("/"))
    here, links = "/", 0
    while todo:
        part = todo.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            here = os.path.dirname(here)  # `here` holds no symlink: its `..` is its parent
            continue
        there = os.path.join(here, part)
        try:
            st = os.lstat(there)
        except OSError:
            break
        names.add(_identity(st))
        if stat.S_ISLNK(st.st_mode) and links < MAX_LINKS:
            links += 1
            target = os.readlink(there)
            here = "/" if target.startswith("/") else here
            todo.extendleft(reversed(target.split("/")))
        else:
            here = there
    return names


def _folders_up(fd: int) -> Generator[tuple[int, int], None, None]:
    """The identity of the open folder `fd` and of each folder above it, by `..` (where it really is), up to /."""
    here = _identity(os.fstat(fd))
    yield here
    up = os.open("..", _DIR, dir_fd=fd)
    try:
        while (above := _identity(os.fstat(up))) != here:
            yield above
            here = above
            up_again = os.open("..", _DIR, dir_fd=up)
            os.close(up)
            up = up_again
    finally:
        os.close(up)


@dataclass(frozen=True)
class DataDir:
    """This device's data dir as it is now: its identity, those of the libraries it lists from elsewhere
    (`sd library open PATH`: a link in its libraries/), and those of the names leading to any of them."""

    itself: tuple[int, int]
    libraries: frozenset[tuple[int, int]]  # library folders kept outside it
    folders: frozenset[tuple[int, int]]  # the folders above it
    above: frozenset[tuple[int, int]]  # those, the folders above those libraries, and each name on the paths to them
    path: str
    stamp: tuple[tuple[int, int], int]  # its identity and when its libraries/ last changed: made again on a change
    missing: tuple[str, ...]  # links to library folders not there (a drive not plugged in): made again once one is

    @classmethod
    def of(cls, path: str) -> DataDir | None:
        """None when there is no data dir (yet) to keep out of reach."""
        try:
            fd = os.open(path, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            itself, *folders = _folders_up(fd)
        finally:
            os.close(fd)
        names, libraries, missing = _names_to(path), set(), []
        for link in _library_links(path):
            try:
                fd = os.open(link, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                missing.append(link)
                continue
            try:
                library, *up = _folders_up(fd)
            finally:
                os.close(fd)
            libraries.add(library)
            names |= set(up) | _names_to(link)
        above = frozenset(folders) | frozenset(names) - {itself} - libraries
        return cls(itself, frozenset(libraries), frozenset(folders), above, path, _stamp(path), tuple(missing))

    def has_file(self, st: os.stat_result) -> bool:
        """Whether `st` is of a file right in the data dir (its key, its trust store) as it is now: each change
        of the trust store is a new file."""
        try:
            with os.scandir(self.path) as entries:
                return any(_identity(e.stat()) == _identity(st) for e in entries if e.is_file(follow_symlinks=False))
        except FileNotFoundError:
            return False

    def refuse(self, found: tuple[int, int] | None, path: str, how: str = "is") -> None:
        """Refuse what a peer named `path` when `found` (an identity) is the data dir or one of its libraries."""
        if found == self.itself:
            raise never_shared(path, how)
        if found in self.libraries:
            raise PermissionDenied(
                f"{display(path)} {how} a library of this device (its index, notes and jobs): shared only with "
                "devices of full trust (`sd library share`)"
            )

    def holds(self, fd: int, path: str) -> None:
        """Refuse the open folder `fd` (`path` to the peer) when it is in the data dir or in one of its libraries."""
        with closing(_folders_up(fd)) as up:
            for depth, folder in enumerate(up):
                self.refuse(folder, path, "is in")
                if folder in self.folders:
                    return  # above the data dir: so is the rest of the way up
                if depth == MAX_DEPTH:  # a peer's links lead 80,000 folders deep: walked up for each request
                    raise _too_deep(path)


def _library_links(data_dir: str) -> list[str]:
    try:
        with os.scandir(os.path.join(data_dir, "libraries")) as entries:
            return [e.path for e in entries if e.is_symlink()]
    except OSError:
        return []


def _stamp(data_dir: str) -> tuple[tuple[int, int], int]:
    """The data dir's identity, and when a library was last listed in it or taken off."""
    try:
        changed = os.stat(os.path.join(data_dir, "libraries")).st_mtime_ns
    except OSError:
        changed = 0
    return _identity(os.stat(data_dir)), changed


class Confinement:
    """Opens what a peer names: plainly for `full` trust, beneath one of the shares for `shared` and never
    in this device's data dir."""

    def __init__(self, trust: str, shares: Callable[[], list[str]], data_dir: str | Path | None = None) -> None:
        self.trust = trust
        self._shares = shares
        # as given, made absolute but not normalized: `link/..` is where `link` leads to's parent, not `.`
        self._data_dir = _absolute(data_dir) if data_dir is not None else None
        self._known: DataDir | None = None

    @property
    def confined(self) -> bool:
        return self.trust != "full"

    def roots(self) -> list[str]:
        return ["/"] if self.trust == "full" else self._shares()

    def check(self, path: str) -> str:
        """`path` if it is absolute and, for `shared` trust, names a place in a share without `..`.

        This is the check of the name only; what the name leads to is decided when it is opened.
        """
        if "\0" in path:
            raise PermissionDenied(f"{display(path)}: holds a NUL byte, which no file name can")
        if not path.startswith("/"):
            raise PermissionDenied(f"{display(path)}: not an absolute path")
        if self.confined:
            if ".." in path.split("/"):
                raise PermissionDenied(f"{display(path)}: '..' is not allowed for a device with shared trust")
            self._share_of(path)
        return path

    def _share_of(self, path: str) -> tuple[str, str]:
        """(the share holding `path`, the rest of the path below it)."""
        for share in self._shares():
            root = share.rstrip("/") or "/"
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return root, path[len(root) :].lstrip("/")
        raise outside(path)

    def open(self, path: str, flags: int, mode: int = 0o666, changes: bool = False) -> int:
        """A new descriptor of `path` (a final symlink followed unless O_NOFOLLOW, beneath the share).

        `changes`: the caller changes what it opens (its mode, its times) even though `flags` do not say so.
        """
        self.check(path)
        if held.crowded(path, follow=not flags & os.O_NOFOLLOW):
            raise PermissionDenied(
                f"{display(path)}: the database of a library open on this device, read {held.MAX_PARKED} times "
                "already while it is open: read it again once the library is closed"
            )
        if not self.confined:
            return os.open(path, flags | os.O_CLOEXEC, mode)
        root, rel = self._share_of(path)
        with self._root(root) as root_fd:
            try:
                dir_fd, name = _resolve(root_fd, rel, follow=not flags & os.O_NOFOLLOW)
            except Escape:
                raise outside(path) from None
        try:
            self._keep_data_dir(path, dir_fd, name, changes=changes or bool(flags & _WRITES))
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        if _on_procfs(fd):
            os.close(fd)
            raise _of_processes(path)
        st = os.fstat(fd)
        if st.st_nlink > 1 and stat.S_ISREG(st.st_mode) and (data_dir := self._data_dir_now()) is not None:
            if data_dir.has_file(st):  # a hard link its owner made in the share (one of a peer's is refused)
                os.close(fd)
                raise never_shared(path, "is a hard link to a file of")
        return fd

    def locate(self, path: str, changes: bool = True) -> tuple[int, str]:
        """(a new descriptor of the folder holding `path`'s last component, that name); the caller closes it.

        Act on the pair, never on the path again. The name is "." for a share itself (or "/").
        `changes`: the caller may rename, replace, change or delete that name (not only look at it).
        """
        self.check(path)
        if not self.confined:
            head, _, name = path.rstrip("/").rpartition("/")
            return os.open(head or "/", _DIR), name or "."
        root, rel = self._share_of(path)
        with self._root(root) as root_fd:
            try:
                dir_fd, name = parent_beneath(root_fd, rel)
            except Escape:
                raise outside(path) from None
        try:
            self._keep_data_dir(path, dir_fd, name, changes)
        except BaseException:
            os.close(dir_fd)
            raise
        return dir_fd, name

    def _keep_data_dir(self, path: str, dir_fd: int, name: str, changes: bool) -> None:
        """Refuse `name` of the open folder `dir_fd` when it is the data dir, in it, or (for a change) above it."""
        data_dir = self._data_dir_now()
        if data_dir is None:
            return
        try:
            found = _identity(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
        except FileNotFoundError:
            found = None
        data_dir.refuse(found, path)
        data_dir.holds(dir_fd, path)
        if changes and found in data_dir.above:
            raise _holds(path)

    def _data_dir_now(self) -> DataDir | None:
        """The data dir, looked at again when its path leads elsewhere than last time (its owner replaced it;
        no peer can: the names leading to it are never a peer's to change) or a library was listed in it."""
        if self._data_dir is None:
            return None
        try:
            now = _stamp(self._data_dir)
        except FileNotFoundError:
            return None
        known = self._known
        if known is None or known.stamp != now or any(os.path.exists(link) for link in known.missing):
            self._known = DataDir.of(self._data_dir)
        return self._known

    def own_folder(self, folder: str) -> int:
        """A descriptor of a folder this device chose for a peer's files (Spacedrop's). One named in the data dir
        is the device's own (no peer can touch the names leading to it); one named elsewhere is `keep_out`'s."""
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        named_inside = self._data_dir is not None and (_absolute(folder) + "/").startswith(
            self._data_dir.rstrip("/") + "/"
        )
        if not named_inside:
            try:
                self.keep_out(fd, folder)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def keep_out(self, fd: int, folder: str) -> None:
        """Refuse the open `folder` that this device chose for a peer's files (Spacedrop's, the trash) when it is
        in the data dir: a `shared` peer may have replaced it with a link."""
        if self.confined:
            self._keep_data_dir(folder, fd, ".", changes=False)

    @contextmanager
    def parent(self, path: str, changes: bool = True) -> Iterator[tuple[int, str]]:
        """`locate` for the length of a block."""
        fd, name = self.locate(path, changes)
        try:
            yield fd, name
        finally:
            os.close(fd)

    @contextmanager
    def _root(self, share: str) -> Iterator[int]:
        fd = os.open(share, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def makedirs(self, path: str) -> None:
        """mkdir -p, each level made beneath the share; an existing directory is fine."""
        self.check(path)
        root = self._share_of(path)[0] if self.confined else "/"
        parts = [p for p in path[len(root) :].split("/") if p]
        for i in range(1, len(parts) + 1):
            level = root.rstrip("/") + "/" + "/".join(parts[:i])
            with self.parent(level, changes=False) as (fd, name):  # mkdir makes a name or fails
                try:
                    os.mkdir(name, dir_fd=fd)
                    continue
                except FileExistsError:
                    pass
            os.close(self.open(level, O_PATH | os.O_DIRECTORY))  # NotADirectoryError if it is not one


def _absolute(path: str | Path) -> str:
    return os.path.join(os.getcwd(), os.fspath(path))


def _resolve(root: int, rel: str, follow: bool) -> tuple[int, str]:
    """`parent_beneath`, with a final symlink followed (beneath `root`) when `follow`: the folder that really
    holds what `rel` leads to, so that folder can be judged before what it holds is opened."""
    for _ in range(MAX_LINKS + 1):
        dir_fd, name = parent_beneath(root, rel)
        if not follow or name == ".":
            return dir_fd, name
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:  # not a symlink, or nothing there yet (a name to create)
            return dir_fd, name
        os.close(dir_fd)
        if target.startswith("/"):
            raise Escape(rel)
        rel = posixpath.join(posixpath.dirname(rel.strip("/")), target)
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
