"""Pilot tests of what a new user met in the explorer's first hour (issue 12): real files in tmp_path, the real app."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from tui_support import (  # noqa: F401 (own_home: autouse)
    answer_prompt,
    app_for,
    explorer,
    make_tree,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdtui.screens.confirm import ConfirmScreen
from sdtui.widgets.pane import Pane


def footer(pane: Pane) -> str:
    """The pane's footer as drawn."""
    return str(pane.query_one(".pane--footer", Static).render())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


@pytest.fixture
async def indexed(tmp_path: Path, tree: Path) -> Path:
    """The tree as a location of the default library, indexed (then the core is closed: the app opens it)."""
    async with Core(tmp_path / "data") as core:
        library = core.library()
        await library.jobs.wait(await index_location(library, library.locations.add(str(tree))))
    return tree


@pytest.mark.parametrize("key", ["D", "d"])
async def test_a_range_deleted_leaves_nothing_selected_so_a_second_delete_offers_only_the_cursor(
    tmp_path: Path, tree: Path, key: str
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "g", "g", "v", "j", "j")  # docs, music, alpha.py
        await wait_for(pilot, lambda: "3 selected" in footer(pane))  # the range is counted while it is marked
        await pilot.press("j")
        await wait_for(pilot, lambda: "4 selected" in footer(pane))
        await pilot.press("k", key)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "3 items" in app.screen.question
        await pilot.press("y")
        await wait_for(pilot, lambda: "alpha.py" not in names(pane))
        await settle(pilot, app)
        assert not (tree / "docs").exists() and (tree / "beta.txt").exists()
        assert pane.file_list.visual_anchor is None and not pane.file_list.selected
        assert "selected" not in footer(pane)
        await pilot.press(key)  # one file now: the one under the cursor, never three others
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.question
        assert "items" not in question and pane.file_list.current is not None
        assert pane.file_list.current.name in question
        await pilot.press("n")


async def test_search_results_start_unfiltered_whatever_the_pane_was_filtered_by(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("slash", *"fork", "enter")
        await wait_for(pilot, lambda: names(pane) == [])
        await answer_prompt(pilot, app, "ctrl+f", "notes")
        await wait_for(pilot, lambda: names(pane) == ["~/tree/docs/notes.md"])
        await settle(pilot, app)
        assert "fork" not in footer(pane) and pane.filter_box.value == ""
        assert not pane.filter_box.has_class("-open")
