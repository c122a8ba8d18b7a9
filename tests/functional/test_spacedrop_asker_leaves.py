"""A Spacedrop asked in an explorer attached to `sd serve` that then quits or dies: the sender hears at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.functional.test_spacedrop_served import SD, _pair_on_port, free_port, serve, stop

ASKED = (
    "import asyncio, sys\n"
    "from sdcore.api.client import attach\n"
    "from sdcore.events import DropOffered\n"
    "async def main():\n"
    "    api = await attach(sys.argv[1])\n"
    "    async for event in api.events():\n"
    "        if isinstance(event, DropOffered):\n"
    "            print('asked', flush=True)\n"
    "            if sys.argv[2] == 'quits':\n"
    "                await api.close()\n"
    "                return\n"
    "            await asyncio.sleep(3600)\n"
    "asyncio.run(main())\n"
)
"""An attached explorer: it is asked, and then it quits (closes its connection) or sits until it is killed."""


@pytest.mark.parametrize("leaves", ["quits", "dies"])
def test_the_sender_hears_at_once_when_the_explorer_asked_leaves(tmp_path: Path, leaves: str) -> None:
    port = free_port()
    asyncio.run(_pair_on_port(tmp_path, port))
    report = tmp_path / "report.txt"
    report.write_text("q4")
    server = serve(tmp_path, port)
    explorer = subprocess.Popen(
        [sys.executable, "-c", ASKED, str(tmp_path / "b"), leaves], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    try:
        time.sleep(1.0)  # attached and following events
        sender = subprocess.Popen(
            [SD, "--data-dir", str(tmp_path / "a"), "drop", str(report), "beta"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert explorer.stdout is not None and explorer.stdout.readline() == "asked\n"
        left = time.monotonic()
        if leaves == "dies":
            explorer.send_signal(signal.SIGKILL)
        _, said = sender.communicate(timeout=60)  # it waited 5 minutes for an answer nobody could give
        assert time.monotonic() - left < 10
    finally:
        explorer.kill()
        explorer.wait()
        out = stop(server)
    assert sender.returncode == 1
    assert "nobody at beta can accept files: the explorer it was asked in has closed" in said, said
    assert "asked in the attached explorer" in out
    assert not (tmp_path / "b" / "spacedrop").exists()

