"""Tabs kept across restarts, the jump list (z) ranked by frecency, and bookmarks on letters (m, ')."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from tui_support import app_for, explorer, own_home, settle, shown_text, wait_for  # noqa: F401 (own_home: autouse)

from sdcore.sdpath import SdPath
from sdtui.app import SdtuiApp
from sdtui.screens.jump import JumpScreen, LetterScreen, matching
from sdtui.screens.prompt import PromptScreen
from sdtui.state import DAY, FILE, State


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for sub in ("docs/2024", "music", "photos"):
        (root / sub).mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / "docs" / name).write_text(name)
    return root


def test_the_jump_list_ranks_a_folder_visited_often_above_one_visited_once_long_ago(tmp_path: Path) -> None:
    device = SdPath.parse_canonical("sd://00000000-0000-0000-0000-000000000001/").device_id
    state = State(tmp_path / FILE)
    now = 1_800_000_000.0
    state.visit(SdPath(device, "/old/once"), now - 30 * DAY)
    for hours in (50, 30, 5):
        state.visit(SdPath(device, "/work/often"), now - hours * 3600)
    state.visit(SdPath(device, "/just/now"), now - 60)  # once, a minute ago: above the one visited once long ago
    assert [p.path for p in state.jump_list(now)] == ["/work/often", "/just/now", "/old/once"]
    state.save()
    assert [p.path for p in State.load(tmp_path).jump_list(now)] == ["/work/often", "/just/now", "/old/once"]
    assert matching(["~/work/often", "~/old/once", "~/work/other"], "wo of") == [0]


async def test_tabs_with_their_folders_and_cursors_come_back_after_a_restart(tmp_path: Path, folders: Path) -> None:
    app = app_for(tmp_path, folders)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        assert not screen.query_one("#tabs").display  # one tab: no tab bar
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: screen.query_one("#tabs").display)
        await pilot.press("enter")  # docs/ (folders first)
        await wait_for(pilot, lambda: screen.active.path is not None and screen.active.path.name == "docs")
        await settle(pilot, app)
        await pilot.press("j")  # a.txt, after 2024/
        await wait_for(pilot, lambda: screen.active.file_list.current.name == "a.txt")  # type: ignore[union-attr]
        assert " 1 root   2 docs " in shown_text(screen.query_one("#tabs"))
        await pilot.press("q")

    again = SdtuiApp(None, data_dir=tmp_path / "data", mounts_file=str(tmp_path / "mounts"))  # `sdtui`: no folder asked
    async with again.run_test(size=(100, 30)) as pilot:
        await settle(pilot, again)
        screen = explorer(again)
        await wait_for(pilot, lambda: screen.active.file_list.current is not None)
        assert screen.active.path is not None and screen.active.path.path == str(folders / "docs")
        assert screen.active.file_list.current.name == "a.txt"  # type: ignore[union-attr]
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.active.path is not None and screen.active.path.path == str(folders))
        await pilot.press("ctrl+w")
        await wait_for(pilot, lambda: not screen.query_one("#tabs").display)


async def test_z_jumps_to_a_visited_folder_by_words_of_its_path_and_m_bookmarks_one(tmp_path: Path, folders: Path) -> None:
    app = app_for(tmp_path, folders)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)

        def shows(name: str) -> bool:
            return screen.active.path is not None and screen.active.path.name == name

        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, LetterScreen))
        await pilot.press("r")  # root bookmarked on r
        await pilot.press("enter")  # docs/
        await wait_for(pilot, lambda: shows("docs"))
        await pilot.press("apostrophe")
        await wait_for(pilot, lambda: isinstance(app.screen, LetterScreen))
        await pilot.press("r")
        await wait_for(pilot, lambda: shows("root"))

        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, JumpScreen))
        await pilot.press(*"t do", "enter")  # words of its path, in order (root/docs)
        await wait_for(pilot, lambda: shows("docs"))


async def test_tab_completes_a_folder_in_the_go_to_prompt(tmp_path: Path, folders: Path) -> None:
    app = app_for(tmp_path, folders)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        field = app.screen.query_one(Input)
        await pilot.press("ctrl+a", "ctrl+k", *"do", "tab")  # from here: docs/ is the only name that fits
        await wait_for(pilot, lambda: field.value == "docs/")
        await pilot.press("tab")  # 2024/, a.txt, b.txt, c.txt agree on nothing: unchanged
        await pilot.press(*"2", "tab", "enter")
        await wait_for(pilot, lambda: explorer(app).active.path is not None and explorer(app).active.path.name == "2024")  # type: ignore[union-attr]


def test_the_jump_list_forgets_the_least_visited_folders_past_its_size(tmp_path: Path) -> None:
    from sdtui.state import MAX_FOLDERS

    device = SdPath.parse_canonical("sd://00000000-0000-0000-0000-000000000001/").device_id
    state = State(tmp_path / FILE)
    state.visit(SdPath(device, "/often"), 0.0)
    state.visit(SdPath(device, "/often"), 1.0)
    for n in range(MAX_FOLDERS):
        state.visit(SdPath(device, f"/once/{n}"), 2.0 + n)
    assert len(state.visits) == MAX_FOLDERS
    kept = {p.path for p in state.jump_list(MAX_FOLDERS + 10.0)}
    assert "/often" in kept and "/once/0" not in kept and f"/once/{MAX_FOLDERS - 1}" in kept


def test_alt_and_a_digit_as_tmux_sends_it_switch_tabs_and_a_digit_typed_in_the_filter_stays_there(
    tmp_path: Path, folders: Path
) -> None:
    """On a real terminal: tmux (and xterm, and most terminals without the kitty keyboard protocol) sends alt+2 as
    ESC then 2, which Textual reads as WezTerm's Option+2 (™)."""
    import os
    import sys

    from tests.functional.ssh_support import Terminal

    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
           "XDG_DATA_HOME": str(tmp_path / "xdg-data")}  # fmt: skip
    argv = [sys.executable, "-m", "sdtui.app", "--data-dir", str(tmp_path / "data"), str(folders / "docs")]
    term = Terminal(argv, 80, 24, env=env)
    try:
        term.wait_for("a.txt")
        term.press("o")  # one pane: what it shows is the tab's
        term.until(lambda: term.text.count("a.txt") == 1)
        term.press("\x14")  # ctrl+t: a second tab, on docs too
        term.wait_for(" 2 docs ")
        term.press("\x7f")  # Backspace: tab 2 goes up to root
        term.wait_for("music/")
        term.press("\x1b1")  # alt+1 as tmux sends it
        term.wait_for("a.txt")
        assert "music/" not in term.text
        term.press("\x1b2")
        term.wait_for("music/")
        term.press("\x1b1")
        term.wait_for("a.txt")
        term.press("/", "2")  # a digit typed in the filter is the filter's, even when it reaches the list first
        term.wait_for("/2")
        term.until(lambda: "a.txt" not in term.text)  # only 2024/ fits
        assert "2024/" in term.text and "music/" not in term.text
    finally:
        term.close()
