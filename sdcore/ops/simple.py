"""Rename and mkdir: instant operations, still run as jobs so they show in the job list like the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdcore.errors import SdError
from sdcore.jobs.job import Job, JobContext
from sdcore.ops.follow import follow_changes
from sdcore.sdpath import SdPath, display, join


def check_name(name: str) -> None:
    """A single name: no slash, not empty, not `.` or `..`, no NUL."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise SdError(f"{display(name)!r} is not a file name (no slashes, not . or ..)")


@dataclass
class RenameJob(Job):
    """Give a file or folder a new name in the same folder."""

    path: str = ""  # canonical SdPath text
    new_name: str = ""

    kind = "rename"
    undoable = True

    def describe(self) -> str:
        return f"rename {display(SdPath.parse_canonical(self.path).name)} to {display(self.new_name)}"

    def used_paths(self) -> list[str]:
        return [self.path]

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        path = SdPath.parse_canonical(self.path)
        target = join(path.parent.path, self.new_name)
        await ctx.fs_for(path.device_id).rename(path.path, target)
        await follow_changes(ctx.library, entries=[path, path.parent.child(self.new_name)])
        return {"path": target}


@dataclass
class MkdirJob(Job):
    """Make a folder (and its missing parents with `parents`)."""

    path: str = ""
    parents: bool = False

    kind = "mkdir"

    def describe(self) -> str:
        return f"mkdir {display(SdPath.parse_canonical(self.path).path)}"

    def used_paths(self) -> list[str]:
        return [self.path]

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        path = SdPath.parse_canonical(self.path)
        await ctx.fs_for(path.device_id).mkdir(path.path, parents=self.parents)
        if self.parents:  # the folders it made may begin higher up: the parent is listed whole
            await follow_changes(ctx.library, [path.parent])
        else:
            await follow_changes(ctx.library, entries=[path])
        return {"path": path.path}
