"""Copy and move as resumable jobs: a sorted walk of each source, file by file, with a cursor in the checkpoint."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs.base import EntryInfo, FileSystem
from sdcore.fs.local import LocalFS, fs_error
from sdcore.jobs.job import Job, JobContext, pack_state, unpack_state
from sdcore.ops import localcopy
from sdcore.ops.follow import follow_changes
from sdcore.ops.names import conflict_name, temp_name
from sdcore.sdpath import SdPath, display, join

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)

POLICIES = ("fail", "skip", "overwrite", "rename")
CHECKPOINT_EVERY = (
    2.0  # seconds between checkpoints; a resume recognises the copies made since by size and mtime
)
BATCH_FILES = 256  # local small files copied per thread hop
BATCH_BYTES = 64 << 20
RESUMABLE_FROM = 8 << 20  # files this big go to a device that can resume a write (RemoteFS) resumably
PROGRESS_EVERY = 0.05
STALE_AFTER = 7 * 24 * 3600  # seconds a stopped copy keeps its partial files (swept when a copy starts)
SHOWN = 10  # names listed in an error before "and N more"
CHANGED = "changed while it was copied"
DIFFERS = "was copied, but the copy did not match it (BLAKE3) and was discarded"


class ConflictError(SdError):
    """Files exist where the copy would write; nothing was written."""


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


def listed_names(names: list[str]) -> str:
    shown = ", ".join(display(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


@dataclass
class _Action:
    """One file or symlink to write."""

    rel: tuple[str, ...]
    src: str
    dst: str
    info: EntryInfo
    replace: bool
    reuse: bool = False  # a matching copy is there already (ours, from before a crash)


@dataclass
class TransferJob(Job):
    """Copy (or, in MoveJob, move) each of `sources` to the matching path of `targets`."""

    sources: list[str] = field(default_factory=list)  # canonical SdPath text
    targets: list[str] = field(default_factory=list)  # where each source lands, canonical SdPath text
    on_conflict: str = "fail"
    verify: bool = False
    phase: str = "plan"  # plan | transfer
    index: int = 0  # the source in progress
    cursor: list[str] | None = None  # last finished entry of that source, as path components
    conflicts: list[str] = field(default_factory=list)  # destination paths that existed when planned
    renames: dict[str, str] = field(default_factory=dict)  # conflicting path -> the free name chosen
    total_bytes: int = 0
    total_files: int = 0
    done_bytes: int = 0
    done_files: int = 0
    skipped: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    changed: list[list[str]] = field(
        default_factory=list
    )  # [src, dst, why] not copied this run (written to meanwhile, a copy that did not match): retried on resume
    unsupported: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)  # directories whose listing changed (index, events)
    partials: dict[str, list[float]] = field(
        default_factory=dict
    )  # resumable temp -> [size, mtime] of its source
    unlinking: list[str] = field(default_factory=list)  # moved files' sources: copied, synced, counted

    kind = "copy"
    moving: ClassVar[bool] = False
    MAX_TOUCHED: ClassVar[int] = 5000

    def describe(self) -> str:
        what = "move" if self.moving else "copy"
        names = ", ".join(display(SdPath.parse_canonical(s).name) for s in self.sources[:3])
        more = f" and {len(self.sources) - 3} more" if len(self.sources) > 3 else ""
        return f"{what} {names}{more}"

    # -- the run --------------------------------------------------------------------------

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        self._ctx = ctx
        self._conflict_set = set(self.conflicts)
        self._last_checkpoint = time.monotonic()
        self._last_progress = 0.0
        if self.on_conflict not in POLICIES:
            raise SdError(f"unknown conflict policy {self.on_conflict!r}; use one of {', '.join(POLICIES)}")
        if self.phase == "transfer" and not self.moving and await self._begun_target_gone():
            self._start_over()
        if self.phase == "plan":
            _sweep_soon(ctx.library)
            await self._plan()
            self.phase = "transfer"
            self._report(force=True)
            await ctx.checkpoint()
        self.problems = []
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
            await self._checkpoint()
        self._report(force=True)
        await follow_changes(ctx.library, self.touched, entries=self._changed_entries())
        if self.changed or self.problems:
            why = [c[2] if len(c) > 2 else CHANGED for c in self.changed]  # older checkpoints: [src, dst]
            lines = [f"{display(c[0])} {w}" for c, w in zip(self.changed, why, strict=True)] + self.problems
            raise SdError(
                f"{len(lines)} file(s) were not {'moved' if self.moving else 'copied'}: {listed_names(lines)}"
                + ("; resume the job to copy them again" if self.changed else "")
            )
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {
            "files": self.done_files,
            "bytes": self.done_bytes,
            "total_files": self.total_files,
            "total_bytes": self.total_bytes,
            "skipped": _unique(self.skipped),
            "vanished": _unique(self.vanished),
            "unsupported": _unique(self.unsupported),
            "verified": self.verify or self.moving,
            "targets": [SdPath.parse_canonical(t).path for t in self.targets],
        }

    async def cleanup(self, ctx: JobContext) -> None:
        """A canceled copy keeps the files it finished; the partial files kept for resuming go."""
        await self._unlink_moved()
        if self.partials and self.targets:
            try:
                fs = ctx.core.fs_for(SdPath.parse_canonical(self.targets[0]).device_id)
                for tmp in list(self.partials):
                    await _discard_partial(fs, tmp)
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
        return self._ctx.core.fs_for(path.device_id)

    def _local_pair(self, src: SdPath, dst: SdPath) -> bool:
        return isinstance(self._fs(src), LocalFS) and isinstance(self._fs(dst), LocalFS)

    def _same_fs(self, src: SdPath, dst: SdPath) -> bool:
        if not self._local_pair(src, dst):
            return False
        try:
            return os.lstat(src.path).st_dev == os.lstat(os.path.dirname(dst.path)).st_dev
        except OSError:
            return False

    def _touch(self, directory: str, device: uuid.UUID) -> None:
        """Note a directory whose listing changed: a plain path on this device, sd:// text on another."""
        if device != self._ctx.core.device.id:
            directory = str(SdPath(device, directory))
        if len(self.touched) < self.MAX_TOUCHED and directory not in self.touched[-8:]:
            self.touched.append(directory)

    def _report(self, name: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            message = f"{self.done_files:,}/{self.total_files:,} files"
            self._ctx.progress(
                self.done_bytes, self.total_bytes, message + (f" · {display(name)}" if name else ""), "bytes"
            )

    async def _checkpoint(self, force: bool = False) -> None:
        ctx = self._ctx
        if force or ctx.should_stop or time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY:
            self._report(force=True)
            await ctx.checkpoint()
            self._last_checkpoint = time.monotonic()

    async def _begun_target_gone(self) -> bool:
        """Whether a destination this copy had begun to write was removed while it was paused."""
        begun = self.targets[: self.index + (1 if self.cursor else 0)]
        for text in begun:
            dst = SdPath.parse_canonical(text)
            if await _stat_or_none(self._fs(dst), dst.path) is None:
                return True
        return False

    def _start_over(self) -> None:
        """Plan and copy everything again: resuming would skip what was copied before and is gone now."""
        fresh = type(self)(self.sources, self.targets, self.on_conflict, self.verify)
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def _finish(self, rel: tuple[str, ...]) -> None:
        self.cursor = list(rel)

    # -- planning: count, find conflicts, refuse before writing anything ------------------------

    async def _plan(self) -> None:
        self.total_bytes = self.total_files = 0
        conflicts: list[str] = []
        refusals: list[str] = []
        for src_text, dst_text in zip(self.sources, self.targets, strict=True):
            src, dst = SdPath.parse_canonical(src_text), SdPath.parse_canonical(dst_text)
            src_fs, dst_fs = self._fs(src), self._fs(dst)
            try:
                info = await src_fs.stat(src.path)
            except NotFound:
                continue  # reported as vanished when its turn comes
            existing = await _stat_or_none(dst_fs, dst.path)
            same_fs = self.moving and self._same_fs(src, dst)
            await self._plan_item(
                src_fs, dst_fs, src.path, dst.path, info, existing, same_fs, conflicts, refusals
            )
        self.conflicts = conflicts
        self._conflict_set = set(conflicts)
        if refusals:
            raise ConflictError(f"nothing was written: {listed_names(refusals)}")
        if conflicts and self.on_conflict == "fail":
            raise ConflictError(
                f"{len(conflicts)} path(s) exist at the destination: {listed_names(sorted(conflicts))}. Nothing was written; "
                "choose --on-conflict skip, overwrite or rename"
            )
        await self._check_space()

    async def _plan_item(
        self,
        src_fs: FileSystem,
        dst_fs: FileSystem,
        src: str,
        dst: str,
        info: EntryInfo,
        existing: EntryInfo | None,
        same_fs: bool,
        conflicts: list[str],
        refusals: list[str],
    ) -> None:
        if info.is_dir:
            if existing is not None and not existing.is_dir:
                conflicts.append(dst)
                if self.on_conflict == "skip":
                    return
                existing = None  # overwrite or rename: the whole tree is written anew
            if existing is None:
                if same_fs:
                    self.total_files += 1
                    return
                async for entry in _walk(src_fs, src):
                    if entry.kind in ("file", "symlink"):
                        self.total_files += 1
                        self.total_bytes += entry.size if entry.kind == "file" else 0
                return
            children = await _listing(dst_fs, dst)
            async for batch in _batches(src_fs, src):
                for child in batch:
                    await self._plan_item(
                        src_fs,
                        dst_fs,
                        join(src, child.name),
                        join(dst, child.name),
                        child,
                        children.get(child.name),
                        same_fs,
                        conflicts,
                        refusals,
                    )
            return
        if info.kind not in ("file", "symlink"):
            return
        if existing is not None:
            conflicts.append(dst)
            if existing.is_dir and self.on_conflict == "overwrite":
                refusals.append(
                    f"{display(dst)} is a directory; a file never replaces a directory (use rename)"
                )
            if self.on_conflict == "skip":
                return
        self.total_files += 1
        if info.kind == "file" and not same_fs:
            self.total_bytes += info.size

    async def _check_space(self) -> None:
        """Refuse at once when the destination filesystem cannot hold the bytes to copy."""
        needed: dict[str, int] = {}
        for src_text, dst_text in zip(self.sources, self.targets, strict=True):
            src, dst = SdPath.parse_canonical(src_text), SdPath.parse_canonical(dst_text)
            if self._local_pair(src, dst) and not (self.moving and self._same_fs(src, dst)):
                needed[os.path.dirname(dst.path)] = 0
        if not needed or not self.total_bytes:
            return
        directory = next(iter(needed))
        try:
            vfs = os.statvfs(directory)
        except OSError:
            return
        free = vfs.f_bavail * vfs.f_frsize
        if vfs.f_blocks and self.total_bytes > free:  # no blocks: no size to tell (/proc, sysfs); writing will say
            raise SdError(
                f"not enough space at {display(directory)}: the copy needs {self.total_bytes:,} bytes, "
                f"{free:,} are free. Nothing was written; free some space and try again"
            )

    # -- transfer ---------------------------------------------------------------------------

    async def _transfer_root(self, src: SdPath, dst: SdPath) -> None:
        src_fs, dst_fs = self._fs(src), self._fs(dst)
        if cursor_status((), self.cursor) == "done":
            return
        try:
            info = await src_fs.stat(src.path)
        except NotFound:
            self.vanished.append(src.path)
            return
        listing = {dst.name: e} if (e := await _stat_or_none(dst_fs, dst.path)) else {}
        self._touch(os.path.dirname(dst.path), dst.device_id)
        if self.moving:
            self._touch(os.path.dirname(src.path), src.device_id)
        same_fs = self.moving and self._same_fs(src, dst)
        ctx = _Walk(src_fs, dst_fs, self._local_pair(src, dst), same_fs, src.device_id, dst.device_id)
        await self._entries(
            ctx,
            os.path.dirname(src.path),
            os.path.dirname(dst.path),
            (),
            [info],
            listing,
            root=(src.name, dst.name),
        )

    async def _entries(
        self,
        w: _Walk,
        src_dir: str,
        dst_dir: str,
        rel_dir: tuple[str, ...],
        infos: list[EntryInfo],
        listing: dict[str, EntryInfo],
        root: tuple[str, str] | None = None,
    ) -> None:
        """Handle the sorted entries of one source directory (or the one root entry)."""
        batch: list[_Action] = []
        batch_bytes = 0
        for info in infos:
            name = info.name if root is None else root[0]
            dst_name = info.name if root is None else root[1]
            rel = (*rel_dir, name) if root is None else ()
            status = cursor_status(rel, self.cursor)
            if status == "done":
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
        w: _Walk,
        rel: tuple[str, ...],
        src: str,
        dst: str,
        info: EntryInfo,
        listing: dict[str, EntryInfo],
    ) -> _Action | None:
        """What to do with one file or symlink: an action, or None when it is skipped."""
        existing = listing.get(os.path.basename(dst))
        if existing is None:
            return _Action(rel, src, dst, info, replace=False)
        if dst not in self._conflict_set and _same_entry(existing, info):
            return _Action(rel, src, dst, info, replace=True, reuse=True)
        policy = self.on_conflict
        if policy == "skip":
            self.skipped.append(dst)
            self._unlink_temp(w, dst)
            return None
        if policy == "overwrite":
            if existing.is_dir:
                self.problems.append(f"{display(dst)} is a directory; a file never replaces a directory")
                return None
            return _Action(rel, src, dst, info, replace=True)
        if policy == "rename":
            target = await self._free_name(w, dst, listing)
            again = listing.get(os.path.basename(target))
            if again is not None and _same_entry(again, info):
                return _Action(rel, src, target, info, replace=True, reuse=True)
            return _Action(rel, src, target, info, replace=False)
        self.problems.append(
            f"{display(dst)} appeared at the destination during the copy; it was left as it is"
        )
        return None

    async def _free_name(self, w: _Walk, dst: str, listing: dict[str, EntryInfo]) -> str:
        """The name chosen for a conflicting path, recorded in the checkpoint before anything is written."""
        if dst in self.renames:
            return self.renames[dst]
        directory, name = os.path.split(dst)
        for n in range(1, 10_000):
            candidate = conflict_name(name, n)
            if candidate not in listing and await _stat_or_none(w.dst_fs, join(directory, candidate)) is None:
                self.renames[dst] = join(directory, candidate)
                await self._checkpoint(force=True)
                return self.renames[dst]
        raise SdError(f"no free name near {display(dst)}")

    async def _flush(self, w: _Walk, batch: list[_Action], advance: bool = True) -> None:
        """Write a batch of files; with `advance`, move the cursor past each one that is finished."""
        if not batch:
            return
        if w.local:
            if not w.same_fs:
                await self._note_partials(batch)
            results = await asyncio.to_thread(self._copy_local_batch, batch, w.same_fs)
        else:
            results = []
            for one in batch:
                results.append(await self._copy_generic(w, one))
                if results[-1][1] in ("stopped", "error") or self._ctx.should_stop:
                    break
        failure: SdError | None = None
        for action, outcome, error in results:
            if outcome not in ("stopped", "error") and self.partials:  # a resumable write carries on
                self.partials.pop(temp_name(action.dst, self._ctx.job_id), None)
            if outcome == "ok":
                self.done_files += 1
            elif outcome == "vanished":
                self.vanished.append(action.src)
                self.total_files -= 1
                self.total_bytes -= action.info.size
            elif outcome in ("changed", "differs"):
                self.changed.append([action.src, action.dst, CHANGED if outcome == "changed" else DIFFERS])
            elif outcome == "problem":
                self.problems.append(str(error))
            elif outcome == "unsupported":
                self.unsupported.append(action.src)
                self.total_files -= 1
            elif outcome == "stopped":
                break
            else:
                failure = error
                break
            if advance:
                self._finish(action.rel)
        self._report(batch[-1].rel[-1] if batch[-1].rel else batch[-1].info.name)
        if self.unlinking:  # counted in a checkpoint first: after a kill the count and the removals agree
            await self._checkpoint(force=True)
            await self._unlink_moved()
        if failure is not None:
            await self._checkpoint(force=True)
            raise SdError(
                f"{failure}. {self.done_files:,} of {self.total_files:,} files are done; fix what it "
                f"says, then `sd job resume {self._ctx.job_id}` carries on"
            ) from None
        await self._checkpoint()

    async def _unlink_moved(self) -> None:
        def unlink_all(sources: list[str]) -> None:
            for src in sources:
                localcopy.unlink_quietly(src)

        await asyncio.to_thread(unlink_all, self.unlinking)
        self.unlinking = []

    async def _note_partials(self, batch: list[_Action]) -> None:
        """Before a big local file is begun, checkpoint that its temp file may be carried on by a later run."""
        noted = False
        for a in batch:
            if a.info.kind == "file" and a.info.size > localcopy.UNNAMED_UP_TO and not a.reuse:
                tmp = temp_name(a.dst, self._ctx.job_id)
                if self.partials.get(tmp) != [a.info.size, a.info.mtime]:
                    localcopy.unlink_quietly(tmp)  # begun for another version of the source: start again
                    self.partials[tmp] = [a.info.size, a.info.mtime]
                    noted = True
        if noted:
            await self._checkpoint(force=True)

    def _copy_local_batch(
        self, batch: list[_Action], same_fs: bool
    ) -> list[tuple[_Action, str, SdError | None]]:
        """In a worker thread: copy (or move) files one after another; stops at a pause, cancel or failure."""
        ctx = self._ctx
        results: list[tuple[_Action, str, SdError | None]] = []
        moved_sources: list[str] = []
        job_id = ctx.job_id

        def on_bytes(n: int) -> None:
            self.done_bytes += n
            self._report()

        for a in batch:
            if ctx.should_stop:
                break
            counted = self.done_bytes
            tmp = temp_name(a.dst, job_id)
            size = a.info.size if a.info.kind == "file" else 0
            try:
                if same_fs:
                    localcopy.place(a.src, a.dst, a.replace)  # a move within one filesystem: a rename
                    results.append((a, "ok", None))
                    continue
                if a.reuse and not (self.moving or self.verify):
                    self.done_bytes += size
                elif (
                    a.reuse
                    and a.info.kind == "file"
                    and localcopy.hash_file(a.src) == localcopy.hash_file(a.dst)
                ):
                    self.done_bytes += size
                elif a.info.kind == "symlink":
                    localcopy.copy_symlink(a.src, a.dst, tmp, replace=a.replace)
                else:
                    partial = self.partials.get(tmp)
                    localcopy.copy_file(
                        a.src,
                        a.dst,
                        tmp,
                        replace=a.replace,
                        verify=self.verify or self.moving,
                        on_bytes=on_bytes,
                        should_stop=lambda: ctx.should_stop,
                        partial_of=(int(partial[0]), partial[1]) if partial else None,
                    )
                results.append((a, "ok", None))
                if self.moving:
                    moved_sources.append(a.src)
            except localcopy.Stopped:
                self.done_bytes = counted  # a file kept in part is counted whole when the copy carries on
                break
            except localcopy.SourceVanished as exc:
                localcopy.unlink_quietly(tmp)
                results.append((a, "vanished", exc))
            except localcopy.SourceChanged as exc:
                results.append((a, "changed", exc))
            except localcopy.CopyDiffers as exc:
                results.append((a, "differs", exc))
            except AlreadyExists as exc:
                results.append((a, "problem", exc))
            except SdError as exc:
                results.append((a, "error", exc))
                break
            except FileNotFoundError as exc:
                results.append((a, "vanished", fs_error(exc, a.src)))  # type: ignore[arg-type]
            except OSError as exc:
                results.append((a, "error", fs_error(exc, a.dst)))  # type: ignore[arg-type]
                break
        if moved_sources:
            _sync_filesystem(os.path.dirname(batch[0].dst))  # the copies are on disk before their sources go
            self.unlinking = moved_sources
        return results

    async def _copy_generic(self, w: _Walk, a: _Action) -> tuple[_Action, str, SdError | None]:
        """Copy one file through the FileSystem interface (any device to any device)."""
        counted = self.done_bytes
        result = await self._copy_one(w, a)
        if result[1] != "ok":  # the bytes of a file not done count when it is (a resumed write: once)
            self.done_bytes = counted
        return result

    async def _copy_one(self, w: _Walk, a: _Action) -> tuple[_Action, str, SdError | None]:
        if a.info.kind == "symlink":  # the FileSystem interface cannot make one on another device yet
            return a, "unsupported", None
        tmp = temp_name(a.dst, self._ctx.job_id)
        try:
            if a.reuse and (self.moving or self.verify):
                if await w.src_fs.full_hash(a.src) != await w.dst_fs.full_hash(a.dst):
                    a = _Action(a.rel, a.src, a.dst, a.info, replace=True)
            if not a.reuse:
                before = await w.src_fs.stat(a.src)
                if hasattr(w.dst_fs, "write_resumable") and before.size >= RESUMABLE_FROM:
                    await self._write_resumable(w, a.src, tmp, before)
                else:
                    await w.dst_fs.write_atomic(
                        tmp, self._counting(_read(w.src_fs, a.src)), mtime=before.mtime, mode=before.mode
                    )
                self.partials.pop(tmp, None)
                after = await w.src_fs.stat(a.src)
                if (after.size, after.mtime) != (before.size, before.mtime):
                    await _delete_quietly(w.dst_fs, tmp)
                    return a, "changed", None
                if (self.verify or self.moving) and await w.src_fs.full_hash(
                    a.src
                ) != await w.dst_fs.full_hash(tmp):
                    await _delete_quietly(w.dst_fs, tmp)
                    return a, "differs", None
                if a.replace and await _stat_or_none(w.dst_fs, a.dst) is not None:
                    await w.dst_fs.delete(a.dst)
                await w.dst_fs.rename(tmp, a.dst)
            else:
                self.done_bytes += a.info.size
            if self.moving:
                await w.src_fs.delete(a.src)
        except localcopy.Stopped:
            if tmp not in self.partials:  # a resumable write keeps what it sent for the next run
                await _delete_quietly(w.dst_fs, tmp)
            return a, "stopped", None
        except NotFound as exc:
            await _delete_quietly(w.dst_fs, tmp)
            return a, "vanished", exc
        except AlreadyExists as exc:
            await _delete_quietly(w.dst_fs, tmp)
            return a, "problem", exc
        except SdError as exc:
            if tmp not in self.partials:  # a lost connection: the next run carries on a resumable write
                await _delete_quietly(w.dst_fs, tmp)
            return a, "error", exc
        return a, "ok", None

    async def _write_resumable(self, w: _Walk, src: str, tmp: str, before: EntryInfo) -> None:
        """Send a big file so that a run cut short (pause, kill, lost connection) is carried on, not redone.

        The partial temp file is only continued when the source has the same size and mtime as when it began.
        """
        if self.partials.get(tmp) != [before.size, before.mtime]:
            await _discard_partial(w.dst_fs, tmp)  # begun for another version of the source: start again
            self.partials[tmp] = [before.size, before.mtime]
            await self._checkpoint(force=True)

        def source(offset: int) -> AsyncIterator[bytes]:
            self.done_bytes += offset
            return self._counting(_read(w.src_fs, src, offset))

        def reread() -> AsyncIterator[bytes]:  # to check what an earlier run left there, not counted
            return self._stoppable(_read(w.src_fs, src))

        await cast(Any, w.dst_fs).write_resumable(
            tmp, source, mtime=before.mtime, mode=before.mode, reread=reread
        )

    async def _counting(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in self._stoppable(chunks):
            self.done_bytes += len(chunk)
            self._report()
            yield chunk

    async def _stoppable(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if self._ctx.should_stop:
                raise localcopy.Stopped()
            yield chunk

    async def _directory(
        self,
        w: _Walk,
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
                await self._checkpoint()
                return
        try:
            infos = await _sorted_listing(w.src_fs, src)  # before making anything: the source may be gone
        except NotFound:
            self.vanished.append(src)
            self._finish(rel)
            return
        if status == "todo" and existing is None:
            await _mkdir(w, dst)
            fresh = True
        elif status != "todo" and await _stat_or_none(w.dst_fs, dst) is None:
            await _mkdir(w, dst)
            fresh = True
        self._touch(dst, w.dst_device)
        if self.moving:
            self._touch(src, w.src_device)
        listing = {} if fresh else await _listing(w.dst_fs, dst)
        await self._entries(w, src, dst, rel, infos, listing)
        await self._finish_directory(w, src, dst, info)
        self._finish(rel)
        await self._checkpoint()

    async def _rename_whole(self, src: str, dst: str) -> None:
        try:
            os.rename(src, dst)
        except OSError as exc:
            raise fs_error(exc, src) from None
        self.done_files += 1

    async def _finish_directory(self, w: _Walk, src: str, dst: str, info: EntryInfo) -> None:
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
            if not await _listing(w.src_fs, src):
                await _delete_quietly(w.src_fs, src)

    async def _retry(self, src: str, dst: str) -> None:
        """Try again a file that changed while it was copied."""
        src_path = SdPath.parse_canonical(self.sources[min(self.index, len(self.sources) - 1)])
        dst_path = SdPath.parse_canonical(self.targets[min(self.index, len(self.targets) - 1)])
        w = _Walk(
            self._fs(src_path),
            self._fs(dst_path),
            self._local_pair(src_path, dst_path),
            False,
            src_path.device_id,
            dst_path.device_id,
        )
        info = await _stat_or_none(w.src_fs, src)
        if info is None:
            self.vanished.append(src)
            return
        existing = await _stat_or_none(w.dst_fs, dst)
        action = _Action((), src, dst, info, replace=existing is not None and not existing.is_dir)
        await self._flush(w, [action], advance=False)

    def _unlink_temp(self, w: _Walk, dst: str) -> None:
        if w.local:
            localcopy.unlink_quietly(temp_name(dst, self._ctx.job_id))


class MoveJob(TransferJob):
    """Move: a rename on one filesystem; elsewhere copy, verify by BLAKE3, then delete, file by file."""

    kind = "move"
    moving: ClassVar[bool] = True


@dataclass(frozen=True)
class _Walk:
    """The two filesystems of one source's transfer."""

    src_fs: FileSystem
    dst_fs: FileSystem
    local: bool
    same_fs: bool
    src_device: uuid.UUID
    dst_device: uuid.UUID


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _same_entry(a: EntryInfo, b: EntryInfo) -> bool:
    """Is `a` a finished copy of `b` (same kind, size and mtime; a symlink with the same target)?"""
    if a.kind != b.kind:
        return False
    if a.kind == "symlink":
        return a.link_target == b.link_target
    return a.size == b.size and a.mtime == b.mtime


def _sync_filesystem(dst_dir: str) -> None:
    """Flush the copies to disk before their sources are deleted: a crash never leaves a file in neither place."""
    try:
        fd = os.open(dst_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.syncfs(fd) if hasattr(os, "syncfs") else os.sync()
        finally:
            os.close(fd)
    except OSError:
        os.sync()


def _batches(fs: FileSystem, path: str) -> AsyncIterator[list[EntryInfo]]:
    # FileSystem declares its async generators `async def ... -> AsyncIterator`, which mypy reads as coroutines
    return cast(Any, fs).list_dir(path)  # type: ignore[no-any-return]


def _read(fs: FileSystem, path: str, offset: int = 0) -> AsyncIterator[bytes]:
    return cast(Any, fs).open_read(path, offset)  # type: ignore[no-any-return]


async def _stat_or_none(fs: FileSystem, path: str) -> EntryInfo | None:
    try:
        return await fs.stat(path)
    except NotFound:
        return None


async def _listing(fs: FileSystem, path: str) -> dict[str, EntryInfo]:
    try:
        return {e.name: e async for batch in _batches(fs, path) for e in batch}
    except NotFound:
        return {}


async def _sorted_listing(fs: FileSystem, path: str) -> list[EntryInfo]:
    entries = [e async for batch in _batches(fs, path) for e in batch]
    entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


async def _walk(fs: FileSystem, path: str) -> AsyncIterator[EntryInfo]:
    """Every entry below a directory (depth first, not following symlinks)."""
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            async for batch in _batches(fs, directory):
                for entry in batch:
                    yield entry
                    if entry.is_dir:
                        stack.append(join(directory, entry.name))
        except NotFound:
            continue


async def _mkdir(w: _Walk, path: str) -> None:
    await w.dst_fs.mkdir(path)
    if w.local:
        os.chmod(path, 0o700)  # writable while it fills; its own mode comes when it is finished


async def _discard_partial(fs: FileSystem, tmp: str) -> None:
    """Delete what a run cut short left of `tmp`: the file itself, or the partial a resumable write keeps.

    Raises SdError when that cannot be done (the device is out of reach).
    """
    discard = getattr(fs, "discard_resumable", None)
    if discard is not None:
        await discard(tmp)
    try:
        await fs.delete(tmp)
    except NotFound:
        pass


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
    if library.core is None:
        return
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
            fs = library.core.fs_for(SdPath.parse_canonical(job.targets[0]).device_id)
            for tmp in list(job.partials):
                if library.jobs.is_running(job_id):
                    break
                await _discard_partial(fs, tmp)
                del job.partials[tmp]
        except SdError:
            pass
        with library.write() as db:  # unless the job ran meanwhile
            db.execute(
                "UPDATE jobs SET checkpoint = ? WHERE id = ? AND updated = ?",
                (pack_state(job), job_id, updated),
            )


async def _delete_quietly(fs: FileSystem, path: str) -> None:
    try:
        await fs.delete(path)
    except SdError:
        pass
