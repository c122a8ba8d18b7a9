"""Copying out of an archive: the members chosen are unpacked into a folder (of any device) as a job.

Only what the archive's cleaned tree holds can be written, under names that were checked one by one; an archive
that holds a member named to land outside (`../evil`, `/etc/x`, through a link) or that would unpack past the
stated limits is refused before anything is written; links, devices and FIFOs are left out, never made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdcore.errors import AlreadyExists, SdError
from sdcore.fs.archive_path import split
from sdcore.jobs.job import Job, JobContext
from sdcore.jobs.results import TransferResult
from sdcore.ops.follow import follow_changes
from sdcore.ops.limits import UnfitNames, refuse_too_big
from sdcore.ops.names import free_name
from sdcore.ops.simple import check_name
from sdcore.ops.walk import stat_or_none
from sdcore.sdpath import SdPath, display, join
from sdcore.volumes import limits_at

if TYPE_CHECKING:
    from sdcore.library.library import Library

POLICIES = ("fail", "skip", "overwrite", "rename")


def inside_archive(path: SdPath, here: object) -> tuple[str, str] | None:
    """(archive file, path inside it) when `path` is a member of an archive of this device (`here`)."""
    if path.device_id != here:
        return None
    found = split(path.path)
    return found if found is not None and found[1] != "/" else None


PLAIN_FILE_MODE = 0o644
"""A member whose archive keeps no permissions (a zip made on Windows) unpacks as tar and unzip make it."""


@dataclass
class _Item:
    archive: str
    inner: str
    target: str  # on the destination device
    kind: str
    size: int
    mtime: float = 0.0  # the member's, as the archive dates it (0: none)
    mode: int = 0  # the member's permission bits (0: none kept)


def _plan(sources: list[SdPath], targets: list[str], dos_names: str | None = None) -> tuple[list[_Item], list[str]]:
    """What each source unpacks to (folders first), and the members left out (links, devices). `dos_names`: the
    destination is FAT or exFAT, and a name it cannot hold fails the plan, is renamed or is skipped."""
    from sdcore.fs import archive
    from sdcore.ops.limits import fit_names

    unfit: list[str] = []

    def fitted(names: list[str], shown: str) -> dict[str, str | None]:
        if dos_names is None:
            return {name: name for name in names}
        fits = fit_names(names, dos_names)
        unfit.extend(f"{shown}/{name}" for name, fit in fits.items() if fit != name)
        return fits

    items: list[_Item] = []
    left_out: list[str] = []
    for source, target in zip(sources, targets, strict=True):
        found = split(source.path)
        assert found is not None
        path, inner = found
        idx = archive.index(path)
        root = idx.member(inner)
        chosen: list[_Item] = []
        if root is None:
            raise SdError(f"{display(source.path)}: no such member in {display(path)}")
        stack = [(inner, target, root)]
        while stack:
            at, to, member = stack.pop()
            if member.kind == "dir":
                chosen.append(_Item(path, at, to, "dir", 0))
                inside = idx.folder(at)
                for name, fit in fitted(list(inside), to).items():
                    check_name(name)
                    if fit is not None:
                        stack.append((at.rstrip("/") + "/" + name, join(to, fit), idx.info(name, inside[name])))
            elif member.kind == "file":
                chosen.append(_Item(path, at, to, "file", member.size, member.mtime, member.mode & 0o777))
            else:
                left_out.append(f"{display(path)}{display(at)} (a {member.kind})")
        archive.check_extractable(idx, total=sum(i.size for i in chosen))
        # files in the order the archive stores them: a compressed tar unpacks once
        items.extend(sorted(chosen, key=lambda i: (i.kind != "dir", idx.number(i.inner) or 0 if i.kind == "file" else i.target)))
    if unfit and dos_names == "fail":
        raise UnfitNames(
            f"a FAT or exFAT disk cannot hold {len(unfit):,} of the names unpacked (no : ? \" * < > | \\, no trailing dot or "
            f"space, no two differing only in case): {', '.join(display(n) for n in unfit[:5])}. Nothing was written; "
            "choose --unfit-names rename (a:b becomes a_b) or skip"
        )
    return items, left_out


async def extract(
    library: Library, sources: list[SdPath], destination: SdPath, *, on_conflict: str = "fail",
    unfit_names: str = "fail",
) -> str:
    """Start unpacking archive members `sources` into folder `destination`; the job id. A refusal (an archive that
    would escape or explode, a name already there, one a FAT disk cannot hold) comes before any job starts."""
    if on_conflict not in POLICIES:
        raise SdError(f"unknown --on-conflict {on_conflict!r}; use one of {', '.join(POLICIES)}")
    fs = library.context.fs_for(destination.device_id)
    info = await stat_or_none(fs, destination.path)
    if info is not None and info.is_dir:
        targets = [destination.child(s.name).path for s in sources]
    elif len(sources) == 1 and info is None:
        targets = [destination.path]
    else:
        raise SdError(f"{display(destination.path)} is not a folder: members of an archive are unpacked into a folder")
    for i, target in enumerate(targets):
        if await stat_or_none(fs, target) is None:
            continue
        if on_conflict == "fail":
            raise AlreadyExists(f"{display(target)} already exists; choose skip, overwrite or keep both (--on-conflict)")
        if on_conflict == "rename":
            names = {e.name for batch in [b async for b in fs.list_dir(destination.path)] for e in batch}
            targets[i] = destination.child(free_name(sources[i].name, names.__contains__)).path
    dos_names = None
    if destination.device_id == library.context.device_id:
        held = await asyncio.to_thread(limits_at, destination.path)
        dos_names = unfit_names if held is not None and held.dos_names else None
    items, _ = await asyncio.to_thread(_plan, sources, targets, dos_names)  # refused now rather than as a failed job
    if dos_names is not None:
        await asyncio.to_thread(refuse_too_big, destination.path, [(i.target, i.size) for i in items])
    job = ExtractJob([str(s) for s in sources], [str(SdPath(destination.device_id, t)) for t in targets], on_conflict,
                     dos_names=dos_names)  # fmt: skip
    return await library.jobs.start(job)


@dataclass
class ExtractJob(Job):
    """Unpack members of archives into folders; carries on from the last file it finished."""

    sources: list[str] = field(default_factory=list)  # canonical SdPaths inside archives
    targets: list[str] = field(default_factory=list)  # where each lands
    on_conflict: str = "fail"
    dos_names: str | None = None  # a FAT or exFAT destination: what becomes of names it cannot hold
    done: int = 0  # items finished
    done_bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    kind = "extract"

    def describe(self) -> str:
        names = ", ".join(display(SdPath.parse_canonical(s).name) for s in self.sources[:3])
        return f"unpack {names}" + (f" and {len(self.sources) - 3} more" if len(self.sources) > 3 else "")

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        sources = [SdPath.parse_canonical(s) for s in self.sources]
        targets = [SdPath.parse_canonical(t) for t in self.targets]
        from sdcore.fs import archive

        items, left_out = await asyncio.to_thread(_plan, sources, [t.path for t in targets], self.dos_names)
        fs = ctx.fs_for(targets[0].device_id)
        reader = archive.ArchiveFS()
        files = [i for i in items if i.kind == "file"]
        total = sum(i.size for i in files)
        ctx.progress(self.done_bytes, total, "unpacking", unit="bytes")
        for item in items[self.done :]:
            existing = await stat_or_none(fs, item.target)
            if item.kind == "dir":
                if existing is None:
                    await fs.mkdir(item.target)
                elif not existing.is_dir:
                    raise AlreadyExists(f"{display(item.target)} is a file where the archive has a folder")
            elif existing is not None and self.on_conflict == "skip":
                self.skipped.append(item.target)
            elif existing is not None and existing.is_dir:
                raise AlreadyExists(f"{display(item.target)} is a folder where the archive has a file")
            else:
                await fs.write_atomic(
                    item.target, self._counted(ctx, reader.open_read(item.archive + item.inner), total),
                    mtime=item.mtime or None, mode=item.mode or PLAIN_FILE_MODE,  # as tar and unzip leave it
                )
            self.done += 1
            await ctx.checkpoint()
        await follow_changes(ctx.library, entries=targets)
        return TransferResult(
            moved=False, files=len(files) - len(self.skipped), bytes=self.done_bytes, total_files=len(files),
            total_bytes=total, skipped=tuple(self.skipped), unsupported=tuple(left_out),
            targets=tuple(t.path for t in targets),
        ).to_dict()

    async def _counted(self, ctx: JobContext, chunks: AsyncIterator[bytes], total: int) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.done_bytes += len(chunk)
            ctx.progress(self.done_bytes, total)
            yield chunk
