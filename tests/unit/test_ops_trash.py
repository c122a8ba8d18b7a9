"""The trash as the freedesktop.org spec has it, and deleting (to it, or for good) as a job."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs import trash
from sdcore.library.library import Library


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


@pytest.fixture
async def core(tmp_path: Path, xdg: Path) -> AsyncIterator[Core]:
    async with Core(tmp_path / "data") as core:
        yield core


@pytest.fixture
def library(core: Core) -> Library:
    return core.library()


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "usb"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_trashed_file_goes_to_the_home_trash_with_its_info(tmp_path: Path, xdg: Path) -> None:
    doc = tmp_path / "my docs" / "report 100%.txt"
    doc.parent.mkdir()
    doc.write_text("q3")
    where = trash.trash(str(doc))
    assert where == str(xdg / "Trash" / "files" / "report 100%.txt")
    assert not doc.exists() and Path(where).read_text() == "q3"
    info = (xdg / "Trash" / "info" / "report 100%.txt.trashinfo").read_text().splitlines()
    assert info[0] == "[Trash Info]"
    assert info[1] == "Path=" + str(doc.parent).replace(" ", "%20") + "/report%20100%25.txt"
    assert info[2].startswith("DeletionDate=") and len(info[2]) == len("DeletionDate=2024-01-31T12:00:00")


def test_trashing_two_files_of_the_same_name_keeps_both_and_restores_each(tmp_path: Path, xdg: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.txt").write_text(folder)
        trash.trash(str(tmp_path / folder / "notes.txt"))
    items = trash.list_trash()
    assert sorted(i.name for i in items) == ["notes (1).txt", "notes.txt"]
    assert {i.original_path for i in items} == {
        str(tmp_path / "a" / "notes.txt"),
        str(tmp_path / "b" / "notes.txt"),
    }
    for item in items:
        trash.restore(item)
    assert (tmp_path / "a" / "notes.txt").read_text() == "a"
    assert (tmp_path / "b" / "notes.txt").read_text() == "b"
    assert trash.list_trash() == []
    assert os.listdir(xdg / "Trash" / "info") == []


def test_a_name_that_is_not_utf8_is_percent_encoded_and_restored(tmp_path: Path, xdg: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9 \xff.txt")
    with open(raw, "wb") as f:
        f.write(b"latin-1")
    trash.trash(os.fsdecode(raw))
    info = (xdg / "Trash" / "info").iterdir().__next__().read_bytes()
    assert b"Path=" + os.fsencode(tmp_path) + b"/caf%E9%20%FF.txt" in info
    (item,) = trash.list_trash()
    assert item.original_path == os.fsdecode(raw)
    trash.restore(trash.find(os.fsdecode(raw)))
    assert open(raw, "rb").read() == b"latin-1"


def test_restore_never_replaces_a_file_that_took_the_place(tmp_path: Path, xdg: Path) -> None:
    (tmp_path / "f").write_text("old")
    trash.trash(str(tmp_path / "f"))
    (tmp_path / "f").write_text("new")
    (item,) = trash.list_trash()
    with pytest.raises(AlreadyExists, match="--to"):
        trash.restore(item)
    assert (tmp_path / "f").read_text() == "new"
    trash.restore(item, to=str(tmp_path / "f.restored"))
    assert (tmp_path / "f.restored").read_text() == "old"


def test_a_restore_remakes_a_missing_parent_folder(tmp_path: Path, xdg: Path) -> None:
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "f").write_text("x")
    trash.trash(str(tmp_path / "gone" / "f"))
    os.rmdir(tmp_path / "gone")
    trash.restore(trash.find(str(tmp_path / "gone" / "f")))
    assert (tmp_path / "gone" / "f").read_text() == "x"


def test_a_file_on_another_filesystem_goes_to_its_topdir_trash(
    tmp_path: Path, xdg: Path, other_fs: Path
) -> None:
    (other_fs / "photos").mkdir()
    (other_fs / "photos" / "a.jpg").write_bytes(b"jpeg")
    where = trash.trash(str(other_fs / "photos" / "a.jpg"))
    topdir_trash = other_fs / f".Trash-{os.getuid()}"
    assert where == str(topdir_trash / "files" / "a.jpg")
    # in a topdir trash the path is relative to the top directory
    assert "Path=photos/a.jpg" in (topdir_trash / "info" / "a.jpg.trashinfo").read_text()
    (item,) = [i for i in trash.list_trash() if i.trash_dir == str(topdir_trash)]
    assert item.original_path == str(other_fs / "photos" / "a.jpg")
    trash.restore(item)
    assert (other_fs / "photos" / "a.jpg").read_bytes() == b"jpeg"


def test_emptying_deletes_for_good_and_can_keep_recent_items(tmp_path: Path, xdg: Path) -> None:
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data").write_bytes(b"x" * 1000)
        trash.trash(str(tmp_path / name))
    info = xdg / "Trash" / "info" / "old.trashinfo"
    info.write_text(info.read_text().replace("DeletionDate=2", "DeletionDate=1"))  # a thousand years ago
    assert trash.empty(older_than=86400)[0] == 1
    assert [i.name for i in trash.list_trash()] == ["new"]
    (xdg / "Trash" / "files" / "orphan").write_text("no info file")
    count, freed = trash.empty()
    assert count == 1 and freed >= 1000
    assert trash.list_trash() == []
    assert os.listdir(xdg / "Trash" / "files") == [] and os.listdir(xdg / "Trash" / "info") == []


def test_nothing_matches_an_unknown_key(xdg: Path) -> None:
    with pytest.raises(NotFound, match="sd trash list"):
        trash.find("/no/such/file", [])


async def test_rm_moves_to_the_trash_and_rm_permanent_deletes(
    core: Core,
    library: Library, tmp_path: Path, xdg: Path
) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    for i in range(30):
        (tmp_path / "tree" / "sub" / f"f{i}").write_text(str(i))
    (tmp_path / "single").write_text("one")
    job = await ops.delete(
        library, [core.local_path(str(tmp_path / "tree")), core.local_path(str(tmp_path / "single"))]
    )
    record = await library.jobs.wait(job)
    assert record.state == "completed", record.error
    assert [i.path for i in record.result.items] == [str(tmp_path / "tree"), str(tmp_path / "single")]
    assert not (tmp_path / "tree").exists()
    assert {i.name for i in trash.list_trash()} == {"tree", "single"}
    trash.restore(trash.find(str(tmp_path / "tree")))
    job = await ops.delete(library, [core.local_path(str(tmp_path / "tree"))], permanent=True)
    record = await library.jobs.wait(job)
    assert record.state == "completed", record.error
    assert record.result.deleted == 32 and not (tmp_path / "tree").exists()
    assert [i.name for i in trash.list_trash()] == ["single"]


async def test_deleting_a_missing_path_or_the_root_is_refused(core: Core, library: Library, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await ops.delete(library, [core.local_path(str(tmp_path / "missing"))])
    with pytest.raises(SdError, match="refusing"):
        await ops.delete(library, [core.local_path("/")], permanent=True)


async def test_rename_and_mkdir(core: Core, library: Library, tmp_path: Path) -> None:
    (tmp_path / "draft.txt").write_text("d")
    (tmp_path / "taken.txt").write_text("t")
    record = await library.jobs.wait(
        await ops.rename(library, core.local_path(str(tmp_path / "draft.txt")), "final.txt")
    )
    assert record.state == "completed" and (tmp_path / "final.txt").read_text() == "d"
    with pytest.raises(SdError, match="taken.txt already exists"):  # refused before a job starts
        await ops.rename(library, core.local_path(str(tmp_path / "final.txt")), "taken.txt")
    assert (tmp_path / "taken.txt").read_text() == "t"
    with pytest.raises(SdError, match="not a file name"):
        await ops.rename(library, core.local_path(str(tmp_path / "final.txt")), "a/b")
    record = await library.jobs.wait(
        await ops.mkdir(library, core.local_path(str(tmp_path / "x" / "y")), parents=True)
    )
    assert record.state == "completed" and (tmp_path / "x" / "y").is_dir()
    with pytest.raises(SdError, match="taken.txt is a file where a directory is expected"):
        await ops.mkdir(library, core.local_path(str(tmp_path / "taken.txt" / "z")))
    assert [r.state for r in library.jobs.list()] == ["completed", "completed"]  # no failed job left behind
