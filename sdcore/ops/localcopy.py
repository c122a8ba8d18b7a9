"""The fast local path of a copy: one file or symlink at a time, kernel-side, to a temp name then into place."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

import blake3

from sdcore.errors import AlreadyExists, NotFound
from sdcore.fs import held
from sdcore.fs.base import AccessDenied, FsError
from sdcore.fs.local import fs_error
from sdcore.fs.newfile import create_unnamed, link_unnamed, set_mode
from sdcore.fs.noreplace import rename_noreplace
from sdcore.fs.resumable import open_kept
from sdcore.sdpath import display

RANGE_CHUNK = 16 << 20  # bytes per copy_file_range call: progress and pause are checked between calls
KEPT_BLOCK = 4 << 20  # a carried-on copy compares the part an earlier run wrote in blocks of this size
UNNAMED_UP_TO = (
    16 << 20
)  # files up to this size are written unnamed (O_TMPFILE); bigger ones under a temp name
_FALLBACK_ERRNOS = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF)


class SourceVanished(NotFound):
    """The source disappeared between listing and copying."""


class SourceUnreadable(AccessDenied):
    """This user may not read the source (permission denied): it is reported, the copy goes on without it."""


class SourceChanged(FsError):
    """The source was written to while it was being copied; the copy was thrown away."""


class CopyDiffers(FsError):
    """The finished copy's BLAKE3 differs from the source's (the source unchanged); the copy was discarded."""


class Stopped(Exception):
    """A pause or cancel was asked in the middle of a file; its temporary file is gone."""


def copy_file(
    src: str,
    dst: str,
    tmp: str,
    *,
    replace: bool,
    verify: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    partial_of: tuple[int, float] | None = None,
) -> tuple[int, str | None]:
    """Copy a regular file to `tmp`, check it, and rename it to `dst`; returns (bytes, BLAKE3 when verified).

    A small new file is written as an unnamed file (O_TMPFILE) and linked in at `dst` once complete:
    one directory change instead of two, and nothing to clean up if the process dies. The copy keeps
    mode and mtime. If the source's size or mtime changes while it is read, the copy is thrown away
    (SourceChanged). Whatever goes wrong, no temporary file is left, except that with `partial_of`
    (the source's size and mtime when `tmp` was begun) a pause keeps `tmp`, and a later call carries on
    after the part of it that still matches the source (compared block by block) when the source still
    has that size and mtime.
    """
    sfd = _open_source(src)
    before: os.stat_result | None = None
    try:
        before = _regular(sfd, src)
        mode = stat.S_IMODE(before.st_mode)
        dfd = None
        start = 0
        try:
            if not replace and not verify and partial_of is None and before.st_size <= UNNAMED_UP_TO:
                dfd = create_unnamed(os.path.dirname(dst), mode & 0o777)
            unnamed = dfd is not None
            if partial_of is not None and partial_of == (before.st_size, before.st_mtime):
                dfd, start = _reopen_partial(tmp, sfd, before.st_size)
            if dfd is None:
                dfd = _create(tmp, mode & 0o777)
        except OSError as exc:
            raise fs_error(exc, dst) from None
        try:
            try:
                if start and on_bytes is not None:
                    on_bytes(start)
                copied = start + _copy_fd(sfd, dfd, before.st_size, on_bytes, should_stop)
                after = os.fstat(sfd)
                if (after.st_size, after.st_mtime_ns) != (
                    before.st_size,
                    before.st_mtime_ns,
                ) or copied != before.st_size:
                    raise _changed(src, before, after)
                if mode & ~_UMASK != mode or mode & 0o7000:  # what creation could not give
                    set_mode(dfd, mode)
                os.utime(dfd, ns=(before.st_atime_ns, before.st_mtime_ns))
                if unnamed:
                    link_unnamed(dfd, dst)
            except OSError as exc:
                raise fs_error(exc, dst) from None
            finally:
                os.close(dfd)
            digest = None
            if not unnamed:
                if verify:
                    digest = hash_file(tmp)
                    if digest != hash_file(src):
                        raise CopyDiffers(
                            f"{display(dst)}: the copy's BLAKE3 differs from {display(src)}'s; the copy was discarded"
                        )
                place(tmp, dst, replace)
        except Stopped:
            if not unnamed and partial_of is None:
                unlink_quietly(tmp)
            raise
        except BaseException:
            if not unnamed:
                unlink_quietly(tmp)
            raise
    finally:
        held.close(sfd, before)  # a library open here keeps its locks when its database is what was copied
    return copied, digest


def read_small(src: str, limit: int) -> tuple[bytes, os.stat_result]:
    """A small regular file's bytes and its stat as they were read: SourceVanished when it is gone, SourceChanged when
    it is not a regular file, holds more than `limit` bytes or was written to while it was read."""
    sfd = _open_source(src)
    before: os.stat_result | None = None
    try:
        before = _regular(sfd, src)
        parts = []
        got = 0
        while got <= limit and (part := os.read(sfd, limit + 1 - got)):
            parts.append(part)
            got += len(part)
        after = os.fstat(sfd)
    except OSError as exc:
        raise source_error(exc, src) from None
    finally:
        held.close(sfd, before)  # a library open here keeps its locks when its database is what was copied
    data = b"".join(parts)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(data) != before.st_size:
        raise _changed(src, before, after)
    return data, before


def _changed(src: str, before: os.stat_result, after: os.stat_result) -> SourceChanged:
    return SourceChanged(
        f"{display(src)} changed while it was copied ({before.st_size} -> {after.st_size} bytes); "
        "the copy was discarded. Resume the job once it is no longer being written"
    )


def _regular(sfd: int, src: str) -> os.stat_result:
    """The stat of the source opened as `sfd` (SourceChanged when it is no longer a regular file)."""
    st = os.fstat(sfd)
    if not stat.S_ISREG(st.st_mode):
        raise SourceChanged(f"{display(src)} is no longer a regular file")
    return st


def _open_source(src: str) -> int:
    try:
        return os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise SourceVanished(f"{display(src)} vanished before it could be copied") from None
        if exc.errno == errno.ELOOP:
            raise SourceChanged(f"{display(src)} became a symlink while being copied") from None
        raise source_error(exc, src) from None


def source_error(exc: OSError, src: str) -> Exception:
    """An error reading the source as our own: one this user may not read is SourceUnreadable."""
    error = fs_error(exc, src)
    return SourceUnreadable(str(error)) if isinstance(error, AccessDenied) else error


def _reopen_partial(tmp: str, sfd: int, size: int) -> tuple[int | None, int]:
    """Open what an earlier run wrote to `tmp` to carry on: (fd, offset), or (None, 0) when there is nothing.

    What was kept is not trusted: it is compared with the source block by block and cut at the first
    block that differs (a crash may have left a tail unwritten; the file may have been damaged).
    """
    dfd = open_kept(tmp)
    if dfd is None:
        return None, 0
    start = 0
    have = min(os.fstat(dfd).st_size, size)
    while start < have:
        want = min(KEPT_BLOCK, have - start)
        if os.pread(dfd, want, start) != os.pread(sfd, want, start):
            break
        start += want
    os.ftruncate(dfd, start)
    os.lseek(dfd, start, os.SEEK_SET)
    os.lseek(sfd, start, os.SEEK_SET)
    return dfd, start


def _create(tmp: str, mode: int) -> int:
    """Create `tmp` afresh (a temp file left by a killed run of the job is replaced)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, mode)
    except FileExistsError:
        os.unlink(tmp)
        return os.open(tmp, flags, mode)


def _copy_fd(
    sfd: int,
    dfd: int,
    size: int,
    on_bytes: Callable[[int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> int:
    """copy_file_range, else sendfile, else read/write; returns the bytes copied."""
    copied = 0
    mode = "range"
    while True:
        if should_stop is not None and should_stop():
            raise Stopped()
        want = RANGE_CHUNK
        try:
            if mode == "range":
                n = os.copy_file_range(sfd, dfd, want)
            elif mode == "sendfile":
                n = os.sendfile(dfd, sfd, None, want)
            else:
                data = os.read(sfd, min(want, 1 << 20))
                n = len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(dfd, view) :]
        except OSError as exc:
            if exc.errno in _FALLBACK_ERRNOS and mode != "rw" and copied == 0:
                mode = "sendfile" if mode == "range" else "rw"
                continue
            raise
        if n == 0:
            return copied
        copied += n
        if on_bytes is not None:
            on_bytes(n)


def copy_symlink(src: str, dst: str, tmp: str, *, replace: bool) -> None:
    """Recreate a symlink (same target, same mtime) under a temp name, then rename it into place."""
    try:
        target = os.readlink(src)
        st = os.lstat(src)
    except FileNotFoundError:
        raise SourceVanished(f"{display(src)} vanished before it could be copied") from None
    except OSError as exc:
        raise source_error(exc, src) from None
    unlink_quietly(tmp)
    try:
        os.symlink(target, tmp)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        place(tmp, dst, replace)
    except OSError as exc:
        unlink_quietly(tmp)
        raise fs_error(exc, dst) from None


def place(tmp: str, dst: str, replace: bool) -> None:
    """Rename `tmp` to `dst`; unless `replace`, refuse when something appeared at `dst` meanwhile."""
    if replace:
        os.rename(tmp, dst)
        return
    try:
        rename_noreplace(tmp, dst)
    except FileExistsError:
        raise AlreadyExists(f"{display(dst)} appeared while copying; it was left as it is") from None


def _read_umask() -> int:
    """This process's umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o7777  # unknown: always set the mode explicitly


_UMASK = _read_umask()


def hash_file(path: str) -> str:
    """The full-file BLAKE3 of `path` (never follows a final symlink)."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, 1 << 20):
            hasher.update(chunk)
    finally:
        held.close(fd)
    return hasher.hexdigest()


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
