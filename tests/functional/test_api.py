"""User stories told through the core API (`sdcore.api`), with a real data dir and real files.

Each story is a function of an `api`: the `api` fixture gives one per way of reaching the core (in-process, and a
client over the control socket: the same surface, the same stories).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api import Api, Emptied, Entry, JobRoute, Query, TaggedFile, human_size
from sdcore.api.client import attach
from sdcore.api.server import serve
from sdcore.control import ControlServer
from sdcore.core import Core
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.events import EntriesChanged
from sdcore.jobs.results import CopyResult
from sdcore.library.entries import NotInLibrary
from sdcore.sdpath import SdPath
from tests.functional.attach_support import attached


@pytest.fixture(params=["in-process", "attached"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API of a core over a fresh data dir: in-process, or a client over its control socket."""
    async with Core(tmp_path / "data") as core:
        if request.param == "in-process":
            yield Api(core)
            return
        async with attached(core) as (_, remote):
            yield remote  # type: ignore[misc]  # the same surface, as a proxy


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


async def a_file_outside_every_location_is_made_known_by_indexing_its_folder(api: Api, home: Path) -> None:
    receipt = home / "inbox" / "receipt.pdf"
    receipt.parent.mkdir()
    receipt.write_bytes(b"%PDF- a receipt")
    lib = api.library()
    (added,) = await lib.entries.make_known(at(api, receipt))
    assert (added.path, added.mode) == (str(receipt.parent), "shallow")
    assert await lib.entries.make_known(at(api, receipt)) == []  # known now: nothing more is added
    await lib.notes.set(at(api, receipt), "paid")
    assert [h.path for h in await lib.search("paid")] == [at(api, receipt)]
    with pytest.raises(NotFound, match="does not exist"):  # a typo adds no location
        await lib.entries.make_known(at(api, home / "elsewhere" / "nope.pdf"))
    assert [loc.path for loc in await lib.locations.list()] == [str(receipt.parent)]


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

    changes: asyncio.Queue[EntriesChanged] = asyncio.Queue()  # what another explorer on this core would hear

    async def listen() -> None:
        async for event in api.events():
            if isinstance(event, EntriesChanged):
                changes.put_nowait(event)

    listening = asyncio.ensure_future(listen())
    try:
        for attempt in range(40):  # until the subscription is live: a folder made is heard
            await api.ops.mkdir(at(api, home / f"probe{attempt}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard(changes, home), 0.5)
                break
        restored = await api.ops.restore(trashed)
        told = await asyncio.wait_for(heard(changes, folder), 5)
    finally:
        listening.cancel()
    assert restored == [at(api, f) for f in files]
    assert [f.read_text() for f in files] == ["draft 0", "draft 1", "draft 2"]
    assert told.names == ("draft0.txt", "draft1.txt", "draft2.txt")


async def heard(changes: asyncio.Queue[EntriesChanged], directory: Path) -> EntriesChanged:
    """The next change of `directory` the core announced."""
    while (event := await changes.get()).directory != str(directory):
        pass
    return event


async def copy_a_folder_and_read_what_the_job_did(api: Api, home: Path) -> None:
    source = home / "photos"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"a" * 3000)
    (source / "b.jpg").write_bytes(b"b" * 5000)
    backup = home / "backup"
    backup.mkdir()
    job = await api.ops.copy([at(api, source)], at(api, backup))
    assert job.kind == "copy" and job.state in ("queued", "running", "completed")
    done = await api.library().jobs.wait(job.id)
    assert done.state == "completed"
    assert isinstance(done.result, CopyResult)
    assert (done.result.files, done.result.bytes, done.result.verb) == (2, 8000, "copied")
    assert await api.library().jobs.route(job.id) == JobRoute((at(api, source),), at(api, backup))
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
    record = await lib.jobs.wait((await lib.locations.index(location.id)).id)
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


async def the_trash_lists_restores_by_path_or_name_and_empties_what_is_old(api: Api, home: Path) -> None:
    report, photo = home / "report.txt", home / "photo.jpg"
    report.write_text("quarterly")
    photo.write_bytes(b"j" * 2048)
    await api.ops.trash([at(api, report), at(api, photo)])
    listed = {t.path: t for t in await api.trash.list()}
    assert set(listed) == {at(api, report), at(api, photo)}
    assert (listed[at(api, photo)].kind, listed[at(api, photo)].size) == ("file", 2048)
    assert time.time() - listed[at(api, photo)].deleted < 60

    assert await api.trash.restore(at(api, report)) == at(api, report)  # by where it was
    assert report.read_text() == "quarterly"
    in_trash = os.path.basename(listed[at(api, photo)].in_trash.path)
    kept = at(api, home / "kept.jpg")
    assert await api.trash.restore(in_trash, to=kept) == kept  # by its name in the trash, to another place
    assert (home / "kept.jpg").read_bytes() == b"j" * 2048 and not photo.exists()

    await api.ops.trash([at(api, report)])
    report.write_text("a new report")
    with pytest.raises(AlreadyExists, match="exists already"):  # never replaces anything; loses nothing
        await api.trash.restore(at(api, report))
    assert report.read_text() == "a new report" and [t.path for t in await api.trash.list()] == [at(api, report)]
    with pytest.raises(NotFound, match="`sd trash list` shows what it holds"):
        await api.trash.restore("never-trashed.txt")

    assert await api.trash.empty(older_than=3600) == Emptied(0, 0)  # trashed just now: kept
    assert await api.trash.empty() == Emptied(1, len("quarterly"))
    assert await api.trash.list() == []


async def a_tag_shows_what_carries_it_itself_or_through_its_content(api: Api, home: Path) -> None:
    (home / "invoice.pdf").write_bytes(b"%PDF- acme invoice")
    (home / "invoice copy.pdf").write_bytes(b"%PDF- acme invoice")
    (home / "plan.txt").write_text("the plan")
    lib = api.library()
    await lib.locations.add(at(api, home), mode="content", index=True)
    await lib.tags.create("work")
    await lib.tags["work"].add(at(api, home / "plan.txt"))
    await lib.tags["work/acme"].add(at(api, home / "invoice.pdf"), content=True)  # every copy carries it

    assert sorted(await lib.tags["work"].tagged(), key=lambda t: t.path.path) == [
        TaggedFile(at(api, home / "invoice copy.pdf"), "work/acme", True),
        TaggedFile(at(api, home / "invoice.pdf"), "work/acme", True),
        TaggedFile(at(api, home / "plan.txt"), "work", False),
    ]
    assert await lib.tags["work"].tagged(nested=False) == [TaggedFile(at(api, home / "plan.txt"), "work", False)]
    with pytest.raises(NotFound):
        await lib.tags["play"].tagged()


async def a_saved_search_finds_images_and_tells_their_kind_and_location(api: Api, home: Path) -> None:
    (home / "beach.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    (home / "beach.txt").write_text("notes of the beach")
    lib = api.library()
    location = await lib.locations.add(at(api, home), mode="content", index=True)
    images = Query("beach", kind=("image",))
    (hit,) = await lib.search(images)
    assert (hit.name, hit.object_kind, hit.location_id, hit.path) == ("beach.png", "image", location.id,
                                                                       at(api, home / "beach.png"))
    await lib.saved.save("Beaches", images)
    assert (await lib.saved.get("Beaches")).query == images
    assert [h.name for h in await lib.saved.run("Beaches")] == ["beach.png"]
    with pytest.raises(NotFound, match="sd search --saved"):
        await lib.saved.get("Mountains")


async def duplicates_are_found_in_the_library_and_in_a_folder_from_disk(api: Api, home: Path) -> None:
    photos = home / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"same" * 2000)
    (photos / "b.jpg").write_bytes(b"same" * 2000)
    (photos / "c.jpg").write_bytes(b"else" * 2000)
    lib = api.library()
    await lib.locations.add(at(api, photos), mode="content", index=True)
    for found in (await lib.duplicates(), await api.duplicates_in([at(api, photos)])):
        (group,) = found.groups
        assert sorted(f.path for f in group.files) == [str(photos / "a.jpg"), str(photos / "b.jpg")]
        assert (group.size, group.wasted, found.wasted, found.changed) == (8000, 8000, 8000, ())
    assert (await lib.duplicates(min_size=10_000)).groups == ()
    with pytest.raises(SdError, match="on another device"):
        await api.duplicates_in([SdPath(uuid.uuid4(), str(photos))])


async def pairing_suggests_the_default_port(api: Api, home: Path) -> None:
    assert await api.devices.default_port() == 37520


STORIES = [
    tag_a_file_outside_every_location_and_find_it,
    a_file_outside_every_location_is_made_known_by_indexing_its_folder,
    a_file_made_since_the_index_is_indexed_when_noted,
    trash_three_files_and_restore_them,
    copy_a_folder_and_read_what_the_job_did,
    rename_and_make_a_folder,
    a_shown_folder_tells_what_changed_in_it,
    index_a_folder_ignoring_one_and_list_what_the_index_knows,
    the_trash_lists_restores_by_path_or_name_and_empties_what_is_old,
    a_tag_shows_what_carries_it_itself_or_through_its_content,
    a_saved_search_finds_images_and_tells_their_kind_and_location,
    duplicates_are_found_in_the_library_and_in_a_folder_from_disk,
    pairing_suggests_the_default_port,
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

        await there.library().locations.add(SdPath(desk.device.id, str(folder)), mode="shallow", index=True)
        (hit,) = await here.devices.search("desk", "plan")  # the desk's library, asked from the laptop
        assert (hit.name, hit.path) == ("plan.txt", remote.child("plan.txt"))
        control = ControlServer(laptop.data_dir)  # and by a front end attached to the laptop's core
        serve(control, here)
        await control.start()
        attached = await attach(laptop.data_dir)
        assert attached is not None
        try:
            assert [h.path for h in await attached.devices.search("desk", Query("plan", kind=("text",)))] == [hit.path]
        finally:
            await attached.close()
            await control.close()


async def test_a_paired_device_that_answers_a_search_with_junk_is_said_so(tmp_path: Path) -> None:
    async with Core(tmp_path / "laptop") as laptop, Core(tmp_path / "desk") as desk:
        desk.device.rename("desk")

        async def hostile(peer: object, query: str) -> list[object]:
            return [{"entry_id": 1, "path": 5, "name": "\x1b[2J"}, "not a hit"]

        desk.net().expose("search", hostile)  # before it listens: its sessions offer this search
        here, there = Api(laptop), Api(desk)
        address = await here.devices.listen("127.0.0.1:0")
        await there.devices.listen("127.0.0.1:0")
        await there.devices.pair_join(await here.devices.pair_code(), address)
        await here.devices.wait_paired()
        with pytest.raises(SdError, match="desk answered the search with something other than files found"):
            await here.devices.search("desk", "plan")  # nothing is built of it, nothing printed


def test_the_explorer_reaches_the_core_only_through_the_api() -> None:
    """No SQL, no job-result dicts and no core internals in the explorer: it asks `app.api` (issue 14)."""
    sdtui = Path(__file__).parents[2] / "sdtui"
    files = [sdtui / "app.py", *sorted((sdtui / "screens").glob("*.py")), *sorted((sdtui / "widgets").glob("*.py"))]
    forbidden = ("sqlite3", ".execute(", "SELECT ", 'get("outcomes"', "sd.core", "self.core.bus", "core.network",
                 "from sdcore.search", "from sdcore.tags", "from sdcore.metadata", "from sdcore.ops")
    found = [f"{f.name}: {word}" for f in files for word in forbidden if word in f.read_text()]
    assert found == []


async def test_details_of_a_file_in_a_damaged_library_say_it_is_damaged_not_unindexed(tmp_path: Path) -> None:
    from tests.functional.test_library_damage import overwrite_pages

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(600):
        (folder / f"a-file-with-a-long-name-so-the-entries-fill-pages-{i:04}.txt").write_text("x")
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        await api.library().locations.add(at(api, folder), mode="shallow", index=True)
        library_folder = next((tmp_path / "data" / "libraries").glob("*.sdlibrary"))
    overwrite_pages(library_folder / "database.db", "entries")
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        with pytest.raises(SdError, match="damaged"):
            await api.library().entries.details(at(api, folder / "a-file-with-a-long-name-so-the-entries-fill-pages-0300.txt"))
