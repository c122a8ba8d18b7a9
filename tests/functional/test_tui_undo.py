"""The explorer's bulk rename (R, names in a scripted $EDITOR) and undo (u, ctrl+z), as a user drives them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tui_support import app_for, explorer, names, own_home, settle, shown_text, wait_for  # noqa: F401 (own_home: autouse)

from sdtui.screens.confirm import ConfirmScreen


def scripted_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replacements: dict[str, str]) -> None:
    """$EDITOR: a small program that rewrites the file of names it is given, as a user would in vidir."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys\n"
        f"swap = {replacements!r}\n"
        "path = sys.argv[1]\n"
        "lines = open(path).read().split('\\n')\n"
        "open(path, 'w').write('\\n'.join(swap.get(line, line) for line in lines))\n"
    )
    monkeypatch.setenv("VISUAL", f"{sys.executable} {script}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    where = tmp_path / "photos"
    where.mkdir()
    for name in ("one.jpg", "two.jpg", "three.jpg"):
        (where / name).write_text(f"I was {name}")
    return where


async def test_a_swap_of_two_names_in_the_editor_is_done_then_undone(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_editor(tmp_path, monkeypatch, {"one.jpg": "two.jpg", "two.jpg": "one.jpg"})
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        assert names(screen.active) == ["one.jpg", "three.jpg", "two.jpg"]
        await pilot.press("space", "j", "j", "space", "R")  # one.jpg and two.jpg
        await wait_for(pilot, lambda: "renamed 2 items" in shown_text(screen.query_one("#status")))
        assert (folder / "one.jpg").read_text() == "I was two.jpg" and (folder / "two.jpg").read_text() == "I was one.jpg"
        assert sorted(p.name for p in folder.iterdir()) == ["one.jpg", "three.jpg", "two.jpg"]  # no temporary name left

        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Undo “rename 2 files”?" in shown_text(app.screen.query_one(".confirm--question"))
        await pilot.press("y")
        await wait_for(pilot, lambda: "undone: rename 2 files" in shown_text(screen.query_one("#status")))
        assert (folder / "one.jpg").read_text() == "I was one.jpg" and (folder / "two.jpg").read_text() == "I was two.jpg"


async def test_a_clash_in_the_editor_renames_nothing(tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_editor(tmp_path, monkeypatch, {"one.jpg": "three.jpg", "two.jpg": "four.jpg"})
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("space", "j", "j", "space", "R")
        await wait_for(pilot, lambda: "three.jpg already exists" in shown_text(screen.query_one("#status")))
        assert sorted(p.name for p in folder.iterdir()) == ["one.jpg", "three.jpg", "two.jpg"]
        await pilot.press("u")
        await wait_for(pilot, lambda: "nothing to undo" in shown_text(screen.query_one("#status")))
