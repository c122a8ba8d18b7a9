"""Rename that never replaces what is at the target, even a file made there a moment before.

Linux's renameat2(RENAME_NOREPLACE) makes the check and the rename one step. Where it is missing (not glibc,
an old kernel) or the filesystem refuses it (EINVAL: vfat, some FUSE), a file is linked to its new name (which
fails if the name is taken) and then unlinked from the old; only a directory, or a filesystem with no hard links
either, falls back to checking first, which leaves the race open there alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Any

AT_FDCWD = -100
RENAME_NOREPLACE = 1


def _renameat2() -> Any:
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_RENAMEAT2 = _renameat2()


def rename_noreplace(src: str, dst: str, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
    """Rename `src` to `dst` (each relative to its open folder if given); FileExistsError if `dst` exists."""
    if _RENAMEAT2 is not None:
        done = _RENAMEAT2(
            AT_FDCWD if src_dir_fd is None else src_dir_fd, os.fsencode(src),
            AT_FDCWD if dst_dir_fd is None else dst_dir_fd, os.fsencode(dst), RENAME_NOREPLACE,
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), src, None, dst)
    _fallback(src, dst, src_dir_fd, dst_dir_fd)


def _fallback(src: str, dst: str, src_dir_fd: int | None, dst_dir_fd: int | None) -> None:
    if not stat.S_ISDIR(os.lstat(src, dir_fd=src_dir_fd).st_mode):
        try:
            os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                raise
        else:
            try:
                os.unlink(src, dir_fd=src_dir_fd)
            except OSError:
                os.unlink(dst, dir_fd=dst_dir_fd)  # as a refused rename would: the file keeps its one name
                raise
            return
    try:
        os.lstat(dst, dir_fd=dst_dir_fd)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
