"""Snapshot tests of the TUI (pytest-textual-snapshot); the SVGs live in the top-level `snapshots/` folder.

The fixture tree is made in tmp_path with fixed mtimes; HOME is tmp_path so paths read `~/tree`, TZ is
UTC and the device has a fixed name, so the pictures are the same on every machine.
Update them with `pytest tests/functional/test_tui_snapshots.py --snapshot-update` and look at the diff.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
import pytest_textual_snapshot
from syrupy.location import PyTestLocation

from sdcore import tags
from sdcore.core import Core
from sdcore.events import JobProgress
from sdcore.index.indexer import index_location
from sdcore.ops import localcopy
from sdtui.app import SdtuiApp
from sdtui.config import Config
from sdtui.screens import jobs as jobs_screen
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.tag_picker import TagPickerScreen
from sdtui.widgets.file_list import FileList

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"
FIXED = 1_700_000_000.0
SIZE = (130, 32)


class TopLevelSVGs(pytest_textual_snapshot.SVGImageExtension):
    """The plugin's SVG extension, storing under snapshots/MODULE/ instead of tests/functional/__snapshots__/."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS / test_location.basename)


@pytest.fixture(autouse=True)
def deterministic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", TopLevelSVGs)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(jobs_screen, "format_mtime", lambda _: "2023-11-14 22:13")  # a job starts now: any day


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "docs" / "deep").mkdir(parents=True)
    (tree / "music").mkdir()
    (tree / "docs" / "notes.md").write_text("# Notes\n\nhello\n")
    (tree / "alpha.py").write_text('def alpha():\n    """The first."""\n    return 1\n')
    (tree / "beta.txt").write_text("b" * 2000)
    (tree / "Gamma.log").write_text("log line\n")
    (tree / ".hidden").write_text("secret\n")
    os.symlink("alpha.py", tree / "link")
    os.close(os.open(os.fsencode(tree) + b"/caf\xe9.bin", os.O_CREAT | os.O_WRONLY, 0o644))
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (FIXED, FIXED), follow_symlinks=False)
    return tree


def make_app(
    tmp_path: Path, *, theme: str = "sdtui-dark", start: str | None = None, indexed: bool = False
) -> SdtuiApp:
    tree = make_tree(tmp_path)
    data = tmp_path / "data"
    Core(data).device.rename("testbox")  # the host's name would differ between machines
    if indexed:
        asyncio.run(index_with_tags(data, tree))
    mounts = tmp_path / "mounts"
    mounts.write_text("40 1 8:17 / /media/usb rw - ext4 /dev/sdb1 rw\n22 1 0:21 / /proc rw - proc proc rw\n")
    return SdtuiApp(start or str(tree), data_dir=data, mounts_file=str(mounts), config=Config(theme=theme))


async def index_with_tags(data: Path, tree: Path) -> None:
    """Make the tree a location, index it, and make a few tags."""
    async with Core(data) as core:
        library = core.library()
        location = library.locations.add(str(tree), name="tree")
        await library.jobs.wait(await index_location(library, location))
        for name in ("projects", "projects/sdtui", "personal", "photos/2024"):
            tags.create(library, name)


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait for the listings, the sidebar and the inspector's preview."""
    app = pilot.app
    for _ in range(500):
        if (
            isinstance(app.screen, ExplorerScreen)
            and app.screen.places_complete
            and all(fl.state not in ("loading", "empty") for fl in app.screen.query(FileList))
        ):
            break
        await asyncio.sleep(0.01)
    await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()


def test_explorer_on_the_fixture_tree(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=settle)


def test_explorer_with_a_selection_and_code_preview(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("j", "j", "space", "space", "full_stop", "tab")
        await settle(pilot)
        await pilot.press("tab", "k")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_confirm_permanent_delete(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("j", "j", "D")
        await pilot.pause(0.2)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_jobs_strip_with_a_running_copy(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        bus = pilot.app.core.bus
        bus.publish(JobProgress("job-1", "copy", 3 << 20, 8 << 20, "beta.txt", unit="bytes"))
        bus.publish(JobProgress("job-2", "index", 120, 480, "~/tree", unit="files"))
        await pilot.pause(0.2)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_unreachable_directory(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, start=str(tmp_path / "gone"))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


@pytest.mark.parametrize("theme", ["sdtui-dark", "sdtui-light", "sdtui-high-contrast"])
def test_theme(snap_compare, tmp_path: Path, theme: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(tmp_path, theme=theme), terminal_size=SIZE, run_before=settle)


def test_tag_picker(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, indexed=True)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("j", "j", "t")
        for _ in range(200):
            if isinstance(pilot.app.screen, TagPickerScreen):
                break
            await asyncio.sleep(0.01)
        await pilot.press(*"pro")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_search_results(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, indexed=True)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("ctrl+f")
        await pilot.pause(0.2)
        await pilot.press(*"a", "enter")
        for _ in range(200):
            if "search" in str(pilot.app.screen.query_one("#left").border_title):
                break
            await asyncio.sleep(0.01)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_jobs_screen_after_a_copy(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("tab", "j", "enter", "tab")  # the right pane into music/
        await settle(pilot)
        await pilot.press("j", "j", "space", "space", "f5")  # alpha.py and beta.txt
        for _ in range(500):
            if len(pilot.app.screen.query_one("#right FileList").rows) == 2:
                break
            await asyncio.sleep(0.01)
        await pilot.press("w")
        for _ in range(500):
            if pilot.app.screen.query("DataTable") and pilot.app.screen.query_one("DataTable").row_count:
                break
            await asyncio.sleep(0.01)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_jobs_screen_with_a_running_copy(  # type: ignore[no-untyped-def]
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy held at the start of its file (a disk that does not answer yet), seen in the jobs screen."""
    disk_answers = threading.Event()
    real_copy = localcopy.copy_file

    def copy_on_a_slow_disk(src: str, dst: str, tmp: str, **kw):  # type: ignore[no-untyped-def]
        while not disk_answers.wait(0.01):
            if kw["should_stop"]():
                raise localcopy.Stopped
        return real_copy(src, dst, tmp, **kw)

    monkeypatch.setattr(localcopy, "copy_file", copy_on_a_slow_disk)
    app = make_app(tmp_path)
    close_core = app.core.close

    async def close_letting_the_copy_go() -> None:
        disk_answers.set()  # the copy's thread ends before the core does
        await close_core()

    app.core.close = close_letting_the_copy_go  # type: ignore[method-assign]

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("tab", "j", "enter", "tab")  # the right pane into music/
        await settle(pilot)
        await pilot.press("j", "j", "j", "f5")  # beta.txt
        await pilot.press("w")
        for _ in range(500):
            records = getattr(pilot.app.screen, "records", {})
            if [(r.state, r.total) for r in records.values()] == [("running", 2000)]:  # planned, held
                break
            await asyncio.sleep(0.01)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_picture_preview_in_half_blocks(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from sdtui.widgets.inspector import Inspector

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    image = Image.new("RGB", (60, 40), (230, 60, 40))  # red, a blue band and a yellow square: colours and shape
    image.paste((40, 90, 220), (0, 26, 60, 40))
    image.paste((240, 210, 50), (40, 4, 54, 18))
    image.save(pictures / "flag.bmp")  # uncompressed: the same bytes (and cas_id) with any Pillow
    os.utime(pictures / "flag.bmp", (FIXED, FIXED))
    app = make_app(tmp_path, start=str(pictures))

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        inspector = pilot.app.screen.query_one(Inspector)
        for _ in range(1000):
            if any("▀" in inspector.render_line(y).text for y in range(inspector.size.height)):
                break
            await asyncio.sleep(0.01)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _over_the_explorer(screen_of):  # type: ignore[no-untyped-def]
    """A run_before that pushes a modal screen (made by `screen_of(app)`) over the settled explorer."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        pilot.app.push_screen(screen_of(pilot.app))
        await pilot.pause(0.2)

    return run_before


def test_jump_list_filtered(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sdcore.sdpath import SdPath
    from sdtui.screens.jump import JumpScreen

    def jump(app: SdtuiApp) -> JumpScreen:
        device = app.core.device.id
        return JumpScreen([(label, SdPath(device, f"/x/{label}")) for label in ("~/tree", "~/tree/docs", "~/tree/music", "/etc")])

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _over_the_explorer(jump)(pilot)
        await pilot.press(*"tr d")
        await pilot.pause(0.2)

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_conflict_dialog(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sdtui.screens.conflict import ConflictScreen

    question = "~/tree/music already has alpha.py, beta.txt. Keep both, skip those, or overwrite them?"
    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=_over_the_explorer(lambda _: ConflictScreen(question)))


def test_choice_dialog(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sdtui.screens.choice import ChoiceScreen

    def choice(_: SdtuiApp) -> ChoiceScreen:
        return ChoiceScreen("Index usb (/media/usb)? Shallow reads names, sizes and dates (quick).",
                            [("shallow", "Shallow", "s"), ("content", "Content", "c")], title="Index this disk")

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=_over_the_explorer(choice))
