"""The SFTP subsystem for standard clients (OpenSSH sftp/scp), confined by the device's trust level.

Every call that touches a file goes through `Confinement`: for a `shared` device the path is resolved
beneath the share when the call is made, and the call acts on the descriptor that resolution gave.
"""

from __future__ import annotations

import asyncio
import functools
import os
import posixpath
import stat
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sdcore.errors import SdError
from sdcore.fs import held
from sdcore.fs.beneath import O_PATH
from sdcore.fs.noreplace import rename_noreplace
from sdcore.net.confine import MODE_BITS, Confinement
from sdcore.net.frames import PermissionDenied
from sdcore.net.rpc_server import MAX_HANDLES, MAX_READ, DeviceHandles, TooManyOpen
from sdcore.sdpath import display
from sdcore.sshlib import asyncssh

SFTPAttrs = asyncssh.SFTPAttrs
SFTPName = asyncssh.SFTPName

if TYPE_CHECKING:
    from sdcore.net.network import Network

REPLY_BACKLOG = 1 << 20  # bytes of replies waiting for a client that does not read them, at most
_F = TypeVar("_F", bound=Callable[..., Any])


def _refusals(method: _F) -> _F:
    """Our own errors as SFTP status codes (a refusal reads as "permission denied", with our message)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except PermissionDenied as exc:
            raise asyncssh.SFTPPermissionDenied(str(exc)) from None
        except SdError as exc:
            raise asyncssh.SFTPFailure(str(exc)) from None

    return call  # type: ignore[return-value]


def _times_ns(attrs: SFTPAttrs, st: os.stat_result) -> tuple[int, int] | None:
    if attrs.atime is None and attrs.mtime is None:
        return None
    atime = attrs.atime * 10**9 + (attrs.atime_ns or 0) if attrs.atime is not None else st.st_atime_ns
    mtime = attrs.mtime * 10**9 + (attrs.mtime_ns or 0) if attrs.mtime is not None else st.st_mtime_ns
    return atime, mtime


def _apply(target: str | int, attrs: SFTPAttrs, st: os.stat_result) -> None:
    """Set what `attrs` asks on a file (a path or a descriptor): never its owner, never a setuid bit."""
    asks_owner = (attrs.uid, attrs.gid) != (None, None) or attrs.owner or attrs.group
    if asks_owner and (attrs.uid, attrs.gid) != (st.st_uid, st.st_gid):
        raise asyncssh.SFTPPermissionDenied("this device does not change the owner of files for others")
    if attrs.size is not None:
        os.truncate(target, attrs.size)
    if attrs.permissions is not None:
        os.chmod(target, attrs.permissions & MODE_BITS)
    times = _times_ns(attrs, st)
    if times is not None:
        os.utime(target, ns=times)


def _fd_path(fd: int) -> str | int:
    """A name for an O_PATH descriptor that chmod, truncate and utime accept (the descriptor itself elsewhere)."""
    return f"/proc/self/fd/{fd}" if O_PATH != os.O_RDONLY else fd


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server with every path resolved under the connected device's trust level."""

    def __init__(self, chan: Any, net: Network) -> None:
        owner = chan.get_connection().get_owner()
        peer = getattr(owner, "peer", None)
        self._confine = Confinement(peer.trust, net.trust.shares, net.device.data_dir) if peer is not None else None
        self._start = "/" if peer is None or peer.trust == "full" else (net.trust.shares() or ["/"])[0]
        self.handles = 0  # files and folder listings open on this connection
        self.listings: weakref.WeakSet[_Listing] = weakref.WeakSet()  # closed when the session ends
        self._device = net.device_handles(peer.id) if peer is not None else DeviceHandles()
        self._device.holders.add(self)
        super().__init__(chan)

    @property
    def confine(self) -> Confinement:
        if self._confine is None:
            raise asyncssh.SFTPPermissionDenied("pair this device first")
        return self._confine

    def _local(self, path: bytes) -> str:
        """The absolute path a client names; for `shared` trust with `..` taken by name (a share's
        `..` is outside it, where nothing is allowed)."""
        confine = self.confine
        if not path.startswith(b"/"):
            start = os.fsencode(self._start if confine.confined else os.path.expanduser("~"))
            path = posixpath.join(start, path)
        if confine.confined:
            path = b"/" + posixpath.normpath(path).lstrip(b"/")
        return os.fsdecode(path)

    def map_path(self, path: bytes) -> bytes:
        local = self._local(path)
        try:
            self.confine.check(local)
        except PermissionDenied as exc:
            raise asyncssh.SFTPPermissionDenied(str(exc)) from None
        return os.fsencode(local)

    @property
    def open_handles(self) -> int:
        return self.handles

    def _room_for_handle(self) -> None:
        if self.handles >= MAX_HANDLES:
            raise asyncssh.SFTPFailure(
                f"this connection holds {MAX_HANDLES} files and folders open, as many as one may: close some first"
            )
        try:
            self._device.check()
        except TooManyOpen as exc:
            raise asyncssh.SFTPFailure(str(exc)) from None

    async def _client_keeps_up(self) -> None:
        """Wait while replies pile up unread: a client that pipelines requests without reading the
        answers then stops being read from, instead of growing the server's memory."""
        chan = self.channel
        while chan.get_write_buffer_size() > REPLY_BACKLOG and not chan.is_closing():
            await asyncio.sleep(0.02)

    # --- files ------------------------------------------------------------------------------

    @_refusals
    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> object:
        self._room_for_handle()
        write = pflags & asyncssh.FXF_WRITE
        flags = (os.O_RDWR if pflags & asyncssh.FXF_READ else os.O_WRONLY) if write else os.O_RDONLY
        for bit, flag in (
            (asyncssh.FXF_APPEND, os.O_APPEND),
            (asyncssh.FXF_CREAT, os.O_CREAT),
            (asyncssh.FXF_TRUNC, os.O_TRUNC),
            (asyncssh.FXF_EXCL, os.O_EXCL),
        ):
            if pflags & bit:
                flags |= flag
        mode = attrs.permissions & MODE_BITS if attrs.permissions is not None else 0o666
        fd = self.confine.open(self._local(path), flags | os.O_NONBLOCK, mode)  # never hangs on a FIFO
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if self.confine.confined and kind not in (stat.S_IFREG, stat.S_IFDIR):
            os.close(fd)  # a FIFO, a device, a terminal: a device with shared trust gets files only
            raise PermissionDenied(f"{display(self._local(path))}: not a file; only files are opened for this device")
        try:  # open() refuses a folder (IsADirectoryError) but leaves a descriptor it was given open
            file_obj = open(  # noqa: SIM115 -- a handle, closed by `close`
                fd, ("r+b" if pflags & asyncssh.FXF_READ else "wb") if write else "rb", buffering=0, closefd=False
            )
        except BaseException:
            os.close(fd)
            raise
        self.handles += 1
        return file_obj

    def close(self, file_obj: object) -> None:
        self.handles -= 1
        fd = file_obj.fileno()  # type: ignore[attr-defined]
        file_obj.close()  # type: ignore[attr-defined]
        held.close(fd)  # a peer reading a library open in this process (its .sdlibrary folder) leaves its locks

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        await self._client_keeps_up()
        # a client may ask for up to 4 GiB in one read: it gets at most what asyncssh advertises, as sd-rpc's read
        return os.pread(file_obj.fileno(), min(size, MAX_READ), offset)  # type: ignore[attr-defined]

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        fd = file_obj.fileno()  # type: ignore[attr-defined]
        _apply(fd, attrs, os.fstat(fd))

    # --- names --------------------------------------------------------------------------------

    @_refusals
    def realpath(self, path: bytes) -> bytes:
        local = self._local(path)
        if not self.confine.confined:
            return os.fsencode(os.path.realpath(local))
        return os.fsencode(self.confine.check(local))

    @_refusals
    def lstat(self, path: bytes) -> os.stat_result:
        with self.confine.parent(self._local(path), changes=False) as (fd, name):
            return os.stat(name, dir_fd=fd, follow_symlinks=False)

    @_refusals
    def stat(self, path: bytes) -> os.stat_result:
        fd = self.confine.open(self._local(path), O_PATH)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    @_refusals
    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self._setstat(path, attrs, follow=True)

    @_refusals
    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self._setstat(path, attrs, follow=False)

    def _setstat(self, path: bytes, attrs: SFTPAttrs, follow: bool) -> None:
        local = self._local(path)
        fd = self.confine.open(local, O_PATH | (0 if follow else os.O_NOFOLLOW), changes=True)
        try:
            st = os.fstat(fd)
            if not stat.S_ISLNK(st.st_mode):
                _apply(_fd_path(fd), attrs, st)
                return
        finally:
            os.close(fd)
        times = _times_ns(attrs, st)  # a symlink itself: only its times mean something
        if times is not None:
            with self.confine.parent(local) as (dir_fd, name):
                os.utime(name, ns=times, dir_fd=dir_fd, follow_symlinks=False)

    @_refusals
    def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        self._room_for_handle()
        return _Listing(self, self.confine.open(self._local(path), os.O_RDONLY | os.O_DIRECTORY))

    @_refusals
    def remove(self, path: bytes) -> None:
        with self.confine.parent(self._local(path)) as (fd, name):
            os.unlink(name, dir_fd=fd)

    @_refusals
    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        mode = attrs.permissions & MODE_BITS if attrs.permissions is not None else 0o777
        with self.confine.parent(self._local(path)) as (fd, name):
            os.mkdir(name, mode, dir_fd=fd)

    @_refusals
    def rmdir(self, path: bytes) -> None:
        with self.confine.parent(self._local(path)) as (fd, name):
            os.rmdir(name, dir_fd=fd)

    @_refusals
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, replace=False)

    @_refusals
    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: bytes, newpath: bytes, replace: bool) -> None:
        with (
            self.confine.parent(self._local(oldpath)) as (src_fd, src),
            self.confine.parent(self._local(newpath)) as (dst_fd, dst),
        ):
            if replace:
                os.replace(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                return
            try:
                rename_noreplace(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            except FileExistsError:
                raise asyncssh.SFTPFileAlreadyExists("File already exists") from None

    @_refusals
    def readlink(self, path: bytes) -> bytes:
        with self.confine.parent(self._local(path), changes=False) as (fd, name):
            return os.fsencode(os.readlink(name, dir_fd=fd))

    @_refusals
    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        """A link to `oldpath`; from a `shared` device only one that stays in the share by its name."""
        target = os.fsdecode(oldpath)
        if self.confine.confined:
            if ".." in target.split("/"):
                raise PermissionDenied(f"{target!r}: a link with '..' in it is not allowed for shared trust")
            if target.startswith("/"):
                self.confine.check(target)
        with self.confine.parent(self._local(newpath)) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    @_refusals
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        with (
            self.confine.parent(self._local(oldpath), changes=False) as (src_fd, src),
            self.confine.parent(self._local(newpath)) as (dst_fd, dst),
        ):
            os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)

    @_refusals
    def statvfs(self, path: bytes) -> os.statvfs_result:
        fd = self.confine.open(self._local(path), O_PATH)
        try:
            return os.statvfs(fd)
        finally:
            os.close(fd)

    def exit(self) -> None:
        """Close the listings left open (asyncssh closes the files); report exit status 0: OpenSSH's
        scp (SFTP mode) counts a missing status as a failure."""
        for listing in list(self.listings):
            listing.close()
        try:
            self.channel.exit(0)
        except (OSError, asyncssh.Error):
            pass


class _Listing:
    """The names of an open folder, `.` and `..` first as clients expect (both with the folder's own
    attributes: the parent of a share is not the client's to see). Counts as a handle until read to
    the end, dropped or its session ends."""

    def __init__(self, server: ConfinedSFTPServer, fd: int) -> None:
        self._server = server
        self._fd = fd
        try:
            self._entries = os.scandir(fd)
        except BaseException:
            os.close(fd)
            raise
        self._dots = [b".", b".."]
        server.handles += 1
        server.listings.add(self)
        self.close = weakref.finalize(self, _Listing._release, server, fd, self._entries)  # runs once

    @staticmethod
    def _release(server: ConfinedSFTPServer, fd: int, entries: Any) -> None:
        entries.close()
        os.close(fd)
        server.handles -= 1

    def __aiter__(self) -> _Listing:
        return self

    async def __anext__(self) -> SFTPName:
        await self._server._client_keeps_up()
        if not self.close.alive:
            raise StopAsyncIteration  # closed while waiting: the session ended
        if self._dots:
            return SFTPName(self._dots.pop(0), attrs=SFTPAttrs.from_local(os.fstat(self._fd)))
        for entry in self._entries:
            try:
                return SFTPName(
                    os.fsencode(entry.name), attrs=SFTPAttrs.from_local(entry.stat(follow_symlinks=False))
                )
            except OSError:
                continue  # gone between readdir and stat
        self.close()  # all read: the folder need not stay open until the client closes the handle
        raise StopAsyncIteration
