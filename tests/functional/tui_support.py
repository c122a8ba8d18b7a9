"""What the Pilot tests of the explorer share: a home of their own, the app on a directory, and reading it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.widgets.pane import Pane


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trash and the config of the test live in tmp_path, not in the real home."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


def app_for(tmp_path: Path, start: Path | str, **kw: object) -> SdtuiApp:
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sdb1 /media/usb ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    return SdtuiApp(str(start), data_dir=tmp_path / "data", mounts_file=str(mounts), **kw)  # type: ignore[arg-type]


def explorer(app: SdtuiApp) -> ExplorerScreen:
    screen = app.screen
    assert isinstance(screen, ExplorerScreen)
    return screen


def names(pane: Pane) -> list[str]:
    return [e.name for e in pane.file_list.rows]


async def wait_for(pilot, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)
