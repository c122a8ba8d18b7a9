"""A file made on the inode of a deleted one is another file: it takes none of the old one's tags, note or undo."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import CannotUndo
from sdcore.sdpath import SdPath


def at(api: Api, path: Path) -> SdPath:
    return SdPath(api.device.id, str(path))


@pytest.fixture
async def api(tmp_path: Path) -> Api:  # type: ignore[misc]
    async with Core(tmp_path / "data") as core:
        yield Api(core)


def made_on_the_inode_of(old: Path, new: Path, text: str) -> bool:
    """Delete `old` and write `new`, as nothing watches; whether `new` got the inode `old` had (ext4 gives it at
    once, unless another file made meanwhile took it: a few tries)."""
    inode = old.stat().st_ino
    old.unlink()
    for _ in range(20):
        new.write_text(text)
        if new.stat().st_ino == inode:
            return True
        new.unlink()
    return False


async def rescan(api: Api) -> None:
    lib = api.library()
    (location,) = await lib.locations.list()
    record = await lib.jobs.wait((await lib.locations.index(location.id)).id)
    assert record.state == "completed", record.error


async def test_a_new_file_on_a_deleted_files_inode_takes_none_of_its_tags_note_or_undo(api: Api, home: Path) -> None:
    lib = api.library()
    await lib.locations.add(at(api, home), mode="shallow", index=True)
    c = home / "c.txt"
    await lib.notes.set(at(api, c), "the signed copy")
    await lib.tags["keep"].add(at(api, c))
    await lib.tags["draft"].add(at(api, c))
    await lib.tags["draft"].remove(at(api, c))  # the step an undo puts back
    x = home / "x.txt"
    if not made_on_the_inode_of(c, x, "someone else's file, longer"):
        pytest.skip("the filesystem gave x.txt another inode than the deleted c.txt's (tmpfs never reuses one)")
    await rescan(api)
    assert await lib.tags["keep"].files() == []
    assert await lib.notes.get(at(api, x)) is None
    with contextlib.suppress(CannotUndo):  # refusing is right too: c.txt is gone
        await api.undo.undo()  # puts "draft" back on c.txt, never on x.txt
    assert await lib.tags["draft"].files() == []


async def test_a_file_renamed_while_nothing_watched_keeps_its_tags_and_note(api: Api, home: Path) -> None:
    lib = api.library()
    await lib.locations.add(at(api, home), mode="shallow", index=True)
    await lib.tags["keep"].add(at(api, home / "c.txt"))
    await lib.notes.set(at(api, home / "c.txt"), "the signed copy")
    os.rename(home / "c.txt", home / "signed.txt")
    await rescan(api)
    assert [e.name for e in await lib.tags["keep"].files()] == ["signed.txt"]
    assert await lib.notes.get(at(api, home / "signed.txt")) == "the signed copy"
