"""Pilot tests of what a new user met in the explorer's first hour (issue 12): real files in tmp_path, the real app."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static
from tui_support import app_for, explorer, make_tree, names, own_home, settle, wait_for  # noqa: F401 (own_home: autouse)

from sdtui.screens.confirm import ConfirmScreen
from sdtui.widgets.pane import Pane


def footer(pane: Pane) -> str:
    """The pane's footer as drawn."""
    return str(pane.query_one(".pane--footer", Static).render())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


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
