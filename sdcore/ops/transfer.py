"""Copy and move as resumable jobs: planned first (sdcore.ops.plan), then a sorted walk of each source, file by
file through the engine (sdcore.ops.engine), with a cursor in the checkpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import stat
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sdcore.errors import NotFound, SdError
from sdcore.fs.base import AccessDenied, EntryInfo, FileSystem
from sdcore.fs.local import fs_error, set_mode
from sdcore.fs.noreplace import rename_noreplace
from sdcore.jobs.job import Job, JobContext, pack_state, unpack_state
from sdcore.jobs.results import Outcome, TransferResult
from sdcore.ops import localcopy
from sdcore.ops.engine import Action, Engine, delete_quietly, discard_partial
from sdcore.ops.follow import follow_changes
from sdcore.ops.limits import NAME_POLICIES, fit_names, limits_of
from sdcore.ops.names import conflict_name, temp_name
from sdcore.ops.plan import POLICIES, ConflictError, listed_names, plan_transfer
from sdcore.ops.walk import Pair, by_name, pair_of, sorted_listing, stat_or_none
from sdcore.sdpath import SdPath, display, join
from sdcore.volumes import Limits, mount_points, mounts_holding

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

__all__ = ["POLICIES", "ConflictError", "MoveJob", "TransferJob", "cursor_status", "discard_stale_partials"]

class VolumeGone(SdError):
    """A disk the copy reads or writes went away (unplugged, unmounted); resumable once it is back."""


CHECKPOINT_EVERY = (
    2.0  # seconds between checkpoints; a resume recognises the copies made since by size and mtime
)
BATCH_FILES = 256  # local small files copied per thread hop
BATCH_BYTES = 64 << 20
PROGRESS_EVERY = 0.05
STALE_AFTER = 7 * 24 * 3600  # seconds a stopped copy keeps its partial files (swept when a copy starts)
CHANGED = "changed while it was copied"
DIFFERS = "was copied, but the copy did not match it (BLAKE3) and was discarded"


def _enc(parts: tuple[str, ...] | list[str]) -> tuple[bytes, ...]:
    return tuple(os.fsencode(p) for p in parts)


def cursor_status(rel: tuple[str, ...], cursor: list[str] | None) -> str:
    """Where `rel` stands against the cursor (the last finished entry of a sorted walk): todo, done or inside."""
    if cursor is None:
        return "todo"
    r, c = _enc(rel), _enc(cursor)
    if r == c:
        return "done"
    if c[: len(r)] == r:
        return "inside"
    return "done" if r < c else "todo"


@dataclass
class TransferJob(Job):
    """Copy (or, in MoveJob, move) each of `sources` to the matching path of `targets`."""

    sources: list[str] = field(default_factory=list)  # canonical SdPath text
    targets: list[str] = field(default_factory=list)  # where each source lands, canonical SdPath text
    on_conflict: str = "fail"
    verify: bool = False
    unfit_names: str = "fail"  # names the destination cannot hold (FAT): fail the job, rename or skip them
    phase: str = "plan"  # plan | transfer
    index: int = 0  # the source in progress
    cursor: list[str] | None = None  # last finished entry of that source, as path components
    conflicts: list[str] = field(default_factory=list)  # destination paths that existed when planned
    renames: dict[str, str] = field(default_factory=dict)  # conflicting path -> the free name chosen
    total_bytes: int = 0
    total_files: int = 0
    done_bytes: int = 0
    done_files: int = 0
    begun_bytes: int = 0  # of done_bytes, the part of an unfinished file kept for the next run to carry on
    skipped: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    changed: list[list[str]] = field(
        default_factory=list
    )  # [src, dst, why] not copied this run (written to meanwhile, a copy that did not match): retried on resume
    unsupported: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # sources this user may not read: left out, reported
    problems: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # directories whose listing changed (index, events)
    partials: dict[str, list[float]] = field(
        default_factory=dict
    )  # resumable temp -> [size, mtime] of its source
    unlinking: list[str] = field(default_factory=list)  # moved files' sources: copied, synced, counted
    merged: list[str] = field(default_factory=list)  # targets that were folders already when planned (merged into)
    mounts: list[str] = field(default_factory=list)  # mount points of this device the copy reads or writes under

    kind = "copy"
    moving: ClassVar[bool] = False
    MAX_TOUCHED: ClassVar[int] = 5000

    def describe(self) -> str:
        what = "move" if self.moving else "copy"
        names = ", ".join(display(SdPath.parse_canonical(s).name) for s in self.sources[:3])
        more = f" and {len(self.sources) - 3} more" if len(self.sources) > 3 else ""
        return f"{what} {names}{more}"

    def used_paths(self) -> list[str]:
        return [*self.sources, *self.targets]

    # -- the run --------------------------------------------------------------------------

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        self.ctx = ctx
        self._engine = Engine(self)
        self._conflict_set = set(self.conflicts)
        self._fitting: str | None = None  # the --unfit-names policy while the destination is FAT or exFAT
        self._limits: dict[tuple[uuid.UUID, str], Limits | None] = {}  # by destination folder: asked once a run
        self._last_checkpoint = time.monotonic()
        self._last_progress = 0.0
        if self.on_conflict not in POLICIES:
            raise SdError(f"unknown conflict policy {self.on_conflict!r}; use one of {', '.join(POLICIES)}")
        if self.unfit_names not in NAME_POLICIES:
            raise SdError(f"unknown --unfit-names {self.unfit_names!r}; use one of {', '.join(NAME_POLICIES)}")
        gone = self._volume_gone()
        if gone is not None:  # never a copy into the empty folder a disk is mounted on
            raise VolumeGone(f"the volume at {display(gone)} is not mounted: plug the disk in (mount it there) and resume")
        if self.phase == "transfer" and not self.moving and await self._begun_target_gone():
            self._start_over()
        if self.phase == "plan":
            _sweep_soon(ctx.library)
            await self._plan(ctx)
            self.phase = "transfer"
            self.report(force=True)
            await ctx.checkpoint()
        self.problems = []
        try:
            await self._transfer_all()
        except SdError:
            gone = self._volume_gone()
            if gone is None:
                raise
            raise VolumeGone(
                f"the volume went away ({display(gone)} is not mounted any more): {self.done_files:,} of "
                f"{self.total_files:,} files are done; plug the disk in, then `sd job resume {ctx.job_id}` carries on"
            ) from None
        self.done_bytes, self.begun_bytes = self.done_bytes - self.begun_bytes, 0  # that file was not copied after all
        self.report(force=True)
        await follow_changes(ctx.library, self.touched, entries=self._changed_entries())
        if self.changed or self.problems:
            why = [c[2] if len(c) > 2 else CHANGED for c in self.changed]  # older checkpoints: [src, dst]
            lines = [f"{display(c[0])} {w}" for c, w in zip(self.changed, why, strict=True)] + self.problems
            raise SdError(
                f"{len(lines)} {'file was' if len(lines) == 1 else 'files were'} not {'moved' if self.moving else 'copied'}: "
                f"{listed_names(lines)}"
                + ("; resume the job to copy them again" if self.changed else "")
            )
        return self.result().to_dict()

    async def _transfer_all(self) -> None:
        await self._unlink_moved()  # what a run cut off had counted as moved but not removed yet
        retry, self.changed = self.changed, []
        for src_path, dst_path, *_ in retry:
            await self._retry(src_path, dst_path)
        while self.index < len(self.sources):
            src = SdPath.parse_canonical(self.sources[self.index])
            dst = SdPath.parse_canonical(self.targets[self.index])
            await self._transfer_root(src, dst)
            self.index += 1
            self.cursor = None
            await self.checkpoint()

    def _volume_gone(self) -> str | None:
        """A mount point this copy works under that is not mounted now (a disk unplugged), or None."""
        if not self.mounts:
            return None
        mounted = mount_points()
        return next((point for point in self.mounts if point not in mounted), None)

    def result(self) -> TransferResult:
        """What this copy or move did."""
        return TransferResult(
            moved=self.moving,
            files=self.done_files,
            bytes=self.done_bytes,
            total_files=self.total_files,
            total_bytes=self.total_bytes,
            skipped=tuple(_unique(self.skipped)),
            vanished=tuple(_unique(self.vanished)),
            unsupported=tuple(_unique(self.unsupported)),
            unreadable=tuple(_unique(self.unreadable)),
            verified=self.verify or self.moving,
            targets=tuple(SdPath.parse_canonical(t).path for t in self.targets),
        )

    async def cleanup(self, ctx: JobContext) -> None:
        """A canceled copy keeps the files it finished; the partial files kept for resuming go."""
        await self._unlink_moved()
        if self.partials and self.targets:
            try:
                fs = ctx.fs_for(SdPath.parse_canonical(self.targets[0]).device_id)
                for tmp in list(self.partials):
                    await discard_partial(fs, tmp)
            except SdError:
                pass  # the device is out of reach: the sweep when a copy starts removes them later

    # -- helpers ------------------------------------------------------------------------------

    def _changed_entries(self) -> list[SdPath]:
        """The names this job made (or, moving, removed) in the folders it was given: they are announced by name."""
        targets = [SdPath.parse_canonical(t) for t in self.targets]
        renamed = [t.parent.child(os.path.basename(self.renames[t.path])) for t in targets if t.path in self.renames]
        sources = [SdPath.parse_canonical(s) for s in self.sources] if self.moving else []
        return targets + renamed + sources

    def _fs(self, path: SdPath) -> FileSystem:
        return self.ctx.fs_for(path.device_id)

    def _pair(self, src: SdPath, dst: SdPath) -> Pair:
        return pair_of(self.ctx.fs_for, src, dst, self.moving)

    def _touch(self, directory: str, device: uuid.UUID) -> None:
        """Note a directory whose listing changed: a plain path on this device, sd:// text on another."""
        if device != self.ctx.device_id:
            directory = str(SdPath(device, directory))
        if len(self.touched) < self.MAX_TOUCHED and directory not in self.touched[-8:]:
            self.touched.append(directory)

    def report(self, name: str = "", force: bool = False) -> None:
        """Publish progress (at most every PROGRESS_EVERY seconds unless `force`)."""
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            message = f"{self.done_files:,}/{self.total_files:,} files"
            self.ctx.progress(
                self.done_bytes, self.total_bytes, message + (f" · {display(name)}" if name else ""), "bytes"
            )

    async def checkpoint(self, force: bool = False) -> None:
        """Save the state (at most every CHECKPOINT_EVERY seconds unless `force`); where a pause takes effect."""
        ctx = self.ctx
        if force or ctx.should_stop or time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY:
            self.report(force=True)
            await ctx.checkpoint()
            self._last_checkpoint = time.monotonic()

    async def _begun_target_gone(self) -> bool:
        """Whether a destination this copy had begun to write was removed while it was paused."""
        begun = self.targets[: self.index + (1 if self.cursor else 0)]
        for text in begun:
            dst = SdPath.parse_canonical(text)
            if await stat_or_none(self._fs(dst), dst.path) is None:
                return True
        return False

    def _start_over(self) -> None:
        """Plan and copy everything again: resuming would skip what was copied before and is gone now."""
        fresh = type(self)(self.sources, self.targets, self.on_conflict, self.verify, self.unfit_names)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def _finish(self, rel: tuple[str, ...]) -> None:
        self.cursor = list(rel)

    # -- planning: count, find conflicts, refuse before writing anything ------------------------

    async def _plan(self, ctx: JobContext) -> None:
        plan = await plan_transfer(
            ctx.fs_for,
            [SdPath.parse_canonical(t) for t in self.sources],
            [SdPath.parse_canonical(t) for t in self.targets],
            on_conflict=self.on_conflict,
            moving=self.moving,
            unfit_names=self.unfit_names,
        )
        self.conflicts = list(plan.conflicts)
        self._conflict_set = set(plan.conflicts)
        for text in self.targets:  # what was there before is not this job's to take away (an undo of the move)
            target = SdPath.parse_canonical(text)
            existing = await stat_or_none(ctx.fs_for(target.device_id), target.path)
            if existing is not None and existing.is_dir:
                self.merged.append(target.path)
        here = [SdPath.parse_canonical(p) for p in self.used_paths()]
        held = mounts_holding([p.path for p in here if p.device_id == ctx.device_id])
        self.mounts = sorted({m.point for m in held if m is not None and m.point != "/"})
        self.total_files, self.total_bytes = plan.total_files, plan.total_bytes

    # -- transfer ---------------------------------------------------------------------------

    async def _transfer_root(self, src: SdPath, dst: SdPath) -> None:
        src_fs, dst_fs = self._fs(src), self._fs(dst)
        if cursor_status((), self.cursor) == "done":
            return
        folder = (dst.device_id, os.path.dirname(dst.path))
        if folder not in self._limits:  # here, or as a paired device tells its own
            self._limits[folder] = await limits_of(self._pair(src, dst).dst_fs, folder[1])
        held = self._limits[folder]
        self._fitting = self.unfit_names if held is not None and held.dos_names else None
        if self._fitting is not None:
            fitted = fit_names([dst.name], self._fitting)[dst.name]
            if fitted is None:
                self.skipped.append(dst.path)
                return
            dst = dst.parent.child(fitted)
        try:
            info = await src_fs.stat(src.path)
        except NotFound:
            self.vanished.append(src.path)
            return
        listing = {dst.name: e} if (e := await stat_or_none(dst_fs, dst.path)) else {}
        self._touch(os.path.dirname(dst.path), dst.device_id)
        if self.moving:
            self._touch(os.path.dirname(src.path), src.device_id)
        await self._entries(
            self._pair(src, dst),
            os.path.dirname(src.path),
            os.path.dirname(dst.path),
            (),
            [info],
            listing,
            root=(src.name, dst.name),
        )

    async def _entries(
        self,
        w: Pair,
        src_dir: str,
        dst_dir: str,
        rel_dir: tuple[str, ...],
        infos: list[EntryInfo],
        listing: dict[str, EntryInfo],
        root: tuple[str, str] | None = None,
    ) -> None:
        """Handle the sorted entries of one source directory (or the one root entry)."""
        batch: list[Action] = []
        batch_bytes = 0
        fitted = fit_names([i.name for i in infos], self._fitting) if self._fitting and root is None else {}
        for info in infos:
            name = info.name if root is None else root[0]
            dst_name = info.name if root is None else root[1]
            rel = (*rel_dir, name) if root is None else ()
            status = cursor_status(rel, self.cursor)
            if status == "done":
                continue
            if fitted:
                dst_name = fitted[name] or ""
                if not dst_name:  # a name the destination cannot hold, left out as asked
                    self.skipped.append(join(src_dir, name))
                    if not info.is_dir:
                        self.total_files -= 1
                        self.total_bytes -= info.size if info.kind == "file" else 0
                    if not batch:
                        self._finish(rel)
                    continue
            src, dst = join(src_dir, name), join(dst_dir, dst_name)
            if info.kind in ("file", "symlink"):
                action = await self._decide(w, rel, src, dst, info, listing)
                if action is not None:
                    batch.append(action)
                    batch_bytes += info.size
                elif not batch:
                    self._finish(rel)  # skipped, with nothing before it still to write
                if len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES:
                    await self._flush(w, batch)
                    batch, batch_bytes = [], 0
                continue
            await self._flush(w, batch)
            batch, batch_bytes = [], 0
            if info.is_dir:
                await self._directory(w, rel, src, dst, info, listing.get(dst_name), status)
            else:
                self.unsupported.append(src)
                self._finish(rel)
        await self._flush(w, batch)

    async def _decide(
        self,
        w: Pair,
        rel: tuple[str, ...],
        src: str,
        dst: str,
        info: EntryInfo,
        listing: dict[str, EntryInfo],
    ) -> Action | None:
        """What to do with one file or symlink: an action, or None when it is skipped."""
        existing = listing.get(os.path.basename(dst))
        if existing is None:
            return Action(rel, src, dst, info, replace=False)
        if dst not in self._conflict_set and _same_entry(existing, info):
            return Action(rel, src, dst, info, replace=True, reuse=True)
        policy = self.on_conflict
        if policy == "skip":
            self.skipped.append(dst)
            self._unlink_temp(w, dst)
            return None
        if policy == "overwrite":
            if existing.is_dir:
                self.problems.append(f"{display(dst)} is a directory; a file never replaces a directory")
                return None
            return Action(rel, src, dst, info, replace=True)
        if policy == "rename":
            target = await self._free_name(w, dst, listing)
            again = listing.get(os.path.basename(target))
            if again is not None and _same_entry(again, info):
                return Action(rel, src, target, info, replace=True, reuse=True)
            return Action(rel, src, target, info, replace=False)
        self.problems.append(
            f"{display(dst)} appeared at the destination during the copy; it was left as it is"
        )
        return None

    async def _free_name(self, w: Pair, dst: str, listing: dict[str, EntryInfo]) -> str:
        """The name chosen for a conflicting path, recorded in the checkpoint before anything is written."""
        if dst in self.renames:
            return self.renames[dst]
        directory, name = os.path.split(dst)
        for n in range(1, 10_000):
            candidate = conflict_name(name, n)
            if candidate not in listing and await stat_or_none(w.dst_fs, join(directory, candidate)) is None:
                self.renames[dst] = join(directory, candidate)
                await self.checkpoint(force=True)
                return self.renames[dst]
        raise SdError(f"no free name near {display(dst)}")

    async def _flush(self, w: Pair, batch: list[Action], advance: bool = True) -> None:
        """Write a batch of files; with `advance`, move the cursor past each one that is finished."""
        if not batch:
            return
        failure: SdError | None = None
        for action, outcome, error in await self._engine.write(w, batch):
            if outcome not in (Outcome.STOPPED, Outcome.FAILED) and self.partials:  # a resumable write carries on
                self.partials.pop(temp_name(action.dst, self.ctx.job_id), None)
            if outcome in (Outcome.COPIED, Outcome.MOVED):
                self.done_files += 1
            elif outcome is Outcome.VANISHED:
                self.vanished.append(action.src)
                self.total_files -= 1
                self.total_bytes -= action.info.size
            elif outcome in (Outcome.CHANGED, Outcome.DIFFERS):
                self.changed.append([action.src, action.dst, CHANGED if outcome is Outcome.CHANGED else DIFFERS])
            elif outcome is Outcome.PROBLEM:
                self.problems.append(str(error))
            elif outcome is Outcome.UNSUPPORTED:
                self.unsupported.append(action.src)
                self.total_files -= 1
            elif outcome is Outcome.UNREADABLE:
                self.unreadable.append(action.src)
                self.total_files -= 1
                self.total_bytes -= action.info.size
            elif outcome is Outcome.STOPPED:
                break
            else:
                failure = error
                break
            if advance:
                self._finish(action.rel)
        self.report(batch[-1].rel[-1] if batch[-1].rel else batch[-1].info.name)
        if self.unlinking:  # counted in a checkpoint first: after a kill the count and the removals agree
            await self.checkpoint(force=True)
            await self._unlink_moved()
        if failure is not None:
            await self.checkpoint(force=True)
            said = str(failure)
            raise SdError(
                f"{said}{'' if said.endswith(('.', '?', '!')) else '.'} {self.done_files:,} of {self.total_files:,}"
                f" files are done; fix what it says, then resume the job (`sd job resume {self.ctx.job_id}`, or r in"
                " the explorer's jobs screen) to carry on"
            ) from None
        await self.checkpoint()

    async def _unlink_moved(self) -> None:
        def unlink_all(sources: list[str]) -> None:
            for src in sources:
                localcopy.unlink_quietly(src)

        await asyncio.to_thread(unlink_all, self.unlinking)
        self.unlinking = []

    async def _directory(
        self,
        w: Pair,
        rel: tuple[str, ...],
        src: str,
        dst: str,
        info: EntryInfo,
        existing: EntryInfo | None,
        status: str,
    ) -> None:
        dst = self.renames.get(dst, dst)
        fresh = False
        if status == "todo":
            if existing is not None and not existing.is_dir:
                if self.on_conflict == "skip" or (
                    dst not in self._conflict_set and self.on_conflict == "fail"
                ):
                    if self.on_conflict == "skip":
                        self.skipped.append(dst)
                    else:
                        self.problems.append(f"{display(dst)} is a file where a directory is expected")
                    self._finish(rel)
                    return
                if self.on_conflict == "overwrite":
                    await w.dst_fs.delete(dst)
                else:
                    dst = await self._free_name(w, dst, {})
                existing = None
            if existing is None and w.same_fs:
                try:
                    await self._rename_whole(src, dst)
                except NotFound:
                    self.vanished.append(src)
                self._finish(rel)
                await self.checkpoint()
                return
        try:
            infos = await sorted_listing(w.src_fs, src)  # before making anything: the source may be gone
        except NotFound:
            self.vanished.append(src)
            self._finish(rel)
            return
        except AccessDenied:  # the planner could not count what is inside either
            self.unreadable.append(src)
            self._finish(rel)
            return
        if status == "todo" and existing is None:
            await _mkdir(w, dst)
            fresh = True
        elif status != "todo" and await stat_or_none(w.dst_fs, dst) is None:
            await _mkdir(w, dst)
            fresh = True
        self._touch(dst, w.dst_device)
        if self.moving:
            self._touch(src, w.src_device)
        listing = {} if fresh else await by_name(w.dst_fs, dst)
        await self._entries(w, src, dst, rel, infos, listing)
        await self._finish_directory(w, src, dst, info)
        self._finish(rel)
        await self.checkpoint()

    async def _rename_whole(self, src: str, dst: str) -> None:
        try:
            await asyncio.to_thread(rename_noreplace, src, dst)  # a slow or network disk must not stall the loop
        except OSError as exc:
            raise fs_error(exc, dst if exc.errno == errno.EEXIST else src) from None
        self.done_files += 1

    async def _finish_directory(self, w: Pair, src: str, dst: str, info: EntryInfo) -> None:
        """Give a copied directory its mode and mtime; a moved one leaves its emptied source behind no more."""
        if w.local:

            def finish() -> None:
                try:
                    os.chmod(dst, stat.S_IMODE(info.mode))
                    os.utime(dst, (info.mtime, info.mtime))
                except OSError:
                    pass
                if self.moving:
                    try:
                        os.rmdir(src)
                    except OSError:
                        pass  # something was skipped or appeared: the source directory stays

            await asyncio.to_thread(finish)
        elif self.moving:
            if not await by_name(w.src_fs, src):
                await delete_quietly(w.src_fs, src)

    async def _retry(self, src: str, dst: str) -> None:
        """Try again a file that changed while it was copied."""
        src_path = SdPath.parse_canonical(self.sources[min(self.index, len(self.sources) - 1)])
        dst_path = SdPath.parse_canonical(self.targets[min(self.index, len(self.targets) - 1)])
        w = dataclasses.replace(self._pair(src_path, dst_path), same_fs=False)
        info = await stat_or_none(w.src_fs, src)
        if info is None:
            self.vanished.append(src)
            return
        existing = await stat_or_none(w.dst_fs, dst)
        action = Action((), src, dst, info, replace=existing is not None and not existing.is_dir)
        await self._flush(w, [action], advance=False)

    def _unlink_temp(self, w: Pair, dst: str) -> None:
        if w.local:
            localcopy.unlink_quietly(temp_name(dst, self.ctx.job_id))


class MoveJob(TransferJob):
    """Move: a rename on one filesystem; elsewhere copy, verify by BLAKE3, then delete, file by file."""

    kind = "move"
    undoable = True
    moving: ClassVar[bool] = True


async def _mkdir(w: Pair, path: str) -> None:
    await w.dst_fs.mkdir(path)
    if w.local:
        set_mode(path, 0o700)  # writable while it fills; its own mode comes when it is finished


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _same_entry(a: EntryInfo, b: EntryInfo) -> bool:
    """Is `a` a finished copy of `b` (same kind, size and mtime; a symlink with the same target)?"""
    if a.kind != b.kind:
        return False
    if a.kind == "symlink":
        return a.link_target == b.link_target
    return a.size == b.size and a.mtime == b.mtime


def _sweep_soon(library: Library) -> None:
    """Discard stale partial files in the background: a device out of reach must not hold up a new copy."""

    async def sweep() -> None:
        try:
            await discard_stale_partials(library)
        except Exception:  # the library closed meanwhile, say: the next copy sweeps again
            log.warning("stale partial files were not swept", exc_info=True)

    task = asyncio.get_running_loop().create_task(sweep())
    _sweeps.add(task)
    task.add_done_callback(_sweeps.discard)


_sweeps: set[asyncio.Task[None]] = set()


async def discard_stale_partials(library: Library, older_than: float = STALE_AFTER) -> None:
    """Delete the partial files kept by copies and moves stopped (paused, failed, interrupted) for longer
    than `older_than` seconds, and those a canceled one could not delete then (its device out of reach).
    A stopped job stays resumable: those files are sent again from their first byte. A device out of
    reach keeps them until a later sweep.
    """
    rows = (
        library.read()
        .execute(
            "SELECT id, name, checkpoint, updated FROM jobs WHERE name IN ('copy', 'move') AND"
            " (state = 'canceled' OR state IN ('paused', 'interrupted', 'failed') AND updated < ?)",
            (time.time() - older_than,),
        )
        .fetchall()
    )
    for job_id, kind, checkpoint, updated in rows:
        job = cast(TransferJob, unpack_state(kind, checkpoint))
        if not job.partials or not job.targets:
            continue
        try:
            fs = library.context.fs_for(SdPath.parse_canonical(job.targets[0]).device_id)
            for tmp in list(job.partials):
                if library.jobs.is_running(job_id):
                    break
                await discard_partial(fs, tmp)
                del job.partials[tmp]
        except SdError:
            pass
        with library.write() as db:  # unless the job ran meanwhile
            db.execute(
                "UPDATE jobs SET checkpoint = ? WHERE id = ? AND updated = ?",
                (pack_state(job), job_id, updated),
            )


