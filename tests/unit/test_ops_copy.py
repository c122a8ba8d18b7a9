"""Copying as a user sees it: trees with modes, mtimes and symlinks, conflicts, refusals, odd names, torn sources."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.errors import NotFound, SdError
from sdcore.jobs.manager import JobRecord
from sdcore.library.library import Library
from sdcore.ops import localcopy
from sdcore.ops.localcopy import hash_file
from sdcore.ops.names import is_temp
from sdcore.sdpath import SdPath
from tests.functional.copy_support import PausedBigFile


@pytest.fixture
async def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Core]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    async with Core(tmp_path / "data") as core:
        yield core


@pytest.fixture
def library(core: Core) -> Library:
    return core.library()


def make_tree(root: Path) -> Path:
    """A small tree: files of several sizes, a nested folder, a read-only file, a symlink, an empty dir."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "sub" / "b.txt").write_text("beta")
    (root / "sub" / "deeper" / "c.bin").write_bytes(os.urandom(70_000))
    (root / "ro.txt").write_text("read only")
    os.chmod(root / "ro.txt", 0o444)
    os.chmod(root / "sub", 0o750)
    os.symlink("sub/b.txt", root / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(
            p,
            ns=(1_600_000_000_000_000_000 + i * 1_234_567, 1_600_000_000_000_000_000 + i * 7_654_321),
            follow_symlinks=False,
        )
    return root


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a copy must keep, per relative path: kind, mode, mtime, content hash or link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full), st.st_mtime_ns)
            elif os.path.isdir(full):
                out[rel] = ("dir", st.st_mode, int(st.st_mtime))
            else:
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, hash_file(full))
    return out


def temps(root: Path) -> list[str]:
    return [os.path.join(d, n) for d, _, files in os.walk(root) for n in files if is_temp(n)]


async def copy(library: Library, sources: list[Path], dst: Path, **kw: Any) -> JobRecord:
    here = library.context.device_id
    job_id = await ops.copy(library, [SdPath(here, str(s)) for s in sources], SdPath(here, str(dst)), **kw)
    return await library.jobs.wait(job_id)


async def test_a_tree_is_copied_with_modes_mtimes_and_symlinks(library: Library, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    record = await copy(library, [src], tmp_path / "copy", verify=True)
    assert record.state == "completed", record.error
    assert snapshot(tmp_path / "copy") == snapshot(src)
    assert record.result.files == 7 and record.result.verified is True
    assert record.result.bytes == sum(
        p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert temps(tmp_path / "copy") == []


async def test_copying_into_an_existing_folder_puts_each_source_inside_it(
    library: Library, tmp_path: Path
) -> None:
    (tmp_path / "one").write_text("1")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "x").write_text("x")
    (tmp_path / "into").mkdir()
    record = await copy(library, [tmp_path / "one", tmp_path / "two"], tmp_path / "into")
    assert record.state == "completed", record.error
    assert (tmp_path / "into" / "one").read_text() == "1"
    assert (tmp_path / "into" / "two" / "x").read_text() == "x"


async def test_conflicts_fail_before_anything_is_written_and_are_listed(
    library: Library, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / name).write_text("new " + name)
    dst = tmp_path / "dst"
    (dst / "src").mkdir(parents=True)
    (dst / "src" / "b").write_text("old b")
    (dst / "src" / "c").write_text("old c")
    record = await copy(library, [src], dst)
    assert record.state == "failed"
    assert "2 items exist at the destination" in record.error and "src/b" in record.error and "src/c" in record.error
    assert "--on-conflict" in record.error
    assert sorted(os.listdir(dst / "src")) == ["b", "c"]  # not even the free name "a" was written
    assert (dst / "src" / "b").read_text() == "old b"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("skip", {"a": "new a", "b": "old b"}),
        ("overwrite", {"a": "new a", "b": "new b"}),
        ("rename", {"a": "new a", "b": "old b", "b (1)": "new b"}),
    ],
)
async def test_each_conflict_policy(
    library: Library, tmp_path: Path, policy: str, expected: dict[str, str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("new a")
    (src / "b").write_text("new b")
    (tmp_path / "dst" / "src").mkdir(parents=True)
    (tmp_path / "dst" / "src" / "b").write_text("old b")
    record = await copy(library, [src], tmp_path / "dst", on_conflict=policy)
    assert record.state == "completed", record.error
    assert {p.name: p.read_text() for p in (tmp_path / "dst" / "src").iterdir()} == expected
    if policy == "skip":
        assert list(record.result.skipped) == [str(tmp_path / "dst" / "src" / "b")]


async def test_a_file_never_replaces_a_directory_even_with_overwrite(
    library: Library, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "thing").write_text("a file")
    (tmp_path / "dst" / "src" / "thing").mkdir(parents=True)
    (tmp_path / "dst" / "src" / "thing" / "keep").write_text("keep me")
    record = await copy(library, [tmp_path / "src"], tmp_path / "dst", on_conflict="overwrite")
    assert record.state == "failed" and "never replaces a directory" in record.error
    assert (tmp_path / "dst" / "src" / "thing" / "keep").read_text() == "keep me"


async def test_copying_a_folder_into_itself_is_refused(library: Library, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    with pytest.raises(SdError, match="into itself"):
        await copy(library, [src], src / "sub")
    with pytest.raises(SdError, match="into itself"):
        await copy(library, [src], src)
    os.symlink(src, tmp_path / "alias")  # through a symlinked parent it is the same place
    with pytest.raises(SdError, match="into itself"):
        await copy(library, [src], tmp_path / "alias" / "sub" / "x")
    with pytest.raises(SdError, match="onto itself"):
        await copy(library, [src / "a.txt"], src / "a.txt")
    assert library.jobs.list() == []


async def test_keep_both_duplicates_a_file_in_place_but_never_merges_a_folder_into_itself(
    library: Library, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    record = await copy(library, [src / "a.txt"], src, on_conflict="rename")
    assert record.state == "completed", record.error
    assert (src / "a (1).txt").read_bytes() == (src / "a.txt").read_bytes()
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    with pytest.raises(SdError, match="onto itself"):
        await copy(library, [src], tmp_path, on_conflict="rename")
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before


async def test_a_file_where_a_directory_is_expected_is_refused(library: Library, tmp_path: Path) -> None:
    (tmp_path / "f1").write_text("1")
    (tmp_path / "f2").write_text("2")
    (tmp_path / "folder").mkdir()
    (tmp_path / "target").write_text("I am a file")
    with pytest.raises(SdError, match="is a file where a directory is expected"):
        await copy(library, [tmp_path / "f1", tmp_path / "f2"], tmp_path / "target")
    with pytest.raises(SdError, match="is a file where a directory is expected"):
        await copy(library, [tmp_path / "folder"], tmp_path / "target")
    with pytest.raises(SdError, match="is a file where a directory is expected"):
        await copy(library, [tmp_path / "f1"], tmp_path / "target" / "inside")
    with pytest.raises(NotFound, match="does not exist"):
        await copy(library, [tmp_path / "f1", tmp_path / "f2"], tmp_path / "missing")
    assert (tmp_path / "target").read_text() == "I am a file"


async def test_inside_a_tree_a_file_in_the_way_of_a_folder_is_a_conflict(
    library: Library, tmp_path: Path
) -> None:
    (tmp_path / "src" / "photos").mkdir(parents=True)
    (tmp_path / "src" / "photos" / "p.jpg").write_bytes(b"jpeg")
    (tmp_path / "dst" / "src").mkdir(parents=True)
    (tmp_path / "dst" / "src" / "photos").write_text("a file named like the folder")
    record = await copy(library, [tmp_path / "src"], tmp_path / "dst")
    assert record.state == "failed" and "src/photos" in record.error
    record = await copy(library, [tmp_path / "src"], tmp_path / "dst", on_conflict="rename")
    assert record.state == "completed", record.error
    assert (tmp_path / "dst" / "src" / "photos (1)" / "p.jpg").read_bytes() == b"jpeg"
    assert (tmp_path / "dst" / "src" / "photos").read_text() == "a file named like the folder"


async def test_names_that_are_not_utf8_are_copied_byte_for_byte(library: Library, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    odd = [b"caf\xe9.txt", b"\xff\xfe-raw", b"sub\x80dir"]
    os.mkdir(os.path.join(os.fsencode(src), odd[2]))
    for name in odd[:2]:
        with open(os.path.join(os.fsencode(src), name), "wb") as f:
            f.write(name * 3)
    with open(os.path.join(os.fsencode(src), odd[2], odd[0]), "wb") as f:
        f.write(b"nested")
    record = await copy(library, [src], tmp_path / "dst", verify=True)
    assert record.state == "completed", record.error
    dst = os.fsencode(tmp_path / "dst")
    assert sorted(os.listdir(dst)) == sorted(odd)
    assert open(os.path.join(dst, odd[1]), "rb").read() == odd[1] * 3
    assert open(os.path.join(dst, odd[2], odd[0]), "rb").read() == b"nested"


async def test_a_source_written_during_its_copy_is_reported_not_copied_torn(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "log.txt").write_bytes(os.urandom(4 << 20))
    (src / "calm.txt").write_text("calm")
    monkeypatch.setattr(localcopy, "RANGE_CHUNK", 1 << 20)
    real = os.copy_file_range
    appended = []

    def range_then_append(sfd: int, dfd: int, count: int) -> int:
        n = real(sfd, dfd, count)
        if not appended and os.fstat(sfd).st_size == 4 << 20:  # a writer appends while we are halfway
            appended.append(True)
            with open(src / "log.txt", "ab") as f:
                f.write(b"more log lines\n")
        return n

    monkeypatch.setattr(os, "copy_file_range", range_then_append)
    record = await copy(library, [src], tmp_path / "dst")
    assert appended
    assert record.state == "failed"
    assert "log.txt changed while it was copied" in record.error and "resume" in record.error
    assert not (tmp_path / "dst" / "log.txt").exists()  # no torn copy in place
    assert (tmp_path / "dst" / "calm.txt").read_text() == "calm"
    assert temps(tmp_path / "dst") == []
    # the writer is done: resuming copies the file as it now is
    await library.jobs.resume(record.id)
    record = await library.jobs.wait(record.id)
    assert record.state == "completed", record.error
    assert hash_file(str(tmp_path / "dst" / "log.txt")) == hash_file(str(src / "log.txt"))


async def test_a_source_that_vanishes_mid_copy_is_reported_and_the_rest_copied(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (src / name).write_text(name)
    (src / "dir" / "d").write_text("d")
    real = localcopy.copy_file

    def copy_then_remove(s: str, *args: Any, **kw: Any) -> Any:
        out = real(s, *args, **kw)
        if s.endswith("/a"):  # someone deletes b and the folder while a is being copied
            os.unlink(src / "b")
            os.unlink(src / "dir" / "d")
            os.rmdir(src / "dir")
        return out

    monkeypatch.setattr(localcopy, "copy_file", copy_then_remove)
    record = await copy(library, [src], tmp_path / "dst")
    assert record.state == "completed", record.error
    assert sorted(record.result.vanished) == [str(src / "b"), str(src / "dir")]
    assert sorted(os.listdir(tmp_path / "dst")) == ["a", "c"]
    assert temps(tmp_path / "dst") == []


async def test_a_paused_copy_resumes_where_it_stopped(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.ops import transfer

    monkeypatch.setattr(transfer, "BATCH_FILES", 10)
    src = tmp_path / "src"
    for d in range(4):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(50):
            (src / f"d{d}" / f"f{i:03}").write_bytes(os.urandom(2000))
    job_id = await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
    copied: list[int] = []
    real = localcopy.copy_file

    def count_and_pause(*args: Any, **kw: Any) -> Any:
        copied.append(1)
        if len(copied) == 75:
            library.jobs.pause(job_id)
        return real(*args, **kw)

    monkeypatch.setattr(localcopy, "copy_file", count_and_pause)
    record = await library.jobs.wait(job_id)
    assert record.state == "paused"
    assert 70 <= sum(len(files) for _, _, files in os.walk(tmp_path / "dst")) < 200
    job = await _checkpointed(library, job_id)
    assert job.cursor is not None and job.done_files >= 70
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert snapshot(tmp_path / "dst") == snapshot(src)
    assert len(copied) < 200 + 10  # what was done before the pause was not copied again


async def _checkpointed(library: Library, job_id: str) -> Any:
    from sdcore.jobs.job import unpack_state

    row = library.read().execute("SELECT name, checkpoint FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return unpack_state(row[0], row[1])


@pytest.mark.parametrize("unnamed_up_to", [0, 16 << 20], ids=["named-temp", "unnamed-temp"])
async def test_a_canceled_copy_stops_and_leaves_no_temporary_file(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed_up_to: int
) -> None:
    monkeypatch.setattr(localcopy, "UNNAMED_UP_TO", unnamed_up_to)
    src = tmp_path / "src"
    src.mkdir()
    (src / "huge").write_bytes(os.urandom(8 << 20))
    monkeypatch.setattr(localcopy, "RANGE_CHUNK", 1 << 20)
    real = os.copy_file_range
    job_id = ""

    def slow(sfd: int, dfd: int, count: int) -> int:
        library.jobs.cancel(job_id)  # asked in the middle of the file
        return real(sfd, dfd, count)

    monkeypatch.setattr(os, "copy_file_range", slow)
    job_id = await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
    record = await library.jobs.wait(job_id)
    assert record.state == "canceled"
    assert os.listdir(tmp_path / "dst") == []  # neither the file nor a temporary one


def test_the_cursor_orders_entries_as_the_sorted_walk_visits_them() -> None:
    status = ops.cursor_status
    assert status(("a",), None) == "todo"
    assert status(("a",), ["b"]) == "done"
    assert status(("a",), ["a", "x"]) == "inside"
    assert status(("a", "x"), ["a"]) == "todo"  # cursor at a finished folder never names its children...
    assert status((), ["a"]) == "inside"
    assert status((), []) == "done"
    assert status(("c",), ["b", "z"]) == "todo"
    assert status(("\udcff",), ["z"]) == "todo"  # bytes order: 0xff sorts after 'z'


async def test_a_file_that_appears_at_the_destination_while_paused_is_never_overwritten(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.ops import transfer

    monkeypatch.setattr(transfer, "BATCH_FILES", 5)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02}").write_text(f"new {i}")
    job_id = await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
    real = localcopy.copy_file
    calls: list[str] = []

    def pause_at_ten(s: str, *args: Any, **kw: Any) -> Any:
        calls.append(s)
        if len(calls) == 10:
            library.jobs.pause(job_id)
        return real(s, *args, **kw)

    monkeypatch.setattr(localcopy, "copy_file", pause_at_ten)
    assert (await library.jobs.wait(job_id)).state == "paused"
    (tmp_path / "dst" / "f30").write_text("someone else's file")
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "failed" and "f30 appeared at the destination" in record.error
    assert (tmp_path / "dst" / "f30").read_text() == "someone else's file"
    assert len(os.listdir(tmp_path / "dst")) == 40
    assert (tmp_path / "dst" / "f39").read_text() == "new 39"


async def test_special_files_are_reported_not_copied(library: Library, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe")
    (src / "plain").write_text("plain")
    record = await copy(library, [src], tmp_path / "dst")
    assert record.state == "completed", record.error
    assert list(record.result.unsupported) == [str(src / "pipe")]
    assert os.listdir(tmp_path / "dst") == ["plain"]


async def test_a_big_file_paused_midway_carries_on_from_where_it_stopped(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = PausedBigFile(monkeypatch, library, tmp_path)
    await copy.start(core.local_path(str(tmp_path / "dst")))
    assert len(os.listdir(tmp_path / "dst")) == 1 and temps(tmp_path / "dst")  # the partial copy is kept
    record = await copy.resume()
    assert copy.starts[0] == 0 and copy.starts[1] >= 15 << 20  # carried on near where it paused, not from zero
    assert record.result is not None and record.result.bytes == 40 << 20  # and counted every byte once
    assert hash_file(str(tmp_path / "dst" / "disk.img")) == hash_file(str(copy.src / "disk.img"))
    assert temps(tmp_path / "dst") == []


async def test_a_big_file_paused_midway_shows_its_bytes_done_and_the_resumed_copy_goes_on_from_there(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.jobs.job import JobContext

    real_progress = JobContext.progress
    shown: list[int] = []  # every figure of bytes done the job reports

    def progress(ctx: JobContext, done: int, *args: Any, **kw: Any) -> None:
        shown.append(done)
        real_progress(ctx, done, *args, **kw)

    monkeypatch.setattr(JobContext, "progress", progress)
    copy = PausedBigFile(monkeypatch, library, tmp_path)
    paused = await copy.start(core.local_path(str(tmp_path / "dst")))
    assert paused.done >= 15 << 20  # not "0 B" for a file half copied
    shown.clear()
    record = await copy.resume()
    assert shown and min(shown) >= paused.done  # no step back to the files finished before it
    assert shown == sorted(shown) and record.done == 40 << 20
    assert record.result is not None and record.result.bytes == 40 << 20


async def test_a_copy_cut_off_by_quitting_midway_through_a_big_file_counts_its_bytes_once_when_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "disk.img").write_bytes(os.urandom(40 << 20))
    monkeypatch.setattr(localcopy, "RANGE_CHUNK", 1 << 20)
    real = os.copy_file_range
    calls = 0
    midway = threading.Event()

    def watching(sfd: int, dfd: int, count: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 20:
            midway.set()
            time.sleep(0.5)  # the quit lands while this file is half copied
        return real(sfd, dfd, count)

    monkeypatch.setattr(os, "copy_file_range", watching)
    async with Core(tmp_path / "data") as core:  # sdtui quit (y) with the copy running
        library = core.library()
        job_id = await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
        await asyncio.to_thread(midway.wait, 30)
    monkeypatch.setattr(os, "copy_file_range", real)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        assert library.jobs.get(job_id).state == "interrupted"
        await library.jobs.resume(job_id)
        record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert record.result is not None and record.result.bytes == 40 << 20  # not 40 MiB and the half before
    assert hash_file(str(tmp_path / "dst" / "disk.img")) == hash_file(str(src / "disk.img"))


async def test_quitting_stops_a_big_local_copy_at_once_rather_than_finishing_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "disk.img").write_bytes(os.urandom(40 << 20))
    monkeypatch.setattr(localcopy, "RANGE_CHUNK", 1 << 20)
    real = os.copy_file_range
    calls = 0
    begun = threading.Event()

    def slow_disk(sfd: int, dfd: int, count: int) -> int:  # 40 chunks of 0.1 s: a 4 s copy
        nonlocal calls
        calls += 1
        begun.set()
        time.sleep(0.1)
        return real(sfd, dfd, count)

    monkeypatch.setattr(os, "copy_file_range", slow_disk)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
        await asyncio.to_thread(begun.wait, 30)
        at_quit = calls
    stopped_at = calls
    assert stopped_at - at_quit <= 2  # "it stops where it is" (chunks, not seconds: a loaded machine is slow)
    await asyncio.sleep(1)
    assert calls == stopped_at < 20  # and its thread stopped writing too
    assert not (tmp_path / "dst" / "disk.img").exists()
