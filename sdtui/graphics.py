"""How the terminal can draw a picture: Kitty's graphics protocol where it answers for it, Unicode half-blocks otherwise.

Which one is settled once, before Textual starts (its input thread would take the terminal's answers): from
`SDTUI_GRAPHICS` (halfblocks, kitty or auto, the default), and in auto by asking the terminal. Half-blocks (always
work: in tmux, over `sd serve`'s SSH sessions, under tests) unless the terminal says it knows Kitty's protocol.
"""

from __future__ import annotations

import base64
import os
import re
import select
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from typing import TextIO

from sdcore.errors import SdError

MODES = ("auto", "halfblocks", "kitty")
"""What SDTUI_GRAPHICS may say."""

QUERY_TIMEOUT = 0.3
"""Seconds to wait for a terminal that answers nothing (nearly all answer the device-attributes query at once)."""

CHUNK = 4096
"""Base64 characters an escape sequence of Kitty's protocol carries at most."""

_QUERY_ID = 4031
_KITTY_OK = re.compile(rb"\x1b_Gi=%d;OK\x1b\\" % _QUERY_ID)
_CELL = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
_ATTRIBUTES = re.compile(rb"\x1b\[\?[\d;]*c")  # the answer to `ESC [ c`, sent last: every answer came before it


@dataclass(frozen=True)
class Graphics:
    """How pictures are drawn: `protocol` "halfblocks" or "kitty", and a terminal cell's size in pixels."""

    protocol: str = "halfblocks"
    cell_width: int = 10
    cell_height: int = 20

    @property
    def kitty(self) -> bool:
        return self.protocol == "kitty"


HALF_BLOCKS = Graphics()


def graphics_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> Graphics:
    """The way to draw pictures SDTUI_GRAPHICS asks for; in auto, what the terminal answers (see module doc)."""
    mode = environ.get("SDTUI_GRAPHICS", "").strip().lower() or "auto"
    if mode not in MODES:
        what = "sixel pictures are not drawn yet" if mode == "sixel" else f"{mode!r} is not a way to draw pictures"
        raise SdError(f"SDTUI_GRAPHICS: {what}; write one of {', '.join(MODES)}")
    if mode == "halfblocks":
        return HALF_BLOCKS
    stdin, stdout = sys.__stdin__, sys.__stdout__
    terminal = stdin is not None and stdout is not None and stdin.isatty() and stdout.isatty()
    if mode == "kitty":
        return Graphics("kitty", *(_cell_size(stdout) or (10, 20))) if terminal else Graphics("kitty")
    if not terminal or environ.get("TMUX") or environ.get("TERM", "dumb") in ("dumb", "linux"):
        return HALF_BLOCKS  # tmux: a placement would land where tmux's own cursor is, not in our pane
    assert stdin is not None and stdout is not None
    try:
        kitty, cell = query_terminal(stdin, stdout)
    except OSError:
        return HALF_BLOCKS
    return Graphics("kitty", *cell) if kitty and cell else HALF_BLOCKS


def _cell_size(stdout: TextIO | None) -> tuple[int, int] | None:
    """A cell's width and height in pixels, as the terminal told the kernel (many terminals do), or None."""
    if stdout is None:
        return None
    try:
        import fcntl
        import termios

        rows, cols, xpixels, ypixels = struct.unpack(
            "HHHH", fcntl.ioctl(stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        )
    except (OSError, ImportError):
        return None
    return (xpixels // cols, ypixels // rows) if rows and cols and xpixels and ypixels else None


def query_terminal(stdin: TextIO, stdout: TextIO, timeout: float = QUERY_TIMEOUT) -> tuple[bool, tuple[int, int] | None]:
    """Ask the terminal whether it draws Kitty's pictures, and its cell size: (kitty, (width, height) or None).

    The questions end with `ESC [ c`, which every terminal answers: its answer closes the wait. Keys typed in that
    instant are lost (they would be read as part of the answers)."""
    import termios
    import tty

    fd_in, fd_out = stdin.fileno(), stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    answers = b""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, b"\x1b_Gi=%d,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[16t\x1b[c" % _QUERY_ID)
        deadline = time.monotonic() + timeout
        while not _ATTRIBUTES.search(answers):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            answers += os.read(fd_in, 1024)
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    found = _CELL.search(answers)
    cell = (int(found.group(2)), int(found.group(1))) if found and int(found.group(1)) and int(found.group(2)) else None
    return bool(_KITTY_OK.search(answers)), cell or _cell_size(stdout)


def _command(keys: str, payload: str = "") -> str:
    return f"\x1b_G{keys}{';' + payload if payload else ''}\x1b\\"


def kitty_transmit(image_id: int, width: int, height: int, pixels: bytes) -> str:
    """Kitty's commands that send a picture (RGB pixels, row by row) to the terminal as image `image_id`, not
    shown yet: zlib-compressed, base64 in chunks of 4096 characters."""
    data = base64.standard_b64encode(zlib.compress(pixels)).decode("ascii")
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
    first = f"a=t,f=24,o=z,s={width},v={height},i={image_id},q=2,m={int(len(chunks) > 1)}"
    return "".join(
        _command(first if n == 0 else f"q=2,m={int(n < len(chunks) - 1)}", chunk) for n, chunk in enumerate(chunks)
    )


def kitty_place(image_id: int, x: int, y: int, source: tuple[int, int, int, int], cells: tuple[int, int]) -> str:
    """Show image `image_id` at screen cell (x, y) (from 0), the part `source` (x, y, width, height in pixels)
    fitted in `cells` (columns, lines); replaces where it was shown before. Below text (z=-1): a toast or a
    tooltip over it still reads. The cursor is left where it was."""
    sx, sy, sw, sh = source
    keys = f"a=p,i={image_id},p=1,x={sx},y={sy},w={sw},h={sh},c={cells[0]},r={cells[1]},C=1,z=-1,q=2"
    return f"\x1b7\x1b[{y + 1};{x + 1}H{_command(keys)}\x1b8"


def kitty_hide(image_id: int) -> str:
    """Take image `image_id` off the screen (the terminal keeps it, to show it again)."""
    return _command(f"a=d,d=i,i={image_id},p=1,q=2")


def kitty_forget(image_id: int) -> str:
    """Take image `image_id` off the screen and out of the terminal's memory."""
    return _command(f"a=d,d=I,i={image_id},q=2")
