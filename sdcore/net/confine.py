"""What a paired device may touch: everything for `full` trust, only this device's shares for `shared`."""

from __future__ import annotations

import os
from collections.abc import Callable

from sdcore.net.frames import PermissionDenied
from sdcore.sdpath import display


class Confinement:
    """Checks every path a peer names before any filesystem call is made with it."""

    def __init__(self, trust: str, shares: Callable[[], list[str]]) -> None:
        self.trust = trust
        self._shares = shares

    def roots(self) -> list[str]:
        return ["/"] if self.trust == "full" else self._shares()

    def check(self, path: str) -> str:
        """`path` if this peer may use it; raises PermissionDenied otherwise.

        For `shared` trust the path must be absolute, have no `..`, and resolve (all symlinks
        followed) inside a shared folder, so a symlink pointing out of a share is refused.
        """
        if not path.startswith("/") or "\0" in path:
            raise PermissionDenied(f"{display(path)}: not an absolute path")
        if self.trust == "full":
            return path
        if ".." in path.split("/"):
            raise PermissionDenied(f"{display(path)}: '..' is not allowed for a device with shared trust")
        real = os.path.realpath(path)
        for share in self._shares():
            root = os.path.realpath(share)
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return path
        raise PermissionDenied(
            f"{display(path)}: outside the folders this device shares with you "
            "(ask its owner to `sd share add` it, or to pair you with full trust)"
        )
