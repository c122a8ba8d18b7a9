"""Delete as a job: to the freedesktop.org trash by default (restorable), or permanently."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from sdcore.errors import NotFound, SdError
from sdcore.fs import trash
from sdcore.fs.local import LocalFS, fs_error
from sdcore.jobs.job import Job, JobContext
from sdcore.jobs.results import DeletedItem, DeleteResult, Outcome
from sdcore.ops.follow import follow_changes
from sdcore.sdpath import SdPath, display


@dataclass
class DeleteJob(Job):
    """Send each path to the trash (or delete it for good with `permanent`)."""

    paths: list[str] = field(default_factory=list)  # canonical SdPath text
    permanent: bool = False
    index: int = 0
    done_files: int = 0
    trashed: list[list[str]] = field(default_factory=list)  # [original, where it lies in the trash]
    vanished: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # for each path, in order: trashed, deleted or vanished

    kind = "delete"
    undoable = True

    def describe(self) -> str:
        names = ", ".join(display(SdPath.parse_canonical(p).name) for p in self.paths[:3])
        return ("delete " if self.permanent else "trash ") + names + (" …" if len(self.paths) > 3 else "")

    def used_paths(self) -> list[str]:
        return self.paths

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        gone: list[SdPath] = []  # what this run trashed or deleted (the last one perhaps partly)
        try:
            return await self._run(ctx, gone)
        except Exception:  # paused, canceled or failed: what was done before shows too
            await follow_changes(ctx.library, entries=gone)
            raise

    async def _run(self, ctx: JobContext, gone: list[SdPath]) -> dict[str, Any]:
        while self.index < len(self.paths):
            path = SdPath.parse_canonical(self.paths[self.index])
            gone.append(path)
            fs = ctx.fs_for(path.device_id)
            ctx.progress(self.index, len(self.paths), display(path.name), "items")
            try:
                if self.permanent:
                    if isinstance(fs, LocalFS):
                        await self._delete_local(ctx, path.path)
                    else:
                        await fs.delete(path.path)
                    self.outcomes.append(Outcome.DELETED.value)
                else:
                    self.trashed.append([path.path, await fs.trash(path.path)])
                    self.outcomes.append(Outcome.TRASHED.value)
            except NotFound:
                where = await self._trashed_before(ctx, fs, path.path)
                if where is not None:  # a run a kill cut off had trashed it
                    self.trashed.append([path.path, where])
                    self.outcomes.append(Outcome.TRASHED.value)
                else:
                    self.vanished.append(path.path)
                    self.outcomes.append(Outcome.VANISHED.value)
            self.index += 1
            await ctx.checkpoint()
        ctx.progress(self.index, len(self.paths), "", "items")
        await follow_changes(ctx.library, entries=gone)
        return self.result().to_dict()

    def result(self) -> DeleteResult:
        """What this deletion did to each of its paths, in order."""
        trashed, vanished = iter(self.trashed), iter(self.vanished)
        items = []
        for text, word in zip(self.paths, self.outcomes, strict=False):
            outcome = Outcome(word)
            if outcome is Outcome.TRASHED:
                original, where = next(trashed)
                items.append(DeletedItem(original, outcome, where))
            else:
                path = next(vanished) if outcome is Outcome.VANISHED else SdPath.parse_canonical(text).path
                items.append(DeletedItem(path, outcome))
        return DeleteResult(tuple(items), self.done_files if self.permanent else 0)

    async def _trashed_before(self, ctx: JobContext, fs: Any, path: str) -> str | None:
        """Where this job put `path` in the trash before it was cut off, if it did."""
        if self.permanent or not isinstance(fs, LocalFS) or not ctx.persistent:
            return None
        began = ctx.library.jobs.get(ctx.job_id).created
        return await asyncio.to_thread(trash.trashed_since, path, began)

    async def _delete_local(self, ctx: JobContext, path: str) -> None:
        """Delete a tree bottom-up in a worker thread, a batch at a time, so pause and cancel stay prompt."""
        while True:
            finished = await asyncio.to_thread(_delete_some, path, 2000, lambda: ctx.should_stop)
            self.done_files += finished[1]
            ctx.progress(
                self.index,
                len(self.paths),
                f"{self.done_files:,} deleted · {display(os.path.basename(path))}",
            )
            if finished[0]:
                return
            await ctx.checkpoint()


def _delete_some(path: str, limit: int, should_stop: Any) -> tuple[bool, int]:
    """Delete up to `limit` entries of the tree at `path`; (whether it is all gone, entries deleted)."""
    count = 0
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFound(f"{display(path)}: no such file or directory") from None
    try:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return True, 1
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                os.unlink(os.path.join(root, name))
                count += 1
            for name in dirs:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.rmdir(full)
                    count += 1
            if count >= limit or should_stop():
                return False, count
        os.rmdir(path)
        return True, count + 1
    except OSError as exc:
        raise fs_error(exc, path) from None


def check_deletable(path: str) -> None:
    """Refuse what nobody means to delete: the root, the home folder."""
    if path in ("/", os.path.expanduser("~")):
        raise SdError(f"refusing to delete {display(path)}")
