"""How the explorer settles the way it draws pictures: SDTUI_GRAPHICS, and the terminal's answers on a real pty."""

from __future__ import annotations

import contextlib
import os
import pty
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from sdcore.errors import SdError
from sdcore.net.admin_sessions import AdminPrograms, AdminSessions
from sdtui.graphics import HALF_BLOCKS, Graphics, graphics_from_env, query_terminal


@contextlib.contextmanager
def a_terminal(answer: bytes) -> Iterator[TextIO]:
    """A pty whose far end answers `answer` to the questions it reads (a terminal emulator, played)."""
    master, slave = pty.openpty()

    def play() -> None:
        asked = b""
        while b"\x1b[c" not in asked:
            asked += os.read(master, 1024)
        if answer:
            os.write(master, answer)

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        with open(slave, "w", closefd=False) as side:
            yield side
    finally:
        player.join(5)
        os.close(slave)
        os.close(master)


def test_a_kitty_terminal_is_told_by_its_answers_with_its_cell_size() -> None:
    with a_terminal(b"\x1b_Gi=4031;OK\x1b\\\x1b[6;18;9t\x1b[?62;22c") as side:
        assert query_terminal(side, side) == (True, (9, 18))


def test_a_terminal_that_answers_only_its_attributes_gets_half_blocks_without_waiting() -> None:
    started = time.monotonic()
    with a_terminal(b"\x1b[?62;4;22c") as side:  # sixel (4) but no Kitty: half-blocks
        kitty, _cell = query_terminal(side, side, timeout=5.0)
    assert not kitty and time.monotonic() - started < 2.0  # its answer closed the wait, not the timeout


def test_a_silent_terminal_ends_the_wait_at_the_timeout() -> None:
    started = time.monotonic()
    with a_terminal(b"") as side:
        assert query_terminal(side, side, timeout=0.2)[0] is False
    assert time.monotonic() - started < 2.0


def test_sdtui_graphics_forces_a_way_or_says_what_to_write() -> None:
    assert graphics_from_env({"SDTUI_GRAPHICS": "halfblocks"}) is HALF_BLOCKS
    assert graphics_from_env({"SDTUI_GRAPHICS": "kitty"}).kitty
    assert graphics_from_env({}) == HALF_BLOCKS  # auto, and pytest's stdout is no terminal
    assert graphics_from_env({"SDTUI_GRAPHICS": "auto", "TMUX": "/tmp/tmux-0/default,1,0"}) == HALF_BLOCKS
    with pytest.raises(SdError, match="write one of auto, halfblocks, kitty"):
        graphics_from_env({"SDTUI_GRAPHICS": "sixel"})
    assert Graphics("kitty").cell_width == 10


def test_sd_serves_explorer_draws_half_blocks_and_never_asks_the_ssh_clients_terminal(tmp_path: Path) -> None:
    sessions = AdminSessions(AdminPrograms(explorer=("sdtui",), command=("sd",)), tmp_path)
    env = sessions._env("xterm-kitty")
    assert env["SDTUI_GRAPHICS"] == "halfblocks" and graphics_from_env(env) is HALF_BLOCKS
