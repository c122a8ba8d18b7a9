"""Pilot tests of the explorer: a person at the keyboard, real directories in tmp_path, the real app."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from textual import events
from textual.binding import Binding
from textual.color import Color
from textual.widgets import DataTable, Input, Static
from textual.worker import WorkerState
from tui_support import (  # noqa: F401 (own_home: autouse)
    FIXED,
    answer_prompt,
    app_for,
    explorer,
    index_for_the_app,
    library_of,
    make_tree,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore import metadata, search, tags
from sdcore.core import Core
from sdcore.dirwatch import DirectoryWatch
from sdcore.errors import SdError
from sdcore.events import EntriesChanged, JobProgress, JobStateChanged
from sdcore.index.indexer import index_location
from sdcore.library import entries
from sdcore.net.testing import device_network, pair
from sdcore.sdpath import SdPath
from sdtui.app import SdtuiApp, main
from sdtui.config import Config, load_config
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.conflict import ConflictScreen
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.help import HelpScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.screens.prompt import PromptScreen
from sdtui.screens.tag_picker import TagPickerScreen, rank
from sdtui.widgets import file_list as file_list_module
from sdtui.widgets.file_list import FileList
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.jobs_strip import JobsStrip
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)

async def test_opens_on_the_given_directory_with_directories_first(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        left = explorer(app).active
        assert left.path is not None and left.path.path == str(tree)
        assert names(left) == ["docs", "music", "alpha.py", "beta.txt", "caf\udce9.bin", "Gamma.log", "link"]
        assert ".hidden" not in names(left)
        assert "7 items" in left.footer_text()


async def test_enter_opens_a_directory_and_backspace_comes_back_onto_it(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "enter")  # music
        await settle(pilot, app)
        assert pane.path is not None and pane.path.path == str(tree / "music")
        await pilot.press("k", "k", "enter")  # back on docs? no: we are in music (empty); go up
        await pilot.press("backspace")
        await settle(pilot, app)
        assert pane.path.path == str(tree)
        assert pane.file_list.current is not None and pane.file_list.current.name == "music"
        await pilot.press("k", "l")  # l opens too
        await settle(pilot, app)
        assert pane.path.path == str(tree / "docs")
        assert names(pane) == ["deep", "notes.md"]


async def test_back_and_forward_restore_the_cursor_and_the_scroll(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "aaa-dir").mkdir()
    for i in range(120):
        (big / f"f{i:04d}").write_text("")
    app = app_for(tmp_path, big)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        fl = pane.file_list
        await pilot.press("G")
        await pilot.press(*["k"] * 2)
        assert fl.current is not None and fl.current.name == "f0117"
        scroll = fl.scroll_y
        assert scroll > 0
        await pilot.press("g", "g")
        assert fl.cursor == 0
        await pilot.press("G", *["k"] * 2)
        await pilot.press("home", "enter")  # into aaa-dir
        await settle(pilot, app)
        assert pane.path is not None and pane.path.name == "aaa-dir"
        await pilot.press("left_square_bracket")  # back
        await settle(pilot, app)
        assert fl.current is not None and fl.current.name == "aaa-dir"
        await pilot.press("right_square_bracket")  # forward
        await settle(pilot, app)
        assert pane.path.name == "aaa-dir"
        await pilot.press("left_square_bracket")
        await settle(pilot, app)
        await pilot.press("G", *["k"] * 2)
        pane.open(pane.path.child("aaa-dir"))
        await settle(pilot, app)
        await pilot.press("left_square_bracket")
        await settle(pilot, app)
        assert fl.current is not None and fl.current.name == "f0117"
        assert fl.scroll_y == scroll


async def test_space_selects_and_moves_down_and_v_selects_a_range(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        fl = explorer(app).active.file_list
        await pilot.press("j", "j", "space")
        assert fl.selected == {"alpha.py"}
        assert fl.current is not None and fl.current.name == "beta.txt"
        await pilot.press("v", "j", "j")
        assert [e.name for e in fl.selection()] == ["alpha.py", "beta.txt", "caf\udce9.bin", "Gamma.log"]
        await pilot.press("v")
        assert fl.selected == {"alpha.py", "beta.txt", "caf\udce9.bin", "Gamma.log"}
        assert "4 selected" in explorer(app).active.footer_text()
        await pilot.press("escape")
        assert fl.selected == set()
        assert [e.name for e in fl.selection()] == ["Gamma.log"]


async def test_filter_as_you_type_then_escape_brings_everything_back(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("slash", "a", "l")
        await pilot.pause(0.2)
        assert names(pane) == ["alpha.py"]
        await pilot.press("enter")  # keeps the filter, back to the list
        assert pane.file_list.has_focus
        assert names(pane) == ["alpha.py"]
        await pilot.press("slash", "escape")
        await pilot.pause(0.2)
        assert len(names(pane)) == 7


async def test_a_glob_filter_with_brackets_shows_in_the_footer_as_typed(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("slash", *"*.[p]y")
        await wait_for(pilot, lambda: names(pane) == ["alpha.py"])
        footer = pane.query_one(".pane--footer", Static)
        await wait_for(pilot, lambda: "/*.[p]y" in shown_text(footer))  # not "[p]" read as a style, nor a crash on "[/]"
        await pilot.press(*"[/]")
        await wait_for(pilot, lambda: "/*.[p]y[/]" in shown_text(footer))


async def test_a_filter_typed_in_one_burst_keeps_every_letter(tmp_path: Path, tree: Path) -> None:
    """Keys that arrive together (a fast typist, a paste into the terminal) reach the list before '/' has opened
    the box; none may be lost, and the first may not be selected and replaced by the second."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        for key, character in (("slash", "/"), ("g", "g"), ("a", "a"), ("m", "m")):
            app.post_message(events.Key(key, character))
        await wait_for(pilot, lambda: pane.filter_box.value == "gam")
        await wait_for(pilot, lambda: names(pane) == ["Gamma.log"])


async def test_an_80_column_terminal_gets_two_panes_of_40_and_i_still_shows_the_inspector(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        inspector, sidebar = screen.query_one(Inspector), screen.query_one(Sidebar)
        assert not inspector.display and not sidebar.display
        assert screen.active.outer_size.width == 40 and screen.inactive.outer_size.width == 40
        await pilot.press("i")
        await pilot.pause()
        assert inspector.display
        await pilot.resize_terminal(160, 40)  # wide enough for everything again
        await wait_for(pilot, lambda: sidebar.display and inspector.display)


async def test_widening_the_terminal_shows_the_inspector_on_what_the_cursor_is_on(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        inspector = screen.query_one(Inspector)
        current = screen.active.file_list.current
        assert current is not None and not inspector.display
        await pilot.resize_terminal(160, 40)  # an SSH session's first size is often 80x24, then the real one
        await wait_for(pilot, lambda: inspector.display and current.name in shown_text(inspector))
        assert "nothing selected" not in shown_text(inspector)


async def test_dot_shows_hidden_files_and_s_sorts_by_size(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("full_stop")
        assert ".hidden" in names(pane)
        await pilot.press("full_stop")
        assert ".hidden" not in names(pane)
        await pilot.press("s")  # name -> size, largest first as `sd ls --sort size`
        files = [e for e in pane.file_list.rows if not e.is_dir]
        assert [e.size for e in files] == sorted((e.size for e in files), reverse=True)
        assert files[0].name == "beta.txt"
        assert "size↓" in pane.footer_text()
        await pilot.press("S")
        assert [e for e in pane.file_list.rows if not e.is_dir][-1].name == "beta.txt"


async def test_tab_switches_the_active_pane_and_o_makes_it_single(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "docs"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        assert screen.active_id == "left"
        await pilot.press("tab")
        assert screen.active_id == "right"
        assert screen.active.path is not None and screen.active.path.name == "docs"
        await pilot.press("tab")
        assert screen.active_id == "left"
        await pilot.press("o")
        assert not screen.query_one("#right").display
        await pilot.press("tab")
        assert screen.active_id == "left"


async def test_inspector_previews_code_with_highlighting_and_a_directory_as_its_listing(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        preview = inspector
        await pilot.pause(0.4)
        assert "notes.md" in shown_text(preview)  # the cursor starts on docs/
        await pilot.press("j", "j")  # alpha.py
        await pilot.pause(0.4)
        assert "def alpha" in shown_text(preview)
        assert "alpha.py" in shown_text(inspector)


async def test_a_long_preview_scrolls_with_the_mouse_wheel_and_the_next_file_shows_from_its_top(
    tmp_path: Path, tree: Path
) -> None:
    (tree / "alpha.py").write_text("".join(f"line_{i:03d} = {i}\n" for i in range(200)))
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await pilot.press("j", "j")  # alpha.py
        await wait_for(pilot, lambda: "line_000" in shown_text(inspector))
        wheel = events.MouseScrollDown(inspector, 5, 5, 0, 1, 0, False, False, False)
        for _ in range(10):
            inspector.post_message(wheel)
        await wait_for(pilot, lambda: "line_030" in shown_text(inspector) and "line_000" not in shown_text(inspector))
        await pilot.press("j", "k")  # away and back: alpha.py from its top again
        await wait_for(pilot, lambda: "line_000" in shown_text(inspector))


async def test_resting_on_entries_redraws_the_inspector_without_laying_the_screen_out(
    tmp_path: Path, tree: Path
) -> None:
    """A layout of the whole screen costs tens of milliseconds: a key pressed meanwhile waits (over SSH too)."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot, app)
        await pilot.pause(0.5)
        screen, inspector = app.screen, app.screen.query_one(Inspector)
        layouts = []
        refresh_layout = screen._refresh_layout

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            layouts.append(1)
            return refresh_layout(*args, **kwargs)

        screen._refresh_layout = counted  # type: ignore[method-assign]
        for name in ("music", "alpha.py", "beta.txt", "caf", "Gamma.log"):
            await pilot.press("j")
            await wait_for(pilot, lambda name=name: name in shown_text(inspector) and "…" not in shown_text(inspector))
        assert len(layouts) < 5, f"{len(layouts)} layouts for 5 entries shown"  # it was about 5 for each


async def test_inspector_shows_a_folders_indexed_totals_and_the_other_copies_of_a_file(
    tmp_path: Path, tree: Path
) -> None:
    (tree / "music" / "beta copy.txt").write_text("b" * 2000)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(tree), mode="content")
        await library.jobs.wait(await index_location(library, location))
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        meta = app.screen.query_one(Inspector)
        # the cursor starts on docs/: notes.md and deep/x.txt, 15 + 2 bytes
        await wait_for(pilot, lambda: "holds" in shown_text(meta))
        assert "2 files, 17 B (indexed)" in shown_text(meta)
        await pilot.press("j", "j", "j")  # docs/ music/ alpha.py beta.txt
        for _ in range(100):
            await pilot.pause(0.05)
            if "copy.txt" in shown_text(meta):  # its path is wrapped where the column ends, wherever tmp_path is
                break
        assert "same content" in shown_text(meta) and "copy.txt" in shown_text(meta)


async def test_f4_edits_a_file_in_the_editor_and_f3_and_enter_show_it_in_the_pager(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = tmp_path / "opened.log"
    program = tmp_path / "program.py"  # stands for the editor (appends a line) and the pager (only looks)
    program.write_text(
        "import sys\n"
        "role, log, path = sys.argv[1:]\n"
        "open(log, 'a').write(role + ' ' + path + '\\n')\n"
        "if role == 'editor':\n"
        "    open(path, 'a').write('edited\\n')\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {program} editor {opened}")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("PAGER", f"{sys.executable} {program} pager {opened}")
    monkeypatch.delenv("DISPLAY", raising=False)  # a terminal alone: Enter shows a file in the pager
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    beta = tree / "beta.txt"
    before = beta.read_text()

    def runs() -> list[str]:
        return opened.read_text().splitlines() if opened.exists() else []

    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "j")  # docs/ music/ alpha.py beta.txt
        assert pane.file_list.current is not None and pane.file_list.current.name == "beta.txt"
        await pilot.press("f4")
        await wait_for(pilot, lambda: beta.read_text() == before + "edited\n")
        # the pane shows the file as the editor left it
        await wait_for(
            pilot, lambda: pane.file_list.current is not None and pane.file_list.current.size == beta.stat().st_size
        )
        await pilot.press("f3", "enter")
        await wait_for(pilot, lambda: len(runs()) == 3)
        assert runs() == [f"editor {beta}", f"pager {beta}", f"pager {beta}"]
        assert beta.read_text() == before + "edited\n"  # the pager changed nothing


def programs_that_leave_a_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A terminal alone whose pager and editor only make a file: the file that appears if either ran."""
    opened = tmp_path / "opened.log"
    monkeypatch.setenv("PAGER", f"touch {opened}")
    monkeypatch.setenv("EDITOR", f"touch {opened}")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return opened


async def test_a_fifo_is_never_handed_to_the_pager_or_the_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pipes"
    folder.mkdir()
    os.mkfifo(folder / "queue")  # less or vi would wait on it for good, with the terminal handed over
    opened = programs_that_leave_a_mark(tmp_path, monkeypatch)
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        for key in ("enter", "f3", "f4"):
            await pilot.press(key)
            await wait_for(pilot, lambda: "queue is a fifo: nothing to open" in shown_text(app.screen.query_one("#status")))
            app.screen.query_one("#status", Static).update("")
    assert not opened.exists()



async def test_a_link_that_leads_nowhere_says_so_instead_of_handing_the_terminal_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "links"
    folder.mkdir()
    os.mkfifo(folder / "queue")
    (folder / "a-loop").symlink_to("a-loop")
    (folder / "b-gone").symlink_to("nowhere.txt")
    (folder / "c-pipe").symlink_to("queue")
    (folder / "d-folder").symlink_to(tmp_path)
    opened = programs_that_leave_a_mark(tmp_path, monkeypatch)
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        said = {
            "a-loop": "a-loop: a link that leads round in a loop of links",
            "b-gone": "b-gone: a link that leads to nothing (its target is gone)",
            "c-pipe": "c-pipe: a link to something that is not a file: nothing to open",
        }
        for name, message in said.items():
            assert explorer(app).active.file_list.current.name == name
            for key in ("enter", "f3", "f4"):
                await pilot.press(key)
                await wait_for(pilot, lambda message=message: message in shown_text(app.screen.query_one("#status")))
                app.screen.query_one("#status", Static).update("")
            await pilot.press("down")
        assert explorer(app).active.file_list.current.name == "d-folder"
        await pilot.press("enter")  # a link to a folder opens as the folder
        await wait_for(pilot, lambda: explorer(app).active.path.path == str(folder / "d-folder"))
        await wait_for(pilot, lambda: "links" in [e.name for e in explorer(app).active.file_list.entries])
    assert not opened.exists()  # with `less` as the pager, it printed nothing useful and exited with status 1

async def test_ctrl_l_goes_to_a_typed_folder_or_file_and_a_wrong_one_is_a_clear_error(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active

        async def go_to(text: str) -> None:
            await answer_prompt(pilot, app, "ctrl+l", text)
            await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen))
            await settle(pilot, app)

        await go_to("docs")  # from where the pane is
        assert pane.path is not None and pane.path.path == str(tree / "docs")
        await go_to("../music/../beta.txt")  # a file: its folder, the cursor on it
        assert pane.path is not None and pane.path.path == str(tree)
        assert pane.file_list.current is not None and pane.file_list.current.name == "beta.txt"
        await go_to(str(tree / "nowhere"))
        assert pane.path.path == str(tree)
        assert "nowhere: no such file or directory" in shown_text(app.screen.query_one("#status"))


async def test_f7_makes_a_directory_and_r_renames_it(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"new dir", "enter")
        await settle(pilot, app)
        assert (tree / "new dir").is_dir()
        assert "new dir" in names(pane)
        assert pane.file_list.current is not None and pane.file_list.current.name == "new dir"
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"renamed", "enter")
        await settle(pilot, app)
        assert (tree / "renamed").is_dir() and not (tree / "new dir").exists()
        assert "renamed" in names(pane) and "new dir" not in names(pane)
        await pilot.press("f7", *"made/with/parents", "enter")  # (it said to run `sd mkdir -p`)
        await wait_for(pilot, lambda: (tree / "made/with/parents").is_dir())
        await wait_for(pilot, lambda: pane.file_list.current is not None and pane.file_list.current.name == "made")


async def test_a_name_that_is_not_utf8_is_renamed_with_its_bytes_kept(tmp_path: Path, tree: Path) -> None:
    """The rename field held the name's raw surrogate (shown as `\\udce9`, the box's border pushed out); now the
    byte is shown as the listing shows it, `\\xe9`, and an edit of the extension keeps it."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        explorer(app).active.put_cursor_on("caf\udce9.bin")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert app.screen.query_one(Input).value == "caf\\xe9.bin"
        await pilot.press("end", "backspace", "backspace", "backspace", *"dat", "enter")
        await wait_for(pilot, lambda: (tree / "caf\udce9.dat").exists())
        assert not (tree / "caf\udce9.bin").exists() and not (tree / "caf\\xe9.dat").exists()


async def test_rename_onto_an_existing_name_shows_the_error_not_a_traceback(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        status = explorer(app).query_one("#status")
        await pilot.press("j", "j", "f2")  # alpha.py
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"beta.txt", "enter")
        await wait_for(pilot, lambda: "already exists" in str(status.render()))
        assert (tree / "alpha.py").exists()
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))  # asked again, holding the name typed
        assert app.screen.query_one(Input).value == "beta.txt"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))


async def test_shift_d_deletes_permanently_after_confirming(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "space", "space", "D")  # alpha.py, beta.txt
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert (tree / "alpha.py").exists()
        await pilot.press("D")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot, app)
        await pilot.pause(0.1)
        assert not (tree / "alpha.py").exists() and not (tree / "beta.txt").exists()
        assert "alpha.py" not in names(pane) and "beta.txt" not in names(pane)


async def test_f5_copies_the_selection_into_the_other_pane_as_a_job(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("j", "j", "space", "space", "f5")  # alpha.py, beta.txt
        await wait_for(pilot, lambda: names(screen.inactive) == ["alpha.py", "beta.txt"])
        assert not screen.active.file_list.selected  # the selection is done with
        assert (tree / "music" / "beta.txt").read_text() == "b" * 2000
        assert (tree / "alpha.py").exists()
        # the status line says when it is done, not "copying" for good
        await wait_for(pilot, lambda: "copied 2 items to ~/tree/music" in shown_text(screen.query_one("#status")))


async def test_f5_onto_names_already_there_asks_keep_both_skip_overwrite_or_cancel(tmp_path: Path, tree: Path) -> None:
    music = tree / "music"
    (music / "beta.txt").write_text("the one already there")
    app = app_for(tmp_path, tree, other=str(music))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("j", "j", "j")  # beta.txt

        async def f5_then(key: str) -> None:
            await pilot.press("f5")
            await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen))

        await f5_then("c")
        assert "nothing copied" in shown_text(screen.query_one("#status"))
        await f5_then("s")
        await f5_then("k")
        await wait_for(pilot, lambda: "beta (1).txt" in names(screen.inactive))
        assert (music / "beta (1).txt").read_text() == "b" * 2000
        assert (music / "beta.txt").read_text() == "the one already there"  # cancel and skip left it alone
        await f5_then("o")
        await wait_for(pilot, lambda: (music / "beta.txt").read_text() == "b" * 2000)
        assert sorted(os.listdir(music)) == ["beta (1).txt", "beta.txt"]

        # cut, then a paste onto a name already there, cancelled: the cut is still there to paste elsewhere
        await pilot.press("x", "tab")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen))
        assert screen.clipboard is not None and (tree / "beta.txt").exists()


async def test_f6_moves_to_the_other_pane_and_both_panes_follow(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("j", "j", "f6")  # alpha.py
        await wait_for(
            pilot, lambda: names(screen.inactive) == ["alpha.py"] and "alpha.py" not in names(screen.active)
        )
        assert (tree / "music" / "alpha.py").exists() and not (tree / "alpha.py").exists()


async def test_y_then_p_pastes_a_copy_in_another_directory(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "y", "home", "enter")  # copy alpha.py, go into docs
        await settle(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: "alpha.py" in names(pane))
        assert (tree / "docs" / "alpha.py").read_text() == (tree / "alpha.py").read_text()


async def test_w_shows_the_jobs_and_refuses_to_resume_a_finished_one(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("j", "j", "f5")
        await wait_for(pilot, lambda: names(screen.inactive) == ["alpha.py"])
        await pilot.press("w")
        await pilot.pause()
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_for(pilot, lambda: jobs.query_one(DataTable).row_count == 1)
        record = next(iter(jobs.records.values()))
        assert (record.kind, record.state) == ("copy", "completed")
        await pilot.press("r")
        await pilot.pause()
        assert "only a paused" in shown_text(jobs.query_one("#jobs-status"))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExplorerScreen)


async def test_copy_onto_itself_is_refused_and_keep_both_makes_a_numbered_copy(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)  # both panes show the tree: copying there is onto itself
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j", "f5")  # alpha.py
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))
        await pilot.press("o")  # overwrite
        await wait_for(pilot, lambda: "onto itself" in str(app.screen.query_one("#status").render()))
        assert (tree / "alpha.py").read_text().startswith("def alpha")
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen))
        await pilot.press("k")  # keep both
        await wait_for(pilot, lambda: (tree / "alpha (1).py").exists())
        assert (tree / "alpha (1).py").read_text() == (tree / "alpha.py").read_text()


async def test_d_sends_to_the_trash_after_confirming_and_U_restores(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "d")  # alpha.py
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: "alpha.py" not in names(pane))
        assert not (tree / "alpha.py").exists()
        trashed = list((tmp_path / "xdg-data" / "Trash" / "files").iterdir())
        assert [p.name for p in trashed] == ["alpha.py"]
        await pilot.press("U")
        await wait_for(pilot, lambda: "alpha.py" in names(pane))
        assert (tree / "alpha.py").read_text().startswith("def alpha")


@pytest.fixture
async def indexed(tmp_path: Path, tree: Path) -> Path:
    """The tree as a location of the default library, indexed (then the core is closed: the app opens it)."""
    await index_for_the_app(tmp_path, tree)
    return tree


async def test_t_tags_the_selection_creating_the_tag_and_the_sidebar_lists_it(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j", "space", "space", "t")  # alpha.py, beta.txt
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"work/acme", "enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, ExplorerScreen) and "tagged" in shown_text(app.screen.query_one("#status"))
            ),
        )
        library = await library_of(app)
        tagged = {t.entry_id for t in tags.entries(library, "work/acme")}
        assert set(entries.paths_of(library, sorted(tagged)).values()) == {
            str(indexed / "alpha.py"),
            str(indexed / "beta.txt"),
        }
        # the picker finds the tag again by fuzzy match
        await pilot.press("home", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"wac")
        await pilot.pause()
        assert rank(["work/acme", "music"], "wac") == ["work/acme"]
        await pilot.press("escape")
        # the sidebar lists the tag; choosing it shows the tagged files in the pane
        sidebar = app.screen.query_one(Sidebar)
        await wait_for(pilot, lambda: "tag:work/acme" in sidebar._places)
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index("tag:work/acme")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: sorted(names(explorer(app).active)) == ["~/tree/alpha.py", "~/tree/beta.txt"]
        )


async def test_tag_names_with_brackets_are_shown_as_written_not_read_as_markup(tmp_path: Path, indexed: Path) -> None:
    async with Core(tmp_path / "data") as core:
        tags.create(core.library(), "a[/b]")  # a tag's name is anyone's choice, a paired device's too
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.pause()
        assert "a[/b]" in shown_text(app.screen.query_one("#picker-options"))
        await pilot.press(*"[x]", "enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in shown_text(app.screen.query_one("#status")),
        )
        assert tags.entries(await library_of(app), "[x]")


async def test_a_note_synced_from_another_device_cannot_drive_the_terminal(tmp_path: Path, indexed: Path) -> None:
    async with Core(tmp_path / "data") as core:
        library = core.library()
        metadata.set_note(library, entries.entry_at(library, str(indexed / "alpha.py")), "line one\n\x1b]0;owned\x07\x1b[2J")
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j")  # docs, music, alpha.py
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "line one" in shown_text(inspector))
        shown = shown_text(inspector)
        assert "\x1b" not in shown and "\x07" not in shown, shown
        assert "\\x1b]0;owned" in shown  # shown escaped, as written


async def test_a_search_in_a_library_without_locations_says_so(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: not explorer(app).has_locations)  # the sidebar has been filled
        await answer_prompt(pilot, app, "ctrl+f", "alpha")
        await wait_for(pilot, lambda: "no location yet" in shown_text(app.screen.query_one("#status")))


async def test_ctrl_f_searches_the_library_and_enter_opens_where_a_hit_lies(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await answer_prompt(pilot, app, "ctrl+f", "notes")
        await wait_for(pilot, lambda: names(pane) == ["~/tree/docs/notes.md"])
        assert pane.border_title == "search: notes (1)"
        await pilot.press("enter")
        await settle(pilot, app)
        assert pane.path is not None and pane.path.path == str(indexed / "docs")
        assert pane.file_list.current is not None and pane.file_list.current.name == "notes.md"
        # ctrl+s keeps the search; the sidebar lists it and choosing it runs it again
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("ctrl+a", "ctrl+k", *"my notes", "enter")
        sidebar = app.screen.query_one(Sidebar)
        await wait_for(pilot, lambda: "saved:my notes" in sidebar._places)
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index("saved:my notes")
        await pilot.press("enter")
        await wait_for(pilot, lambda: names(pane) == ["~/tree/docs/notes.md"])


async def test_a_search_hit_deep_in_folders_keeps_its_name_in_view(tmp_path: Path, tree: Path) -> None:
    deep = tree / "archive" / "2019" / "quarterly reports" / "drafts and old copies"
    deep.mkdir(parents=True)
    (deep / "budget-final.ods").write_text("figures")
    await index_for_the_app(tmp_path, tree)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(150, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await answer_prompt(pilot, app, "ctrl+f", "budget")
        await wait_for(pilot, lambda: len(names(pane)) == 1)
        await pilot.pause(0.1)
        shown = shown_text(pane.file_list).splitlines()[0]
        assert "budget-final.ods" in shown and "…" in shown  # the folders in the middle give way, not the name


async def test_n_writes_a_note_that_search_finds_and_star_marks_a_favourite(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j", "n")  # alpha.py
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"quarterly draft", "enter")
        await wait_for(pilot, lambda: "note saved" in shown_text(app.screen.query_one("#status")))
        await pilot.press("asterisk")
        await wait_for(pilot, lambda: "favourite" in shown_text(app.screen.query_one("#status")))
        library = await library_of(app)
        entry_id = entries.entry_at(library, str(indexed / "alpha.py"))
        assert metadata.note(library, entry_id) == "quarterly draft"
        assert metadata.is_favorite(library, entry_id)
        await pilot.pause(0.4)
        meta = shown_text(app.screen.query_one("#inspector"))
        assert "quarterly draft" in meta and "★" in meta and "cas_id" in meta
        assert [h.name for h in search.find(library, "quarterly")] == ["alpha.py"]


async def test_t_n_and_star_outside_every_location_ask_to_index_the_folder_or_say_why_not(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        status = app.screen.query_one("#status")
        library = await library_of(app)
        for key, done in (("t", "tagged"), ("n", "given a note"), ("asterisk", "marked as favourite")):
            await pilot.press("home", "j", "j", key)  # alpha.py
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            question = app.screen.question  # type: ignore[attr-defined]
            assert "not in any location" in question and done in question and "~/tree" in question
            await pilot.press("n")
            await wait_for(pilot, lambda: f"not {done}" in shown_text(status))  # noqa: B023
            assert "in no location" in shown_text(status)
            assert library.locations.list() == []
        # saying yes makes the folder a location, indexes it, and the tag goes on
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        assert [loc.path for loc in library.locations.list()] == [str(tree)]
        await pilot.press(*"later", "enter")
        await wait_for(pilot, lambda: "tagged" in shown_text(status))
        tagged = {t.entry_id for t in tags.entries(library, "later")}
        assert list(entries.paths_of(library, sorted(tagged)).values()) == [str(tree / "alpha.py")]
        assert "loc-" in "".join(app.screen.query_one(Sidebar)._places)


async def test_a_file_of_a_location_not_indexed_yet_is_indexed_on_the_spot_to_be_tagged(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        library = await library_of(app)
        watcher = app.core.watcher(library)
        await watcher.close()  # as if the change happened while no core ran
        (indexed / "aaa-new.txt").write_text("new")
        await wait_for(pilot, lambda: "aaa-new.txt" in names(explorer(app).active))
        with pytest.raises(entries.NotIndexed):
            entries.entry_at(library, str(indexed / "aaa-new.txt"))
        await pilot.press("home", "j", "j", "asterisk")  # aaa-new.txt, after docs/ and music/
        await wait_for(pilot, lambda: "favourite" in shown_text(app.screen.query_one("#status")))
        assert metadata.is_favorite(library, entries.entry_at(library, str(indexed / "aaa-new.txt")))


async def test_a_pane_browses_a_paired_device_and_the_sidebar_lists_it(tmp_path: Path, tree: Path) -> None:
    far_files = tmp_path / "far-files"
    (far_files / "photos").mkdir(parents=True)
    (far_files / "report.txt").write_text("from far away\n")
    async with device_network(tmp_path / "far", "farbox") as far:
        async with device_network(tmp_path / "data", "herebox", listen=False) as here:
            await pair(far, here)
        app = app_for(tmp_path, f"farbox:{far_files}")
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            pane = explorer(app).active
            assert pane.path is not None and not app.core.is_local(pane.path)
            assert names(pane) == ["photos", "report.txt"]
            assert pane.border_title == f"farbox:{far_files}"
            await pilot.press("j")
            await pilot.pause(0.5)
            assert "from far away" in shown_text(app.screen.query_one("#inspector"))
            sidebar = app.screen.query_one(Sidebar)
            await wait_for(pilot, lambda: any(k.startswith("dev-") for k in sidebar._places))


async def test_sdtui_listens_and_asks_before_accepting_a_spacedrop(tmp_path: Path, tree: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gift = tmp_path / "gift.txt"
    gift.write_text("for you")
    async with device_network(tmp_path / "far", "farbox", listen=False) as far:
        async with device_network(tmp_path / "data", "herebox", listen=False) as here:
            await here.start(f"127.0.0.1:{port}")
            await pair(here, far)
        app = app_for(tmp_path, tree, listen=f"127.0.0.1:{port}")
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            await wait_for(pilot, lambda: app.core.network is not None and app.core.network.address is not None)
            sent = asyncio.create_task(far.drop("herebox", [str(gift)]))
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "farbox wants to send you 1 file," in app.screen.question and "gift.txt" in app.screen.question
            await pilot.press("y")
            assert await asyncio.wait_for(sent, 10) == ["gift.txt"]
            assert (tmp_path / "data" / "spacedrop" / "gift.txt").read_text() == "for you"
            declined = asyncio.create_task(far.drop("herebox", [str(gift)]))
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            with pytest.raises(SdError, match="declined"):
                await asyncio.wait_for(declined, 10)


async def test_a_file_made_by_another_program_in_a_location_appears_by_itself(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        library = await library_of(app)
        watcher = app.core.watcher(library)
        await asyncio.wait_for(watcher.ready.wait(), 10)
        (indexed / "from-outside.txt").write_text("hello")
        await wait_for(pilot, lambda: "from-outside.txt" in names(pane))
        (indexed / "from-outside.txt").unlink()
        await wait_for(pilot, lambda: "from-outside.txt" not in names(pane))


async def test_a_file_made_by_another_program_outside_every_location_appears_by_itself(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    watches: dict[str, DirectoryWatch] = {}  # the core's watch of each directory a pane follows
    start_watch = app.core.watch

    def watch_and_keep(path: SdPath) -> DirectoryWatch | None:
        made = start_watch(path)
        if made is not None:
            watches[path.path] = made
        return made

    monkeypatch.setattr(app.core, "watch", watch_and_keep)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        assert pane.watching is not None and pane.watching.path == str(tree)
        await wait_for(pilot, lambda: str(tree) in watches)
        watch = watches[str(tree)]
        await wait_for(pilot, watch.ready.is_set)
        assert watch.error is None
        (tree / "fresh.txt").write_text("new")
        await wait_for(pilot, lambda: "fresh.txt" in names(pane), timeout=2.0)
        (tree / "fresh.txt").rename(tree / "renamed.txt")
        await wait_for(pilot, lambda: "renamed.txt" in names(pane) and "fresh.txt" not in names(pane), 2.0)
        (tree / "renamed.txt").unlink()
        await wait_for(pilot, lambda: "renamed.txt" not in names(pane), timeout=2.0)
        # the other pane watches its own directory; leaving a directory stops watching it
        other = explorer(app).inactive
        (tree / "music" / "song.ogg").write_text("la")
        await wait_for(pilot, lambda: names(other) == ["song.ogg"], timeout=2.0)
        await pilot.press("home", "enter")  # into docs/
        await settle(pilot, app)
        await wait_for(pilot, lambda: watch.closed)
        assert pane.watching is not None and pane.watching.path == str(tree / "docs")
        await wait_for(pilot, lambda: str(tree / "docs") in watches and not watches[str(tree / "docs")].closed)
        await pilot.press("ctrl+f")  # results in a pane: nothing to watch
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"x", "enter")
        await wait_for(pilot, lambda: pane.results is not None)
        assert pane.watching is None


async def test_a_file_created_in_a_shown_directory_appears_from_the_core_event(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_for(tmp_path, tree)
    monkeypatch.setattr(app.core, "watch", lambda path: None)  # only the event published below may tell
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        (tree / "fresh.txt").write_text("new")
        (tree / "Gamma.log").unlink()
        await pilot.pause(0.05)
        assert "fresh.txt" not in names(pane)  # no polling: nothing changes without an event
        app.core.bus.publish(EntriesChanged(app.core.device.id, str(tree), ("fresh.txt", "Gamma.log")))
        await settle(pilot, app)
        await pilot.pause(0.1)
        assert "fresh.txt" in names(pane)
        assert "Gamma.log" not in names(pane)


async def test_job_progress_events_drive_the_jobs_strip(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        strip = app.screen.query_one(JobsStrip)
        assert not strip.display or not strip.has_class("-busy")
        app.core.bus.publish(JobProgress("j1", "copy", 5, 10, "a.txt", unit="items"))
        await pilot.pause(0.1)
        assert strip.has_class("-busy")
        assert strip.jobs["j1"].done == 5
        assert "5/10" in shown_text(strip)
        app.core.bus.publish(JobStateChanged("j1", "copy", "completed"))
        await pilot.pause(0.1)
        assert strip.jobs["j1"].state == "completed"
        await pilot.click("#jobs-strip")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)


async def test_a_directory_that_cannot_be_listed_says_why(tmp_path: Path, tree: Path) -> None:
    """A folder gone, or closed to this user (chmod 000), was called "unreachable", as a device out of reach is."""
    from sdcore.api import AccessDenied

    app = app_for(tmp_path, tmp_path / "no-such-dir")
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        fl = pane.file_list
        assert fl.state == "unreachable"
        assert "no such file or directory" in fl.notice
        assert "not there" in pane.footer_text() and "unreachable" not in pane.footer_text()

        async def refused():  # type: ignore[no-untyped-def]  # what a chmod 000 folder gives a user who is not root
            raise AccessDenied(f"{tree}: permission denied")
            yield []

        fl.load(refused)
        await wait_for(pilot, lambda: fl.notice.startswith("not readable:"))
        assert "not readable" in pane.footer_text() and "unreachable" not in pane.footer_text()

        async def lost():  # type: ignore[no-untyped-def]
            raise ConnectionError("the device went away")
            yield []

        fl.load(lost)
        await wait_for(pilot, lambda: fl.notice == "unreachable: the device went away")


async def test_leaving_a_slow_directory_cancels_its_listing(tmp_path: Path, tree: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    for i in range(2_000):
        os.close(os.open(big / f"f{i}", os.O_CREAT | os.O_WRONLY))
    app = app_for(tmp_path, tree)
    batches_read = []

    async def slow_mount(path):  # type: ignore[no-untyped-def]
        """The real listing, as a slow mount would deliver it: 100 entries every 50 ms."""
        async for batch in app.api.browse(path, batch_size=100):
            batches_read.append(len(batch))
            yield batch
            await asyncio.sleep(0.05)

    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        worker = pane.file_list.load(lambda: slow_mount(app.core.local_path(str(big))))
        await wait_for(pilot, lambda: len(pane.file_list.rows) >= 100)
        assert pane.file_list.state == "loading" and "loading…" in pane.footer_text()
        pane.open(app.core.local_path(str(tree / "docs")))
        await settle(pilot, app)
        assert worker.state == WorkerState.CANCELLED
        assert names(pane) == ["deep", "notes.md"]
        read = len(batches_read)
        await pilot.pause(0.2)
        assert len(batches_read) == read < 20  # the slow listing stopped being read


async def test_a_mount_that_does_not_answer_says_so_and_the_app_stays_responsive(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_list_module, "SLOW_AFTER", 0.2)
    app = app_for(tmp_path, tree)
    answered = asyncio.Event()

    async def dead_mount():  # type: ignore[no-untyped-def]
        """A listing whose first batch never comes (until the test lets it)."""
        await answered.wait()
        async for batch in app.api.browse(app.core.local_path(str(tree))):
            yield batch

    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        fl = screen.active.file_list
        fl.load(dead_mount)
        await wait_for(pilot, lambda: "slow" in fl.notice)
        assert fl.state == "loading" and "loading…" in shown_text(fl)
        await pilot.press("tab")  # the UI still answers while the listing waits
        assert screen.active_id == "right"
        answered.set()
        await wait_for(pilot, lambda: fl.state == "ready" and len(fl.rows) == 7)


async def test_question_mark_shows_every_key_and_the_keys_can_be_rebound(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree, config=Config(keys={"cursor_down": "ctrl+n", "help": "f1"}))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot, app)
        fl = explorer(app).active.file_list
        await pilot.press("j")
        assert fl.cursor == 0  # j is no longer bound
        await pilot.press("ctrl+n")
        assert fl.cursor == 1
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = shown_text(app.screen.query_one("HelpScreen Static"))
        for needle in ("Copy", "Trash", "Filter", "Visual select", "ctrl+n", "F1"):
            assert needle in text, needle
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExplorerScreen)


async def test_the_command_palette_lists_every_action(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for action in (
            "Copy",
            "Move",
            "Mkdir",
            "Rename",
            "Trash",
            "Delete permanently",
            "Filter",
            "Hidden files",
            "Select",
            "Visual select",
            "Jobs",
            "Tag",
            "Note",
            "Favourite",
            "Search",
            "Theme: light",
        ):
            assert action in titles, action
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"hidden files", "enter")
        await settle(pilot, app)
        assert ".hidden" in names(explorer(app).active)


async def test_a_click_moves_the_cursor_and_a_double_click_opens(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.click("#left FileList", offset=(4, 2))  # third row: alpha.py
        assert pane.file_list.current is not None and pane.file_list.current.name == "alpha.py"
        await pilot.double_click("#left FileList", offset=(4, 0))  # docs/
        await settle(pilot, app)
        assert pane.path is not None and pane.path.name == "docs"


async def test_the_theme_comes_from_the_config_and_the_palette_switches_it(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree, config=Config(theme="sdtui-high-contrast"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        assert app.theme == "sdtui-high-contrast"
        assert app.screen.query_one(FileList).styles.background == Color.parse("#000000")
        light = next(c for c in app.get_system_commands(app.screen) if c.title == "Theme: light")
        light.callback()
        await pilot.pause()
        assert app.theme == "sdtui-light"
        assert app.screen.query_one(FileList).styles.background == Color.parse("#ffffff")  # light's surface


def test_sdtui_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "sdtui" in out and "--data-dir" in out and "PATH" in out.upper()


def test_a_broken_config_file_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("theme = [unclosed")
    assert main([str(tmp_path), "--config", str(bad)]) == 2
    assert "cannot read the config" in capsys.readouterr().err


async def test_paired_devices_are_listed_even_when_the_network_is_slow_to_attach(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network attaches after the first listing or after a second, whichever comes first; when importing
    it takes longer than that second, the later call must not cancel the earlier (the sidebar said "loading…"
    for good)."""
    attach = Core.net

    def slow_attach(self: Core) -> object:
        time.sleep(1.5)
        return attach(self)

    monkeypatch.setattr(Core, "net", slow_attach)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        sidebar = app.screen.query_one(Sidebar)

        def devices() -> str:
            labels = [str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)]
            # the sidebar is empty until its first fill, which the slow attach may hold up
            return labels[labels.index("[b]Paired devices[/b]") + 1] if "[b]Paired devices[/b]" in labels else ""

        await wait_for(pilot, lambda: "none" in devices(), timeout=10)


async def test_the_sidebar_lists_mounted_volumes_and_a_click_opens_one(tmp_path: Path, tree: Path) -> None:
    usb = tmp_path / "usb disk"
    (usb / "DCIM").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    escaped = str(usb).replace(" ", "\\040")  # as /proc/self/mountinfo writes a space
    mounts.write_text(
        f"27 1 8:2 / / rw - ext4 /dev/sda2 rw\n50 27 8:33 / {escaped} rw - vfat /dev/sdc1 rw\n"
        "22 27 0:21 / /proc rw - proc proc rw\n23 27 0:22 / /run rw - tmpfs tmpfs rw\n"
        "60 27 0:50 / /mnt/nfs rw - nfs4 server:/srv rw\n"
    )
    app = SdtuiApp(str(tree), data_dir=tmp_path / "data", mounts_file=str(mounts))
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        sidebar = app.screen.query_one(Sidebar)
        await wait_for(pilot, lambda: f"vol-{usb}" in sidebar._places)
        volumes = [k for k in sidebar._places if k.startswith("vol-")]
        assert volumes == ["vol-/", f"vol-{usb}", "vol-/mnt/nfs"]
        assert sidebar._places[f"vol-{usb}"][0].startswith(f"{usb} (sdc1, ")  # and its free space
        row = sidebar.get_option_index(f"vol-{usb}")
        await pilot.click(Sidebar, offset=(4, row + 1 - int(sidebar.scroll_y)))  # +1: the border
        await settle(pilot, app)
        pane = explorer(app).active
        assert pane.path is not None and pane.path.path == str(usb)
        assert names(pane) == ["DCIM"]


async def test_the_mouse_wheel_scrolls_a_long_listing_without_moving_the_cursor(tmp_path: Path) -> None:
    long = tmp_path / "long"
    long.mkdir()
    for i in range(200):
        (long / f"f{i:03d}").write_text("")
    app = app_for(tmp_path, long)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        fl = explorer(app).active.file_list
        x, y = fl.region.x + 2, fl.region.y + 2  # screen coordinates over the list
        for _ in range(5):
            app.post_message(
                events.MouseScrollDown(None, x, y, 0, 1, 0, False, False, False, screen_x=x, screen_y=y)
            )
        await pilot.pause(0.2)
        assert fl.scroll_y > 0 and fl.cursor == 0
        scrolled = fl.scroll_y
        app.post_message(
            events.MouseScrollUp(None, x, y, 0, -1, 0, False, False, False, screen_x=x, screen_y=y)
        )
        await pilot.pause(0.2)
        assert fl.scroll_y < scrolled
        await pilot.click(fl, offset=(4, 1))  # a click lands on the row drawn there, scrolled or not
        assert fl.cursor == int(fl.scroll_y) + 1


async def test_x_then_p_moves_the_file_to_where_it_is_pasted(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("j", "j", "x")  # cut alpha.py
        assert "cut alpha.py" in shown_text(app.screen.query_one("#status"))
        await pilot.press("home", "j", "enter")  # into music/
        await settle(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: names(pane) == ["alpha.py"])
        assert (tree / "music" / "alpha.py").read_text().startswith("def alpha")
        assert not (tree / "alpha.py").exists()
        await pilot.press("p")  # a cut pastes once
        await wait_for(pilot, lambda: "nothing to paste" in shown_text(app.screen.query_one("#status")))


def test_every_binding_has_an_id_so_every_key_can_be_rebound() -> None:
    from sdtui.screens.confirm import ConfirmScreen as Confirm
    from sdtui.screens.help import HelpScreen as Help
    from sdtui.screens.prompt import PromptScreen as Prompt
    from sdtui.widgets.pane import FilterBox

    ids = []
    owners = (FileList, Pane, FilterBox, ExplorerScreen, JobsScreen, TagPickerScreen, Help, Confirm, Prompt)
    for owner in owners:
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding) and binding.id, f"{owner.__name__}: {binding}"
            ids.append(binding.id)
    assert len(ids) == len(set(ids)), "two bindings share an id"


async def test_keys_are_rebound_from_the_config_file(tmp_path: Path, tree: Path) -> None:
    config_file = tmp_path / "xdg-config" / "sdtui" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(
        'theme = "sdtui-light"\n\n[keys]\ncursor_down = "down,ctrl+n"\nfilter = "f"\n'
        'toggle_hidden = "H"\ncopy_to_other = "f5,c"\nswitch_pane = "tab,ctrl+w"\n'
    )
    app = app_for(tmp_path, tree, other=str(tree / "music"), config=load_config())
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        assert app.theme == "sdtui-light"
        screen = explorer(app)
        pane = screen.active
        await pilot.press("ctrl+n", "ctrl+n")  # a FileList key
        assert pane.file_list.current is not None and pane.file_list.current.name == "alpha.py"
        await pilot.press("H")  # hidden files
        assert ".hidden" in names(pane)
        await pilot.press("c")  # copy to the other pane, a screen key
        await wait_for(pilot, lambda: names(screen.inactive) == ["alpha.py"])
        await pilot.press("ctrl+w")  # a priority key
        assert screen.active_id == "right"
        await pilot.press("ctrl+w", "f", "a", "l")  # a pane key
        await pilot.pause(0.2)
        assert pane.filter_box.has_focus and names(pane) == ["alpha.py"]


async def test_w_pauses_resumes_and_cancels_a_running_copy(
    tmp_path: Path, tree: Path, slow_disk: threading.Event
) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("j", "j", "j", "f5")  # beta.txt
        await wait_for(pilot, lambda: "copying beta.txt" in shown_text(app.screen.query_one("#status")))
        await pilot.press("w")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)

        def state() -> str:
            records = list(jobs.records.values())
            return records[0].state if len(records) == 1 else "none"

        await wait_for(pilot, lambda: state() == "running")
        await pilot.press("p")
        await wait_for(pilot, lambda: state() == "paused")
        assert "pause requested" in shown_text(jobs.query_one("#jobs-status"))
        await pilot.press("r")
        await wait_for(pilot, lambda: state() == "running")
        await pilot.press("c")
        await wait_for(pilot, lambda: state() == "canceled")
        widths = {c.key.value: c.get_render_width(jobs.query_one(DataTable)) for c in jobs.query_one(DataTable).columns.values()}
        assert widths["state"] >= len("canceled") + 2  # the word whole, not "cancele" (it was sized for "running")
        assert not (tree / "music" / "beta.txt").exists()
        assert [p.name for p in (tree / "music").iterdir()] == []  # no partial file left behind
        # a second copy runs to the end once the disk answers
        await pilot.press("escape")
        await pilot.press("f5")
        slow_disk.set()
        await wait_for(pilot, lambda: (tree / "music" / "beta.txt").exists())
