"""Undo through the core API: renames, bulk renames, moves, trashings, tags and notes put back, newest first, across
restarts, and never over a file that changed or a name taken since."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import AlreadyExists, CannotUndo, NotFound, SdError
from sdcore.ops.undo import KEEP
from sdcore.sdpath import SdPath
from tests.functional.attach_support import attached
from tests.functional.ssh_support import paired_core


def at(api: Api, path: Path) -> SdPath:
    return SdPath(api.device.id, str(path))


def names(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


async def test_a_swap_of_two_names_is_done_in_one_job_and_undone_in_one_step(tmp_path: Path, home: Path) -> None:
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        assert await api.ops.rename_many([(at(api, home / "a.txt"), "b.txt"), (at(api, home / "b.txt"), "a.txt")]) == 2
        assert names(home) == {"a.txt": b"I am b.txt", "b.txt": b"I am a.txt", "c.txt": b"I am c.txt"}
        step = await api.undo.last()
        assert step is not None and step.what == "rename 2 files"
    async with Core(tmp_path / "data") as core:  # the history outlives the process
        api = Api(core)
        assert (await api.undo.undo(step.id)).what == "rename 2 files"
        assert names(home) == {"a.txt": b"I am a.txt", "b.txt": b"I am b.txt", "c.txt": b"I am c.txt"}
        assert await api.undo.list() == []
        with pytest.raises(NotFound, match="nothing to undo"):
            await api.undo.undo()


async def test_a_bulk_rename_that_clashes_is_refused_before_any_file_is_renamed(api: Api, home: Path) -> None:
    with pytest.raises(AlreadyExists, match="c.txt already exists"):
        await api.ops.rename_many([(at(api, home / "a.txt"), "x.txt"), (at(api, home / "b.txt"), "c.txt")])
    with pytest.raises(AlreadyExists, match="would both be named x.txt"):
        await api.ops.rename_many([(at(api, home / "a.txt"), "x.txt"), (at(api, home / "b.txt"), "x.txt")])
    for bad in ("", "sub/x", "nul\0", ".."):
        with pytest.raises(SdError, match="is not a file name for b.txt"):
            await api.ops.rename_many([(at(api, home / "a.txt"), "y.txt"), (at(api, home / "b.txt"), bad)])
    assert sorted(names(home)) == ["a.txt", "b.txt", "c.txt"]
    assert await api.undo.list() == []


async def test_undo_refuses_when_the_file_changed_or_its_old_name_is_taken(api: Api, home: Path) -> None:
    await api.ops.rename(at(api, home / "a.txt"), "renamed.txt")
    (home / "renamed.txt").write_text("edited since, and longer")
    with pytest.raises(CannotUndo, match="renamed.txt was changed since; nothing done"):
        await api.undo.undo()
    assert sorted(names(home)) == ["b.txt", "c.txt", "renamed.txt"]

    await api.undo.forget()
    await api.ops.rename(at(api, home / "b.txt"), "other.txt")
    (home / "b.txt").write_text("a new b")
    with pytest.raises(CannotUndo, match="b.txt exists again"):
        await api.undo.undo()
    assert names(home)["b.txt"] == b"a new b" and names(home)["other.txt"] == b"I am b.txt"
    assert (await api.undo.last()).what == "rename b.txt to other.txt"  # type: ignore[union-attr]  # kept: it may be undone later


async def test_trash_move_tag_and_note_are_undone_newest_first(api: Api, home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lib = api.library()
    await lib.locations.add(at(api, home), mode="shallow", index=True)
    await api.ops.trash([at(api, home / "c.txt")])
    await lib.jobs.wait((await api.ops.move([at(api, home / "b.txt")], at(api, elsewhere))).id)
    await lib.tags["keep"].add(at(api, home / "a.txt"))
    await lib.notes.set(at(api, home / "a.txt"), "first")
    await lib.notes.set(at(api, home / "a.txt"), "second")
    assert [s.what for s in await api.undo.list()] == [
        "note on a.txt", "note on a.txt", "tag a.txt “keep”", f"move b.txt to {elsewhere}", "trash c.txt",
    ]  # fmt: skip

    await api.undo.undo()
    assert await lib.notes.get(at(api, home / "a.txt")) == "first"
    await api.undo.undo()
    assert await lib.notes.get(at(api, home / "a.txt")) is None
    await api.undo.undo()
    assert "keep" not in [t.name for t in await lib.tags.list()]  # it was made for this tagging: it goes with it
    await api.undo.undo()
    assert sorted(names(home)) == ["a.txt", "b.txt"] and not list(elsewhere.iterdir())
    await api.undo.undo()
    assert names(home) == {"a.txt": b"I am a.txt", "b.txt": b"I am b.txt", "c.txt": b"I am c.txt"}


async def test_the_history_keeps_the_last_fifty_steps(tmp_path: Path, home: Path) -> None:
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        for n in range(KEEP + 2):
            await api.ops.rename(at(api, home / ("a.txt" if n % 2 == 0 else "z.txt")), "z.txt" if n % 2 == 0 else "a.txt")
        steps = await api.undo.list()
        assert len(steps) == KEEP and steps[0].id == KEEP + 2


async def test_undo_over_the_control_socket(core: Core, home: Path) -> None:
    async with attached(core) as (_, remote):
        await remote.ops.rename(at(remote, home / "a.txt"), "d.txt")  # type: ignore[arg-type]
        step = await remote.undo.last()
        assert step is not None and step.what == "rename a.txt to d.txt"
        await remote.undo.undo(step.id)
        assert sorted(names(home)) == ["a.txt", "b.txt", "c.txt"]


@pytest.fixture
async def api(tmp_path: Path) -> Api:  # type: ignore[misc]
    async with Core(tmp_path / "data") as core:
        yield Api(core)


async def test_a_move_to_a_paired_device_is_undone_back_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    here = tmp_path / "here"
    here.mkdir()
    (here / "report.pdf").write_bytes(b"%PDF- the report")
    (here / "photos").mkdir()
    (here / "photos" / "beach.jpg").write_bytes(b"\xff\xd8 a beach")
    there = tmp_path / "alpha-files"
    there.mkdir()
    async with paired_core(tmp_path) as (core, alpha):
        api = Api(core)
        alpha_folder = SdPath(alpha.device.id, str(there))
        job = await api.ops.move([at(api, here / "report.pdf"), at(api, here / "photos")], alpha_folder)
        assert (await api.library().jobs.wait(job.id)).state == "completed"
        assert sorted(p.name for p in there.iterdir()) == ["photos", "report.pdf"] and not list(here.iterdir())

        step = await api.undo.undo()
        assert step.what == f"move 2 items to {there}"
        assert (here / "report.pdf").read_bytes() == b"%PDF- the report"
        assert (here / "photos" / "beach.jpg").read_bytes() == b"\xff\xd8 a beach"
        assert not list(there.iterdir())


async def test_what_is_put_back_from_the_trash_leaves_the_undo_history(api: Api, home: Path) -> None:
    trashed = await api.ops.trash([at(api, home / "a.txt")])
    await api.ops.trash([at(api, home / "b.txt")])
    await api.ops.restore(trashed)  # U in the explorer
    assert [s.what for s in await api.undo.list()] == ["trash b.txt"]
    await api.trash.restore("b.txt")  # `sd trash restore b.txt`
    assert await api.undo.list() == []


async def test_a_folder_merged_into_one_already_there_is_not_moved_back_by_undo(api: Api, home: Path, tmp_path: Path) -> None:
    (home / "notes").mkdir()
    (home / "notes" / "new.txt").write_text("moved in")
    there = tmp_path / "there"
    (there / "notes").mkdir(parents=True)
    (there / "notes" / "old.txt").write_text("was there before")
    job = await api.ops.move([at(api, home / "notes"), at(api, home / "a.txt")], at(api, there), on_conflict="rename")
    assert (await api.library().jobs.wait(job.id)).state == "completed"
    await api.undo.undo()  # a.txt comes back; the merged folder stays, with what was there before
    assert (home / "a.txt").exists() and not (there / "a.txt").exists()
    assert sorted(p.name for p in (there / "notes").iterdir()) == ["new.txt", "old.txt"]


async def test_a_tag_taken_off_is_put_back_by_undo_on_the_files_that_had_it(api: Api, home: Path) -> None:
    lib = api.library()
    await lib.locations.add(at(api, home), mode="shallow", index=True)
    await lib.tags["keep"].add(at(api, home / "a.txt"))
    await lib.tags["keep"].remove(at(api, home / "a.txt"), at(api, home / "b.txt"))  # b.txt never had it
    assert (await api.undo.last()).what == "untag a.txt “keep”"  # type: ignore[union-attr]
    await api.undo.undo()
    assert [e.name for e in await lib.tags["keep"].files()] == ["a.txt"]


async def test_a_bulk_rename_cut_short_by_a_name_taken_meanwhile_gives_every_file_its_old_name(
    tmp_path: Path, home: Path
) -> None:
    from sdcore.ops.bulkrename import BulkRenameJob

    async with Core(tmp_path / "data") as core:
        api = Api(core)
        (home / "y.txt").write_text("saved by another program since the names were checked")
        job = BulkRenameJob([str(at(api, home / "a.txt")), str(at(api, home / "b.txt"))], ["x.txt", "y.txt"])
        record = await api.library().jobs.wait(await core.library().jobs.start(job))
        assert record.state == "failed" and "y.txt" in (record.error or "")
        assert names(home) == {"a.txt": b"I am a.txt", "b.txt": b"I am b.txt", "c.txt": b"I am c.txt",
                               "y.txt": b"saved by another program since the names were checked"}  # fmt: skip


async def test_a_move_under_a_new_name_says_the_new_name_before_it_is_undone(api: Api, home: Path) -> None:
    await api.library().jobs.wait((await api.ops.move([at(api, home / "a.txt")], at(api, home / "kept.txt"))).id)
    step = await api.undo.last()
    assert step is not None and step.what == f"move a.txt to {home}/kept.txt"  # not "to {home}": it is there no more


async def test_a_move_done_by_a_paired_devices_core_is_undone_there_and_refused_while_it_is_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore import net
    from sdcore.net.testing import pair

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    photos = tmp_path / "nas-photos"
    (photos / "backup").mkdir(parents=True)
    (photos / "harbour.jpg").write_bytes(b"\xff\xd8 harbour")
    (photos / "reef.jpg").write_bytes(b"\xff\xd8 reef")
    async with Core(tmp_path / "laptop") as a, Core(tmp_path / "nas") as b:
        b.device.rename("nas")
        await net.attach(b).start("127.0.0.1:0")
        await pair(net.attach(b), net.attach(a))
        laptop = Api(a)
        nas = await net.attach(a).api_of(b.device.id)  # the nas's core, as the laptop's explorer uses it
        try:
            here = SdPath(b.device.id, str(photos))
            job = await nas.ops.move([here.child("harbour.jpg")], here.child("backup"))
            await laptop.undo.remember(b.device.id, f"move harbour.jpg to {photos}/backup", job=job.id)
            assert (await nas.library().jobs.wait(job.id)).state == "completed"
            assert (await laptop.undo.last()).what == f"move harbour.jpg to {photos}/backup on nas"  # type: ignore[union-attr]

            undone = await laptop.undo.undo()  # u on the laptop: the nas's core moves it back
            assert undone.kind == "remote"
            assert (photos / "harbour.jpg").read_bytes() == b"\xff\xd8 harbour" and not (photos / "backup" / "harbour.jpg").exists()
            assert await laptop.undo.list() == [] and await nas.undo.list() == []  # gone from both histories

            job = await nas.ops.move([here.child("reef.jpg")], here.child("backup"))
            await laptop.undo.remember(b.device.id, f"move reef.jpg to {photos}/backup", job=job.id)
            await nas.library().jobs.wait(job.id)
        finally:
            await nas.close()
        await net.attach(b).close()  # the nas goes offline
        with pytest.raises(SdError) as refused:
            await laptop.undo.undo()
        assert not isinstance(refused.value, CannotUndo)  # not a step to drop: it can be undone once the nas is back
        assert "cannot undo “move reef.jpg" in str(refused.value) and "online" in str(refused.value)
        assert [s.what for s in await laptop.undo.list()] == [f"move reef.jpg to {photos}/backup on nas"]  # kept
        assert (photos / "backup" / "reef.jpg").exists()


@contextlib.asynccontextmanager
async def laptop_and_nas(tmp_path: Path) -> AsyncIterator[tuple[Core, Api, Any]]:
    """Two cores on 127.0.0.1, the nas paired with the laptop: (the nas's core, the laptop's API, the nas's core as
    the laptop's explorer reaches it)."""
    from sdcore import net
    from sdcore.net.testing import pair

    async with Core(tmp_path / "laptop") as a, Core(tmp_path / "nas") as b:
        await net.attach(b).start("127.0.0.1:0")
        await pair(net.attach(b), net.attach(a))
        nas = await net.attach(a).api_of(b.device.id)
        try:
            yield b, Api(a), nas
        finally:
            await nas.close()


async def test_a_step_on_a_paired_device_that_is_no_longer_its_last_is_refused_and_can_be_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    files = tmp_path / "nas-files"
    files.mkdir()
    (files / "a.txt").write_text("a")
    async with laptop_and_nas(tmp_path) as (b, laptop, nas):
        at_nas = SdPath(b.device.id, str(files))
        job = await nas.ops.move([at_nas.child("a.txt")], at_nas.child("b.txt"))
        await laptop.undo.remember(b.device.id, "move a.txt", job=job.id)
        await nas.library().jobs.wait(job.id)
        await Api(b).ops.rename(at_nas.child("b.txt"), "c.txt")  # the nas's own user, after it
        with pytest.raises(CannotUndo, match="“rename b.txt to c.txt” was done there after it"):
            await laptop.undo.undo()
        assert (files / "c.txt").exists()
        await laptop.undo.forget()
        assert await laptop.undo.list() == [] and len(await nas.undo.list()) == 2


async def test_a_remembered_step_whose_number_another_step_took_there_since_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step of a paired device's history was kept by its number alone: once that history began again (its file
    lost), the number named the nas's own user's next step, and u here undid that."""
    from sdcore.ops import undo

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    files = tmp_path / "nas-files"
    files.mkdir()
    (files / "a.txt").write_text("a")
    (files / "mine.txt").write_text("the nas user's")
    async with laptop_and_nas(tmp_path) as (b, laptop, nas):
        at_nas = SdPath(b.device.id, str(files))
        await nas.ops.rename(at_nas.child("a.txt"), "b.txt")
        done = await nas.undo.last()
        assert done is not None
        await laptop.undo.remember(b.device.id, "rename a.txt to b.txt", step=done)
        (b.library().folder / undo.FILE).unlink()  # the nas's history lost: it begins again at 1
        await Api(b).ops.rename(at_nas.child("mine.txt"), "theirs.txt")  # the nas's own user
        assert (await nas.undo.last()).id == done.id  # type: ignore[union-attr]
        with pytest.raises(CannotUndo, match="that device has nothing of it to undo"):
            await laptop.undo.undo()
        assert (files / "theirs.txt").exists() and (files / "b.txt").exists()  # neither put back
