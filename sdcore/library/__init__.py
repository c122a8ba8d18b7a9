"""Libraries: NAME.sdlibrary/ folders under the data dir, created, listed, opened, renamed and deleted."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import sqlite3
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs.noreplace import rename_noreplace
from sdcore.library.context import LibraryContext
from sdcore.library.damage import (
    DiskFull,
    LibraryDamaged,
    integrity_problems,
    is_damage,
    mark,
    problem_of,
    schema_in_header,
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
    too_new,
    write_meta,
)
from sdcore.library.locations import Location, Locations
from sdcore.library.schema import MIGRATIONS
from sdcore.privacy import make_private_dir, write_private
from sdcore.sdpath import typed

if TYPE_CHECKING:
    from sdcore.library.adopt import Migrated
    from sdcore.library.repair import Repaired

__all__ = [
    "DiskFull", "Libraries", "Library", "LibraryContext", "LibraryCopy", "LibraryDamaged", "LibraryInfo", "LibraryLocked",
    "Location", "Locations", "NotALibrary",
]

"""The devices a library is shared with, in its folder (sdcore.sync.members.FILE)."""
KNOWN = "library-folders.json"
"""In the data dir, beside libraries/: the folder of each library id that this data dir made or used. A copy put beside it later is
not there: that is how, of two folders of one id, the library is told from its copy."""


@dataclass(frozen=True)
class LibraryInfo:
    """A library folder as listed, without opening it."""

    id: uuid.UUID | None
    """None when its library.json cannot be read."""
    name: str
    """Its name, or its folder's name when library.json cannot be read."""
    folder: Path
    """Where its files are (a folder elsewhere, for one `sd library open` linked into the data dir)."""
    created: float
    problem: str | None = None
    """What is wrong with it, when a cheap look finds it damaged (it cannot be used until repaired)."""
    link: Path | None = None
    """Its link in the data dir's libraries/, when its folder lives elsewhere."""
    copy_of: str | None = None
    """The folder name of the library of the same id that this folder is a copy of (a copy is never opened)."""
    unusable: str | None = None
    """Why it cannot be opened here though it is not damaged, and what to do (a copy, a newer schema, a link to
    a folder that is not there)."""

    @property
    def folder_name(self) -> str:
        """Its name in the data dir's libraries/ (its folder's, or its link's), without .sdlibrary: unique there."""
        return (self.link or self.folder).name.removesuffix(SUFFIX)

    @property
    def key(self) -> str:
        """What `Libraries.open` opens it by: its id, or its folder's name for a copy or an unreadable one."""
        return str(self.id) if self.id is not None and self.copy_of is None else self.folder_name

    @property
    def state(self) -> str:
        """One word for a listing: ok, damaged, copy, newer or missing."""
        if self.problem:
            return "damaged"
        if self.copy_of is not None:
            return "copy"
        if self.unusable:
            return "newer" if self.folder.is_dir() else "missing"
        return "ok"


class LibraryCopy(SdError):
    """A library folder holds the same library (the same id) as another folder of the data dir."""


class NotALibrary(SdError):
    """A folder that `sd library open` was given is not a library this sdtui can open; nothing was changed."""


class Libraries:
    """The libraries of one data dir; opened ones are kept open until the core closes.

    A library is a NAME.sdlibrary folder in the data dir's libraries/, or a link there to one elsewhere
    (`add_folder`). Two folders of one library id (a backup copied beside its library) are never both used:
    the folder this data dir made or used (else the one named after the library, else the first by name) is the library,
    the other a copy, refused until `fork` gives it an id of its own: synced as one library, they would mix each
    other up.
    """

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
        """Every library folder, damaged ones too (with their problem), copies and unusable ones (saying why)."""
        known = self._known()
        noted = {folder: library_id for library_id, folder in known.items()}
        infos = []
        for listed in sorted(self.root.glob("*" + SUFFIX)):
            info = _look(listed)
            if info.unusable is not None and info.id is None and listed.name in noted:  # a link to a folder not there
                info = replace(info, id=_uuid_or_none(noted[listed.name]))
            infos.append(info)
        by_id: dict[uuid.UUID, builtins.list[LibraryInfo]] = {}
        for info in infos:
            if info.id is not None:
                by_id.setdefault(info.id, []).append(info)
        copies: dict[Path, LibraryInfo] = {}
        for library_id, same in by_id.items():
            same = [i for i in same if i.state != "missing"]
            if len(same) < 2:
                continue
            made_here = [i for i in same if i.folder_name + SUFFIX == known.get(str(library_id))]
            named = [i for i in same if i.folder_name == _safe_or_empty(i.name)]
            original = (made_here or named or same)[0]
            for info in same:
                if info is not original:
                    copies[info.folder] = replace(
                        info,
                        copy_of=original.folder_name,
                        unusable=(
                            f"library folder {info.folder_name!r} holds the same library as folder "
                            f"{original.folder_name!r} (id {str(info.id)[:8]}): it is a copy, and two copies of one "
                            "library are never used side by side (synced as one, they would mix each other up); "
                            f"`sd library fork {typed(info.folder_name)}` makes it a library of its own"
                        ),
                    )
        return [copies.get(info.folder, info) for info in infos]

    def create(self, name: str, *, library_id: uuid.UUID | None = None) -> Library:
        """A new library named `name` (or, with `library_id`, this device's folder of a library made elsewhere: its
        folder gets a free name when another library has taken the name's)."""
        infos = self.list()
        if library_id is not None:
            held = [i for i in infos if i.id == library_id]
            if held:
                raise AlreadyExists(f"library {library_id} is here already (folder {held[0].folder_name!r})")
            folder = create_folder(self.root, name, library_id, self._free_folder_name(name))
        else:
            named = [i for i in infos if i.name == name]
            if named:
                raise AlreadyExists(f"a library named {name!r} exists already ({named[0].folder})")
            folder = create_folder(self.root, name)
        library = self._opened(folder)
        self._remember(library.id, folder)
        return library

    def find(self, key: str) -> LibraryInfo:
        """A library by id, folder name, name, path of its folder, or a unique id prefix (of 4 characters or more).

        By id or name a copy is never found (its original is); a copy is named by its folder.
        """
        infos = self.list()
        originals = [i for i in infos if i.copy_of is None]
        for info in originals:
            if info.id is not None and str(info.id) == key.lower():
                return info
        for info in infos:
            if key in (info.folder_name, info.folder_name + SUFFIX):
                return info
        if os.sep in key:
            found = self.find_folder(Path(key))
            if found is not None:
                return found
        named = [i for i in originals if i.name == key]
        if len(named) > 1:
            raise NotFound(
                f"{key!r} names {len(named)} libraries ({_described(named, infos)}); pick one by its folder name or id "
                f"(`--library {typed(named[0].folder_name)}`)"
            )
        if named:
            return named[0]
        prefix = key.lower() if len(key) >= 4 else None
        matches = [i for i in originals if prefix and i.id is not None and str(i.id).startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        listed = _described(infos, infos) or "none yet"
        raise NotFound(f"no library {key!r} (libraries: {listed}); `sd library create NAME` makes one")

    def find_folder(self, path: Path) -> LibraryInfo | None:
        """The library listed for the folder at `path` (wherever it is), if it is listed."""
        real = Path(path).expanduser().resolve()
        return next((i for i in self.list() if i.folder.resolve() == real), None)

    def add_folder(self, path: Path) -> LibraryInfo:
        """List a library folder that lives elsewhere (`sd library open PATH`): a link to it is made in libraries/,
        and the folder stays where it is. A folder listed already is returned as it is.

        Raises NotALibrary (not a library folder, a damaged one, one of a newer schema) and LibraryCopy (a copy of
        a library listed here); nothing is changed then.
        """
        folder = Path(os.path.abspath(Path(path).expanduser()))
        if not folder.is_dir():
            raise NotALibrary(f"{folder} is not a folder; give the path of a library's NAME{SUFFIX} folder")
        listed = self.find_folder(folder)
        if listed is not None:
            return listed
        info = _look(folder)
        why = info.problem or info.unusable
        if why is not None or info.id is None:
            raise NotALibrary(f"{folder} cannot be opened as a library: {why}")
        same = next((i for i in self.list() if i.id == info.id and i.copy_of is None), None)
        if same is not None:
            raise LibraryCopy(
                f"{folder} holds the same library as folder {same.folder_name!r} (id {str(info.id)[:8]}): it is a copy, "
                f"and two copies of one library are never used side by side; `sd library fork {typed(str(folder))}` "
                "makes it a library of its own, then open it"
            )
        make_private_dir(self.root)
        link = self.root / (self._free_folder_name(folder.name.removesuffix(SUFFIX) or info.name) + SUFFIX)
        link.symlink_to(folder.resolve(), target_is_directory=True)
        self._remember(info.id, link)
        return _look(link)

    def _known(self) -> dict[str, str]:
        try:
            known = json.loads((self.root.parent / KNOWN).read_text())
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def _remember(self, library_id: uuid.UUID, listed: Path, forget: bool = False) -> None:
        """Note (or, with `forget`, strike out) `listed` as the folder of library `library_id`."""
        known = self._known()
        if forget:
            if known.get(str(library_id)) != listed.name:
                return
            del known[str(library_id)]
        else:
            known[str(library_id)] = listed.name
        write_private(self.root.parent / KNOWN, json.dumps(known, indent=1))

    def _free_folder_name(self, name: str) -> str:
        """`name` as a folder name, or `name-2`, `name-3`... when libraries/ holds that name already."""
        base = safe_folder_name(name)
        taken = {p.name for p in self.root.glob("*" + SUFFIX)} if self.root.is_dir() else set()
        n = 1
        while (candidate := base if n == 1 else f"{base}-{n}") + SUFFIX in taken:
            n += 1
        return candidate

    def open(self, key: str) -> Library:
        info = self.find(key)
        if info.unusable is not None:
            raise LibraryCopy(info.unusable) if info.copy_of is not None else SdError(info.unusable)
        library = self._opened(info.folder)
        listed = info.link or info.folder
        known = self._known().get(str(library.id))
        if known != listed.name and not any(i.id == library.id and i.folder != info.folder for i in self.list()):
            try:  # the folder used here is the library when a copy of it turns up beside it
                self._remember(library.id, listed)
            except OSError:
                pass  # a read-only data dir: the copy is told by its folder's name only
        return library

    def opened(self) -> builtins.list[Library]:
        """The libraries open in this process now."""
        return builtins.list(self._open.values())

    def _opened(self, folder: Path) -> Library:
        with self._opening:
            if folder not in self._open:
                self._open[folder] = Library(
                    folder, self.context, program=self.program, on_lock_wait=self.on_lock_wait, lock_wait=self.lock_wait
                )
            return self._open[folder]

    def _held(self, info: LibraryInfo) -> None:
        """Close the library here, making sure no other process has it open (for a rename, fork or delete)."""
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
        """Rename a library; its folder (or its link, for a folder elsewhere) follows."""
        info = self.find(key)
        if info.id is None:
            raise LibraryDamaged(f"library {info.name!r} cannot be renamed: {info.problem}; repair it first")
        if info.unusable is not None:
            raise SdError(f"library folder {info.folder_name!r} cannot be renamed: {info.unusable}")
        listed = info.link or info.folder
        new_listed = self.root / (safe_folder_name(new_name) + SUFFIX)
        taken = os.path.lexists(new_listed) and new_listed != listed
        if taken or any(i.name == new_name and i.folder != info.folder for i in self.list()):
            raise AlreadyExists(f"a library named {new_name!r} exists already")
        self._held(info)
        if new_listed != listed:
            try:  # never onto a folder made since the check above
                rename_noreplace(str(listed), str(new_listed))
            except FileExistsError:
                raise AlreadyExists(f"a library named {new_name!r} exists already") from None
        folder = info.folder if info.link else new_listed
        write_meta(folder, {**read_meta(folder), "name": new_name})
        self._remember(info.id, new_listed)
        return self.find(new_listed.name)

    def fork(self, key: str, name: str | None = None) -> tuple[LibraryInfo, uuid.UUID]:
        """Give a library folder an id of its own (`key`: as `find` takes it, or the path of a folder not listed):
        it becomes a library apart from the one it was copied from, keeping its locations, index, tags and notes,
        shared with no device.
        Its name stays, unless another library has it (then it is named after its folder) or `name` is given.
        Returns it as listed now, and the id it had."""
        info = self._folder_or_find(key)
        if info.id is None:
            raise LibraryDamaged(f"library {info.name!r} cannot be forked: {info.problem}; repair it first")
        if info.unusable is not None and info.copy_of is None:
            raise SdError(f"library folder {info.folder_name!r} cannot be forked: {info.unusable}")
        others = [i for i in self.list() if i.folder != info.folder]
        if name is not None and any(i.name == name for i in others):
            raise AlreadyExists(f"a library named {name!r} exists already")
        new_name = name or (info.folder_name if any(i.name == info.name for i in others) else info.name)
        self._held(info)
        new_id = uuid.uuid4()
        write_meta(info.folder, {**read_meta(info.folder), "id": str(new_id), "name": new_name})
        from sdcore.sync import members  # here: opening a library needs none of sync

        (info.folder / members.FILE).unlink(missing_ok=True)  # shared with no device: the devices know the other id
        listed = info.link or info.folder
        if listed.parent == self.root:
            self._remember(new_id, listed)
            return self.find(listed.name), info.id
        return _look(info.folder), info.id

    def _folder_or_find(self, key: str) -> LibraryInfo:
        """The library `key` names (see `find`), or the library folder at the path `key` when it is not listed."""
        if os.sep in key and Path(key).expanduser().is_dir():
            found = self.find_folder(Path(key))
            if found is None:
                found = _look(Path(os.path.abspath(Path(key).expanduser())))
                if found.problem is not None:
                    raise NotALibrary(f"{key} is not a library folder this sdtui can use: {found.problem}")
            return found
        return self.find(key)

    def delete(self, key: str) -> LibraryInfo:
        """Delete a library folder; one elsewhere (`add_folder`) is only forgotten: its link goes, the folder stays."""
        info = self.find(key)
        if info.folder.is_dir():
            self._held(info)
        if info.link is not None:
            info.link.unlink()
        else:
            shutil.rmtree(info.folder)
        if info.id is not None:
            self._remember(info.id, info.link or info.folder, forget=True)
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

    async def migrate(self, library: Library, on_step: Callable[[str], None] = lambda _: None) -> Migrated:
        """Adopt the locations of other devices in `library` whose folders exist here, and index them again."""
        from sdcore.library.adopt import migrate

        return await migrate(library, on_step)

    async def repair(self, key: str, on_step: Callable[[str], None] | None = None) -> Repaired:
        """Rebuild a damaged library: see sdcore.library.repair."""
        from sdcore.library.repair import repair

        info = self.find(key)
        if (
            info.unusable is not None
        ):  # a newer schema's rebuilt with this one's would lose what it does not know
            raise SdError(f"library folder {info.folder_name!r} cannot be repaired here: {info.unusable}")
        library = self._open.pop(info.folder, None)
        if library is not None:
            await library.close_jobs()
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
            await library.close_jobs()
            library.close()
        self._open.clear()


def _look(listed: Path) -> LibraryInfo:
    """A library folder (or a link to one) as a cheap look sees it, without opening it."""
    link = listed if listed.is_symlink() else None
    folder = listed.resolve() if link is not None else listed
    fallback = listed.name.removesuffix(SUFFIX)
    if not folder.is_dir():
        return LibraryInfo(
            None, fallback, folder, 0.0, link=link,
            unusable=f"its folder {folder} is not there (moved, deleted, or on a disk that is not mounted); "
            f"`sd library open PATH` lists it where it is now, `sd library delete {typed(fallback)}` forgets it",
        )  # fmt: skip
    problem = problem_of(folder)
    try:
        meta = read_meta(folder)
        info = LibraryInfo(
            uuid.UUID(meta["id"]), meta["name"], folder, meta.get("created", 0.0), problem, link
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return LibraryInfo(None, fallback, folder, 0.0, problem, link)
    written = meta.get("schema")
    schema = max(written if isinstance(written, int) else 0, _schema_in_header(folder))
    if problem is None and schema > max(MIGRATIONS):
        return replace(info, unusable=str(too_new(info.name, schema)))
    return info


def _schema_in_header(folder: Path) -> int:
    """The schema version its database file's header holds, 0 if unreadable."""
    try:
        return schema_in_header(folder / "database.db")
    except sqlite3.Error:
        return 0


def _uuid_or_none(text: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None


def _safe_or_empty(name: str) -> str:
    try:
        return safe_folder_name(name)
    except SdError:
        return ""


def _described(some: list[LibraryInfo], infos: list[LibraryInfo]) -> str:
    """Libraries as a person tells them apart: by name, and by folder too where a name is not unique."""
    names = Counter(i.name for i in infos)
    return ", ".join(
        repr(i.name) if names[i.name] == 1 else f"{i.name!r} (folder {i.folder_name!r})" for i in some
    )
