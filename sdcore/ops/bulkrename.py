"""Bulk rename: many files of a device given new names in their folders as one job, every clash refused before any
rename, swaps and cycles (a→b, b→a) carried through temporary names."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sdcore.errors import AlreadyExists, SdError
from sdcore.jobs.job import Job, JobContext
from sdcore.ops.follow import follow_changes
from sdcore.ops.simple import check_name
from sdcore.ops.walk import stat_or_none
from sdcore.sdpath import SdPath, display

TEMP_PREFIX = ".sd-rename-"
"""Names a bulk rename passes its files through (hidden, and unlikely to be anyone's)."""
CHECKPOINT_EVERY = 200
"""Renames between two checkpoints (where a pause takes effect)."""


async def plan(fs_for: Any, renames: Sequence[tuple[SdPath, str]]) -> list[tuple[SdPath, str]]:
    """The renames that change a name, checked: each new name a plain name, each file there, no two files to one
    name, no name taken by a file that keeps it. Raises the first problem, in one line, before anything is renamed."""
    changes = [(path, new) for path, new in renames if new != path.name]
    for path, new in changes:
        try:
            check_name(new)
        except SdError:
            raise SdError(
                f"{display(new)!r} is not a file name for {display(path.name)}: no slash, no NUL, not empty, not . or .."
            ) from None
    leaving = {path for path, _ in changes}
    landing: dict[SdPath, SdPath] = {}
    for path, new in changes:
        target = path.parent.child(new)
        if target in landing:
            raise AlreadyExists(
                f"{display(landing[target].name)} and {display(path.name)} would both be named {display(new)}; "
                "give them different names"
            )
        landing[target] = path
        fs = fs_for(path.device_id)
        await fs.stat(path.path)  # NotFound names the one that is gone
        if target not in leaving and await stat_or_none(fs, target.path) is not None:
            raise AlreadyExists(
                f"{display(new)} already exists in {display(path.parent.path)}; choose another name for {display(path.name)}"
            )
    return changes


@dataclass
class BulkRenameJob(Job):
    """Rename each path to its new name in its folder: every one to a temporary name first, then each to its own,
    so that a name another of them leaves (a swap, a cycle) is free when it is taken."""

    paths: list[str] = field(default_factory=list)  # canonical SdPath text
    names: list[str] = field(default_factory=list)  # the new name of each
    temps: list[str] = field(default_factory=list)  # the temporary name of each
    done: int = 0  # renames done of the 2 × len(paths): each to its temporary name, then each to its new one

    kind = "bulk-rename"
    undoable = True

    def describe(self) -> str:
        if len(self.paths) == 1:
            return f"rename {display(SdPath.parse_canonical(self.paths[0]).name)} to {display(self.names[0])}"
        return f"rename {len(self.paths)} files"

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        paths = [SdPath.parse_canonical(p) for p in self.paths]
        if not self.temps:
            self.temps = [f"{TEMP_PREFIX}{secrets.token_hex(6)}" for _ in paths]
            await ctx.checkpoint()
        temps = [p.parent.child(t) for p, t in zip(paths, self.temps, strict=True)]
        news = [p.parent.child(n) for p, n in zip(paths, self.names, strict=True)]
        steps = [*zip(paths, temps, strict=True), *zip(temps, news, strict=True)]
        try:
            for n, (source, target) in enumerate(steps):
                if n < self.done:
                    continue
                fs = ctx.fs_for(source.device_id)
                ctx.progress(n, len(steps), display(target.name), "renames")
                if await stat_or_none(fs, source.path) is not None or await stat_or_none(fs, target.path) is None:
                    await fs.rename(source.path, target.path)  # refuses to replace anything
                # else: renamed before a cut-off run could say so
                self.done = n + 1
                if self.done % CHECKPOINT_EVERY == 0:  # a rename done since is recognised when the job carries on
                    await ctx.checkpoint()
        except (SdError, OSError):
            await self._put_back(ctx, paths, temps, news)
            raise
        finally:
            await follow_changes(ctx.library, entries=[*paths, *news])
        return {"paths": [p.path for p in news]}

    async def cleanup(self, ctx: JobContext) -> None:
        """Canceled: the files get their old names back."""
        paths = [SdPath.parse_canonical(p) for p in self.paths]
        temps = [p.parent.child(t) for p, t in zip(paths, self.temps, strict=False)]
        await self._put_back(ctx, paths, temps, [p.parent.child(n) for p, n in zip(paths, self.names, strict=True)])

    async def _put_back(self, ctx: JobContext, paths: list[SdPath], temps: list[SdPath], news: list[SdPath]) -> None:
        """A run that stops half way (a new name taken since it was checked) gives back their old names to all the
        files: those it left under a temporary name and those it gave their new name already (all or nothing)."""
        for n, (path, temp, new) in enumerate(zip(paths, temps, news, strict=False)):
            fs = ctx.fs_for(path.device_id)
            renamed = self.done > len(paths) + n  # its second step, from the temporary name to the new one, was done
            try:
                if await stat_or_none(fs, temp.path) is not None:
                    await fs.rename(temp.path, path.path)
                elif renamed and await stat_or_none(fs, new.path) is not None:
                    await fs.rename(new.path, path.path)
            except (SdError, OSError):
                continue  # its old name is taken now: it keeps the name it has, which the job's error names
