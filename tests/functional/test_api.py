"""User stories told through the core API (`sdcore.api`), with a real data dir and real files.

Each story is a function of an `api`: the `api` fixture gives one per way of reaching the core (in-process
here; a client over the control socket is the same surface, and the same stories run on it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api import Api, Entry, JobRoute, human_size
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.library.entries import NotInLibrary
from sdcore.ops.results import CopyResult
from sdcore.sdpath import SdPath


@pytest.fixture(params=["in-process"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API of a core over a fresh data dir."""
    async with Core(tmp_path / "data") as core:
        yield Api(core)


def at(api: Api, path: Path) -> SdPath:
    return SdPath(api.device.id, str(path))


async def listed(api: Api, directory: Path) -> list[Entry]:
    return [e async for batch in api.browse(at(api, directory)) for e in batch]


# -- the stories ----------------------------------------------------------------------------------------


async def tag_a_file_outside_every_location_and_find_it(api: Api, home: Path) -> None:
    invoice = home / "papers" / "acme-invoice.pdf"
    invoice.parent.mkdir(parents=True)
    invoice.write_bytes(b"%PDF- an invoice")
    lib = api.library()
    with pytest.raises(NotInLibrary, match="not in any location"):
        await lib.tags["work/acme"].add(at(api, invoice))
    location = await lib.locations.add(at(api, invoice.parent), mode="shallow", index=True)
    assert location.path == str(invoice.parent)
    assert await lib.tags["work/acme"].add(at(api, invoice)) == 1

    (tagged,) = await lib.tags["work"].files()  # nested: work/acme is below work
    assert (tagged.path, tagged.name, tagged.kind, tagged.size) == (at(api, invoice), "acme-invoice.pdf", "file", 16)
    assert tagged.entry_id is not None
    assert [t.name for t in await lib.tags.list()] == ["work", "work/acme"]
    (hit,) = await lib.search("invoice")
    assert (hit.path, hit.entry_id) == (at(api, invoice), tagged.entry_id)


async def a_file_made_since_the_index_is_indexed_when_noted(api: Api, home: Path) -> None:
    folder = home / "notes"
    folder.mkdir()
    lib = api.library()
    await lib.locations.add(at(api, folder), mode="shallow", index=True)
    fresh = folder / "later.txt"
    fresh.write_text("made after the index ran")
    await lib.notes.set(at(api, fresh), "call Ann about this")
    assert await lib.notes.get(at(api, fresh)) == "call Ann about this"
    assert await lib.favourites.toggle(at(api, fresh)) is True
    assert [f.path for f in await lib.favourites.list()] == [at(api, fresh)]
    details = await lib.entries.details(at(api, fresh))
    assert details is not None and (details.note, details.favourite) == ("call Ann about this", True)
    assert [h.name for h in await lib.search("Ann")] == ["later.txt"]
    with pytest.raises(SdError, match="does not exist"):
        await lib.notes.set(at(api, folder / "never-made.txt"), "x")


async def trash_three_files_and_restore_them(api: Api, home: Path) -> None:
    folder = home / "drafts"
    folder.mkdir()
    files = [folder / f"draft{i}.txt" for i in range(3)]
    for i, f in enumerate(files):
        f.write_text(f"draft {i}")
    trashed = await api.ops.trash([at(api, f) for f in files])
    assert [t.path for t in trashed] == [at(api, f) for f in files]
    assert not any(f.exists() for f in files)
    assert all(Path(t.in_trash.path).exists() for t in trashed)
    assert await listed(api, folder) == []

    restored = await api.ops.restore(trashed)
    assert restored == [at(api, f) for f in files]
    assert [f.read_text() for f in files] == ["draft 0", "draft 1", "draft 2"]


async def copy_a_folder_and_read_what_the_job_did(api: Api, home: Path) -> None:
    source = home / "photos"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"a" * 3000)
    (source / "b.jpg").write_bytes(b"b" * 5000)
    backup = home / "backup"
    backup.mkdir()
    job_id = await api.ops.copy([at(api, source)], at(api, backup))
    record = await api.library().jobs.wait(job_id)
    assert record.state == "completed"
    assert isinstance(record.result, CopyResult)
    assert (record.result.files, record.result.bytes, record.result.verb) == (2, 8000, "copied")
    assert await api.library().jobs.route(job_id) == JobRoute((at(api, source),), at(api, backup))
    copied = sorted((e.name, e.size) for e in await listed(api, backup / "photos"))
    assert copied == [("a.jpg", 3000), ("b.jpg", 5000)]
    entry = await api.stat(at(api, backup / "photos" / "a.jpg"), cas_id=True)
    original = await api.stat(at(api, source / "a.jpg"), cas_id=True)
    assert entry.cas_id is not None and entry.cas_id == original.cas_id
    assert human_size(entry.size) == "2.9K"


async def rename_and_make_a_folder(api: Api, home: Path) -> None:
    made = at(api, home / "new folder")
    await api.ops.mkdir(made)
    renamed = await api.ops.rename(made, "renamed")
    assert renamed == at(api, home / "renamed")
    assert (await api.stat(renamed)).is_dir
    with pytest.raises(SdError, match="already exists"):
        await api.ops.mkdir(renamed)


async def a_shown_folder_tells_what_changed_in_it(api: Api, home: Path) -> None:
    inbox = home / "inbox"
    inbox.mkdir()
    async with contextlib.aclosing(api.watch(at(api, inbox))) as changes:
        change = asyncio.ensure_future(anext(changes))
        for attempt in range(40):  # the first writes may come before the watch is in place
            (inbox / f"new{attempt}.txt").write_text("fresh")
            done, _ = await asyncio.wait({change}, timeout=0.25)
            if done:
                break
        event = change.result()
    assert event.directory == str(inbox)
    assert event.names and event.names[0].startswith("new")


async def index_a_folder_ignoring_one_and_list_what_the_index_knows(api: Api, home: Path) -> None:
    (home / "photos").mkdir()
    (home / "photos" / "beach.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    (home / "build").mkdir()
    (home / "build" / "out.o").write_bytes(b"obj")
    lib = api.library()
    location = await lib.locations.add(at(api, home), mode="content", ignore=["build"])
    assert location.ignore == ("build",)
    assert await lib.locations.containing(at(api, home / "photos")) == location
    assert await lib.locations.containing(at(api, home.parent)) is None
    record = await lib.jobs.wait(await lib.locations.index(location.id))
    assert (record.state, record.result.found) == ("completed", 2)  # photos and beach.png: build is ignored

    shown = {e.name: e async for batch in api.browse(at(api, home), index=True) for e in batch}
    assert (shown["photos"].files, shown["photos"].entry_id is not None) == (1, True)
    assert shown["build"].entry_id is None  # listed, never indexed: rules decide what is indexed, not shown
    (beach,) = [e async for batch in api.browse(at(api, home / "photos"), index=True) for e in batch]
    assert (beach.object_kind, beach.cas_id is not None) == ("image", True)
    assert [e.object_kind for e in await listed(api, home / "photos")] == [None]  # browse: the disk only

    moved = await lib.locations.set_mode("home", "shallow")
    assert moved.mode == "shallow"
    assert (await lib.locations.set_ignore(location.id, [])).ignore == ()
    with pytest.raises(SdError, match="is not in location"):
        await lib.locations.index(location.id, below=at(api, home.parent))


STORIES = [
    tag_a_file_outside_every_location_and_find_it,
    a_file_made_since_the_index_is_indexed_when_noted,
    trash_three_files_and_restore_them,
    copy_a_folder_and_read_what_the_job_did,
    rename_and_make_a_folder,
    a_shown_folder_tells_what_changed_in_it,
    index_a_folder_ignoring_one_and_list_what_the_index_knows,
]


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__ for s in STORIES])
async def test_story(api: Api, tmp_path: Path, story) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    await story(api, home)


# -- in-process only: what needs a second device ------------------------------------------------------------


async def test_a_paired_device_path_is_labelled_with_its_name_and_browses(tmp_path: Path) -> None:
    async with Core(tmp_path / "laptop") as laptop, Core(tmp_path / "desk") as desk:
        laptop.device.rename("laptop")
        desk.device.rename("desk")
        here, there = Api(laptop), Api(desk)
        address = await here.devices.listen("127.0.0.1:0")
        await there.devices.listen("127.0.0.1:0")  # the laptop browses the desk: it listens too
        code = await here.devices.pair_code()
        joined = await there.devices.pair_join(code, address)
        paired = await here.devices.wait_paired()
        assert (joined.id, paired.id) == (laptop.device.id, desk.device.id)
        (folder := tmp_path / "shared").mkdir()
        (folder / "plan.txt").write_text("the plan")

        remote = await here.resolve(f"desk:{folder}")
        assert remote == SdPath(desk.device.id, str(folder))
        assert await here.label(remote) == f"desk:{folder}"
        assert await here.devices.label(remote) == f"desk:{folder}"
        assert [d.name for d in await here.devices.list()] == ["desk"]
        assert [(e.name, e.path) for batch in [b async for b in here.browse(remote)] for e in batch] == [
            ("plan.txt", remote.child("plan.txt"))
        ]
        assert await here.label(SdPath(laptop.device.id, str(Path.home() / "docs"))) == "~/docs"


def test_the_explorer_reaches_the_core_only_through_the_api() -> None:
    """No SQL, no job-result dicts and no core internals in the explorer: it asks `app.api` (issue 14)."""
    sdtui = Path(__file__).parents[2] / "sdtui"
    files = [sdtui / "app.py", *sorted((sdtui / "screens").glob("*.py")), *sorted((sdtui / "widgets").glob("*.py"))]
    forbidden = ("sqlite3", ".execute(", "SELECT ", 'get("outcomes"', "sd.core", "self.core.bus", "core.network",
                 "from sdcore.search", "from sdcore.tags", "from sdcore.metadata", "from sdcore.ops")
    found = [f"{f.name}: {word}" for f in files for word in forbidden if word in f.read_text()]
    assert found == []
