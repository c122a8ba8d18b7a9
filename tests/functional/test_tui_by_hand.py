"""What a person met using the explorer in tmux (80x24 and 160x45, a fresh home, odd folders), each pinned here with
the real app on real files in tmp_path."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Input, Static
from tui_support import (  # noqa: F401 (own_home: autouse)
    answer_prompt,
    app_for,
    explorer,
    index_for_the_app,
    make_tree,
    settle,
    shown_text,
    wait_for,
)

from sdcore import net
from sdcore.core import Core
from sdcore.net.testing import device_network, pair
from sdcore.sdpath import SdPath
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.help import HelpScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.screens.prompt import PromptScreen


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


def status_line(app) -> str:  # type: ignore[no-untyped-def]
    """The explorer's status line, as drawn (under a prompt too)."""
    screen = next(s for s in app.screen_stack if isinstance(s, ExplorerScreen))
    return str(screen.query_one("#status", Static).render())


async def test_the_help_scrolls_with_the_keys_it_lists_for_moving(tmp_path: Path, tree: Path) -> None:
    """At 80x24 the help is longer than the screen; it listed j/k, ctrl+d and G as the keys that move, and only the
    arrows and PgDn moved it."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        box = app.screen.query_one(VerticalScroll)
        await pilot.pause()
        assert box.max_scroll_y > 0  # it does not fit: there is something to scroll to
        await pilot.press("j", "j", "j")
        await wait_for(pilot, lambda: box.scroll_y == 3)
        await pilot.press("k")
        await wait_for(pilot, lambda: box.scroll_y == 2)
        await pilot.press("G")
        await wait_for(pilot, lambda: box.scroll_y == box.max_scroll_y)
        await pilot.press("g")
        await wait_for(pilot, lambda: box.scroll_y == 0)
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: box.scroll_y > 3)
        await pilot.press("q")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_the_status_line_names_the_folder_of_the_pane_tab_moves_to(tmp_path: Path, tree: Path) -> None:
    """Tab made the right pane active and the status line still named the left pane's folder."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        left = screen.active
        left.open(left.path.child("docs"))  # type: ignore[union-attr]
        await settle(pilot, app)
        assert status_line(app) == app.label(left.path)  # type: ignore[arg-type]
        await pilot.press("tab")
        await wait_for(pilot, lambda: screen.active is not left)
        right = screen.active
        assert right.path != left.path
        await wait_for(pilot, lambda: status_line(app) == app.label(right.path))  # type: ignore[arg-type]
        await pilot.press("tab")
        await wait_for(pilot, lambda: status_line(app) == app.label(left.path))  # type: ignore[arg-type]
        screen.status("copied a to b")  # a message stays through a Tab: only a place follows the pane
        await pilot.press("tab")
        await pilot.pause()
        assert status_line(app) == "copied a to b"


async def test_a_search_that_finds_nothing_says_so(tmp_path: Path, tree: Path) -> None:
    """A search with no hits showed "empty directory" in its pane, as if a folder had been opened."""
    await index_for_the_app(tmp_path, tree)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await answer_prompt(pilot, app, "ctrl+f", "zzqqnothing")
        await wait_for(pilot, lambda: pane.results is not None and pane.file_list.state == "ready")
        await pilot.pause()
        shown = shown_text(pane.file_list)
        assert "nothing found" in shown, shown
        assert "empty directory" not in shown
        pane.open(pane.back_stack[-1].path.child("music"))  # an empty folder still says so
        await settle(pilot, app)
        assert "empty directory" in shown_text(pane.file_list)


async def prompt_answer(pilot, app, key: str, text: str) -> Input:  # type: ignore[no-untyped-def]
    """Press `key`, put `text` in the prompt it opens (as pasted), Enter; the prompt's field."""
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
    field = app.screen.query_one(Input)
    field.value = text
    await pilot.press("enter")
    return field


async def test_a_name_too_long_is_refused_in_one_line_and_the_prompt_keeps_it(tmp_path: Path, tree: Path) -> None:
    """r on a file, a new name of 270 bytes: the status line and a notification held the whole path (8 lines of
    a's at 80x24) and "File name too long", no limit, and the name typed was gone. Now one line says the limit and
    by how much to shorten it, and the prompt comes back holding the name."""
    app = app_for(tmp_path, tree)
    long = "a" * 251 + ".txt" + "b" * 15
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        pane.put_cursor_on("alpha.py")
        await pilot.pause()
        await prompt_answer(pilot, app, "r", long)
        await wait_for(pilot, lambda: "shorten it by 15" in status_line(app))
        said = status_line(app)
        assert "at most 255" in said and len(said) < 160 and str(tree) not in said, said
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))  # asked again, holding what was typed
        assert app.screen.query_one(Input).value == long
        app.screen.query_one(Input).value = "alpha2.py"
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tree / "alpha2.py").exists())
        assert not (tree / "alpha.py").exists()
        await prompt_answer(pilot, app, "f7", "x" * 300)  # a folder too
        await wait_for(pilot, lambda: "shorten it by 45" in status_line(app))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))
        assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == ["docs", "music"]


async def test_a_refused_folder_name_comes_back_in_its_prompt(tmp_path: Path, tree: Path) -> None:
    """F7 of a name taken (docs/ is there): the error was said and the prompt closed with what was typed."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await prompt_answer(pilot, app, "f7", "docs")
        await wait_for(pilot, lambda: "already exists" in status_line(app))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        field = app.screen.query_one(Input)
        assert field.value == "docs"
        field.value = "/"  # (it said "…// already exists")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "names no folder" in status_line(app))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        field = app.screen.query_one(Input)
        field.value = "new/"
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tree / "new").is_dir())
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))


async def test_the_preview_of_a_huge_folder_says_first_that_it_shows_part(tmp_path: Path, tree: Path) -> None:
    """At 160x45 the inspector previewed a 20,000-file folder as f00000, f00010, f00012...: the first 5,000 read,
    sorted, the note saying so 200 lines below, out of sight. It is the preview's first line now."""
    from sdtui.widgets.inspector import PREVIEW_SCAN, Inspector

    big = tree / "big"
    big.mkdir()
    for i in range(PREVIEW_SCAN + 500):
        (big / f"f{i:05d}.txt").touch()
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        explorer(app).active.put_cursor_on("big")
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "f00" in shown_text(inspector))
        shown = shown_text(inspector)
        assert f"{PREVIEW_SCAN:,} of more" in shown, shown
        assert shown.index(f"{PREVIEW_SCAN:,} of more") < shown.index("f00")


async def test_a_pane_on_a_device_that_goes_away_says_it_is_out_of_reach(
    tmp_path: Path, tree: Path
) -> None:
    """A pane on nas:/photos, nas's `sd serve` stopped: the sidebar said offline and the status line "nas lost", the
    pane went on showing nas's files under its plain title, as if they were there (no catalogue of nas here: its
    library is not shared). The title says it is out of reach, and says it no more once the device is back."""
    photos = tmp_path / "far-files" / "photos"
    photos.mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"jpg")
    async with Core(tmp_path / "far") as far:
        far.device.rename("farbox")
        net.attach(far)
        await far.network.start("127.0.0.1:0")
        port = far.network.port
        async with device_network(tmp_path / "data", "herebox", listen=False) as here:
            await pair(far.network, here)
        app = app_for(tmp_path, tree)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            screen = explorer(app)
            await wait_for(pilot, lambda: screen.online.get(far.device.id) is True, 30)
            pane = screen.active
            pane.open(SdPath(far.device.id, str(photos)))
            await wait_for(pilot, lambda: [e.name for e in pane.file_list.rows] == ["a.jpg"], 30)
            assert "out of reach" not in str(pane.border_title)
            await far.network.close()
            await wait_for(pilot, lambda: "out of reach" in str(pane.border_title), 30)  # its rows, if still shown, too
            await far.network.start(f"127.0.0.1:{port}")
            screen.probe_devices()
            await wait_for(pilot, lambda: screen.online.get(far.device.id) is True, 30)
            await wait_for(pilot, lambda: "out of reach" not in str(pane.border_title), 30)


async def test_a_pairing_code_typed_wrong_is_said_before_the_address_is_asked_and_kept_to_mend(
    tmp_path: Path, tree: Path
) -> None:
    """Palette "Pair: join", three of the twelve words: the explorer asked where the device listens, then said the
    code was not valid and closed, the words gone (twelve to type again). Now the code is checked first and its
    prompt comes back holding the words; the address prompt, refused, keeps the address too."""
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        screen.pair_join()
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "prevent confirm script"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not a valid pairing code" in status_line(app))
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert "12 words" in app.screen.question and app.screen.query_one(Input).value == "prevent confirm script"
        code = "abandon " * 11 + "about"  # valid words, checksum right: the address is asked next
        app.screen.query_one(Input).value = code
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and "listens" in app.screen.question)
        app.screen.query_one(Input).value = "127.0.0.1:1"  # nothing listens there
        await pilot.press("enter")
        await wait_for(pilot, lambda: "cannot reach" in status_line(app), 60)
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen) and "listens" in app.screen.question)
        assert app.screen.query_one(Input).value == "127.0.0.1:1"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen))


async def test_the_jobs_screen_says_in_full_why_the_job_under_the_cursor_failed(tmp_path: Path, tree: Path) -> None:
    """w at 80x24 after a copy failed: the row said "failed" and its message column was off screen (at 160x45 it
    showed "can…", the paths taking the room): nowhere to read why. The status line says it for the row under the
    cursor."""
    pack = tree / "damaged.zip"
    with zipfile.ZipFile(pack, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.bin", os.urandom(20_000))
    spoiled = bytearray(pack.read_bytes())
    header = spoiled.find(b"PK\x03\x04") + 30 + len("data.bin")
    spoiled[header : header + 200] = b"\xff" * 200  # its packed bytes are garbage: the copy out fails as it reads
    pack.write_bytes(bytes(spoiled))
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        job = await app.api.ops.copy([SdPath(app.api.device.id, str(pack / "data.bin"))], screen.inactive.path)
        await app.api.library().jobs.wait(job.id)
        await app.api.ops.copy([SdPath(app.api.device.id, str(tree / "beta.txt"))], screen.inactive.path)  # newer, fine
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = app.screen
        table = jobs.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        status = jobs.query_one("#jobs-status")
        assert "failed" not in shown_text(status)  # the newest job, on top, did not fail
        await pilot.press("down")
        await wait_for(pilot, lambda: "extract failed: " in str(status.render()))  # unpacking: the extract job
        assert "damaged.zip/data.bin cannot be read" in str(status.render())
        await pilot.press("up")
        await wait_for(pilot, lambda: "p pause" in shown_text(status))
