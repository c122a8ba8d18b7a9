"""The tree view (T): a pane's folders open in place (l), close (h), follow live changes, on this device, inside an
archive and on a paired device."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from tui_support import app_for, explorer, make_tree, names, own_home, settle, shown_text, wait_for  # noqa: F401

from sdcore.net.testing import device_network, pair
from sdcore.sdpath import SdPath


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path)


def cursor(pane) -> str:  # type: ignore[no-untyped-def]
    current = pane.file_list.current
    return current.name if current is not None else ""


async def test_t_shows_a_tree_whose_folders_open_in_place_with_l_and_close_with_h(tmp_path: Path, tree: Path) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        flat = names(pane)
        await pilot.press("T")
        await wait_for(pilot, lambda: "tree" in shown_text(pane.query_one(".pane--footer")))
        assert names(pane) == flat and cursor(pane) == "docs"

        await pilot.press("l")  # docs opens in place, its folders first
        await wait_for(pilot, lambda: names(pane)[:4] == ["docs", "docs/deep", "docs/notes.md", "music"])
        await pilot.press("j", "l")  # deep, inside docs
        await wait_for(pilot, lambda: "docs/deep/x.txt" in names(pane))
        assert names(pane)[:5] == ["docs", "docs/deep", "docs/deep/x.txt", "docs/notes.md", "music"]
        assert pane.expanded == {"docs", "docs/deep"}
        lines = shown_text(pane.file_list).splitlines()
        assert lines[0].startswith("  ▾ docs/") and lines[1].startswith("    ▾ deep/")
        assert lines[2].startswith("        x.txt") and lines[4].startswith("  ▸ music/")

        # what a key does to the row under the cursor, it does to that file
        await pilot.press("j")
        assert cursor(pane) == "docs/deep/x.txt"
        assert pane.path_of(pane.file_list.current) == SdPath(app.core.device.id, str(tree / "docs" / "deep" / "x.txt"))  # type: ignore[arg-type]

        # a change in a folder open in the tree shows; the cursor and what is open stay
        (tree / "docs" / "fresh.txt").write_text("made by another program")
        await wait_for(pilot, lambda: "docs/fresh.txt" in names(pane))
        (tree / "docs" / "deep" / "y.txt").write_text("and another")
        await wait_for(pilot, lambda: "docs/deep/y.txt" in names(pane))
        assert cursor(pane) == "docs/deep/x.txt" and pane.expanded == {"docs", "docs/deep"}

        await pilot.press("h")  # to the folder it is in
        assert cursor(pane) == "docs/deep"
        await pilot.press("h")  # which closes
        await wait_for(pilot, lambda: "docs/deep/x.txt" not in names(pane))
        assert cursor(pane) == "docs/deep" and pane.expanded == {"docs"}

        await pilot.press("T")  # a plain listing again: the cursor on the folder the row was in
        await wait_for(pilot, lambda: names(pane) == flat)
        assert cursor(pane) == "docs" and pane.expanded == set()
        assert "tree" not in shown_text(pane.query_one(".pane--footer"))


async def test_a_folder_removed_while_open_in_the_tree_leaves_it_and_enter_on_an_open_one_goes_in(
    tmp_path: Path, tree: Path
) -> None:
    app = app_for(tmp_path, tree)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        await pilot.press("T", "l", "j", "l")
        await wait_for(pilot, lambda: "docs/deep/x.txt" in names(pane))
        await pilot.press("j")  # x.txt, deep in the tree: the inspector shows it
        await wait_for(pilot, lambda: "x.txt" in shown_text(app.screen.query_one("#inspector")))
        await pilot.press("G")  # the cursor on a row that stays
        kept = cursor(pane)
        (tree / "docs" / "deep" / "x.txt").unlink()
        (tree / "docs" / "deep").rmdir()
        await wait_for(pilot, lambda: not any(n.startswith("docs/deep") for n in names(pane)))
        assert pane.expanded == {"docs"} and cursor(pane) == kept

        await pilot.press("home", "enter")  # Enter on a folder open in the tree: the pane goes into it, still a tree
        await wait_for(pilot, lambda: pane.path is not None and pane.path.path == str(tree / "docs"))
        await settle(pilot, app)
        assert names(pane) == ["fresh.txt", "notes.md"] if (tree / "docs" / "fresh.txt").exists() else ["notes.md"]
        assert pane.tree_view and pane.expanded == set()
        await pilot.press("h")  # at the top of the tree: up a level, onto the folder left
        await wait_for(pilot, lambda: pane.path is not None and pane.path.path == str(tree))
        await settle(pilot, app)
        assert cursor(pane) == "docs"


async def test_the_tree_opens_folders_inside_an_archive(tmp_path: Path) -> None:
    pack = tmp_path / "pack.zip"
    with zipfile.ZipFile(pack, "w") as zf:
        zf.writestr("inner/dir/a.txt", "a")
        zf.writestr("inner/b.txt", "b")
        zf.writestr("top.txt", "t")
    app = app_for(tmp_path, tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        pane = explorer(app).active
        pane.open(SdPath(app.core.device.id, str(pack)))
        await settle(pilot, app)
        assert names(pane) == ["inner", "top.txt"]
        await pilot.press("T", "l")
        await wait_for(pilot, lambda: names(pane) == ["inner", "inner/dir", "inner/b.txt", "top.txt"])
        await pilot.press("j", "l")
        await wait_for(pilot, lambda: "inner/dir/a.txt" in names(pane))
        assert pane.path_of(pane.file_list.rows[2]) == SdPath(app.core.device.id, f"{pack}/inner/dir/a.txt")


async def test_the_tree_opens_folders_of_a_paired_device(tmp_path: Path) -> None:
    far_files = tmp_path / "far-files"
    (far_files / "photos" / "2024").mkdir(parents=True)
    (far_files / "photos" / "beach.jpg").write_bytes(b"\xff\xd8 a beach")
    (far_files / "report.txt").write_text("from far away\n")
    async with device_network(tmp_path / "far", "farbox") as far:
        async with device_network(tmp_path / "data", "herebox", listen=False) as here:
            await pair(far, here)
        app = app_for(tmp_path, f"farbox:{far_files}")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            pane = explorer(app).active
            assert pane.path is not None and not app.core.is_local(pane.path)
            await pilot.press("T", "l")
            await wait_for(pilot, lambda: names(pane) == ["photos", "photos/2024", "photos/beach.jpg", "report.txt"])
            await pilot.press("j", "j")
            assert pane.path_of(pane.file_list.current) == pane.path.child("photos/beach.jpg")  # type: ignore[arg-type]
            await pilot.press("h", "h")
            await wait_for(pilot, lambda: names(pane) == ["photos", "report.txt"])
