"""What a paired device may touch: everything for `full` trust, only this device's shares for `shared`.

A `shared` device's path is resolved at the moment of use beneath an open descriptor of the share
(`sdcore.fs.beneath`), and the operation is made on what that resolution returned; a `full` device's
path is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sdcore.fs import held
from sdcore.fs.beneath import O_PATH, Escape, open_beneath, parent_beneath
from sdcore.net.frames import PermissionDenied
from sdcore.sdpath import display

MODE_BITS = 0o777  # modes from peers: no setuid, setgid or sticky bit


def outside(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"{display(path)}: outside the folders this device shares with you "
        "(ask its owner to `sd share add` it, or to pair you with full trust)"
    )


class Confinement:
    """Opens what a peer names: plainly for `full` trust, beneath one of the shares for `shared`."""

    def __init__(self, trust: str, shares: Callable[[], list[str]]) -> None:
        self.trust = trust
        self._shares = shares

    @property
    def confined(self) -> bool:
        return self.trust != "full"

    def roots(self) -> list[str]:
        return ["/"] if self.trust == "full" else self._shares()

    def check(self, path: str) -> str:
        """`path` if it is absolute and, for `shared` trust, names a place in a share without `..`.

        This is the check of the name only; what the name leads to is decided when it is opened.
        """
        if not path.startswith("/") or "\0" in path:
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

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """A new descriptor of `path` (a final symlink followed unless O_NOFOLLOW, beneath the share)."""
        self.check(path)
        if held.crowded(path, follow=not flags & os.O_NOFOLLOW):
            raise PermissionDenied(
                f"{display(path)}: the database of a library open on this device, read {held.MAX_PARKED} times "
                "already while it is open: read it again once the library is closed"
            )
        if not self.confined:
            return os.open(path, flags | os.O_CLOEXEC, mode)
        root, rel = self._share_of(path)
        with self._root(root) as fd:
            try:
                return open_beneath(fd, rel, flags, mode)
            except Escape:
                raise outside(path) from None

    def locate(self, path: str) -> tuple[int, str]:
        """(a new descriptor of the folder holding `path`'s last component, that name); the caller closes it.

        Act on the pair, never on the path again. The name is "." for a share itself (or "/").
        """
        self.check(path)
        if not self.confined:
            head, _, name = path.rstrip("/").rpartition("/")
            return os.open(head or "/", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name or "."
        root, rel = self._share_of(path)
        with self._root(root) as root_fd:
            try:
                return parent_beneath(root_fd, rel)
            except Escape:
                raise outside(path) from None

    @contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """`locate` for the length of a block."""
        fd, name = self.locate(path)
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
            with self.parent(level) as (fd, name):
                try:
                    os.mkdir(name, dir_fd=fd)
                    continue
                except FileExistsError:
                    pass
            os.close(self.open(level, O_PATH | os.O_DIRECTORY))  # NotADirectoryError if it is not one
