"""Libraries: NAME.sdlibrary/ folders under the data dir, created, listed, opened, renamed and deleted."""

from __future__ import annotations

import builtins
import os
import shutil
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.errors import NotFound, SdError
from sdcore.library.context import LibraryContext
from sdcore.library.damage import (
    DiskFull,
    LibraryDamaged,
    integrity_problems,
    is_damage,
    mark,
    problem_of,
    unmark,
)
from sdcore.library.library import (
    LOCK_WAIT,
    SUFFIX,
    Library,
    LibraryLocked,
    _acquire_lock,
    create_folder,
    read_meta,
    safe_folder_name,
    write_meta,
)
from sdcore.library.locations import Location, Locations

if TYPE_CHECKING:
    from sdcore.library.repair import Repaired

__all__ = [
    "DiskFull", "Libraries", "Library", "LibraryContext", "LibraryDamaged", "LibraryInfo", "LibraryLocked", "Location",
    "Locations",
]


@dataclass(frozen=True)
class LibraryInfo:
    """A library folder as listed, without opening it."""

    id: uuid.UUID | None
    """None when its library.json cannot be read."""
    name: str
    """Its name, or its folder's name when library.json cannot be read."""
    folder: Path
    created: float
    problem: str | None = None
    """What is wrong with it, when a cheap look finds it damaged (it cannot be used until repaired)."""

    @property
    def key(self) -> str:
        """What `Libraries.open` opens it by: its id, or its folder's name when its library.json cannot be read."""
        return str(self.id) if self.id is not None else self.folder.name


class Libraries:
    """The libraries of one data dir; opened ones are kept open until the core closes."""

    def __init__(self, root: Path, context: LibraryContext | None = None) -> None:
        self.root = root
        self.context = context or LibraryContext.this_device_only()
        self.program: str | None = None
        """What the lock file says holds a library this process opens (`sd cp`); default the program's name."""
        self.on_lock_wait: Callable[[str], None] | None = None
        """Told once when a write has waited a second for another process's lock (what it waits for)."""
        self.lock_wait = LOCK_WAIT
        self._open: dict[Path, Library] = {}
        self._opening = threading.Lock()  # UI workers may ask for the same library at once

    def list(self) -> list[LibraryInfo]:
        """Every library folder, damaged ones too (with their problem)."""
        infos = []
        for folder in sorted(self.root.glob("*" + SUFFIX)):
            problem = problem_of(folder)
            try:
                meta = read_meta(folder)
                infos.append(LibraryInfo(uuid.UUID(meta["id"]), meta["name"], folder, meta.get("created", 0.0), problem))
            except (OSError, ValueError, KeyError, TypeError):
                infos.append(LibraryInfo(None, folder.name.removesuffix(SUFFIX), folder, 0.0, problem))
        return infos

    def create(self, name: str) -> Library:
        return self._opened(create_folder(self.root, name))

    def find(self, key: str) -> LibraryInfo:
        """A library by name or id (or a unique id prefix)."""
        infos = self.list()
        for info in infos:
            if key in (info.name, info.key):
                return info
        matches = [i for i in infos if i.id is not None and str(i.id).startswith(key)] if len(key) >= 4 else []
        if len(matches) == 1:
            return matches[0]
        names = ", ".join(repr(i.name) for i in infos) or "none yet"
        raise NotFound(f"no library {key!r} (libraries: {names}); `sd library create NAME` makes one")

    def open(self, key: str) -> Library:
        return self._opened(self.find(key).folder)

    def _opened(self, folder: Path) -> Library:
        with self._opening:
            if folder not in self._open:
                self._open[folder] = Library(
                    folder, self.context, program=self.program, on_lock_wait=self.on_lock_wait, lock_wait=self.lock_wait
                )
            return self._open[folder]

    def _held(self, info: LibraryInfo) -> None:
        """Close the library here, making sure no other process has it open (for a rename or delete)."""
        library = self._open.pop(info.folder, None)
        if library is not None:
            try:
                library.hold_lock()
            finally:
                library.close()
            return
        program = self.program or os.path.basename(sys.argv[0])
        _acquire_lock(info.folder, info.name, program, self.on_lock_wait, self.lock_wait).close()

    def rename(self, key: str, new_name: str) -> LibraryInfo:
        info = self.find(key)
        new_folder = self.root / (safe_folder_name(new_name) + SUFFIX)
        if new_folder.exists() and new_folder != info.folder:
            from sdcore.errors import AlreadyExists

            raise AlreadyExists(f"a library named {new_name!r} exists already")
        if info.id is None:
            raise LibraryDamaged(f"library {info.name!r} cannot be renamed: {info.problem}; repair it first")
        self._held(info)
        write_meta(info.folder, {**read_meta(info.folder), "name": new_name})
        info.folder.rename(new_folder)
        return self.find(new_name)

    def delete(self, key: str) -> LibraryInfo:
        info = self.find(key)
        self._held(info)
        shutil.rmtree(info.folder)
        return info

    def check(self, key: str) -> builtins.list[str]:
        """Read every page of a library's database (SQLite's integrity_check); its problems, [] when sound.

        Damage found is remembered (every later open refuses until a repair); a sound database clears that.
        """
        info = self.find(key)
        problems = integrity_problems(info.folder)
        if problems:
            mark(info.folder, f"its database is damaged ({problems[0]})")
            library = self._open.get(info.folder)
            if library is not None:
                library.found_damage(problems[0])
        else:
            unmark(info.folder)
        return problems

    async def repair(self, key: str, on_step: Callable[[str], None] | None = None) -> Repaired:
        """Rebuild a damaged library: see sdcore.library.repair."""
        from sdcore.library.repair import repair

        info = self.find(key)
        library = self._open.pop(info.folder, None)
        if library is not None:
            await library.jobs.close()
            library.close()
        return await repair(self, info, on_step or (lambda _: None))

    def explain(self, exc: BaseException) -> SdError | None:
        """An SQLite error met while using the open libraries, as the line a person needs (None: not a damage
        or full-disk error, or no SQLite error at all). Damage is pinned on the library whose quick_check finds it."""
        libraries = builtins.list(self._open.values())
        if not libraries or not isinstance(exc, sqlite3.Error):
            return None
        if len(libraries) == 1 or not is_damage(exc):
            return libraries[0].explain(exc)
        damaged = [library for library in libraries if library.verify()]
        return damaged[0].found_damage(str(exc)) if damaged else None

    async def close(self) -> None:
        for library in self._open.values():
            await library.jobs.close()
            library.close()
        self._open.clear()
