"""File operations as jobs: copy, move, delete (to the trash), rename, mkdir; `sdcore.ops.copy(library, ...)`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.jobs.job import Job
from sdcore.library import volume_locations
from sdcore.ops import bulkrename
from sdcore.ops.bulkrename import BulkRenameJob
from sdcore.ops.delete import DeleteJob, check_deletable
from sdcore.ops.extract import ExtractJob, extract, inside_archive
from sdcore.ops.limits import NAME_POLICIES
from sdcore.ops.plan import POLICIES, ConflictError, file_in_the_way, plan_targets
from sdcore.ops.simple import MkdirJob, RenameJob, check_name
from sdcore.ops.transfer import MoveJob, TransferJob, cursor_status
from sdcore.ops.walk import stat_or_none
from sdcore.sdpath import SdPath, display, join
from sdcore.sync.catalogue import refuse_offline

if TYPE_CHECKING:
    from sdcore.library.library import Library

CopyJob = TransferJob

__all__ = [
    "BulkRenameJob",
    "POLICIES",
    "ConflictError",
    "CopyJob",
    "DeleteJob",
    "ExtractJob",
    "MkdirJob",
    "MoveJob",
    "RenameJob",
    "copy",
    "cursor_status",
    "delete",
    "extract",
    "inside_archive",
    "mkdir",
    "move",
    "plan_targets",
    "rename",
    "rename_many",
]


async def copy(
    library: Library,
    sources: list[SdPath],
    destination: SdPath,
    *,
    on_conflict: str = "fail",
    verify: bool = False,
    unfit_names: str = "fail",
) -> str:
    """Start copying `sources` to `destination` (into it when it is a folder); returns the job id.
    `unfit_names`: what becomes of names the destination cannot hold (FAT): fail, rename or skip.

    The same copy paused or cut off before is carried on instead (its destination folder exists now).
    """
    await _refuse_offline(library, [*sources, destination])
    again = await _resume_transfer(library, TransferJob, sources, destination, on_conflict, verify)
    if again is not None:
        return again
    targets = await plan_targets(library, sources, destination, moving=False, duplicate=on_conflict == "rename")
    return await library.jobs.start(_job(TransferJob, sources, targets, on_conflict, verify, unfit_names))


async def move(
    library: Library,
    sources: list[SdPath],
    destination: SdPath,
    *,
    on_conflict: str = "fail",
    unfit_names: str = "fail",
) -> str:
    """Start moving `sources` to `destination` (or carry on the same move paused before); returns the job id."""
    await _refuse_offline(library, [*sources, destination])
    again = await _resume_transfer(library, MoveJob, sources, destination, on_conflict, True)
    if again is not None:
        return again
    targets = await plan_targets(library, sources, destination, moving=True)
    return await library.jobs.start(_job(MoveJob, sources, targets, on_conflict, True, unfit_names))


async def delete(library: Library, paths: list[SdPath], *, permanent: bool = False) -> str:
    """Start sending `paths` to the trash (or deleting them for good); returns the job id.

    The same deletion paused or cut off before is carried on instead (some of its paths are gone now).
    """
    await _refuse_offline(library, paths)
    texts = [str(p) for p in paths]
    again = await _resume_same(library, DeleteJob, lambda j: (j.paths, j.permanent) == (texts, permanent))
    if again is not None:
        return again
    for path in paths:
        check_deletable(path.path)
        await library.context.fs_for(path.device_id).stat(path.path)  # NotFound says which one is missing
    return await library.jobs.start(DeleteJob([str(p) for p in paths], permanent=permanent))


async def rename(library: Library, path: SdPath, new_name: str) -> str:
    """Start renaming `path` to `new_name` in the same folder; returns the job id."""
    check_name(new_name)
    await _refuse_offline(library, [path])
    fs = library.context.fs_for(path.device_id)
    await fs.stat(path.path)
    target = join(path.parent.path, new_name)
    if target != path.path and await stat_or_none(fs, target) is not None:  # refused here: no failed job
        raise AlreadyExists(f"{display(target)} already exists; choose another name or move it away first")
    return await library.jobs.start(RenameJob(str(path), new_name))


async def rename_many(library: Library, renames: list[tuple[SdPath, str]]) -> str | None:
    """Start giving each path its new name in its folder, as one job; returns its id (None: no name changes).
    Every clash is refused before the job starts, and so before any file is renamed."""
    await _refuse_offline(library, [p for p, _ in renames])
    changes = await bulkrename.plan(library.context.fs_for, renames)
    if not changes:
        return None
    return await library.jobs.start(BulkRenameJob([str(p) for p, _ in changes], [n for _, n in changes]))


async def mkdir(library: Library, path: SdPath, *, parents: bool = False) -> str:
    """Start making a folder; returns the job id. What would fail is refused before any job starts."""
    await _refuse_offline(library, [path])
    fs = library.context.fs_for(path.device_id)
    existing = await file_in_the_way(fs, path.path)
    if existing is not None and not (parents and existing.is_dir):
        raise AlreadyExists(f"{display(path.path)} already exists" + ("" if existing.is_dir else " (a file)"))
    if not parents and await file_in_the_way(fs, path.parent.path) is None:
        raise NotFound(f"{display(path.parent.path)} does not exist; `sd mkdir -p` makes missing parents too")
    return await library.jobs.start(MkdirJob(str(path), parents))


async def _refuse_offline(library: Library, paths: list[SdPath]) -> None:
    """Refuse, saying what to do, a path on a device out of reach or on a disk that is not plugged in."""
    await refuse_offline(library, (p.device_id for p in paths))
    here = [p.path for p in paths if p.device_id == library.context.device_id]
    if any(loc.volume_id for loc in library.locations.list()):
        await asyncio.to_thread(volume_locations.refuse_offline, library, here)


async def _resume_same(library: Library, cls: type[Job], same: Callable[[Any], bool]) -> str | None:
    """Resume the newest paused or interrupted job of this kind that `same` recognises; its id, or None."""
    for record in library.jobs.list(states=("paused", "interrupted")):
        if record.kind == cls.kind and same(library.jobs.stored(record.id)):
            await library.jobs.resume(record.id)
            return record.id
    return None


async def _resume_transfer(
    library: Library,
    cls: type[TransferJob],
    sources: list[SdPath],
    destination: SdPath,
    on_conflict: str,
    verify: bool,
) -> str | None:
    """Carry on a paused copy or move of these sources to this destination, planned as `cp` plans it."""
    texts = [str(s) for s in sources]
    landings = [[str(destination.child(s.name)) for s in sources]]  # into the destination folder
    if len(sources) == 1:
        landings.append([str(destination)])  # as the destination (a new name)

    def same(job: TransferJob) -> bool:
        return (job.sources, job.on_conflict, job.verify) == (texts, on_conflict, verify) and job.targets in landings

    return await _resume_same(library, cls, same)


def _job(
    cls: type[TransferJob],
    sources: list[SdPath],
    targets: list[SdPath],
    on_conflict: str,
    verify: bool,
    unfit_names: str,
) -> TransferJob:
    if on_conflict not in POLICIES:
        raise SdError(f"unknown --on-conflict {on_conflict!r}; use one of {', '.join(POLICIES)}")
    if unfit_names not in NAME_POLICIES:
        raise SdError(f"unknown --unfit-names {unfit_names!r}; use one of {', '.join(NAME_POLICIES)}")
    return cls(
        sources=[str(s) for s in sources],
        targets=[str(t) for t in targets],
        on_conflict=on_conflict,
        verify=verify,
        unfit_names=unfit_names,
    )
