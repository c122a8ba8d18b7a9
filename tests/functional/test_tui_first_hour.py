"""Pilot tests of what a new user met in the explorer's first hour (issue 12): real files in tmp_path, the real app."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static
from tui_support import (  # noqa: F401 (own_home: autouse)
    answer_prompt,
    app_for,
    explorer,
    index_for_the_app,
    make_tree,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore import net
from sdcore.api.library import Favourites
from sdcore.api.root import Ops
from sdcore.core import Core
from sdcore.net.testing import device_network, pair
from sdcore.sdpath import display
from sdtui.app import SdtuiApp
from sdtui.config import load_config
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.screens.prompt import PromptScreen
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.jobs_strip import JobsStrip
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar


def footer(pane: Pane) -> str:
    """The pane's footer as drawn."""
    return str(pane.query_one(".pane--footer", Static).render())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


@pytest.fixture
async def indexed(tmp_path: Path, tree: Path) -> Path:
    """The tree as a location of the default library, indexed (then the core is closed: the app opens it)."""
    await index_for_the_app(tmp_path, tree)
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
        assert display(pane.file_list.current.name) in question
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


async def test_at_120_columns_the_file_panes_get_the_room_and_a_long_hit_keeps_both_ends_of_its_name(
    tmp_path: Path, tree: Path
) -> None:
    deep = tree / "src" / "linux" / "Documentation" / "admin-guide"
    deep.mkdir(parents=True)
    (deep / "kernel-parameters.txt").write_text("quiet\n")
    await index_for_the_app(tmp_path, tree)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        inspector = screen.query_one(Inspector)
        assert inspector.display and screen.query_one(Sidebar).display
        assert inspector.outer_size.width <= 120 // 4
        assert screen.active.outer_size.width >= 33 and screen.inactive.outer_size.width >= 33
        await answer_prompt(pilot, app, "ctrl+f", "kernel-param")
        await wait_for(pilot, lambda: len(names(screen.active)) == 1)
        await pilot.pause(0.1)
        shown = shown_text(screen.active.file_list).splitlines()[0]
        assert "kernel-pa" in shown and "ers.txt" in shown


async def test_after_a_resize_to_80x24_the_cursor_row_is_on_screen_without_a_key(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(100):
        (folder / f"file-{i:03d}.txt").write_text("x")
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        fl = explorer(app).active.file_list
        await pilot.press(*["j"] * 38)
        assert fl.current is not None and fl.current.name == "file-038.txt"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        top = int(fl.scroll_offset.y)
        assert top <= fl.cursor < top + fl.scrollable_content_region.height
        assert "file-038.txt" in shown_text(fl)


async def test_escape_in_the_list_clears_the_selection_first_then_the_filter(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("slash", "a", "enter")  # alpha.py, beta.txt, Gamma.log, caf….bin
        await wait_for(pilot, lambda: "alpha.py" in names(pane) and "docs" not in names(pane))
        assert pane.file_list.has_focus
        await pilot.press("space", "escape")
        await pilot.pause(0.1)
        assert not pane.file_list.selected and "docs" not in names(pane)  # the selection went, the filter stays
        await pilot.press("escape")
        await wait_for(pilot, lambda: "docs" in names(pane))
        assert pane.filter_box.value == "" and "/a" not in footer(pane)


async def test_size_sorts_largest_first_as_the_cli_does(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("s")
        await wait_for(pilot, lambda: "size↓" in footer(pane))
        assert [e.name for e in pane.file_list.rows if not e.is_dir][0] == "beta.txt"  # 2,000 bytes, the largest


async def test_a_theme_picked_in_the_palette_is_the_theme_of_the_next_start(tmp_path: Path, tree: Path) -> None:
    config_file = tmp_path / "xdg-config" / "sdtui" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text('# mine\n[keys]\ncursor_down = "down,j,ctrl+n"\n')
    app = app_for(tmp_path, tree, config=load_config())
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Theme: light")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "sdtui-light")
        await pilot.pause(0.2)
    config = load_config()
    assert config.theme == "sdtui-light" and config.keys == {"cursor_down": "down,j,ctrl+n"}
    assert "# mine" in config_file.read_text()  # the rest of the file is as the user wrote it
    again = app_for(tmp_path, tree, config=load_config())
    async with again.run_test(size=(140, 30)) as pilot:
        await settle(pilot, again)
        assert again.theme == "sdtui-light"


async def test_an_unknown_theme_or_key_action_in_the_config_is_said_at_start(tmp_path: Path, tree: Path) -> None:
    config_file = tmp_path / "xdg-config" / "sdtui" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text('theme = "solarised"\n[keys]\ncursor_dwon = "ctrl+n"\ncursor_up = "up,k"\n')
    app = app_for(tmp_path, tree, config=load_config())
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        said = [n.message for n in app._notifications]
        assert any("no theme named 'solarised'" in m and "sdtui-light" in m for m in said)
        assert any("cursor_dwon is no action" in m for m in said)
        assert not any("cursor_up" in m for m in said)
        assert app.theme == "sdtui-dark"


async def test_q_during_a_running_copy_asks_first_and_the_jobs_screen_says_from_where_to_where(
    tmp_path: Path, tree: Path, slow_disk: threading.Event
) -> None:
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("j", "j", "j", "f5")  # beta.txt
        await wait_for(pilot, lambda: screen.query_one(JobsStrip).running(("copy",)))
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "copy" in app.screen.question and "still running" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.1)
        assert app.is_running and app.screen is screen
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and bool(app.screen.records))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        row = [str(cell) for cell in table.get_row_at(0)]
        assert "~/tree/beta.txt" in row and "~/tree/music" in row
        assert any(cell.startswith(time.strftime("%Y-")) for cell in row)  # when it started
        slow_disk.set()
        await pilot.press("escape")
        await wait_for(pilot, lambda: (tree / "music" / "beta.txt").exists())


async def test_an_instant_operation_shows_no_0_of_0_bar(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        strip = explorer(app).query_one(JobsStrip)
        await answer_prompt(pilot, app, "f7", "new folder")
        await wait_for(pilot, lambda: (tree / "new folder").is_dir())
        await wait_for(pilot, lambda: any(j.name == "mkdir" for j in strip.jobs.values()))
        assert "mkdir" in shown_text(strip) and "0/0" not in shown_text(strip)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and bool(app.screen.records))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        row = [str(cell) for cell in table.get_row_at(0)]
        assert "0/0" not in " ".join(row) and "~/tree/new folder" in row


async def test_the_sidebar_takes_j_and_k_and_lists_favourites_that_open_where_they_lie(
    tmp_path: Path, indexed: Path
) -> None:
    app = app_for(tmp_path, indexed / "docs")
    async with app.run_test(size=(140, 34)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        await pilot.press("left")  # up to the tree, the cursor on docs
        await settle(pilot, app)
        await pilot.press("j", "j", "j")  # beta.txt
        assert screen.active.file_list.current is not None and screen.active.file_list.current.name == "beta.txt"
        await pilot.press("asterisk")
        sidebar = screen.query_one(Sidebar)
        await wait_for(pilot, lambda: f"fav:{indexed / 'beta.txt'}" in sidebar._places)
        await pilot.press("left")  # away from it
        await settle(pilot, app)
        await pilot.press("b")
        await pilot.pause(0.1)
        assert sidebar.has_focus and sidebar.highlighted is not None  # a row is lit: Enter and j/k work at once
        first = sidebar.highlighted
        await pilot.press("j")
        assert sidebar.highlighted > first
        await pilot.press("k")
        assert sidebar.highlighted == first
        sidebar.highlighted = sidebar.get_option_index(f"fav:{indexed / 'beta.txt'}")
        await pilot.press("enter")
        await settle(pilot, app)
        pane = screen.active
        await wait_for(pilot, lambda: pane.file_list.current is not None and pane.file_list.current.name == "beta.txt")
        assert pane.path is not None and pane.path.path == str(indexed)


async def test_a_paired_device_shows_online_then_offline_and_opens_on_its_locations(
    tmp_path: Path, tree: Path
) -> None:
    far_files = tmp_path / "far-files"
    (far_files / "photos").mkdir(parents=True)
    async with Core(tmp_path / "far") as far:
        far.device.rename("farbox")
        net.attach(far)
        await far.network.start("127.0.0.1:0")
        far.library().locations.add(str(far_files))
        async with device_network(tmp_path / "data", "herebox", listen=False) as here:
            await pair(far.network, here)
        app = app_for(tmp_path, tree)
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            sidebar = explorer(app).query_one(Sidebar)
            key = f"dev-{far.device.id}"
            await wait_for(pilot, lambda: key in sidebar._places and "● online" in sidebar._places[key][0], 30)
            sidebar.focus()
            sidebar.highlighted = sidebar.get_option_index(key)
            await pilot.press("enter")
            pane = explorer(app).active
            await wait_for(pilot, lambda: f"farbox:{far_files}" in names(pane), 30)  # its location, not only `/`
            assert pane.border_title.startswith("farbox: places")
            assert "farbox:/" in names(pane)
            pane.file_list.move_cursor(names(pane).index(f"farbox:{far_files}"))
            await pilot.press("enter")
            await wait_for(pilot, lambda: names(pane) == ["photos"], 30)
            await far.network.close()  # farbox goes away: the sidebar says so from the DeviceLost event
            await wait_for(pilot, lambda: "○ offline" in sidebar._places[key][0], 30)


async def run_command(pilot, app: SdtuiApp, title: str) -> None:  # type: ignore[no-untyped-def]
    """Pick a command in the palette (ctrl+p) by its title."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*title)
    await pilot.pause(0.5)
    await pilot.press("enter")


async def test_pairing_both_ways_and_sending_a_drop_from_the_palette(tmp_path: Path, tree: Path) -> None:
    async with device_network(tmp_path / "far", "farbox", auto_accept_drops=True) as far:
        app = app_for(tmp_path, tree)
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            # join a device that shows a code
            code = far.pair_generate()
            await run_command(pilot, app, "Pair: join")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*code, "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and "listens" in app.screen.question)
            await pilot.press(*far.address, "enter")
            sidebar = explorer(app).query_one(Sidebar)
            await wait_for(pilot, lambda: any(label.startswith("farbox") for label, _, _ in sidebar._places.values()), 30)
            # send beta.txt to it
            await pilot.press("j", "j", "j", "space")
            await run_command(pilot, app, "Spacedrop: send")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
            assert "farbox" in app.screen.question
            await pilot.press("enter")
            await wait_for(pilot, lambda: (far.spacedrop_dir / "beta.txt").exists(), 30)
            assert (far.spacedrop_dir / "beta.txt").read_text() == "b" * 2000
            # show a code another device joins with
            await run_command(pilot, app, "Pair: show a code")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press("ctrl+a", "ctrl+k", *"127.0.0.1:0", "enter")
            await wait_for(pilot, lambda: any("Pairing code" in n.message for n in app._notifications), 30)
            shown = next(n.message for n in app._notifications if "Pairing code" in n.message)
            words = shown.split("Pairing code: ", 1)[1].split("\n", 1)[0]
            async with device_network(tmp_path / "third", "thirdbox", listen=False) as third:
                await third.pair_join(words, app.core.network.address)
                await wait_for(pilot, lambda: any(label.startswith("thirdbox") for label, _, _ in sidebar._places.values()), 30)


async def test_an_accepted_drop_says_where_the_files_are_and_the_sidebar_has_that_place(
    tmp_path: Path, tree: Path
) -> None:
    gift = tmp_path / "gift.txt"
    gift.write_text("for you")
    async with device_network(tmp_path / "far", "farbox", listen=False) as far:
        app = app_for(tmp_path, tree, listen="127.0.0.1:0")
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            await wait_for(pilot, lambda: app.core.network is not None and app.core.network.address is not None, 30)
            here = app.core.network
            code = here.pair_generate()
            await far.pair_join(code, here.address)
            sent = asyncio.create_task(far.drop(str(app.core.device.id), [str(gift)]))
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 30)
            await pilot.press("y")
            assert await asyncio.wait_for(sent, 30) == ["gift.txt"]
            folder = here.spacedrop_dir
            assert any(str(folder.name) in n.message and "land in" in n.message for n in app._notifications)
            sidebar = explorer(app).query_one(Sidebar)
            await wait_for(pilot, lambda: "spacedrop" in sidebar._places)
            sidebar.focus()
            sidebar.highlighted = sidebar.get_option_index("spacedrop")
            await pilot.press("enter")
            pane = explorer(app).active
            await wait_for(pilot, lambda: names(pane) == ["gift.txt"])


async def test_a_filtered_footer_counts_what_shows_without_the_filter_not_the_hidden_files(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        assert footer(pane).startswith("7 items")  # .hidden does not show
        await pilot.press("slash", "a", "enter")  # alpha.py, beta.txt, Gamma.log, caf….bin
        await wait_for(pilot, lambda: "docs" not in names(pane))
        assert footer(pane).startswith("4 of 7 ")  # not "4 of 8"


async def test_after_a_range_is_deleted_the_cursor_is_on_the_row_that_followed_it(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("v", "j", "j", "D")  # docs, music, alpha.py; the cursor on alpha.py
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: "alpha.py" not in names(pane))
        await settle(pilot, app)
        assert pane.file_list.current is not None
        assert pane.file_list.current.name == "beta.txt"  # not Gamma.log, two rows further down


async def test_an_unexpected_error_in_the_explorers_work_is_shown_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path)

    async def broken(self: Favourites) -> list[object]:
        raise RuntimeError("favourites table went missing")  # a bug, not an error a user can cause

    monkeypatch.setattr(Favourites, "list", broken)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        status = app.screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "unexpected" in str(status.render()))
        said = str(status.render())
        assert "fill_sidebar" in said and "sdtui.log" in said, said
    logged = (tmp_path / "data" / "sdtui.log").read_text()
    assert "favourites table went missing" in logged and "Traceback" in logged


async def test_a_search_in_a_location_whose_first_index_was_paused_says_it_sees_only_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_search_live import paused_first_index

    from sdcore.index import indexer

    monkeypatch.setattr(indexer, "BATCH_ENTRIES", 50)  # many discovery batches from a small tree
    root = tmp_path / "big"
    for d in range(20):
        (root / f"d{d:02}").mkdir(parents=True)
        for f in range(30):
            (root / f"d{d:02}" / f"report{d:02}-{f:02}.txt").write_text(str(f))
    await paused_first_index(tmp_path / "data", root)
    app = app_for(tmp_path, root)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        await answer_prompt(pilot, app, "ctrl+f", "report")
        status = app.screen.query_one("#status", Static)
        await wait_for(pilot, lambda: "found" in str(status.render()))
        said = str(status.render())
        assert "not fully indexed" in said and "sd location rescan big" in said, said


async def test_an_actions_error_is_said_on_the_status_line_and_a_bug_in_it_names_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        status = app.screen.query_one("#status", Static)
        await answer_prompt(pilot, app, "f7", "docs")  # a folder of that name is already there: the user's error
        await wait_for(pilot, lambda: status.has_class("-error"))
        said = str(status.render())
        assert "docs" in said and "unexpected" not in said, said
        assert [n.message for n in app._notifications] == [said]  # and told once as a notification
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))  # asked again, holding "docs"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))

        async def broken(self: Ops, source: object, new: str) -> None:
            raise RuntimeError("rename lost its library")  # a bug, not an error a user can cause

        monkeypatch.setattr(Ops, "rename", broken)
        await answer_prompt(pilot, app, "r", "alpha-renamed.py")
        await wait_for(pilot, lambda: "unexpected" in str(status.render()))
        said = str(status.render())
        assert "action_rename" in said and "sdtui.log" in said and status.has_class("-error"), said
        assert isinstance(app.screen, type(explorer(app)))  # the explorer carries on
    logged = (tmp_path / "data" / "sdtui.log").read_text()
    assert "rename lost its library" in logged and "Traceback" in logged
