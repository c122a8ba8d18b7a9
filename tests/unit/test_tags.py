"""Tags, notes and favourites: made, renamed, nested, put on files and content, and kept across renames and moves."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import metadata, search, tags
from sdcore.core import Core
from sdcore.errors import AlreadyExists, NotFound
from sdcore.events import LibraryChanged
from sdcore.index.indexer import index_location
from sdcore.library import entries
from sdcore.library.entries import NotIndexed, NotInLibrary
from sdcore.library.library import Library
from sdcore.tags import TagError


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Library]:
    async with Core(tmp_path / "data") as core:
        yield core.library()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    (root / "docs").mkdir(parents=True)
    (root / "photos").mkdir()
    (root / "docs" / "invoice.pdf").write_bytes(b"%PDF-1.4 invoice 42")
    (root / "docs" / "report.txt").write_text("quarterly report")
    (root / "photos" / "beach.jpg").write_bytes(b"\xff\xd8\xff beach pixels")
    (root / "photos" / "beach copy.jpg").write_bytes(b"\xff\xd8\xff beach pixels")
    return root


async def index(library: Library, root: Path, mode: str = "content") -> None:
    found = library.locations.containing(str(root))
    loc = found[0] if found else library.locations.add(str(root), mode=mode)
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


def at(library: Library, path: Path) -> int:
    return entries.entry_at(library, str(path))


def tagged_paths(library: Library, name: str) -> set[str]:
    found = tags.entries(library, name)
    return set(entries.paths_of(library, [t.entry_id for t in found]).values())


# -- the tags themselves -------------------------------------------------------------------------------


async def test_a_nested_tag_brings_its_parents(library: Library) -> None:
    tags.create(library, " work / clients/acme ", color="#FF8800")
    listed = {t.name: t for t in tags.list(library)}
    assert list(listed) == ["work", "work/clients", "work/clients/acme"]
    assert listed["work/clients/acme"].color == "#ff8800"
    assert listed["work/clients/acme"].parent == "work/clients"
    assert listed["work/clients/acme"].leaf == "acme"


async def test_creating_a_tag_that_exists_is_a_clear_error(library: Library) -> None:
    tags.create(library, "Holiday")
    with pytest.raises(AlreadyExists, match="tag 'Holiday' exists already"):
        tags.create(library, "holiday")
    for bad in ("", "  ", "a//b", "/", "tab\there"):
        with pytest.raises(TagError):
            tags.create(library, bad)
    with pytest.raises(TagError, match="not a colour"):
        tags.create(library, "x", color="blurple")


async def test_renaming_a_tag_moves_its_nested_tags(library: Library) -> None:
    tags.create(library, "work/clients/acme")
    tags.create(library, "home")
    tags.rename(library, "work", "job")
    assert [t.name for t in tags.list(library)] == ["home", "job", "job/clients", "job/clients/acme"]
    with pytest.raises(AlreadyExists):
        tags.rename(library, "job", "home")
    with pytest.raises(TagError, match="inside itself"):
        tags.rename(library, "job", "job/clients/old")
    with pytest.raises(NotFound, match="sd tag create"):
        tags.rename(library, "nope", "other")
    assert tags.recolor(library, "job/clients", "blue").color == "blue"
    assert tags.recolor(library, "job/clients", None).color is None


async def test_deleting_a_tag_with_nested_tags_asks_for_recursive(library: Library, home: Path) -> None:
    await index(library, home)
    tags.create(library, "work/acme")
    tags.assign(library, "work/acme", [at(library, home / "docs" / "invoice.pdf")])
    with pytest.raises(TagError, match="--recursive"):
        tags.delete(library, "work")
    assert tags.delete(library, "work", recursive=True) == 2
    assert tags.list(library) == []
    assert tags.of(library, at(library, home / "docs" / "invoice.pdf")) == []


# -- tagging files -------------------------------------------------------------------------------------


async def test_tagging_works_the_moment_a_file_is_indexed(library: Library, home: Path) -> None:
    await index(library, home, mode="shallow")  # no content hashing at all
    tags.create(library, "work/clients/acme")
    invoice = at(library, home / "docs" / "invoice.pdf")
    assert tags.assign(library, "work/clients/acme", [invoice]) == 1
    assert tags.assign(library, "work/clients/acme", [invoice]) == 0  # already there
    assert [t.tag for t in tags.of(library, invoice)] == ["work/clients/acme"]
    assert tagged_paths(library, "work") == {str(home / "docs" / "invoice.pdf")}  # a parent shows its nested tags
    assert tagged_paths(library, "work/clients/acme") == {str(home / "docs" / "invoice.pdf")}
    with pytest.raises(TagError, match="no content identity"):
        tags.assign(library, "work", [invoice], content=True)
    assert tags.remove(library, "work/clients/acme", [invoice]) == 1
    assert tagged_paths(library, "work") == set()


async def test_tag_follows_a_renamed_and_moved_file(library: Library, home: Path) -> None:
    await index(library, home)
    tags.create(library, "tax")
    tags.assign(library, "tax", [at(library, home / "docs" / "invoice.pdf")])
    os.rename(home / "docs" / "invoice.pdf", home / "docs" / "invoice-2024.pdf")
    await index(library, home)
    assert tagged_paths(library, "tax") == {str(home / "docs" / "invoice-2024.pdf")}
    (home / "archive").mkdir()
    os.rename(home / "docs" / "invoice-2024.pdf", home / "archive" / "invoice-2024.pdf")
    await index(library, home)
    assert tagged_paths(library, "tax") == {str(home / "archive" / "invoice-2024.pdf")}


async def test_tag_and_note_follow_a_file_whose_inode_changed(library: Library, home: Path) -> None:
    await index(library, home)
    report = home / "docs" / "report.txt"
    tags.create(library, "q3")
    tags.assign(library, "q3", [at(library, report)])
    metadata.set_note(library, at(library, report), "send to the board")
    metadata.set_favorite(library, [at(library, report)])
    moved = home / "photos" / "report-final.txt"
    shutil.copy2(report, moved)  # a copy then a delete: another inode, the same content
    report.unlink()
    await index(library, home)
    assert tagged_paths(library, "q3") == {str(moved)}
    assert metadata.note(library, at(library, moved)) == "send to the board"
    assert metadata.favorites(library) == [at(library, moved)]
    assert [h.path for h in search.find(library, "the board")] == [str(moved)]


async def test_a_content_tag_shows_on_every_copy(library: Library, home: Path) -> None:
    await index(library, home)
    tags.create(library, "summer")
    beach = at(library, home / "photos" / "beach.jpg")
    assert tags.assign(library, "summer", [beach], content=True) == 1
    copies = {str(home / "photos" / "beach.jpg"), str(home / "photos" / "beach copy.jpg")}
    assert tagged_paths(library, "summer") == copies
    assert all(t.via_content for t in tags.entries(library, "summer"))
    third = home / "docs" / "beach again.jpg"
    shutil.copy(home / "photos" / "beach.jpg", third)
    await index(library, home)
    assert tagged_paths(library, "summer") == copies | {str(third)}
    assert {h.path for h in search.find(library, tags=("summer",))} == copies | {str(third)}
    assert tags.list(library)[0].contents == 1
    tags.remove(library, "summer", [at(library, third)], content=True)
    assert tagged_paths(library, "summer") == set()


async def test_tagging_a_path_outside_every_location_is_a_clear_error(library: Library, home: Path, tmp_path: Path) -> None:
    await index(library, home)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("x")
    with pytest.raises(NotInLibrary, match="not in any location.*sd location add"):
        at(library, elsewhere)
    (home / "docs" / "new.txt").write_text("not yet")
    with pytest.raises(NotIndexed, match="not indexed yet.*sd location rescan"):
        at(library, home / "docs" / "new.txt")
    with pytest.raises(NotFound, match="sd tag create"):
        tags.assign(library, "never-made", [at(library, home / "docs" / "report.txt")])


# -- notes and favourites ------------------------------------------------------------------------------


async def test_notes_and_favourites_are_kept_and_searchable(library: Library, home: Path) -> None:
    await index(library, home)
    invoice = at(library, home / "docs" / "invoice.pdf")
    metadata.set_note(library, invoice, "paid by bank transfer (ref: ACME-7)")
    assert metadata.note(library, invoice) == "paid by bank transfer (ref: ACME-7)"
    assert [h.entry_id for h in search.find(library, "acme-7")] == [invoice]
    metadata.set_note(library, invoice, "settled")
    assert search.find(library, "transfer") == []
    assert [h.entry_id for h in search.find(library, "settled")] == [invoice]
    assert metadata.set_favorite(library, [invoice]) == 1
    assert metadata.set_favorite(library, [invoice]) == 0
    assert metadata.favorites(library) == [invoice]
    assert [h.entry_id for h in search.find(library, favorites=True)] == [invoice]
    metadata.set_note(library, invoice, "")
    assert metadata.note(library, invoice) is None
    assert search.find(library, "settled") == []
    metadata.set_favorite(library, [invoice], False)
    assert metadata.favorites(library) == []
    with pytest.raises(NotFound):
        metadata.set_note(library, 999_999, "x")


async def test_changes_are_announced_to_the_ui(library: Library, home: Path) -> None:
    await index(library, home)
    with library.context.bus.subscribe(LibraryChanged) as events:
        tags.create(library, "seen")
        tags.assign(library, "seen", [at(library, home / "docs" / "report.txt")])
        metadata.set_favorite(library, [at(library, home / "docs" / "report.txt")])
        search.save(library, "saved", search.Query("report"))
        got = [(await asyncio.wait_for(anext(events), 2)).what for _ in range(4)]
    assert got == ["tags", "tags", "favorites", "saved searches"]
