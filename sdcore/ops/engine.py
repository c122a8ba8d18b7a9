"""The per-file engine of copies and moves, for every pair of devices: local to local kernel-side
(copy_file_range), every other pair through the FileSystem interface, big files as resumable writes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs.base import AccessDenied, EntryInfo, FileSystem, NewFile
from sdcore.fs.local import LocalFS, fs_error
from sdcore.jobs.results import Outcome
from sdcore.ops import localcopy
from sdcore.ops.names import temp_name
from sdcore.ops.walk import Pair, stat_or_none
from sdcore.sdpath import display

if TYPE_CHECKING:
    from sdcore.ops.transfer import TransferJob

RESUMABLE_FROM = 8 << 20  # files this big go to another device resumably (a pause or lost link carries on)
SMALL_FILE = 1 << 20  # files up to this size go to another device several in one request ...
SMALL_RUN_FILES = 64  # ... at most this many
SMALL_RUN_BYTES = 4 << 20  # ... and bytes
SMALL_RUNS_SENT = 2  # runs sent before the first is answered


@dataclass
class Action:
    """One file or symlink to write."""

    rel: tuple[str, ...]
    src: str
    dst: str
    info: EntryInfo
    replace: bool
    reuse: bool = False  # a matching copy is there already (ours, from before a crash)


Written = tuple[Action, Outcome, SdError | None]


@dataclass(frozen=True)
class _Read:
    """A small file read whole, and its entry as it was then."""

    data: bytes
    entry: EntryInfo


class Engine:
    """Writes a transfer job's files one after another, counting bytes into the job and stopping at a pause."""

    def __init__(self, job: TransferJob) -> None:
        self.job = job
        self.ctx = job.ctx
        self.done = Outcome.MOVED if job.moving else Outcome.COPIED
        self._small_ok = True  # False once the other device turns out too old for write_files

    async def write(self, pair: Pair, batch: list[Action]) -> list[Written]:
        """Write a batch; stops after a pause, cancel or failure (the rest of the batch is not reported)."""
        job = self.job
        job.done_bytes, job.begun_bytes = job.done_bytes - job.begun_bytes, 0  # counted again as it carries on
        if pair.local:
            if not pair.same_fs:
                await self._note_partials(batch)
            return await asyncio.to_thread(self._copy_local_batch, batch, pair.same_fs)
        results: list[Written] = []
        sent: deque[tuple[list[Action], asyncio.Future[list[Written] | None]]] = deque()  # runs being written there
        i = 0
        while i < len(batch) or sent:
            small = self._small_files(batch, i) if i < len(batch) and not self.ctx.should_stop else []
            if small and len(sent) < SMALL_RUNS_SENT:  # the next run is read and sent while the last is written
                sent.append((small, asyncio.ensure_future(self._copy_small(pair, small))))
                i += len(small)
                continue
            if sent:
                run, sending = sent.popleft()
                written = await sending
                results += self._counted(written) if written is not None else await self._one_by_one(pair, run)
            elif i < len(batch) and not self.ctx.should_stop:
                results += await self._one_by_one(pair, batch[i : i + 1])
                i += 1
            else:
                break
            if results[-1][1] in (Outcome.STOPPED, Outcome.FAILED) or self.ctx.should_stop:
                break
        failed = bool(results) and results[-1][1] in (Outcome.STOPPED, Outcome.FAILED)
        for _, sending in sent:  # sent before a pause or failure: written there all the same
            written = await sending
            if not failed and written is not None:
                results += self._counted(written)
                failed = results[-1][1] in (Outcome.STOPPED, Outcome.FAILED)
        return results

    def _counted(self, written: list[Written]) -> list[Written]:
        """Count the files of a small run written there, as they are reported (one not reported is counted when a
        later run finds it there)."""
        self.job.done_bytes += sum(a.info.size for a, outcome, _ in written if outcome is self.done)
        self.job.report()
        return written

    async def _one_by_one(self, pair: Pair, actions: list[Action]) -> list[Written]:
        results: list[Written] = []
        for a in actions:
            counted = self.job.done_bytes
            results.append(await self._copy_one(pair, a))
            if results[-1][1] is not self.done:
                self._stopped_in(a, counted)
            if results[-1][1] in (Outcome.STOPPED, Outcome.FAILED) or self.ctx.should_stop:
                break
        return results

    def _stopped_in(self, a: Action, counted: int) -> None:
        """A file not finished: the part kept for the next run stays counted (progress never steps back at a
        pause), the bytes of one thrown away are taken back; `counted` is what was done before it."""
        job = self.job
        if temp_name(a.dst, self.ctx.job_id) in job.partials:
            job.begun_bytes = job.done_bytes - counted
        else:
            job.done_bytes = counted

    # -- this machine to this machine ---------------------------------------------------------

    async def _note_partials(self, batch: list[Action]) -> None:
        """Before a big local file is begun, checkpoint that its temp file may be carried on by a later run."""
        job, noted = self.job, False
        for a in batch:
            if a.info.kind == "file" and a.info.size > localcopy.UNNAMED_UP_TO and not a.reuse:
                tmp = temp_name(a.dst, self.ctx.job_id)
                if job.partials.get(tmp) != [a.info.size, a.info.mtime]:
                    localcopy.unlink_quietly(tmp)  # begun for another version of the source: start again
                    job.partials[tmp] = [a.info.size, a.info.mtime]
                    noted = True
        if noted:
            await job.checkpoint(force=True)

    def _copy_local_batch(self, batch: list[Action], same_fs: bool) -> list[Written]:
        """In a worker thread: copy (or move) files one after another; stops at a pause, cancel or failure."""
        job, ctx = self.job, self.ctx
        results: list[Written] = []
        moved_sources: list[str] = []
        checked = job.verify or job.moving

        def on_bytes(n: int) -> None:
            job.done_bytes += n
            job.report()

        for a in batch:
            if ctx.should_stop:
                break
            counted = job.done_bytes
            tmp = temp_name(a.dst, ctx.job_id)
            size = a.info.size if a.info.kind == "file" else 0
            try:
                if same_fs:
                    localcopy.place(a.src, a.dst, a.replace)  # a move within one filesystem: a rename
                    results.append((a, self.done, None))
                    continue
                if a.reuse and not checked:
                    job.done_bytes += size
                elif a.reuse and a.info.kind == "file" and localcopy.hash_file(a.src) == localcopy.hash_file(a.dst):
                    job.done_bytes += size
                elif a.info.kind == "symlink":
                    localcopy.copy_symlink(a.src, a.dst, tmp, replace=a.replace)
                else:
                    partial = job.partials.get(tmp)
                    localcopy.copy_file(
                        a.src,
                        a.dst,
                        tmp,
                        replace=a.replace,
                        verify=checked,
                        on_bytes=on_bytes,
                        should_stop=lambda: ctx.should_stop,
                        partial_of=(int(partial[0]), partial[1]) if partial else None,
                    )
                results.append((a, self.done, None))
                if job.moving:
                    moved_sources.append(a.src)
            except localcopy.Stopped:
                self._stopped_in(a, counted)
                break
            except localcopy.SourceVanished as exc:
                localcopy.unlink_quietly(tmp)
                results.append((a, Outcome.VANISHED, exc))
            except localcopy.SourceChanged as exc:
                results.append((a, Outcome.CHANGED, exc))
            except localcopy.SourceUnreadable as exc:
                results.append((a, Outcome.UNREADABLE, exc))
            except localcopy.CopyDiffers as exc:
                results.append((a, Outcome.DIFFERS, exc))
            except AlreadyExists as exc:
                results.append((a, Outcome.PROBLEM, exc))
            except SdError as exc:
                results.append((a, Outcome.FAILED, exc))
                break
            except FileNotFoundError as exc:
                results.append((a, Outcome.VANISHED, fs_error(exc, a.src)))  # type: ignore[arg-type]
            except OSError as exc:
                results.append((a, Outcome.FAILED, fs_error(exc, a.dst)))  # type: ignore[arg-type]
                break
        if moved_sources:
            sync_filesystem(os.path.dirname(batch[0].dst))  # the copies are on disk before their sources go
            job.unlinking = moved_sources
        return results

    # -- any device to any device -------------------------------------------------------------

    def _small_files(self, batch: list[Action], start: int) -> list[Action]:
        """The files from `start` on that go to the other device in one request: small new files (nothing there to
        replace or keep), not verified (a verified or moved copy is hashed there before it is put in place)."""
        job = self.job
        if job.verify or job.moving or not self._small_ok:
            return []
        run: list[Action] = []
        size = 0
        for a in batch[start:]:
            if a.info.kind != "file" or a.reuse or a.replace or a.info.size > SMALL_FILE:
                break
            if len(run) >= SMALL_RUN_FILES or (run and size + a.info.size > SMALL_RUN_BYTES):
                break
            if job.partials and temp_name(a.dst, self.ctx.job_id) in job.partials:
                break  # begun as a big file: carried on as one
            run.append(a)
            size += a.info.size
        return run

    async def _copy_small(self, pair: Pair, run: list[Action]) -> list[Written] | None:
        """Copy small new files: read here whole, sent in one request, each synced there before it is linked at its
        name (whole or not there after a crash). None when the other device is too old for it (nothing was done).
        Stops after the first that fails (the rest is not reported: a later run finds those copied whole)."""
        read = await self._read_small(pair, run)
        files: list[NewFile] = []
        for a, got in zip(run, read, strict=True):
            if isinstance(got, _Read):
                files.append((a.dst, got.data, got.entry.mtime, _kept(got.entry.mode)))
        try:
            told = await pair.dst_fs.write_new_files(files) if files else []
        except SdError as exc:  # a lost connection, say: the first file sent failed, the rest is not reported
            told = [exc] * len(files)
        if told is None:
            self._small_ok = False
            return None
        answers = iter(told)
        results: list[Written] = []
        for a, got in zip(run, read, strict=True):
            if isinstance(got, _Read):
                results.append(self._placed(dataclasses.replace(a, info=got.entry), next(answers)))
            else:
                results.append(got)
            if results[-1][1] in (Outcome.STOPPED, Outcome.FAILED):
                break
        return results

    def _placed(self, a: Action, told: int | SdError) -> Written:
        """What became of a small file sent to the other device (`a.info` as it was read), as it told."""
        size = a.info.size
        if isinstance(told, int) and told == size:
            return a, self.done, None
        if isinstance(told, AlreadyExists):
            return a, Outcome.PROBLEM, told
        if isinstance(told, NotFound):  # its source was just read: its copy could not be made
            return a, Outcome.FAILED, NotFound(f"cannot write {display(a.dst)}: its folder takes no new file, or went away")
        if isinstance(told, int):
            return a, Outcome.FAILED, SdError(f"{display(a.dst)}: the other device wrote {told} bytes of {size}")
        return a, Outcome.FAILED, told

    async def _read_small(self, pair: Pair, run: list[Action]) -> list[_Read | Written]:
        """Each file's bytes and its entry as they were read, or what kept it from being read."""
        if isinstance(pair.src_fs, LocalFS):
            return await asyncio.to_thread(lambda: [_read_small_here(a) for a in run])
        return list(await asyncio.gather(*(self._read_small_there(pair.src_fs, a) for a in run)))

    async def _read_small_there(self, fs: FileSystem, a: Action) -> _Read | Written:
        try:
            before = await fs.stat(a.src)
            if before.kind != "file":
                return a, Outcome.CHANGED, None
            if before.size > SMALL_FILE:
                return a, Outcome.CHANGED, None  # it grew past small since it was listed: a resume copies it
            chunks: list[bytes] = []
            got = 0
            async with contextlib.aclosing(_read(fs, a.src)) as reading:
                async for chunk in reading:
                    chunks.append(chunk)
                    got += len(chunk)
                    if got > before.size:
                        break  # (a file growing without end is never held here whole)
            data = b"".join(chunks)
            after = await fs.stat(a.src)
        except NotFound as exc:
            return a, Outcome.VANISHED, exc
        except localcopy.SourceUnreadable as exc:
            return a, Outcome.UNREADABLE, exc
        except SdError as exc:
            return a, Outcome.FAILED, exc
        if (after.size, after.mtime) != (before.size, before.mtime) or len(data) != before.size:
            return a, Outcome.CHANGED, None
        return _Read(data, before)

    async def _copy_one(self, pair: Pair, a: Action) -> Written:
        """Copy one file through the FileSystem interface."""
        job = self.job
        if a.info.kind == "symlink":  # the FileSystem interface cannot make one on another device yet
            return a, Outcome.UNSUPPORTED, None
        tmp = temp_name(a.dst, self.ctx.job_id)
        checked = job.verify or job.moving
        try:
            if a.reuse and checked:
                if await pair.src_fs.full_hash(a.src) != await pair.dst_fs.full_hash(a.dst):
                    a = Action(a.rel, a.src, a.dst, a.info, replace=True)
            if not a.reuse:
                before = await pair.src_fs.stat(a.src)
                resumed = False
                if before.size >= RESUMABLE_FROM:
                    written, resumed = await self._write_resumable(pair, a.src, tmp, before)
                else:
                    written = await pair.dst_fs.write_atomic(
                        tmp, self._counting(_read(pair.src_fs, a.src)), mtime=before.mtime, mode=_kept(before.mode)
                    )
                job.partials.pop(tmp, None)
                after = await pair.src_fs.stat(a.src)
                if (after.size, after.mtime) != (before.size, before.mtime) or written != before.size:
                    await delete_quietly(pair.dst_fs, tmp)  # more or fewer bytes than its size: not this file
                    return a, Outcome.CHANGED, None
                # a carried-on file is two reads of the source, the kept part's and the rest's: proven one file
                proven = checked or resumed
                if proven and await pair.src_fs.full_hash(a.src) != await pair.dst_fs.full_hash(tmp):
                    await delete_quietly(pair.dst_fs, tmp)
                    return a, Outcome.DIFFERS, None
                if a.replace and await stat_or_none(pair.dst_fs, a.dst) is not None:
                    await pair.dst_fs.delete(a.dst)
                await pair.dst_fs.rename(tmp, a.dst)
            else:
                job.done_bytes += a.info.size
            if job.moving:
                await pair.src_fs.delete(a.src)
        except localcopy.Stopped:
            if tmp not in job.partials:  # a resumable write keeps what it sent for the next run
                await delete_quietly(pair.dst_fs, tmp)
            return a, Outcome.STOPPED, None
        except NotFound as exc:
            await delete_quietly(pair.dst_fs, tmp)
            if await stat_or_none(pair.src_fs, a.src) is not None:  # the source is there: its copy could not be made
                refused = NotFound(f"cannot write {display(a.dst)}: its folder takes no new file, or went away")
                return a, Outcome.FAILED, refused
            return a, Outcome.VANISHED, exc
        except localcopy.SourceUnreadable as exc:
            await delete_quietly(pair.dst_fs, tmp)
            return a, Outcome.UNREADABLE, exc
        except AlreadyExists as exc:
            await delete_quietly(pair.dst_fs, tmp)
            return a, Outcome.PROBLEM, exc
        except SdError as exc:
            if tmp not in job.partials:  # a lost connection: the next run carries on a resumable write
                await delete_quietly(pair.dst_fs, tmp)
            return a, Outcome.FAILED, exc
        return a, self.done, None

    async def _write_resumable(self, pair: Pair, src: str, tmp: str, before: EntryInfo) -> tuple[int, bool]:
        """Send a big file so that a run cut short (pause, kill, lost connection) is carried on, not redone.

        The partial temp file is only continued when the source has the same size and mtime as when it began.
        Returns the bytes the file has and whether some were kept from an earlier run.
        """
        job = self.job
        if job.partials.get(tmp) != [before.size, before.mtime]:
            await discard_partial(pair.dst_fs, tmp)  # begun for another version of the source: start again
            job.partials[tmp] = [before.size, before.mtime]
            await job.checkpoint(force=True)

        kept = 0

        def source(offset: int) -> AsyncIterator[bytes]:
            nonlocal kept
            kept = offset
            job.done_bytes += offset
            return self._counting(_read(pair.src_fs, src, offset))

        def reread() -> AsyncIterator[bytes]:  # to check what an earlier run left there, not counted
            return self._stoppable(_read(pair.src_fs, src))

        written = await pair.dst_fs.write_resumable(
            tmp, source, mtime=before.mtime, mode=_kept(before.mode), reread=reread
        )
        return written, kept > 0

    async def _counting(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in self._stoppable(chunks):
            self.job.done_bytes += len(chunk)
            self.job.report()
            yield chunk

    async def _stoppable(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if self.ctx.should_stop:
                raise localcopy.Stopped()
            yield chunk


def _read_small_here(a: Action) -> _Read | Written:
    """A small file of this device read whole (in a worker thread), or what kept it from being read."""
    try:
        data, st = localcopy.read_small(a.src, SMALL_FILE)
    except localcopy.SourceVanished as exc:
        return a, Outcome.VANISHED, exc
    except localcopy.SourceChanged as exc:
        return a, Outcome.CHANGED, exc
    except localcopy.SourceUnreadable as exc:
        return a, Outcome.UNREADABLE, exc
    except SdError as exc:
        return a, Outcome.FAILED, exc
    return _Read(data, EntryInfo(a.info.name, "file", st.st_size, st.st_mtime, st.st_ino, st.st_mode))


def _kept(mode: int) -> int:
    """The mode a copy on another device gets: a device's setuid, setgid and sticky bits never land on another."""
    return mode & 0o777


async def _read(fs: FileSystem, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
    """The source's bytes from `offset`; one this user may not read raises SourceUnreadable."""
    try:
        async for chunk in fs.open_read(path, offset):
            yield chunk
    except AccessDenied as exc:
        raise localcopy.SourceUnreadable(str(exc)) from None


def sync_filesystem(dst_dir: str) -> None:
    """Flush the copies to disk before their sources are deleted: a crash never leaves a file in neither place."""
    try:
        fd = os.open(dst_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.syncfs(fd) if hasattr(os, "syncfs") else os.sync()
        finally:
            os.close(fd)
    except OSError:
        os.sync()


async def discard_partial(fs: FileSystem, tmp: str) -> None:
    """Delete what a run cut short left of `tmp`: the file itself, or the partial a resumable write keeps.

    Raises SdError when that cannot be done (the device is out of reach).
    """
    await fs.discard_resumable(tmp)
    try:
        await fs.delete(tmp)
    except NotFound:
        pass


async def delete_quietly(fs: FileSystem, path: str) -> None:
    try:
        await fs.delete(path)
    except SdError:
        pass
