"""The typed records the core API takes and returns (frozen dataclasses; `RECORDS` lists them for the wire)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sdcore.fs.base import EntryInfo
from sdcore.sdpath import DeviceId, SdPath


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device: its id and its name."""

    id: DeviceId
    name: str


@dataclass(frozen=True, slots=True)
class PairedDevice:
    """A paired device as this one trusts it: `full` (anything its user may read) or `shared` (its shares)."""

    id: DeviceId
    name: str
    trust: str
    addresses: tuple[str, ...] = ()
    public_key: str = ""  # its SSH key, OpenSSH one-line form
    paired_at: float = 0.0  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Renamed:
    """This device renamed: its new name, the paired devices told at once (the others learn it when they next
    connect) and how many are paired."""

    name: str
    told: tuple[str, ...]
    paired: int


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    """A library: its id and name."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A file, folder or link: where it is (`directory` + `name`; `path` is both) and what it is, and, when the
    library was asked, its entry id and content id.

    The directory is a field (not the whole path) so that a listing of 100,000 entries shares one SdPath.
    """

    directory: SdPath
    name: str
    kind: str  # "file" | "dir" | "symlink" | "fifo" | "socket" | "device" | "other"
    size: int
    mtime: float
    inode: int = 0
    mode: int = 0
    link_target: str | None = None
    entry_id: int | None = None
    cas_id: str | None = None
    object_kind: str | None = None  # a file's kind by its content or extension ("image", "text"...), when asked
    files: int | None = None  # a folder: how many files are below it, when the index knows

    @property
    def path(self) -> SdPath:
        return self.directory.child(self.name) if self.name != "/" else self.directory

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def hidden(self) -> bool:
        return self.name.startswith(".")

    def to_json(self) -> dict[str, Any]:
        """The entry for scripts: name, path, kind, size, mtime, and the rest where known."""
        data: dict[str, Any] = {"name": self.name, "path": self.path.path, "kind": self.kind, "size": self.size,
                                "mtime": self.mtime, "inode": self.inode}
        for key in ("object_kind", "cas_id", "files", "link_target", "entry_id"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data["hidden"] = self.hidden
        return data

    @classmethod
    def of(cls, directory: SdPath, info: EntryInfo) -> Entry:
        """An entry as a filesystem of `directory`'s device lists it."""
        return cls(directory, info.name, info.kind, info.size, info.mtime, info.inode, info.mode, info.link_target)

    @classmethod
    def at(cls, path: SdPath, info: EntryInfo) -> Entry:
        """The entry at `path` as its filesystem stats it."""
        return cls.of(path.parent if path.path != "/" else path, info)


@dataclass(frozen=True, slots=True)
class EntryDetails:
    """What the library knows of an entry beyond its name: a folder's indexed totals, tags, note, favourite,
    and the other files with the same content."""

    entry_id: int
    kind: str
    files: int | None  # a folder: how many files are below it (indexed); None for a file
    size: int  # a folder: the bytes below it (indexed)
    tags: tuple[str, ...] = ()
    favourite: bool = False
    note: str | None = None
    same_content: tuple[str, ...] = ()  # paths on this device


@dataclass(frozen=True, slots=True)
class Trashed:
    """An item sent to the trash: where it was, and where it lies in its own device's trash (to restore it)."""

    path: SdPath
    in_trash: SdPath


@dataclass(frozen=True, slots=True)
class JobRoute:
    """What a job works on, to tell jobs apart: what it reads or changes, where it writes (a copy's folder, a
    folder made), the new name of a rename, and whether a delete goes to the trash."""

    sources: tuple[SdPath, ...] = ()
    destination: SdPath | None = None
    new_name: str | None = None
    to_trash: bool = False


def __getattr__(name: str) -> Any:
    """`RECORDS`: every record class a leaf of the API takes or returns (the wire registers them); built on first
    use, since search and tags are not needed to draw the first screen."""
    if name != "RECORDS":
        raise AttributeError(name)
    from sdcore import events
    from sdcore.jobs.manager import JobRecord
    from sdcore.library.locations import Location
    from sdcore.ops import results
    from sdcore.search import Query, SavedSearch
    from sdcore.tags import Tag

    every_event = [c for c in vars(events).values() if isinstance(c, type) and issubclass(c, events.Event)]
    return (
        SdPath, DeviceInfo, PairedDevice, Renamed, LibraryInfo, Entry, EntryDetails, Trashed, JobRoute,
        Tag, Location, JobRecord, Query, SavedSearch, *every_event, results.Outcome, results.TransferResult,
        results.DeletedItem, results.DeleteResult, results.PathResult, results.IndexResult,
    )
