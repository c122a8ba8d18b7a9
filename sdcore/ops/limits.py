"""What a copy's destination filesystem cannot take, told before anything is written: a read-only mount, files
too big for FAT32, names FAT and exFAT cannot hold (and how a job fits such a name when told to rename it)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Literal, cast

from sdcore.api.text import count
from sdcore.errors import NotFound, SdError
from sdcore.fs.base import AccessDenied, EntryInfo, FileSystem
from sdcore.ops.names import conflict_name
from sdcore.sdpath import display, join
from sdcore.volumes import Limits, fitted_name, limits_at, mount_at, unfit_name

NAME_POLICIES = ("fail", "rename", "skip")
"""What a copy does with names the destination cannot hold: refuse the job, fit them (`a:b` -> `a_b`), leave them."""
SHOWN = 10


class ReadOnlyVolume(SdError):
    """The destination is mounted read-only; nothing was written."""


class TooBigForVolume(SdError):
    """A file is bigger than the destination filesystem holds; nothing was written."""


class UnfitNames(SdError):
    """Names the destination filesystem cannot hold; nothing was written."""


def refuse_read_only(directory: str) -> None:
    """Raise ReadOnlyVolume when `directory` (a local destination folder) is on a read-only mount."""
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return  # not there yet, or not ours to tell: writing says what is wrong
    if read_only:
        mount = mount_at(directory)
        where = mount.point if mount is not None else directory
        raise ReadOnlyVolume(
            f"{display(where)} is mounted read-only: nothing was written; remount it read-write "
            "(`mount -o remount,rw`) or choose another destination"
        )


async def limits_of(fs: FileSystem, directory: str) -> Limits | None:
    """The limits of the filesystem holding `directory` on its device: this machine's mount table tells them, and a
    paired device tells its own (RemoteFS.limits)."""
    from sdcore.fs.local import LocalFS

    if isinstance(fs, LocalFS):
        return await asyncio.to_thread(limits_at, directory)
    told = getattr(fs, "limits", None)  # a RemoteFS; an archive's members are written nowhere
    return None if told is None else cast("Limits | None", await told(directory))


def refuse_too_big(
    directory: str, files: Iterable[tuple[str, int]], limits: Limits | None | Literal["here"] = "here"
) -> Limits | None:
    """The limits of the filesystem of `directory` (as given, else this machine's mount table tells them); raises
    TooBigForVolume when one of `files` (path, size) is bigger than it holds."""
    if limits == "here":
        limits = limits_at(directory)
    if limits is None or limits.max_file is None:
        return limits
    big = [(path, size) for path, size in files if size > limits.max_file]
    if big:
        shown = ", ".join(f"{display(p)} ({size / (1 << 30):.1f} GiB)" for p, size in big[:SHOWN])
        raise TooBigForVolume(
            f"{limits.name} holds files up to {(limits.max_file + 1) >> 30} GiB: {shown} cannot be copied to "
            f"{display(directory)}. Nothing was written; copy it to a disk formatted exFAT, NTFS or ext4"
        )
    return limits


async def unfit_names_in(src_fs: FileSystem, src: str, dst_name: str, info: EntryInfo) -> list[str]:
    """The paths (in the copy, under `dst_name`) of the names of `src`'s tree a DOS-like filesystem cannot hold:
    forbidden characters, a trailing dot or space, or two names of one folder that differ only in case."""
    found = [dst_name] if unfit_name(dst_name) else []
    if not info.is_dir:
        return found
    stack = [(src, dst_name)]
    while stack:
        directory, shown = stack.pop()
        seen: dict[str, str] = {}
        try:
            entries = sorted([e async for batch in src_fs.list_dir(directory) for e in batch], key=_order)
        except (NotFound, AccessDenied):
            continue
        for entry in entries:
            path = f"{shown}/{entry.name}"
            folded = fitted_name(entry.name).casefold()
            if unfit_name(entry.name):
                found.append(path)
            elif folded in seen:
                found.append(f"{path} (clashes with {seen[folded]})")
            seen.setdefault(folded, entry.name)
            if entry.is_dir:
                stack.append((join(directory, entry.name), path))
    return found


def refuse_unfit(limits: Limits, directory: str, names: list[str]) -> None:
    """Raise UnfitNames listing `names`."""
    shown = ", ".join(display(n) for n in names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    raise UnfitNames(
        f"{limits.name} at {display(directory)} cannot hold {count(len(names), 'name')} "
        f"(no : ? \" * < > | \\, no trailing dot or space, no two names differing only in case): {shown}. "
        "Nothing was written; choose --unfit-names rename (a:b becomes a_b) or skip"
    )


def fit_names(names: Iterable[str], policy: str) -> dict[str, str | None]:
    """For the names of one folder (in the copy's order) on a DOS-like filesystem, the name each lands under, or
    None when it is skipped (`policy` "skip"); a name it can hold as it is maps to itself."""
    fitted: dict[str, str | None] = {}
    taken: set[str] = set()
    for name in names:
        fit = fitted_name(name) if unfit_name(name) else name
        if policy == "skip" and (fit != name or fit.casefold() in taken):
            fitted[name] = None
            continue
        n = 1
        candidate = fit
        while candidate.casefold() in taken:
            candidate, n = conflict_name(fit, n), n + 1
        taken.add(candidate.casefold())
        fitted[name] = candidate
    return fitted


def _order(entry: EntryInfo) -> bytes:
    return os.fsencode(entry.name)
