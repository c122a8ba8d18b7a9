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
class AdminKey:
    """An admin key: an SSH public key that may administer this core (the explorer and `sd` over SSH)."""

    name: str
    type: str  # as ssh-keygen -l says it: "ED25519", "ECDSA 256", "RSA 3072"
    fingerprint: str  # "SHA256:..."
    public_key: str  # OpenSSH one-line form, without its comment
    added: float = 0.0  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Renamed:
    """This device renamed: its new name, the paired devices told at once (the others learn it when they next
    connect) and how many are paired."""

    name: str
    told: tuple[str, ...]
    paired: int


@dataclass(frozen=True, slots=True)
class SharedFolder:
    """A folder shared with devices paired with `shared` trust (its real path)."""

    path: str
    data_dir: str | None = None  # this device's data dir when the folder holds it: that stays private
    holds_home: bool = False  # the user's home folder is (in) it: ~/.ssh, ~/.bashrc and the like too


@dataclass(frozen=True, slots=True)
class Health:
    """A running core as `sd health` checks it: its device, its process, and where its SSH server listens."""

    device: DeviceInfo
    pid: int
    ssh: str | None  # HOST:PORT a process on this machine reaches it at; None: the core does not listen for SSH


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    """A library: its id and name."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A file, folder or link: where it is (`directory` + `name`; `path` is both) and what it is, and, when the
    library was asked, its entry id and content id.

    The directory is a field (not the whole path) so that a listing of 100,000 entries shares one SdPath. The
    fields from `name` to `link_target` are a filesystem's EntryInfo (`Entry.of` builds one from it), kept flat
    rather than nested so that a listing crosses the control socket as rows of plain values (sdcore.api.wire).
    Listings, stats, searches and tags all give this one type.
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
    location_id: int | None = None  # the library's location holding it, when a search found it

    @property
    def path(self) -> SdPath:
        return self.directory.child(self.name) if self.name != "/" else self.directory

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def hidden(self) -> bool:
        return self.name.startswith(".")

    @property
    def looked_at(self) -> bool:
        """False for an entry its folder names but lets no one look at (read permission without search: `ls -l`
        shows `?`): its size, time and mode are not known (0 here), and are shown as not known."""
        return bool(self.mode or self.mtime)

    def to_json(self) -> dict[str, Any]:
        """The entry for scripts: name, path, kind, size, mtime, and the rest where known."""
        data: dict[str, Any] = {"name": self.name, "path": self.path.path, "kind": self.kind, "size": self.size,
                                "mtime": self.mtime, "inode": self.inode}
        if not self.looked_at:
            data["size"] = data["mtime"] = None
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
    same_content: tuple[str, ...] = ()  # paths on this device, then "DEVICE:path" on others (kept catalogues)


@dataclass(frozen=True, slots=True)
class Trashed:
    """An item in the trash: where it was, where it lies in its own device's trash (to restore it), and, when the
    trash is listed, when it went there, what it is and its size."""

    path: SdPath
    in_trash: SdPath
    deleted: float = 0.0  # seconds since the epoch
    kind: str = ""
    size: int = 0


@dataclass(frozen=True, slots=True)
class Emptied:
    """What emptying the trash did: how many items it deleted for good and the bytes it freed."""

    items: int
    bytes: int


@dataclass(frozen=True, slots=True)
class TaggedFile:
    """A file or folder carrying a tag: the tag (the one asked, or one nested below it) and whether the file
    carries it itself or through its content (a copy of a tagged file)."""

    path: SdPath
    tag: str
    via_content: bool


@dataclass(frozen=True, slots=True)
class JobRoute:
    """What a job works on, to tell jobs apart: what it reads or changes, where it writes (a copy's folder, a
    folder made), the new name of a rename, and whether a delete goes to the trash."""

    sources: tuple[SdPath, ...] = ()
    destination: SdPath | None = None
    new_name: str | None = None
    to_trash: bool = False


@dataclass(frozen=True, slots=True)
class LibraryDevice:
    """A device that holds a library: this one, or one it is shared with (online now or not, and when this device
    last synced with it: seconds since the epoch, None when never)."""

    id: str
    name: str
    this_device: bool
    online: bool
    last_sync: float | None
    conflicts: int = 0
    """Operations it signed twice, differently (one number or one stamp for two changes), found here: a device
    restored with its data dir from a backup, or one that lies (the earlier of each is kept, on every device)."""
    direct: bool = True
    """Whether this device syncs with it itself (paired with full trust here); else its changes come through the other
    members, and `online` and `last_sync` say nothing of it."""


@dataclass(frozen=True, slots=True)
class Offline:
    """A device out of reach whose files are listed from the library's catalogue of it, as they were `as_of` (when
    the catalogue was last brought up to date; 0.0: unknown)."""

    device: DeviceInfo
    as_of: float
    volume: str = ""
    """The label of the disk that is out, when the path is on a disk of this device rather than on another device."""

    def describe(self) -> str:
        """`offline, as of 2026-12-07 14:03`; a disk that is out: `offline — PHOTOS-2019, last seen 2026-12-07 14:03`."""
        import time

        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.as_of)) if self.as_of else ""
        if self.volume:
            return f"offline — {self.volume}, last seen {when or 'never'}"
        return "offline, as of " + (when or "an unknown time")


@dataclass(frozen=True, slots=True)
class NoteVersion:
    """A text a file's note held: numbered from 1 (the oldest; `notes.restore` takes the number), the device that
    wrote it and when; `text` None for a note cleared; `current` for the one that holds now."""

    number: int
    text: str | None
    when: float
    device: str
    current: bool


@dataclass(frozen=True, slots=True)
class TagChange:
    """A tag put on (`added`) or taken off a file, or its content (`content`: every copy), by a device, at a time."""

    tag: str
    added: bool
    content: bool
    when: float
    device: str


@dataclass(frozen=True, slots=True)
class Preview:
    """What can be shown of a file beyond its first bytes, made on the device that holds it: a picture (small RGB
    pixels, from the library's thumbnail where it has one), a document's first page as text, a recording's facts."""

    facts: tuple[tuple[str, str], ...] = ()  # (label, text): pixel size, camera, date taken, duration, codecs
    width: int = 0  # of `pixels`
    height: int = 0
    pixels: bytes = b""  # RGB, row by row
    text: str | None = None
    note: str | None = None  # why there is not more to see (a missing program, a refused image)


@dataclass(frozen=True, slots=True)
class UndoStep:
    """A step of the undo history: its number (`undo.undo(id)` undoes it only while it is the last), what it did
    ("rename a.txt to b.txt"), its kind (rename, move, trash, tag, note) and when."""

    id: int
    what: str
    kind: str
    when: float


OWN = (SdPath, DeviceInfo, Health, PairedDevice, AdminKey, Renamed, SharedFolder, LibraryInfo, Entry, EntryDetails, Trashed,
       Emptied, TaggedFile, JobRoute, Offline, NoteVersion, TagChange, LibraryDevice, Preview, UndoStep)  # fmt: skip
"""The records of this module (and SdPath): what attach's hello and a listing need, without the modules of the rest."""


def __getattr__(name: str) -> Any:
    """`RECORDS`: every record class a leaf of the API takes or returns (the wire registers them); built on first
    use, since search and tags are not needed to draw the first screen."""
    if name != "RECORDS":
        raise AttributeError(name)
    from sdcore import dedup, events
    from sdcore.jobs import results
    from sdcore.jobs.manager import JobRecord
    from sdcore.library.locations import Location
    from sdcore.search import Query, SavedSearch
    from sdcore.tags import Tag
    from sdcore.volumes import Volume

    every_event = [c for c in vars(events).values() if isinstance(c, type) and issubclass(c, events.Event)]
    return (
        *OWN, Tag, Location, JobRecord, Query, SavedSearch, dedup.Duplicates,
        dedup.DuplicateGroup, dedup.DuplicateFile, dedup.DeviceCopy, dedup.CrossDeviceGroup, *every_event, results.Outcome, results.TransferResult,
        results.DeletedItem, results.DeleteResult, results.PathResult, results.IndexResult, Volume,
    )
