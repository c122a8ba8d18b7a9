"""The SFTP subsystem for standard clients (OpenSSH sftp/scp), confined by the device's trust level."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sdcore.net.confine import Confinement
from sdcore.net.frames import PermissionDenied
from sdcore.sshlib import asyncssh

if TYPE_CHECKING:
    from sdcore.net.network import Network


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server with every path checked against the connected device's trust level."""

    def __init__(self, chan: Any, net: Network) -> None:
        owner = chan.get_connection().get_owner()
        peer = getattr(owner, "peer", None)
        self._confine = Confinement(peer.trust, net.trust.shares) if peer is not None else None
        self._start = "/" if peer is None or peer.trust == "full" else (net.trust.shares() or ["/"])[0]
        super().__init__(chan)

    def map_path(self, path: bytes) -> bytes:
        if self._confine is None:
            raise asyncssh.SFTPPermissionDenied("pair this device first")
        if not path.startswith(b"/"):
            start = os.fsencode(self._start if self._confine.trust == "shared" else os.path.expanduser("~"))
            path = os.path.join(start, path) if path not in (b"", b".") else start
        local = os.path.normpath(path) if b".." not in path.split(b"/") else path
        try:
            self._confine.check(os.fsdecode(local))
        except PermissionDenied as exc:
            raise asyncssh.SFTPPermissionDenied(str(exc)) from None
        return local

    def exit(self) -> None:
        """Report exit status 0: OpenSSH's scp (SFTP mode) counts a missing status as a failure."""
        try:
            self.channel.exit(0)
        except (OSError, asyncssh.Error):
            pass
