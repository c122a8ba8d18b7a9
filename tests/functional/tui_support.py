"""What the Pilot tests of the explorer share: a home of their own, the app on a directory, and reading it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from textual.geometry import Region

from sdcore.library import Library
from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.prompt import PromptScreen
from sdtui.widgets.file_list import FileList
from sdtui.widgets.pane import Pane


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trash and the config of the test live in tmp_path, not in the real home."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


def app_for(tmp_path: Path, start: Path | str, **kw: object) -> SdtuiApp:
    mounts = tmp_path / "mounts"
    mounts.write_text("40 1 8:17 / /media/usb rw - ext4 /dev/sdb1 rw\n22 1 0:21 / /proc rw - proc proc rw\n")
    return SdtuiApp(str(start), data_dir=tmp_path / "data", mounts_file=str(mounts), **kw)  # type: ignore[arg-type]


async def library_of(app: SdtuiApp) -> Library:
    """The library the explorer uses, open (and live) as the explorer has it: for a test that looks inside it."""
    await app.api.library().info()
    return app.core.library(app.library_name)


def explorer(app: SdtuiApp) -> ExplorerScreen:
    screen = app.screen
    assert isinstance(screen, ExplorerScreen)
    return screen


def names(pane: Pane) -> list[str]:
    return [e.name for e in pane.file_list.rows]


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)


FIXED = 1_700_000_000.0


async def index_for_the_app(tmp_path: Path, folder: Path) -> Path:
    """`folder` made a location of the default library of the app's data dir (`app_for`) and indexed, the core
    closed again so that the app opens it; `folder`."""
    from sdcore.core import Core
    from sdcore.index.indexer import index_location

    async with Core(tmp_path / "data") as core:
        library = core.library()
        await library.jobs.wait(await index_location(library, library.locations.add(str(folder))))
    return folder


def make_tree(root: Path) -> Path:
    """A small tree with fixed mtimes: dirs, files, a hidden file, a symlink, a name that is not UTF-8."""
    tree = root / "tree"
    (tree / "docs" / "deep").mkdir(parents=True)
    (tree / "music").mkdir()
    (tree / "docs" / "notes.md").write_text("# Notes\n\nhello\n")
    (tree / "docs" / "deep" / "x.txt").write_text("x\n")
    (tree / "alpha.py").write_text("def alpha():\n    return 1\n")
    (tree / "beta.txt").write_text("b" * 2000)
    (tree / "Gamma.log").write_text("log line\n")
    (tree / ".hidden").write_text("secret\n")
    os.symlink("alpha.py", tree / "link")
    os.close(os.open(os.fsencode(tree) + b"/caf\xe9.bin", os.O_CREAT | os.O_WRONLY, 0o644))
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (FIXED, FIXED), follow_symlinks=False)
    os.utime(tree, (FIXED, FIXED))
    return tree


async def settle(pilot, app: SdtuiApp, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until no pane is loading (and the message queue has drained)."""
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while time.monotonic() < deadline:
        lists = app.screen.query(FileList) if isinstance(app.screen, ExplorerScreen) else []
        if all(fl.state not in ("loading", "empty") for fl in lists):
            break
        await asyncio.sleep(0.01)
    await pilot.pause()


def shown_text(widget) -> str:  # type: ignore[no-untyped-def]
    """What a widget shows on screen, as plain text."""
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(strip.text for strip in strips)


async def answer_prompt(pilot, app: SdtuiApp, key: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Press `key`, put `text` in place of what the prompt it opens holds, Enter."""
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
    await pilot.press("ctrl+a", "ctrl+k", *text, "enter")
