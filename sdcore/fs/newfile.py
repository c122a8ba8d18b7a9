"""New files put in place whole: written unnamed (O_TMPFILE), then linked at their name, which is never replaced.

Nothing is left behind by a process killed before the link (an unnamed file goes with its last descriptor), and the
link is the one change to the folder (a named temp file and its rename are two, and a crash can leave the first).
Where the kernel or filesystem has no unnamed files, a hidden temp name is renamed into place (never replacing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any

from sdcore.errors import AlreadyExists, SdError
from sdcore.fs.base import NewFile
from sdcore.fs.noreplace import rename_noreplace
from sdcore.sdpath import display

AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400


def _libc_call(name: str, *argtypes: Any) -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_linkat = _libc_call("linkat", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
# Unnamed files need O_TMPFILE, linkat and /proc/self/fd (linking an fd by AT_EMPTY_PATH needs a privilege)
_unnamed_ok = hasattr(os, "O_TMPFILE") and _linkat is not None and os.path.isdir("/proc/self/fd")


def create_unnamed(directory: str, mode: int, dir_fd: int | None = None) -> int | None:
    """An unnamed file in `directory` (relative to `dir_fd` if given), or None where the filesystem or kernel has none."""
    if not _unnamed_ok:
        return None
    try:
        return os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise


def link_unnamed(fd: int, dst: str, dir_fd: int = AT_FDCWD) -> None:
    """Give an unnamed file its name `dst` (relative to `dir_fd`); never replaces what is there (AlreadyExists)."""
    assert _linkat is not None
    if _linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), dir_fd, os.fsencode(dst), _AT_SYMLINK_FOLLOW) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise AlreadyExists(f"{display(dst)} appeared while copying; it was left as it is")
    raise OSError(err, os.strerror(err), dst)


def write_new_files(files: Sequence[NewFile], locate: Callable[[str], tuple[int, str]]) -> list[int | Exception]:
    """Put each file (path, bytes, mtime, mode) in place whole: written unnamed, synced to disk, then linked at its
    name, never replacing a file there (AlreadyExists); each folder written to is synced once its run of files
    ends, so the names are on disk too when this returns. `locate(path)` opens the folder a path names a file of (a
    new descriptor, the name in it). Each file's size, or the error that kept it out (an OSError as raised)."""
    results: list[int | Exception] = []
    # the folder of the last files: its name, its descriptor, their results. One held at a time, however many
    # folders a peer's request names (each held to the end was a descriptor per folder, 256 a request)
    run: tuple[str, int, list[int]] | None = None
    try:
        for path, data, mtime, mode in files:
            if run is not None and run[0] != os.path.dirname(path):
                ended, run = run, None
                _sync_run(ended[1], ended[2], results)
            try:
                dir_fd, name = locate(path)
                try:
                    if name in ("", "."):
                        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
                    results.append(write_new(dir_fd, name, data, mtime, mode))
                except BaseException:
                    os.close(dir_fd)
                    raise
                if run is None:
                    run = (os.path.dirname(path), dir_fd, [])
                else:
                    os.close(dir_fd)
                run[2].append(len(results) - 1)
            except (OSError, SdError) as exc:
                results.append(_bare(exc))
        if run is not None:
            ended, run = run, None
            _sync_run(ended[1], ended[2], results)
    finally:
        if run is not None:
            os.close(run[1])
    return results


def _sync_run(dir_fd: int, written: list[int], results: list[int | Exception]) -> None:
    """Sync the folder `dir_fd` the files `written` (their places in `results`) were linked in, and close it."""
    try:
        sync_folder(dir_fd)
    except OSError as exc:  # (the names may not last a power cut: said for each, the copy tries them again)
        for i in written:
            results[i] = _bare(exc)
    finally:
        os.close(dir_fd)


def _bare(exc: Exception) -> Exception:
    """`exc` without its traceback and the error it came from: their frames hold `results` (which holds `exc`) and
    each file's bytes, a cycle only the garbage collector frees, seldom: refused files' bytes outlived their request
    (6 requests of 60 MiB on one channel: 364 MiB still held)."""
    exc.__context__ = exc.__cause__ = None
    return exc.with_traceback(None)


def write_new(dir_fd: int, name: str, data: bytes, mtime: float | None, mode: int | None) -> int:
    """Put a file holding `data` at `name` in the open folder `dir_fd` (see write_new_files); its size."""
    fd = create_unnamed(".", 0o600, dir_fd)
    tmp = None
    if fd is None:
        tmp = f".sdtmp-new-{os.getpid()}-{next(_temp_ids)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode is not None:
            set_mode(fd, mode)
        if mtime is not None:
            os.utime(fd, (mtime, mtime))
        os.fsync(fd)
        if tmp is None:
            link_unnamed(fd, name, dir_fd)
        else:
            try:
                rename_noreplace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except FileExistsError:
                raise AlreadyExists(f"{display(name)} appeared while copying; it was left as it is") from None
            tmp = None
    finally:
        os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
    return len(data)


def sync_folder(dir_fd: int) -> None:
    """fsync an open folder (one opened O_PATH, as confined paths are, is opened again to read: fsync needs that)."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_mode(target: int | str, mode: int) -> None:
    """chmod a file or folder (a path or an open fd) made by a copy; where the filesystem keeps no modes (FAT: the
    kernel's vfat says EPERM, fusefat ENOSYS) the copy goes on without them."""
    try:
        os.chmod(target, mode)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOSYS, errno.EOPNOTSUPP):
            raise


_temp_ids = itertools.count(1)
