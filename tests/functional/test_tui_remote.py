"""The explorer with one pane on a paired device served by a real `sd serve` process: F5 both ways, F6, d and u."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tui_support import app_for, explorer, names, own_home, wait_for  # noqa: F401 (own_home: autouse)

from sdcore.net.testing import device_network, pair
from sdcore.ops.localcopy import hash_file
from sdtui.app import SdtuiApp
from sdtui.screens.confirm import ConfirmScreen
from sdtui.widgets.file_list import FileList

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]


@pytest.fixture
async def farbox(tmp_path: Path) -> AsyncIterator[Path]:
    """Device farbox: paired with this one (full trust both ways), running `sd serve` in its own process.

    Yields its folder of files.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with (
        device_network(tmp_path / "far", "farbox", listen=False) as far,
        device_network(tmp_path / "data", "herebox", listen=False) as here,
    ):
        await far.start(f"127.0.0.1:{port}")
        await pair(far, here)
    server = subprocess.Popen(
        [*SD, "--data-dir", str(tmp_path / "far"), "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg-far")},  # its own trash, as on another machine
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(server.stdout.readline), 20)
        assert line.startswith("serving farbox"), line
        files = tmp_path / "far-files"
        files.mkdir()
        yield files
    finally:
        server.terminate()
        server.wait(10)


async def settle(pilot, app: SdtuiApp) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await wait_for(pilot, lambda: all(fl.state not in ("loading", "empty") for fl in app.screen.query(FileList)))


async def test_f5_and_f6_between_a_local_pane_and_a_paired_devices_pane(tmp_path: Path, farbox: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (here / "holiday.jpg").write_bytes(os.urandom(3_000_000))
    (farbox / "scan.pdf").write_bytes(os.urandom(200_000))
    (farbox / "todo.txt").write_text("call the plumber\n")
    app = app_for(tmp_path, here, other=f"farbox:{farbox}")
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        local, remote = screen.active, screen.inactive
        assert names(local) == ["holiday.jpg"]
        assert remote.border_title == f"farbox:{farbox}" and names(remote) == ["scan.pdf", "todo.txt"]

        await pilot.press("f5")  # holiday.jpg -> farbox
        await wait_for(pilot, lambda: "holiday.jpg" in names(remote))  # the remote pane shows it by itself
        assert hash_file(str(farbox / "holiday.jpg")) == hash_file(str(here / "holiday.jpg"))

        await pilot.press("tab")  # onto farbox's pane; scan.pdf, after holiday.jpg
        assert screen.active is remote
        await wait_for(pilot, lambda: remote.file_list.current is not None)
        while remote.file_list.current is not None and remote.file_list.current.name != "scan.pdf":
            await pilot.press("j")
        await pilot.press("f5")  # scan.pdf -> here
        await wait_for(pilot, lambda: "scan.pdf" in names(local))
        assert hash_file(str(here / "scan.pdf")) == hash_file(str(farbox / "scan.pdf"))

        await pilot.press("j")  # todo.txt
        assert remote.file_list.current is not None and remote.file_list.current.name == "todo.txt"
        await pilot.press("f6")  # moved: it leaves farbox's pane and lands here
        await wait_for(pilot, lambda: "todo.txt" in names(local) and "todo.txt" not in names(remote))
        assert (here / "todo.txt").read_text() == "call the plumber\n"
        assert sorted(os.listdir(farbox)) == ["holiday.jpg", "scan.pdf"]  # no temporary file left there
        assert sorted(os.listdir(here)) == ["holiday.jpg", "scan.pdf", "todo.txt"]  # nor here

        # d sends a file of farbox to farbox's trash; U, from here, puts it back there
        want = hash_file(str(farbox / "holiday.jpg"))
        await pilot.press("home")  # holiday.jpg
        assert remote.file_list.current is not None and remote.file_list.current.name == "holiday.jpg"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: "holiday.jpg" not in names(remote))
        assert os.listdir(tmp_path / "xdg-far" / "Trash" / "files") == ["holiday.jpg"]  # farbox's trash, not ours
        await pilot.press("U")
        await wait_for(pilot, lambda: "holiday.jpg" in names(remote))
        assert hash_file(str(farbox / "holiday.jpg")) == want
