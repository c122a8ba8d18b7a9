"""Libraries: NAME.sdlibrary/ folders under the data dir, created, listed, opened, renamed and deleted."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.errors import NotFound
from sdcore.library.library import (
    SUFFIX,
    Library,
    LibraryDamaged,
    LibraryLocked,
    create_folder,
    read_meta,
    safe_folder_name,
    write_meta,
)
from sdcore.library.locations import Location, Locations

if TYPE_CHECKING:
    from sdcore.core import Core

__all__ = ["Libraries", "Library", "LibraryDamaged", "LibraryInfo", "LibraryLocked", "Location", "Locations"]


@dataclass(frozen=True)
class LibraryInfo:
    """A library folder as listed, without opening it."""

    id: str
    name: str
    folder: Path
    created: float


class Libraries:
    """The libraries of one data dir; opened ones are kept open until the core closes."""

    def __init__(self, root: Path, core: Core | None = None) -> None:
        self.root = root
        self.core = core
        self._open: dict[Path, Library] = {}
        self._opening = threading.Lock()  # UI workers may ask for the same library at once

    def list(self) -> list[LibraryInfo]:
        infos = []
        for folder in sorted(self.root.glob("*" + SUFFIX)):
            try:
                meta = read_meta(folder)
                infos.append(LibraryInfo(meta["id"], meta["name"], folder, meta.get("created", 0.0)))
            except (OSError, ValueError, KeyError):
                continue
        return infos

    def create(self, name: str) -> Library:
        return self._opened(create_folder(self.root, name))

    def find(self, key: str) -> LibraryInfo:
        """A library by name or id (or a unique id prefix)."""
        infos = self.list()
        for info in infos:
            if key in (info.name, info.id):
                return info
        matches = [i for i in infos if i.id.startswith(key)] if len(key) >= 4 else []
        if len(matches) == 1:
            return matches[0]
        names = ", ".join(repr(i.name) for i in infos) or "none yet"
        raise NotFound(f"no library {key!r} (libraries: {names}); `sd library create NAME` makes one")

    def open(self, key: str) -> Library:
        return self._opened(self.find(key).folder)

    def _opened(self, folder: Path) -> Library:
        with self._opening:
            if folder not in self._open:
                self._open[folder] = Library(folder, self.core)
            return self._open[folder]

    def rename(self, key: str, new_name: str) -> LibraryInfo:
        info = self.find(key)
        new_folder = self.root / (safe_folder_name(new_name) + SUFFIX)
        if new_folder.exists() and new_folder != info.folder:
            from sdcore.errors import AlreadyExists

            raise AlreadyExists(f"a library named {new_name!r} exists already")
        library = self._open.pop(info.folder, None)
        if library is not None:
            library.close()
        else:
            Library(info.folder).close()  # refuses if another process holds it
        write_meta(info.folder, {**read_meta(info.folder), "name": new_name})
        info.folder.rename(new_folder)
        return self.find(new_name)

    def delete(self, key: str) -> LibraryInfo:
        info = self.find(key)
        library = self._open.pop(info.folder, None)
        if library is not None:
            library.close()
        else:
            Library(info.folder).close()
        shutil.rmtree(info.folder)
        return info

    async def close(self) -> None:
        for library in self._open.values():
            await library.jobs.close()
            library.close()
        self._open.clear()
