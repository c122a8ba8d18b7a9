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
from sdtui.graphics import HALF_BLOCKS, Graphics, graphics_from_env, protocol_from_answers, query_terminal


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
        assert query_terminal(side, side) == ("kitty", (9, 18), 256)


def test_a_sixel_terminal_is_told_by_its_attributes_without_waiting() -> None:
    started = time.monotonic()
    with a_terminal(b"\x1b[6;20;10t\x1b[?1;0;16S\x1b[?63;1;2;4;6;9;15;22c") as side:  # xterm -ti vt340: 16 colours
        assert query_terminal(side, side, timeout=5.0) == ("sixel", (10, 20), 16)
    assert time.monotonic() - started < 2.0  # its answer closed the wait, not the timeout


def test_an_iterm2_terminal_is_told_by_its_name() -> None:
    with a_terminal(b"\x1bP>|iTerm2 3.5.10\x1b\\\x1b[6;32;14t\x1b[?62;4c") as side:  # also says sixel: iTerm2's first
        assert query_terminal(side, side) == ("iterm2", (14, 32), 256)


def test_the_best_protocol_is_told_from_recorded_answers() -> None:
    kitty = b"\x1b_Gi=4031;OK\x1b\\\x1b[6;18;9t\x1bP>|kitty(0.35.2)\x1b\\\x1b[?62;c"
    assert protocol_from_answers(kitty) == "kitty"
    assert protocol_from_answers(b"\x1bP>|WezTerm 20240203-110809-5046fc22\x1b\\\x1b[?65;4;6;18;22c") == "iterm2"
    assert protocol_from_answers(b"\x1bP>|foot(1.16.2)\x1b\\\x1b[?62;4;22c") == "sixel"  # foot draws sixel
    assert protocol_from_answers(b"\x1b[?64;1;2;4;6;9;15;18;21;22c") == "sixel"  # mlterm-like: 4 among many
    assert protocol_from_answers(b"\x1bP>|XTerm(390)\x1b\\\x1b[?65;1;9c") == "halfblocks"  # xterm without -ti vt340
    assert protocol_from_answers(b"\x1b[?4;2c") == "halfblocks"  # 4 as the class, not as an attribute
    assert protocol_from_answers(b"\x1b[?1;2c") == "halfblocks"  # the Linux console, old VTs
    assert protocol_from_answers(b"") == "halfblocks"  # a silent terminal
    assert protocol_from_answers(b"\x1b[?62;4c", term_program="iTerm.app") == "iterm2"  # an older iTerm2: no name
    assert protocol_from_answers(b"\x1b[?62;c", term_program="WezTerm") == "iterm2"
    assert protocol_from_answers(b"\x1b[?62;4c", term_program="vscode") == "sixel"


def test_a_silent_terminal_ends_the_wait_at_the_timeout() -> None:
    started = time.monotonic()
    with a_terminal(b"") as side:
        assert query_terminal(side, side, timeout=0.2)[0] == "halfblocks"
    assert time.monotonic() - started < 2.0


def test_sdtui_graphics_forces_a_way_or_says_what_to_write() -> None:
    assert graphics_from_env({"SDTUI_GRAPHICS": "halfblocks"}) is HALF_BLOCKS
    assert graphics_from_env({"SDTUI_GRAPHICS": "kitty"}).kitty
    assert graphics_from_env({}) == HALF_BLOCKS  # auto, and pytest's stdout is no terminal
    assert graphics_from_env({"SDTUI_GRAPHICS": "auto", "TMUX": "/tmp/tmux-0/default,1,0"}) == HALF_BLOCKS
    assert graphics_from_env({"SDTUI_GRAPHICS": "sixel"}).protocol == "sixel"
    assert graphics_from_env({"SDTUI_GRAPHICS": " iTerm2 "}).protocol == "iterm2"
    with pytest.raises(SdError, match="write one of auto, halfblocks, kitty, iterm2, sixel"):
        graphics_from_env({"SDTUI_GRAPHICS": "regis"})
    assert Graphics("kitty").cell_width == 10


def test_sd_serves_explorer_draws_half_blocks_and_never_asks_the_ssh_clients_terminal(tmp_path: Path) -> None:
    sessions = AdminSessions(AdminPrograms(explorer=("sdtui",), command=("sd",)), tmp_path)
    env = sessions._env("xterm-kitty")
    assert env["SDTUI_GRAPHICS"] == "halfblocks" and graphics_from_env(env) is HALF_BLOCKS
