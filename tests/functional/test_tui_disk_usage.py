"""The disk usage view (`c`): a folder's children largest first, the disk's blocks counted as it goes (as du), or
apparent sizes (`a`), at once from the index's totals in a location; Enter and Backspace move through it, `d` trashes
from it."""

from __future__ import annotations

import os
from pathlib import Path

from tui_support import app_for, own_home, settle, wait_for  # noqa: F401 (own_home: autouse)

from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdtui.screens.confirm import ConfirmScreen
from sdtui.screens.disk_usage import DiskUsageScreen


def sized_tree(root: Path) -> Path:
    """big/ holds 300,000 bytes in three files (one a level down), mid/ 100,000, small.txt 10."""
    (root / "big" / "inner").mkdir(parents=True)
    (root / "mid").mkdir()
    (root / "big" / "a.bin").write_bytes(os.urandom(100_000))
    (root / "big" / "b.bin").write_bytes(os.urandom(100_000))
    (root / "big" / "inner" / "c.bin").write_bytes(os.urandom(100_000))
    (root / "mid" / "d.bin").write_bytes(os.urandom(100_000))
    (root / "small.txt").write_text("0123456789")
    return root


def blocks_below(path: Path) -> int:
    """Bytes of the disk's blocks `path` takes, itself and all below (what `du -s -B1` says)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    return path.stat().st_blocks * 512 + sum(blocks_below(p) for p in path.iterdir())


def rows(screen: DiskUsageScreen) -> list[tuple[str, int, int | None]]:
    return [(e.name, e.size, e.files) for e in screen.usage_list.rows]


async def test_disk_usage_counts_folders_largest_first_and_trashes_from_the_view(tmp_path: Path) -> None:
    tree = sized_tree(tmp_path / "tree")
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, DiskUsageScreen) and not app.screen.walking
                       and len(app.screen.usage_list.rows) == 3)  # fmt: skip
        screen = app.screen
        assert isinstance(screen, DiskUsageScreen)
        blocks = [(p.name, blocks_below(p)) for p in (tree / "big", tree / "mid", tree / "small.txt")]
        assert [(name, size) for name, size, _ in rows(screen)] == blocks  # the disk's blocks, as du counts them
        assert "(disk usage)" in str(screen.query_one("#usage-title").render())
        await pilot.press("a")  # apparent sizes
        await wait_for(pilot, lambda: not screen.walking and rows(screen)[0][1] == 300_000)
        assert rows(screen) == [("big", 300_000, 3), ("mid", 100_000, 1), ("small.txt", 10, None)]
        await pilot.press("enter")  # into big/
        await wait_for(pilot, lambda: not screen.walking and rows(screen) == [
            ("a.bin", 100_000, None), ("b.bin", 100_000, None), ("inner", 100_000, 1)])
        await pilot.press("backspace")
        await wait_for(pilot, lambda: len(rows(screen)) == 3 and not screen.walking)
        assert screen.usage_list.current is not None and screen.usage_list.current.name == "big"
        await pilot.press("j", "d")  # mid/
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: [r[0] for r in rows(screen)] == ["big", "small.txt"])
        assert not (tree / "mid").exists()
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DiskUsageScreen))


async def test_in_a_location_the_totals_come_from_the_index_at_once(tmp_path: Path) -> None:
    tree = sized_tree(tmp_path / "tree")
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(tree), name="tree")
        await library.jobs.wait(await index_location(library, location))
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("c")  # in a location: apparent sizes, what the index summed, at once
        await wait_for(pilot, lambda: isinstance(app.screen, DiskUsageScreen) and app.screen.apparent
                       and len(app.screen.usage_list.rows) == 3)  # fmt: skip
        screen = app.screen
        assert isinstance(screen, DiskUsageScreen)
        assert screen.walking == set()  # nothing to count: the index summed the folders when it indexed them
        assert rows(screen) == [("big", 300_000, 3), ("mid", 100_000, 1), ("small.txt", 10, None)]
        assert "(apparent size)" in str(screen.query_one("#usage-title").render())
        await pilot.press("a")  # the disk's blocks, as du counts them: walked
        await wait_for(pilot, lambda: screen.apparent is False and not screen.walking
                       and "(disk usage)" in str(screen.query_one("#usage-title").render()))  # fmt: skip


async def test_esc_stops_the_counting_of_a_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A folder that takes long to count (a disk that answers slowly): Esc closes the view and the walk stops."""
    import threading

    from sdcore import usage

    tree = sized_tree(tmp_path / "tree")
    walking, stopped = threading.Event(), threading.Event()

    def slow_walk(path: str, stop: threading.Event, *_: object) -> tuple[int, int]:
        walking.set()
        if stop.wait(30):
            stopped.set()
        return 0, 0

    monkeypatch.setattr(usage, "walk_total", slow_walk)
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("c")
        await wait_for(pilot, walking.is_set)
        assert isinstance(app.screen, DiskUsageScreen) and app.screen.walking == {"big", "mid"}
        await pilot.press("escape")
        await wait_for(pilot, stopped.is_set)
        assert not isinstance(app.screen, DiskUsageScreen)
