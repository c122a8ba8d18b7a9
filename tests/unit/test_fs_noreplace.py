"""A rename never replaces what is at its target, even a file made there after any check could have looked."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdcore.errors import AlreadyExists
from sdcore.fs import noreplace
from sdcore.fs.local import LocalFS
from sdcore.fs.noreplace import rename_noreplace


@pytest.fixture(params=["renameat2", "link"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernel's RENAME_NOREPLACE, or the fallback where it is missing or refused (link, then unlink)."""
    if request.param == "renameat2":
        if noreplace._RENAMEAT2 is None:
            pytest.skip("this libc has no renameat2")
    else:
        monkeypatch.setattr(noreplace, "_RENAMEAT2", None)
    return str(request.param)


def test_a_file_that_appeared_at_the_target_is_kept(way: str, tmp_path: Path) -> None:
    # No check runs before the call: the target is there, as if made a moment after a check said it was free.
    (tmp_path / "draft.txt").write_text("mine")
    (tmp_path / "final.txt").write_text("someone else's")
    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "draft.txt"), str(tmp_path / "final.txt"))
    assert (tmp_path / "draft.txt").read_text() == "mine"
    assert (tmp_path / "final.txt").read_text() == "someone else's"


def test_a_folder_is_not_renamed_over_an_empty_folder(way: str, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_text("cat")
    (tmp_path / "album").mkdir()  # plain rename(2) would silently replace an empty folder
    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "photos"), str(tmp_path / "album"))
    assert (tmp_path / "photos" / "cat.jpg").read_text() == "cat"
    assert (tmp_path / "album").is_dir()


def test_a_free_name_is_taken_and_the_old_one_let_go(way: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "link").symlink_to("a.txt")
    rename_noreplace(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    rename_noreplace(str(tmp_path / "link"), str(tmp_path / "moved-link"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt", "moved-link"]
    assert (tmp_path / "b.txt").read_text() == "A"
    assert (tmp_path / "moved-link").readlink() == Path("a.txt")  # the link itself moved, not what it names


async def test_renaming_onto_a_taken_name_says_which_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    with pytest.raises(AlreadyExists, match="b.txt: already exists"):
        await LocalFS().rename(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert (tmp_path / "b.txt").read_text() == "B"


def test_a_copy_does_not_land_on_a_file_that_appeared_while_it_was_written(tmp_path: Path) -> None:
    from sdcore.ops.localcopy import place

    (tmp_path / ".report.txt.part").write_text("copied")
    (tmp_path / "report.txt").write_text("saved meanwhile by the user")
    with pytest.raises(AlreadyExists, match="appeared while copying"):
        place(str(tmp_path / ".report.txt.part"), str(tmp_path / "report.txt"), replace=False)
    assert (tmp_path / "report.txt").read_text() == "saved meanwhile by the user"
