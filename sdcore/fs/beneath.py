"""Names resolved at the moment of use beneath an open directory descriptor, never leaving it.

A path is resolved by the kernel with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` where it has
that call (Linux 5.6+), else by a walk of one component at a time on descriptors with `O_NOFOLLOW`
that follows relative symlinks itself and refuses any step out of the root, as the kernel would.
Callers then act on the descriptor they got, or on a (parent descriptor, name) pair, so nothing a
peer swaps in between a check and the use (a symlink, a renamed directory) can lead outside.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import stat
from collections import deque

O_PATH = getattr(os, "O_PATH", os.O_RDONLY)  # a descriptor that only names: no read permission needed
_DIR = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437}.get(platform.machine())
MAX_LINKS = 40  # symlinks followed in one resolution, as Linux's own limit


class Escape(OSError):
    """The name leads out of the directory it must stay beneath (`..`, an absolute or outward symlink)."""

    def __init__(self, name: str = "") -> None:
        super().__init__(errno.EXDEV, "leads outside the folder", name)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None
_have_openat2: bool | None = None if _OPENAT2 is not None and hasattr(os, "O_PATH") else False


def _openat2(dir_fd: int, name: str, flags: int, mode: int) -> int:
    assert _libc is not None and _OPENAT2 is not None
    tmpfile = getattr(os, "O_TMPFILE", -1)
    creates = flags & os.O_CREAT or flags & tmpfile == tmpfile
    how = _OpenHow(flags | os.O_CLOEXEC, mode if creates else 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    encoded = os.fsencode(name)
    for _ in range(1000):
        fd = _libc.syscall(_OPENAT2, dir_fd, encoded, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err == errno.EINTR or err == errno.EAGAIN:  # EAGAIN: a rename raced the lookup; try again
            continue
        if err == errno.EXDEV:
            raise Escape(name)
        raise OSError(err, os.strerror(err), name)
    raise OSError(errno.EAGAIN, "the folder kept changing while it was looked up", name)


def kernel_resolves_beneath() -> bool:
    """Whether this kernel has openat2 (probed once; ENOSYS on older kernels and some sandboxes)."""
    global _libc, _have_openat2
    if _have_openat2 is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syscall.restype = ctypes.c_long
            root = os.open("/", _DIR)
            try:
                os.close(_openat2(root, ".", _DIR, 0))
                _have_openat2 = True
            finally:
                os.close(root)
        except (OSError, AttributeError):
            _have_openat2 = False
    return _have_openat2


def _walk(root: int, rel: str, follow_last: bool) -> tuple[int, str]:
    """(a new descriptor of the directory holding the last component, that component's name).

    The name is "." when `rel` names the root or a directory reached through a final `..`.
    Relative symlinks are followed by hand; an absolute one, or `..` above the root, is an Escape.
    """
    todo = deque(p for p in rel.split("/") if p not in ("", "."))
    stack = [os.dup(root)]
    links = 0
    try:
        while todo:
            name = todo.popleft()
            if name == "..":
                if len(stack) == 1:
                    raise Escape(rel)
                os.close(stack.pop())
                continue
            try:
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if todo:
                    raise
                return stack.pop(), name  # a name to create
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    raise Escape(rel)
                todo.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
                continue
            if not todo:
                return stack.pop(), name
            stack.append(os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=stack[-1]))
        return stack.pop(), "."
    finally:
        for fd in stack:
            os.close(fd)


def open_beneath(root: int, rel: str, flags: int, mode: int = 0o666) -> int:
    """Open `rel` beneath the directory `root`; a final symlink is followed (beneath) unless O_NOFOLLOW."""
    rel = rel.strip("/") or "."
    if kernel_resolves_beneath():
        return _openat2(root, rel, flags, mode)
    parent, name = _walk(root, rel, follow_last=not flags & os.O_NOFOLLOW)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    finally:
        os.close(parent)


def parent_beneath(root: int, rel: str) -> tuple[int, str]:
    """(a new descriptor of the directory holding `rel`'s last component, its name); "." for the root."""
    rel = rel.strip("/")
    if not rel:
        return os.dup(root), "."
    if kernel_resolves_beneath():
        head, _, name = rel.rpartition("/")
        if name == "..":
            return _openat2(root, rel, _DIR, 0), "."
        return _openat2(root, head or ".", _DIR, 0), name
    return _walk(root, rel, follow_last=False)


def delete_at(dir_fd: int, name: str) -> None:
    """Delete `name` of the open folder `dir_fd` for good: a folder with its contents, a symlink itself."""
    if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # the descriptor-based rmtree: it never follows a symlink
    else:
        os.unlink(name, dir_fd=dir_fd)


def lexists_at(dir_fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
