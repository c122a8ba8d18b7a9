"""What a finished job did (a file operation, an indexing), as typed records decoded from the dicts the jobs
table stores."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    """What became of one file or item of an operation (the values are the words stored and shown)."""

    COPIED = "copied"
    MOVED = "moved"
    SKIPPED = "skipped"
    REPLACED = "replaced"
    TRASHED = "trashed"
    DELETED = "deleted"
    VANISHED = "vanished"
    CHANGED = "changed"  # written to while it was copied: not copied this run, retried on resume
    DIFFERS = "differs"  # the copy did not match its source (BLAKE3): discarded, retried on resume
    PROBLEM = "problem"  # left as it is (something appeared at the destination meanwhile)
    UNSUPPORTED = "unsupported"  # a special file, or a symlink another device cannot make
    UNREADABLE = "unreadable"  # this user may not read it (permission denied): left out, the rest goes on
    STOPPED = "stopped"  # a pause or cancel came in the middle of it
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TransferResult:
    """A finished copy or move: how much was written, what was left out, where each source landed."""

    moved: bool
    files: int
    bytes: int
    total_files: int
    total_bytes: int
    skipped: tuple[str, ...] = ()  # destination paths that existed and were kept (--on-conflict skip)
    vanished: tuple[str, ...] = ()  # sources gone before their turn
    unsupported: tuple[str, ...] = ()  # sources not copied (special files)
    unreadable: tuple[str, ...] = ()  # sources this user may not read (files, or whole folders): not copied
    verified: bool = False  # every copy was checked against its source by BLAKE3
    targets: tuple[str, ...] = ()  # where each source landed (paths on the destination device)

    @property
    def verb(self) -> str:
        return "moved" if self.moved else "copied"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, moved: bool = False) -> TransferResult:
        return cls(
            moved=moved,
            files=int(data.get("files", 0)),
            bytes=int(data.get("bytes", 0)),
            total_files=int(data.get("total_files", data.get("files", 0))),
            total_bytes=int(data.get("total_bytes", data.get("bytes", 0))),
            skipped=tuple(data.get("skipped", ())),
            vanished=tuple(data.get("vanished", ())),
            unsupported=tuple(data.get("unsupported", ())),
            unreadable=tuple(data.get("unreadable", ())),
            verified=bool(data.get("verified", False)),
            targets=tuple(data.get("targets", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored form (and `sd cp --json`'s "result")."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "total_files": self.total_files,
            "total_bytes": self.total_bytes,
            "skipped": list(self.skipped),
            "vanished": list(self.vanished),
            "unsupported": list(self.unsupported),
            "unreadable": list(self.unreadable),
            "verified": self.verified,
            "targets": list(self.targets),
        }


CopyResult = TransferResult
MoveResult = TransferResult


@dataclass(frozen=True, slots=True)
class DeletedItem:
    """One path given to a deletion: trashed (and where it lies in its device's trash), deleted or vanished."""

    path: str  # as given, on its own device ("" in a row from before paths were stored, for a deleted one)
    outcome: Outcome
    trashed_at: str | None = None  # its path in the trash of its own device, to restore it from


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A finished deletion: one item per path, in the order the paths were given."""

    items: tuple[DeletedItem, ...]
    deleted: int = 0  # entries deleted for good (local trees counted entry by entry)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeleteResult:
        trashed = iter([(str(p), str(where)) for p, where in data.get("trashed", ())])
        vanished = [str(p) for p in data.get("vanished", ())]
        outcomes = data.get("outcomes")
        if outcomes is None:  # a row from before outcomes were stored: the trashed, then the vanished
            outcomes = [Outcome.TRASHED.value] * len(data.get("trashed", ())) + [Outcome.VANISHED.value] * len(vanished)
        paths = data.get("paths")
        gone = iter(vanished)
        items = []
        for n, word in enumerate(outcomes):
            outcome = Outcome(word)
            if outcome is Outcome.TRASHED:
                path, where = next(trashed, ("", ""))
                items.append(DeletedItem(path, outcome, where))
                continue
            path = next(gone, "") if outcome is Outcome.VANISHED else ""
            items.append(DeletedItem(str(paths[n]) if paths and n < len(paths) else path, outcome))
        return cls(tuple(items), int(data.get("deleted", 0)))

    def to_dict(self) -> dict[str, Any]:
        """The stored form (and `sd rm --json`'s "result")."""
        return {
            "trashed": [[i.path, i.trashed_at] for i in self.items if i.trashed_at is not None],
            "deleted": self.deleted,
            "vanished": [i.path for i in self.items if i.outcome is Outcome.VANISHED],
            "outcomes": [i.outcome.value for i in self.items],
            "paths": [i.path for i in self.items],
        }


@dataclass(frozen=True, slots=True)
class PathResult:
    """A finished rename or mkdir: the path it made."""

    path: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PathResult:
        return cls(str(data.get("path", "")))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path}


@dataclass(frozen=True, slots=True)
class IndexResult:
    """A finished indexing of a location (or of part of it): what it walked and what changed in the library."""

    dirs: int = 0
    found: int = 0  # entries walked
    added: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    errors: int = 0  # entries that could not be read
    hashed: int = 0  # files given a content id
    described: int = 0  # media files whose metadata was read

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexResult:
        return cls(**{f: int(data.get(f, 0)) for f in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, int]:
        """The stored form (and `sd index --json`'s counts)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


OpResult = TransferResult | DeleteResult | PathResult


def decode_result(kind: str, data: Any) -> Any:
    """The typed result of a finished job of `kind` from what the jobs table stores; other kinds' as stored."""
    if not isinstance(data, dict):
        return data
    if kind in ("copy", "move", "extract"):
        return TransferResult.from_dict(data, moved=kind == "move")
    if kind == "delete":
        return DeleteResult.from_dict(data)
    if kind in ("rename", "mkdir"):
        return PathResult.from_dict(data)
    if kind == "index":
        return IndexResult.from_dict(data)
    return data
