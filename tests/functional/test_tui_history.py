"""The explorer's N: what a file's note and tags were, and putting an old note or a removed tag back."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from textual.widgets import OptionList
from tui_support import answer_prompt, app_for, library_of, make_tree, own_home, settle, shown_text, wait_for  # noqa: F401

from sdcore import metadata, tags
from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.library import entries
from sdcore.library.context import LibraryContext
from sdcore.library.library import Library
from sdtui.screens.history import HistoryScreen
from sdtui.widgets.inspector import Inspector


@pytest.fixture
async def indexed(tmp_path: Path) -> Path:
    """A tree, indexed as a location; alpha.py tagged 'draft', then untagged, with two notes written in turn."""
    tree = make_tree(tmp_path)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(tree))
        await library.jobs.wait(await index_location(library, location))
        alpha = entries.entry_at(library, str(tree / "alpha.py"))
        tags.create(library, "draft")
        tags.assign(library, "draft", [alpha])
        tags.remove(library, "draft", [alpha])
        metadata.set_note(library, alpha, "first thoughts")
        metadata.set_note(library, alpha, "second thoughts")
    return tree


def lines(app: object) -> list[str]:
    options = app.screen.query_one(OptionList)  # type: ignore[attr-defined]
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_n_history_puts_an_overwritten_note_and_a_removed_tag_back(tmp_path: Path, indexed: Path) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        status = app.screen.query_one("#status")
        await pilot.press("j", "j", "N")  # alpha.py
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        shown = lines(app)
        assert shown[0].startswith("now note") and "second thoughts" in shown[0]
        assert "first thoughts" in shown[1]
        assert "-draft" in shown[2] and "+draft" in shown[3]
        await pilot.press("enter")  # the text before: first thoughts
        await wait_for(pilot, lambda: "note on alpha.py put back" in shown_text(status))
        library = await library_of(app)
        alpha = entries.entry_at(library, str(indexed / "alpha.py"))
        assert metadata.note(library, alpha) == "first thoughts"
        await pilot.press("N")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        assert "first thoughts" in lines(app)[0] and "second thoughts" in lines(app)[1]  # nothing was lost
        await pilot.press("down", "down", "enter")  # past "second thoughts" and "first thoughts": -draft
        await wait_for(pilot, lambda: "tag “draft” put back" in shown_text(status))
        assert [t.tag for t in tags.of(library, alpha)] == ["draft"]


async def test_a_note_written_on_another_device_shows_in_the_inspector_once_synced(tmp_path: Path, indexed: Path) -> None:
    folder = next((tmp_path / "data" / "libraries").glob("*.sdlibrary"))
    shutil.copytree(folder, tmp_path / "other" / folder.name, ignore=shutil.ignore_patterns(".lock"))
    other = Library(tmp_path / "other" / folder.name, LibraryContext.this_device_only(uuid.uuid4()))  # another device
    metadata.set_note(other, entries.entry_at(other, str(indexed / "alpha.py"), other.locations.list()[0].device_id), "from the nas")
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j")  # alpha.py
        await wait_for(pilot, lambda: "second thoughts" in shown_text(app.screen.query_one(Inspector)))
        library = await library_of(app)
        library.sync.apply(other.sync.ops_since(library.sync.watermarks(), 100))  # what a pull does
        await wait_for(pilot, lambda: "from the nas" in shown_text(app.screen.query_one(Inspector)))
    other.close()
