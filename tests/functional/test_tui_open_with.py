"""O: open a file with a program the desktop's database lists for its type (or $EDITOR, $PAGER); a drag copies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tui_support import app_for, own_home, settle, wait_for  # noqa: F401 (own_home: autouse)

from sdtui.open_with import Program, programs_for
from sdtui.screens.open_with import OpenWithScreen


def desktop_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An applications folder with one program for text/plain, which writes what it was given to opened.txt."""
    apps = tmp_path / "xdg-data" / "applications"
    apps.mkdir(parents=True)
    script = tmp_path / "notes.py"
    script.write_text(f"import sys\nopen({str(tmp_path / 'opened.txt')!r}, 'w').write(repr(sys.argv[1:]))\n")
    (apps / "notes.desktop").write_text(
        f"[Desktop Entry]\nType=Application\nName=Notes\nExec={sys.executable} {script} --new-window %U\n"
    )
    (apps / "hidden.desktop").write_text("[Desktop Entry]\nName=Hidden\nExec=hidden %f\nNoDisplay=true\n")
    (apps / "mimeinfo.cache").write_text("[MIME Cache]\ntext/plain=notes.desktop;hidden.desktop;gone.desktop;\n")
    monkeypatch.setenv("XDG_DATA_DIRS", str(tmp_path / "no-system-apps"))
    monkeypatch.setenv("EDITOR", "vi")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("PAGER", "less")
    return apps


def test_the_programs_for_a_type_come_from_the_desktop_database_then_the_editor_and_pager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desktop_database(tmp_path, monkeypatch)
    found = programs_for("notes.txt")
    assert [p.name for p in found] == ["Notes", "vi ($EDITOR)", "less ($PAGER)"]
    assert found[0].argv("/tmp/a b.txt")[-2:] == ["--new-window", "/tmp/a b.txt"]  # in place of %U, one argument
    assert Program("x", ("x", "--flag"), False).argv("/f") == ["x", "--flag", "/f"]


@pytest.mark.parametrize("name", ["x; touch PWNED; #.txt", "$(touch PWNED).txt", "`touch PWNED`.txt", "-rf.txt"])
def test_a_hostile_file_name_never_reaches_a_shell_through_an_exec_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    apps = desktop_database(tmp_path, monkeypatch)
    (apps / "shell.desktop").write_text(  # a field code inside the script, and one after it (the script's $0)
        '[Desktop Entry]\nName=Shell\nExec=sh -c "cat %f > inside.txt; cp -- \\"$0\\" given.txt" %f\n'
    )
    (apps / "mimeinfo.cache").write_text("[MIME Cache]\ntext/plain=shell.desktop;\n")
    hostile = tmp_path / name
    hostile.write_text("its content")
    [shell] = [p for p in programs_for(name) if p.name == "Shell"]
    subprocess.run(shell.argv(str(hostile)), cwd=tmp_path, timeout=30, capture_output=True)
    assert not (tmp_path / "PWNED").exists()
    assert (tmp_path / "given.txt").read_text() == "its content"  # the file came as one argument, as it is named


async def test_o_opens_the_file_with_the_program_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    desktop_database(tmp_path, monkeypatch)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "todo.txt").write_text("call the plumber")
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("O")
        await wait_for(pilot, lambda: isinstance(app.screen, OpenWithScreen))
        await pilot.press("enter")  # Notes, the desktop's
        await wait_for(pilot, lambda: (tmp_path / "opened.txt").exists() and (tmp_path / "opened.txt").read_text() != "")
        assert (tmp_path / "opened.txt").read_text() == repr(["--new-window", str(folder / "todo.txt")])


async def test_a_file_dragged_to_the_other_pane_is_copied_there_once_confirmed(tmp_path: Path) -> None:
    from tui_support import explorer, names

    from sdtui.screens.confirm import ConfirmScreen
    from sdtui.widgets.file_list import FileList

    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / "a.txt").write_text("a")
    (here / "b.txt").write_text("bee")
    app = app_for(tmp_path, here, other=str(there))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        left, right = (explorer(app).query_one(f"#{side} FileList", FileList) for side in ("left", "right"))
        await pilot.mouse_down(left, offset=(3, 1))  # the second row: b.txt
        await pilot.mouse_up(right, offset=(3, 3))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: names(explorer(app).inactive) == ["b.txt"])
        assert (there / "b.txt").read_text() == "bee" and (here / "b.txt").exists()
