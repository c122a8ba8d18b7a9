"""LocalFS: the filesystem interface over this machine's files."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs import held
from sdcore.fs.base import CHUNK, AccessDenied, EntryInfo, FsError, NewFile, Reread, Source, kind_of_mode
from sdcore.fs.newfile import set_mode, write_new_files
from sdcore.fs.noreplace import rename_noreplace
from sdcore.fs.resumable import KEPT_BLOCK, block_digests, keep_matching, open_kept, partial_path
from sdcore.index import cas
from sdcore.sdpath import display


def fs_error(exc: OSError, path: str) -> Exception:
    """An OSError as our own error, with the path shown for people."""
    shown = display(path)
    if exc.errno == errno.ENOENT:
        return NotFound(f"{shown}: no such file or directory")
    if exc.errno == errno.EEXIST:
        return AlreadyExists(f"{shown}: already exists")
    if exc.errno == errno.ENOSPC:
        return FsError(f"{shown}: no space left on the device")
    if exc.errno == errno.EROFS:
        return FsError(f"{shown}: the volume is mounted read-only; remount it read-write or choose another place")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AccessDenied(f"{shown}: permission denied")
    if exc.errno == errno.ENAMETOOLONG:
        return FsError(too_long(path))
    return FsError(f"{shown}: {exc.strerror or exc}")


def as_sd_error(exc: Exception, path: str) -> SdError:
    """An error of newfile.write_new_files (an OSError as raised) as our own."""
    error = fs_error(exc, path) if isinstance(exc, OSError) else exc
    return error if isinstance(error, SdError) else FsError(f"{display(path)}: {error}")


def too_long(path: str) -> str:
    """ENAMETOOLONG said in one line with the limit and what to do (the OS's text repeated the whole path, which a
    255-byte name makes a wall of text, and gave no limit)."""
    folder, _, name = path.rpartition("/")
    longest = max(path.split("/"), key=lambda part: len(os.fsencode(part)))
    try:
        limit = os.pathconf(folder or "/", "PC_NAME_MAX")
    except OSError:  # the folder is not there (a parent's name was the long one)
        limit = 255
    size = len(os.fsencode(longest))
    if size <= limit:
        return f"{display(name)}: its whole path is too long for this disk; choose a shorter place or names"
    where = "" if longest == name else " (a folder on its path)"
    return (
        f"{display(longest[:24])}… is a name of {size} bytes{where}, and this disk holds names of at most {limit}:"
        f" shorten it by {size - limit}"
    )


def entry_of(dirent: os.DirEntry[str], dir_fd: int | None = None) -> EntryInfo:
    """An entry of `os.scandir` (of a path, or of the open folder `dir_fd`)."""
    st = dirent.stat(follow_symlinks=False)
    kind = kind_of_mode(st.st_mode)
    target = None
    if kind == "symlink":
        try:
            target = os.readlink(dirent.path, dir_fd=dir_fd)
        except OSError:
            target = None
    return EntryInfo(dirent.name, kind, st.st_size, st.st_mtime, st.st_ino, st.st_mode, target)


def stat_entry(path: str, dir_fd: int | None = None) -> EntryInfo:
    """The entry at `path` (relative to the open folder `dir_fd` if given), not following a final symlink."""
    st = os.lstat(path, dir_fd=dir_fd)
    kind = kind_of_mode(st.st_mode)
    target = os.readlink(path, dir_fd=dir_fd) if kind == "symlink" else None
    name = path.rstrip("/").rsplit("/", 1)[-1] or "/"
    return EntryInfo(name, kind, st.st_size, st.st_mtime, st.st_ino, st.st_mode, target)


def unstatable(dirent: os.DirEntry[str]) -> EntryInfo:
    """An entry its folder names but lets nobody look at (read permission without search, `drw-r--r--`: `ls`
    shows its name and `?` for the rest): the name and the kind readdir gives, no size, time or mode."""
    try:
        if dirent.is_symlink():
            kind = "symlink"
        elif dirent.is_dir(follow_symlinks=False):
            kind = "dir"
        else:
            kind = "file" if dirent.is_file(follow_symlinks=False) else "other"
    except OSError:  # the filesystem gives no kind in readdir: finding it needs the stat refused
        kind = "other"
    return EntryInfo(dirent.name, kind, 0, 0.0, dirent.inode(), 0, None)


def scan_batches(path: str | int, batch_size: int = 1000) -> Iterator[list[EntryInfo]]:
    """List a directory (a path, or an open descriptor the caller closes) in batches; an entry that
    vanishes between readdir and stat is skipped, one that may not be stat'ed is listed by name (`unstatable`)."""
    dir_fd = path if isinstance(path, int) else None
    try:
        it = os.scandir(path)
    except OSError as exc:
        raise fs_error(exc, str(path)) from None
    batch: list[EntryInfo] = []
    with it:
        for dirent in it:
            try:
                batch.append(entry_of(dirent, dir_fd))
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM):
                    continue  # gone since readdir
                batch.append(unstatable(dirent))  # it is there: said, never left out as if the folder were empty
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


class LocalFS:
    """This machine's files, through the same async interface as a remote device's."""

    async def list_dir(self, path: str, batch_size: int = 1000) -> AsyncIterator[list[EntryInfo]]:
        batches = scan_batches(path, batch_size)
        done = object()
        while True:
            batch = await asyncio.to_thread(next, batches, done)
            if batch is done:
                return
            yield batch  # type: ignore[misc]

    async def stat(self, path: str) -> EntryInfo:
        try:
            return await asyncio.to_thread(stat_entry, path)
        except OSError as exc:
            raise fs_error(exc, path) from None

    async def open_read(self, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise fs_error(exc, path) from None
        try:
            if offset:
                os.lseek(fd, offset, os.SEEK_SET)
            while chunk := await asyncio.to_thread(os.read, fd, CHUNK):
                yield chunk
        except IsADirectoryError as exc:
            raise fs_error(exc, path) from None
        finally:
            held.close(fd)  # never drops the locks of a library open here when its database is what was read

    async def write_atomic(
        self, path: str, chunks: AsyncIterable[bytes], *, mtime: float | None = None, mode: int | None = None
    ) -> int:
        directory, name = os.path.split(path)
        tmp = os.path.join(directory, f".{name}.sdtmp-{os.getpid()}")
        written = 0
        try:
            _remove_quietly(tmp)  # left by a run that died; made anew, never followed: it may be a planted link
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                async for chunk in chunks:
                    await asyncio.to_thread(os.write, fd, chunk)
                    written += len(chunk)
                await asyncio.to_thread(os.fsync, fd)
            finally:
                os.close(fd)
            if mode is not None:
                set_mode(tmp, mode & 0o7777)
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.rename(tmp, path)
        except OSError as exc:
            _remove_quietly(tmp)
            raise fs_error(exc, path) from None
        except BaseException:
            _remove_quietly(tmp)
            raise
        return written

    async def write_new_files(self, files: list[NewFile]) -> list[int | SdError]:
        done = await asyncio.to_thread(write_new_files, files, _locate)
        return [r if isinstance(r, int) else as_sd_error(r, f[0]) for r, f in zip(done, files, strict=True)]

    async def write_resumable(
        self, path: str, source: Source, *, mtime: float | None = None, mode: int | None = None,
        reread: Reread | None = None,
    ) -> int:
        partial = partial_path(path)
        fd = await _in_place(_open_partial, path, partial)
        try:  # cut short: the partial file stays for the next call
            have = os.fstat(fd).st_size
            if have:
                digests = await block_digests(reread(), have) if reread is not None else []
                have = await asyncio.to_thread(keep_matching, fd, KEPT_BLOCK, digests)
            offset = have
            async for chunk in source(have):
                await _in_place(os.pwrite, path, fd, chunk, offset)
                offset += len(chunk)
            await _in_place(_finish_partial, path, fd, offset, mtime, mode)
            await _in_place(_rename_own, path, fd, partial, path)
        finally:
            os.close(fd)
        return offset

    async def discard_resumable(self, path: str) -> None:
        _remove_quietly(partial_path(path))

    async def mkdir(self, path: str, parents: bool = False) -> None:
        try:
            if parents:
                os.makedirs(path, exist_ok=True)
            else:
                os.mkdir(path)
        except OSError as exc:
            raise fs_error(exc, path) from None

    async def rename(self, src: str, dst: str) -> None:
        try:
            await asyncio.to_thread(rename_noreplace, src, dst)
        except OSError as exc:
            raise fs_error(exc, dst if exc.errno in (errno.EEXIST, errno.ENAMETOOLONG) else src) from None

    async def trash(self, path: str) -> str:
        from sdcore.fs import trash

        return await asyncio.to_thread(trash.trash, path)

    async def restore(self, key: str) -> str:
        from sdcore.fs import trash

        return await asyncio.to_thread(lambda: trash.restore(trash.find(key)))

    async def delete(self, path: str) -> None:
        def _delete() -> None:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

        try:
            await asyncio.to_thread(_delete)
        except OSError as exc:
            raise fs_error(exc, path) from None

    async def cas_id(self, path: str) -> str | None:
        try:
            return await asyncio.to_thread(cas.cas_id, path)
        except OSError as exc:
            raise fs_error(exc, path) from None

    async def full_hash(self, path: str) -> str:
        try:
            return await asyncio.to_thread(cas.full_hash, path)
        except OSError as exc:
            raise fs_error(exc, path) from None


async def _in_place(call: Callable[..., Any], path: str, *args: Any) -> Any:
    """Run a filesystem call in a thread; its OSError as our own error about `path`."""
    try:
        return await asyncio.to_thread(call, *args)
    except OSError as exc:
        raise fs_error(exc, path) from None


def _open_partial(partial: str) -> int:
    """The partial file a resumable write carries on (see `open_kept`), else a new one."""
    fd = open_kept(partial)
    if fd is None:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    return fd


def _rename_own(fd: int, partial: str, path: str) -> None:
    """Rename the partial file open at `fd` to `path`; what was renamed must be that file, not one put there since."""
    os.rename(partial, path)
    st, at = os.fstat(fd), os.lstat(path)
    if (st.st_dev, st.st_ino) != (at.st_dev, at.st_ino):
        os.unlink(path)
        raise OSError(errno.ESTALE, "its partial file was replaced while it was written; copy it again")


def _finish_partial(fd: int, size: int, mtime: float | None, mode: int | None) -> None:
    os.ftruncate(fd, size)
    os.fsync(fd)
    if mode is not None:
        set_mode(fd, mode & 0o7777)
    if mtime is not None:
        os.utime(fd, (mtime, mtime))


def _locate(path: str) -> tuple[int, str]:
    """The open folder holding `path` and its name there."""
    head, name = os.path.split(path)
    return os.open(head or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), name


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
