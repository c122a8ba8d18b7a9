"""The plan of a copy or move: where each source lands, which destinations exist, the totals; refusals first."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdcore.api.text import count
from sdcore.errors import NotFound, SdError
from sdcore.fs.base import AccessDenied, EntryInfo, FileSystem, FsError
from sdcore.ops import limits
from sdcore.ops.walk import batches, by_name, pair_of, stat_or_none, walk
from sdcore.sdpath import SdPath, display, join
from sdcore.volumes import Limits

if TYPE_CHECKING:
    from sdcore.library.library import Library

POLICIES = ("fail", "skip", "overwrite", "rename")
SHOWN = 10  # names listed in an error before "and N more"
FAT_MAX = 4 << 30  # the smallest size no filesystem with a limit holds (FAT32: 4 GiB less a byte)


class ConflictError(SdError):
    """Files exist where the copy would write; nothing was written."""


def listed_names(names: list[str]) -> str:
    shown = ", ".join(display(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


@dataclass(frozen=True, slots=True)
class Plan:
    """What a copy or move will write, decided before anything is written."""

    transfers: tuple[tuple[SdPath, SdPath], ...]  # each source and where it lands
    on_conflict: str  # what each conflict gets: skip, overwrite or rename ("fail" refuses them all)
    conflicts: tuple[str, ...]  # destination paths that exist already (in the order met)
    total_files: int  # files and symlinks to write (a folder moved by one rename counts as one)
    total_bytes: int  # bytes to write (none for a rename)


async def plan_transfer(
    fs_for: Callable[[uuid.UUID], FileSystem],
    sources: list[SdPath],
    targets: list[SdPath],
    *,
    on_conflict: str,
    moving: bool,
    unfit_names: str = "fail",
) -> Plan:
    """Count what `sources` -> `targets` writes and find what exists there; refuse before anything is written
    (ConflictError with --on-conflict fail, a file over a directory, too little space, a read-only volume, a file
    too big for its filesystem, names it cannot hold with --unfit-names fail)."""
    if on_conflict not in POLICIES:
        raise SdError(f"unknown conflict policy {on_conflict!r}; use one of {', '.join(POLICIES)}")
    tally = _Tally(on_conflict)
    unfit: list[str] = []
    unfit_at: tuple[Limits, str] | None = None  # the filesystem that cannot hold them, and where
    held_at: dict[tuple[object, str], Limits | None] = {}  # each destination folder's, asked once (a paired device: an RPC)
    for src, dst in zip(sources, targets, strict=True):
        pair = pair_of(fs_for, src, dst, moving)
        try:
            info = await pair.src_fs.stat(src.path)
        except NotFound:
            continue  # reported as vanished when its turn comes
        if pair.local:
            limits.refuse_read_only(os.path.dirname(dst.path))
        existing = await stat_or_none(pair.dst_fs, dst.path)
        await tally.item(pair.src_fs, pair.dst_fs, src.path, dst.path, info, existing, pair.same_fs)
        if not pair.same_fs:  # on this machine or a paired device (which tells its own filesystem's limits)
            directory = os.path.dirname(dst.path)
            if (dst.device_id, directory) not in held_at:
                held_at[dst.device_id, directory] = await limits.limits_of(pair.dst_fs, directory)
            held = limits.refuse_too_big(directory, tally.big, held_at[dst.device_id, directory])
            if held is not None and held.dos_names and unfit_names == "fail":
                unfit += await limits.unfit_names_in(pair.src_fs, src.path, dst.name, info)
                unfit_at = unfit_at or (held, directory)
    if unfit and unfit_at is not None:
        limits.refuse_unfit(*unfit_at, unfit)
    if tally.refusals:
        raise ConflictError(f"nothing was written: {listed_names(tally.refusals)}")
    if tally.conflicts and on_conflict == "fail":
        raise ConflictError(
            f"{count(len(tally.conflicts), 'item')} {'exists' if len(tally.conflicts) == 1 else 'exist'} at the "
            f"destination: {listed_names(sorted(tally.conflicts))}. "
            "Nothing was written; choose --on-conflict skip, overwrite or rename"
        )
    plan = Plan(
        tuple(zip(sources, targets, strict=True)),
        on_conflict,
        tuple(tally.conflicts),
        tally.files,
        tally.bytes,
    )
    check_space(fs_for, plan, moving)
    return plan


@dataclass
class _Tally:
    on_conflict: str
    files: int = 0
    bytes: int = 0
    conflicts: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    big: list[tuple[str, int]] = field(default_factory=list)  # files of 4 GiB or more (FAT32 holds none)

    async def item(
        self,
        src_fs: FileSystem,
        dst_fs: FileSystem,
        src: str,
        dst: str,
        info: EntryInfo,
        existing: EntryInfo | None,
        same_fs: bool,
    ) -> None:
        if info.is_dir:
            if existing is not None and not existing.is_dir:
                self.conflicts.append(dst)
                if self.on_conflict == "skip":
                    return
                existing = None  # overwrite or rename: the whole tree is written anew
            if existing is None:
                if same_fs:
                    self.files += 1
                    return
                async for entry in walk(src_fs, src):
                    if entry.kind in ("file", "symlink"):
                        self.files += 1
                        self.bytes += entry.size if entry.kind == "file" else 0
                        if entry.kind == "file" and entry.size >= FAT_MAX:
                            self.big.append((entry.name, entry.size))
                return
            children = await by_name(dst_fs, dst)
            try:
                async for batch in batches(src_fs, src):
                    for child in batch:
                        await self.item(
                            src_fs,
                            dst_fs,
                            join(src, child.name),
                            join(dst, child.name),
                            child,
                            children.get(child.name),
                            same_fs,
                        )
            except AccessDenied:  # this user may not read it: the copy reports it when its turn comes
                pass
            return
        if info.kind not in ("file", "symlink"):
            return
        if existing is not None:
            self.conflicts.append(dst)
            if existing.is_dir and self.on_conflict == "overwrite":
                self.refusals.append(f"{display(dst)} is a directory; a file never replaces a directory (use rename)")
            if self.on_conflict == "skip":
                return
        self.files += 1
        if info.kind == "file" and not same_fs:
            self.bytes += info.size
            if info.size >= FAT_MAX:
                self.big.append((src, info.size))


def check_space(fs_for: Callable[[uuid.UUID], FileSystem], plan: Plan, moving: bool) -> None:
    """Refuse at once when the destination filesystem cannot hold the bytes to copy."""
    needed: list[str] = []
    for src, dst in plan.transfers:
        pair = pair_of(fs_for, src, dst, moving)
        if pair.local and not pair.same_fs:
            needed.append(os.path.dirname(dst.path))
    if not needed or not plan.total_bytes:
        return
    directory = needed[0]
    try:
        vfs = os.statvfs(directory)
    except OSError:
        return
    free = vfs.f_bavail * vfs.f_frsize
    if vfs.f_blocks and plan.total_bytes > free:  # no blocks: no size to tell (/proc, sysfs); writing will say
        raise SdError(
            f"not enough space at {display(directory)}: the copy needs {plan.total_bytes:,} bytes, "
            f"{free:,} are free. Nothing was written; free some space and try again"
        )


async def plan_targets(
    library: Library, sources: list[SdPath], destination: SdPath, *, moving: bool, duplicate: bool = False
) -> list[SdPath]:
    """Where each source lands, as `cp` decides it; refuses a bad destination before any job starts.

    `duplicate`: a file copied onto itself is allowed (the conflict policy "rename" gives it a numbered name).
    """
    fs_for, here = library.context.fs_for, library.context.device_id
    if not sources:
        raise SdError("nothing to copy: give at least one source")
    dst_fs = fs_for(destination.device_id)
    try:
        dst_info = await stat_or_none(dst_fs, destination.path)
    except FsError:
        dst_info = None  # ENOTDIR and the like: the parent checks below say what is wrong
    infos = [await fs_for(s.device_id).stat(s.path) for s in sources]  # NotFound names a missing source
    shown = display(destination.path)
    if dst_info is not None and dst_info.is_dir:
        targets = [destination.child(s.name) for s in sources]
    elif len(sources) > 1:
        if dst_info is None:
            raise NotFound(
                f"{shown} does not exist; several sources go into an existing folder (`sd mkdir {shown}`)"
            )
        raise SdError(f"{shown} is a file where a directory is expected (several sources go into a folder)")
    else:
        if dst_info is not None and infos[0].is_dir:
            raise SdError(f"{shown} is a file where a directory is expected")
        parent = await file_in_the_way(dst_fs, destination.parent.path)
        if parent is None:
            raise NotFound(
                f"{display(destination.parent.path)} does not exist; make it first (`sd mkdir -p`)"
            )
        if not parent.is_dir:
            raise SdError(f"{display(destination.parent.path)} is a file where a directory is expected")
        targets = [destination]
    seen: dict[str, SdPath] = {}
    for source, info, target in zip(sources, infos, targets, strict=True):
        if target.path in seen:
            raise SdError(
                f"{display(source.path)} and {display(seen[target.path].path)} would both land at {display(target.path)}"
            )
        seen[target.path] = source
        if source.device_id != target.device_id:
            continue
        src_real, dst_real = (
            _real(source.path, source.device_id == here),
            _real(target.path, source.device_id == here),
        )
        if src_real == dst_real and not (duplicate and not info.is_dir):  # a folder would merge into itself
            raise SdError(f"{display(source.path)} would be {'moved' if moving else 'copied'} onto itself")
        if info.is_dir and dst_real.startswith(src_real.rstrip("/") + "/"):
            raise SdError(
                f"cannot {'move' if moving else 'copy'} the folder {display(source.path)} into itself"
            )
    return targets


def _real(path: str, local: bool) -> str:
    """The path with its parent's symlinks resolved (the final name is kept: a symlink is copied as one)."""
    if not local:
        return path
    head, name = os.path.split(path)
    return join(os.path.realpath(head), name)


async def file_in_the_way(fs: FileSystem, path: str) -> EntryInfo | None:
    """The entry at `path`; when a file stands where one of its folders should be, say which."""
    try:
        return await stat_or_none(fs, path)
    except FsError:
        head = path
        while head != "/":
            head = os.path.dirname(head)
            info = await stat_or_none(fs, head)
            if info is not None and not info.is_dir:
                raise SdError(f"{display(head)} is a file where a directory is expected") from None
        raise
