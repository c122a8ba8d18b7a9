"""Linux inotify of folders for changes to their entries, never reads, with names of any bytes (not only UTF-8)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_EXCL_UNLINK = 0x4000000
IN_ISDIR = 0x40000000
# Changes only: opening, reading and closing a file unchanged are no news (watchfiles, which also took them,
# failed a whole burst when a file whose name is not UTF-8 was merely read, and the location was indexed again).
MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)  # fmt: skip
_HEADER = struct.Struct("iIII")
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a watched folder changed (`name` empty: the folder itself, gone or moved)."""

    directory: str
    name: str
    is_dir: bool
    mask: int

    @property
    def new_folder(self) -> str | None:
        """The path of a folder that was made or moved in (to be watched too), else None."""
        if self.is_dir and self.name and self.mask & (IN_CREATE | IN_MOVED_TO):
            return os.path.join(self.directory, self.name)
        return None


class Overflow(Exception):
    """The kernel dropped events (its queue was full): what changed is unknown, look again at everything."""


class Inotify:
    """An inotify instance; `fd` becomes readable when changes wait in `read()`."""

    def __init__(self) -> None:
        if not hasattr(_libc, "inotify_init1"):
            raise OSError(errno.ENOSYS, "inotify: not on this system")
        fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify: {os.strerror(err)}")
        self.fd: int = fd
        self._folders: dict[int, str] = {}
        self.unmounted: set[str] = set()
        """The folders watched whose filesystem was unmounted (told by the kernel as it goes: however soon another is
        mounted in its place, which the mount table alone may not show)."""

    def watch(self, directory: str) -> None:
        """Watch one folder (not its subfolders); OSError when it cannot be (ENOSPC: the limit of watches)."""
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), directory)
        self._folders[wd] = directory

    def watch_tree(self, root: str) -> list[str]:
        """Watch a folder and every folder below it (symlinks not followed); the folders watched.

        A subfolder that went away or cannot be read is passed over; the limit of watches raises OSError.
        """
        watched = []
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                self.watch(directory)
                watched.append(directory)
                with os.scandir(directory) as entries:
                    stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
            except OSError as exc:
                if directory == root or exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM):
                    raise
        return watched

    def read(self) -> list[Change]:
        """The changes waiting (none: nothing new); raises Overflow when the kernel dropped some."""
        changes: list[Change] = []
        overflow = False
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                raw = data[offset + _HEADER.size : offset + _HEADER.size + length].rstrip(b"\0")
                offset += _HEADER.size + length
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                    continue
                directory = self._folders.get(wd)
                if mask & (IN_IGNORED | IN_MOVE_SELF):  # gone, or moved: watched anew where it lands, if inside
                    self._folders.pop(wd, None)
                if mask & IN_UNMOUNT and directory is not None:
                    self.unmounted.add(directory)
                if mask & (IN_IGNORED | IN_UNMOUNT):  # a disk unplugged is no change of its folders' contents
                    continue
                if directory is not None:
                    changes.append(Change(directory, os.fsdecode(raw), bool(mask & IN_ISDIR), mask))
        if overflow:
            raise Overflow("the kernel's queue of changes overflowed")
        return changes

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_libc = ctypes.CDLL(None, use_errno=True)
if hasattr(_libc, "inotify_init1"):
    _libc.inotify_init1.argtypes = [ctypes.c_int]
    _libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
