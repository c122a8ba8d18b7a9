"""Moving: a rename on one filesystem, copy-verify-delete across two; a full disk; the index and tags follow."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import ops, tags
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.index.indexer import index_location
from sdcore.jobs.manager import JobRecord
from sdcore.library import entries
from sdcore.library.library import Library
from sdcore.ops import localcopy
from sdcore.ops.localcopy import hash_file
from sdcore.ops.names import is_temp
from sdcore.sdpath import SdPath


@pytest.fixture
async def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Core]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    async with Core(tmp_path / "data") as core:
        yield core


@pytest.fixture
def library(core: Core) -> Library:
    return core.library()


def mount_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB filesystem of its own."""
    yield from mount_tmpfs(tmp_path / "small", "2m")


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    yield from mount_tmpfs(tmp_path / "other", "64m")


def hashes(root: Path) -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            full = os.path.join(d, n)
            out[os.path.relpath(full, root)] = (
                "-> " + os.readlink(full) if os.path.islink(full) else hash_file(full)
            )
    return out


def temps(root: Path) -> list[str]:
    return [n for _, _, files in os.walk(root) for n in files if is_temp(n)]


async def transfer(library: Library, moving: bool, sources: list[Path], dst: Path, **kw: Any) -> JobRecord:
    start = ops.move if moving else ops.copy
    here = library.context.device_id
    job_id = await start(library, [SdPath(here, str(s)) for s in sources], SdPath(here, str(dst)), **kw)
    return await library.jobs.wait(job_id)


async def test_a_move_on_one_filesystem_is_a_rename(library: Library, tmp_path: Path) -> None:
    (tmp_path / "tree" / "inner").mkdir(parents=True)
    (tmp_path / "tree" / "inner" / "f").write_bytes(os.urandom(100_000))
    (tmp_path / "lone.bin").write_bytes(b"lone")
    inodes = {p: os.lstat(tmp_path / p).st_ino for p in ("tree", "tree/inner/f", "lone.bin")}
    (tmp_path / "dest").mkdir()
    record = await transfer(library, True, [tmp_path / "tree", tmp_path / "lone.bin"], tmp_path / "dest")
    assert record.state == "completed", record.error
    assert not (tmp_path / "tree").exists() and not (tmp_path / "lone.bin").exists()
    assert {p: os.lstat(tmp_path / "dest" / p).st_ino for p in inodes} == inodes


async def test_a_move_merges_into_an_existing_folder_by_rename(library: Library, tmp_path: Path) -> None:
    (tmp_path / "src" / "docs").mkdir(parents=True)
    (tmp_path / "src" / "docs" / "new.txt").write_text("new")
    (tmp_path / "src" / "docs" / "same.txt").write_text("mine")
    (tmp_path / "dst" / "docs").mkdir(parents=True)
    (tmp_path / "dst" / "docs" / "old.txt").write_text("old")
    (tmp_path / "dst" / "docs" / "same.txt").write_text("theirs")
    record = await transfer(library, True, [tmp_path / "src" / "docs"], tmp_path / "dst", on_conflict="skip")
    assert record.state == "completed", record.error
    assert sorted(os.listdir(tmp_path / "dst" / "docs")) == ["new.txt", "old.txt", "same.txt"]
    assert (tmp_path / "dst" / "docs" / "same.txt").read_text() == "theirs"
    assert os.listdir(tmp_path / "src" / "docs") == ["same.txt"]  # the skipped file stays where it was


async def test_a_move_across_filesystems_copies_verifies_then_deletes(
    library: Library, tmp_path: Path, other_fs: Path
) -> None:
    src = other_fs / "album"
    (src / "raw").mkdir(parents=True)
    for i in range(20):
        (src / "raw" / f"img{i}.raw").write_bytes(os.urandom(50_000))
    (src / "index.txt").write_text("album")
    os.symlink("index.txt", src / "readme")
    before = hashes(src)
    record = await transfer(library, True, [src], tmp_path / "album")
    assert record.state == "completed", record.error
    assert record.result.verified is True and record.result.files == 22
    assert hashes(tmp_path / "album") == before
    assert os.readlink(tmp_path / "album" / "readme") == "index.txt"
    assert not src.exists()
    assert temps(tmp_path / "album") == []


async def test_moving_a_folder_into_itself_is_refused(library: Library, tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(SdError, match="into itself"):
        await transfer(library, True, [tmp_path / "a"], tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


async def test_a_full_disk_is_refused_before_writing_when_it_cannot_fit(
    library: Library, tmp_path: Path, small_disk: Path
) -> None:
    (tmp_path / "movie.mkv").write_bytes(os.urandom(3 << 20))
    before = hash_file(str(tmp_path / "movie.mkv"))
    record = await transfer(library, False, [tmp_path / "movie.mkv"], small_disk)
    assert record.state == "failed"
    assert "not enough space" in record.error and "Nothing was written" in record.error
    assert os.listdir(small_disk) == []
    assert hash_file(str(tmp_path / "movie.mkv")) == before


@pytest.mark.parametrize("unnamed_up_to", [0, 16 << 20], ids=["named-temp", "unnamed-temp"])
async def test_a_disk_that_fills_up_mid_copy_fails_clearly_and_removes_its_temp(
    library: Library, tmp_path: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch, unnamed_up_to: int
) -> None:
    monkeypatch.setattr(localcopy, "UNNAMED_UP_TO", unnamed_up_to)
    src = tmp_path / "notes"
    src.mkdir()
    for i in range(600):  # 1.8 MB of bytes, but 2.4 MB of 4 KiB pages: the check passes, the disk fills
        (src / f"n{i:03}.txt").write_bytes(os.urandom(3000))
    before = hashes(src)
    record = await transfer(library, False, [src], small_disk)
    assert record.state == "failed"
    assert "no space left" in record.error and "sd job resume" in record.error
    assert temps(small_disk) == []
    copied = hashes(small_disk / "notes")
    assert 100 < len(copied) < 600
    assert all(before[name] == digest for name, digest in copied.items())  # what is there is whole
    assert hashes(src) == before


async def test_a_move_onto_a_full_disk_never_leaves_a_file_in_neither_place(
    library: Library, tmp_path: Path, small_disk: Path
) -> None:
    src = tmp_path / "notes"
    src.mkdir()
    for i in range(600):
        (src / f"n{i:03}.txt").write_bytes(os.urandom(3000))
    before = hashes(src)
    record = await transfer(library, True, [src], small_disk)
    assert record.state == "failed" and "no space left" in record.error
    moved, stayed = hashes(small_disk / "notes"), hashes(src)
    assert moved and stayed
    assert set(moved).isdisjoint(stayed)
    assert {**moved, **stayed} == before
    assert temps(small_disk) == []


async def index(library: Library, root: Path) -> None:
    loc = library.locations.add(str(root), mode="content")
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


async def test_a_tag_follows_a_file_moved_inside_a_location(library: Library, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    (home / "archive").mkdir()
    (home / "inbox" / "invoice.pdf").write_bytes(b"%PDF invoice 42")
    await index(library, home)
    entry = entries.entry_at(library, str(home / "inbox" / "invoice.pdf"))
    tags.create(library, "paid")
    tags.assign(library, "paid", [entry])
    record = await transfer(library, True, [home / "inbox" / "invoice.pdf"], home / "archive")
    assert record.state == "completed", record.error
    moved = entries.entry_at(library, str(home / "archive" / "invoice.pdf"))
    assert moved == entry
    assert [t.tag for t in tags.of(library, moved)] == ["paid"]


async def test_a_copy_into_a_location_is_indexed_at_once(library: Library, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    await index(library, home)
    (tmp_path / "report.txt").write_text("quarterly")
    record = await transfer(library, False, [tmp_path / "report.txt"], home)
    assert record.state == "completed", record.error
    assert entries.entry_at(library, str(home / "report.txt")) > 0


async def test_a_copy_of_content_tagged_in_a_location_carries_the_content_tag(
    library: Library, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "beach.jpg").write_bytes(b"\xff\xd8\xff beach pixels")
    await index(library, home)
    tags.create(library, "summer")
    tags.assign(
        library, "summer", [entries.entry_at(library, str(home / "photos" / "beach.jpg"))], content=True
    )
    (home / "backup").mkdir()
    record = await transfer(library, False, [home / "photos"], home / "backup")
    assert record.state == "completed", record.error
    copy = entries.entry_at(library, str(home / "backup" / "photos" / "beach.jpg"))
    assert [(t.tag, t.via_content) for t in tags.of(library, copy)] == [("summer", True)]
