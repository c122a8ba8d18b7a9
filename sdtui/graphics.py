"""How the terminal can draw a picture: Kitty's graphics protocol, iTerm2's inline images or Sixel where it answers for
one, Unicode half-blocks otherwise.

Which one is settled once, before Textual starts (its input thread would take the terminal's answers): from
`SDTUI_GRAPHICS` (halfblocks, kitty, iterm2, sixel or auto, the default), and in auto by asking the terminal.
Half-blocks (always work: in tmux, over `sd serve`'s SSH sessions, under tests) unless the terminal says it knows
one: Kitty's answer to a query picture; iTerm2 or WezTerm by their name (XTVERSION's answer, or TERM_PROGRAM);
Sixel by a 4 among the primary device attributes.
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

MODES = ("auto", "halfblocks", "kitty", "iterm2", "sixel")
"""What SDTUI_GRAPHICS may say."""

SIXEL_COLOURS = 256
"""Colours a Sixel picture has at most (the palette most terminals keep)."""

QUERY_TIMEOUT = 0.3
"""Seconds to wait for a terminal that answers nothing (nearly all answer the device-attributes query at once)."""

CHUNK = 4096
"""Base64 characters an escape sequence of Kitty's protocol carries at most."""

_QUERY_ID = 4031
_KITTY_OK = re.compile(rb"\x1b_Gi=%d;OK\x1b\\" % _QUERY_ID)
_CELL = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
_REGISTERS = re.compile(rb"\x1b\[\?1;0;(\d+)S")  # the answer to XTSMGRAPHICS `ESC [ ? 1 ; 1 ; 0 S`: Sixel's colours
_ATTRIBUTES = re.compile(rb"\x1b\[\?([\d;]*)c")  # the answer to `ESC [ c`, sent last: every answer came before it
_VERSION = re.compile(rb"\x1bP>\|([^\x1b]*)\x1b\\")  # the answer to XTVERSION, `ESC [ > 0 q`: the terminal's name
_INLINE_IMAGES = ("iTerm2", "WezTerm")
"""Terminals (by the name they answer to XTVERSION) that draw iTerm2's inline images..."""
_INLINE_IMAGES_PROGRAMS = ("iTerm.app", "WezTerm")
"""...and by the TERM_PROGRAM they set."""


@dataclass(frozen=True)
class Graphics:
    """How pictures are drawn: `protocol` "halfblocks", "kitty", "iterm2" or "sixel", and a cell's size in pixels."""

    protocol: str = "halfblocks"
    cell_width: int = 10
    cell_height: int = 20
    colours: int = 256
    """Colours a Sixel picture may have (the terminal's colour registers: xterm as a VT340 keeps 16)."""

    @property
    def kitty(self) -> bool:
        return self.protocol == "kitty"


HALF_BLOCKS = Graphics()


def graphics_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> Graphics:
    """The way to draw pictures SDTUI_GRAPHICS asks for; in auto, what the terminal answers (see module doc)."""
    mode = environ.get("SDTUI_GRAPHICS", "").strip().lower() or "auto"
    if mode not in MODES:
        raise SdError(f"SDTUI_GRAPHICS: {mode!r} is not a way to draw pictures; write one of {', '.join(MODES)}")
    if mode == "halfblocks":
        return HALF_BLOCKS
    stdin, stdout = sys.__stdin__, sys.__stdout__
    terminal = stdin is not None and stdout is not None and stdin.isatty() and stdout.isatty()
    if mode != "auto":
        return Graphics(mode, *(_cell_size(stdout) or (10, 20))) if terminal else Graphics(mode)
    if not terminal or environ.get("TMUX") or environ.get("TERM", "dumb") in ("dumb", "linux"):
        return HALF_BLOCKS  # tmux: a placement would land where tmux's own cursor is, not in our pane
    assert stdin is not None and stdout is not None
    try:
        protocol, cell, colours = query_terminal(stdin, stdout, term_program=environ.get("TERM_PROGRAM", ""))
    except OSError:
        return HALF_BLOCKS
    return Graphics(protocol, *cell, colours) if protocol != "halfblocks" and cell else HALF_BLOCKS


def protocol_from_answers(answers: bytes, term_program: str = "") -> str:
    """The best way to draw pictures a terminal's answers (to `query_terminal`'s questions) tell of, or its
    TERM_PROGRAM (iTerm.app, WezTerm): "kitty", "iterm2", "sixel" or "halfblocks"."""
    if _KITTY_OK.search(answers):
        return "kitty"
    version = _VERSION.search(answers)
    name = version.group(1).decode("utf-8", "replace") if version else ""
    if name.startswith(_INLINE_IMAGES) or term_program in _INLINE_IMAGES_PROGRAMS:
        return "iterm2"
    attributes = _ATTRIBUTES.search(answers)
    if attributes and b"4" in attributes.group(1).split(b";")[1:]:  # the first is the terminal's class (62, 64...)
        return "sixel"
    return "halfblocks"


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


def query_terminal(
    stdin: TextIO, stdout: TextIO, timeout: float = QUERY_TIMEOUT, term_program: str = ""
) -> tuple[str, tuple[int, int] | None, int]:
    """Ask the terminal how it draws pictures, its cell size and its Sixel colours: (protocol, (width, height) or
    None, colours: 256 unless it says fewer); the protocol as `protocol_from_answers` tells it.

    The questions end with `ESC [ c`, which every terminal answers: its answer closes the wait. Keys typed in that
    instant are lost (they would be read as part of the answers)."""
    import termios
    import tty

    fd_in, fd_out = stdin.fileno(), stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    answers = b""
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, b"\x1b_Gi=%d,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[16t\x1b[>0q\x1b[?1;1;0S\x1b[c" % _QUERY_ID)
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
    registers = _REGISTERS.search(answers)
    colours = max(2, min(SIXEL_COLOURS, int(registers.group(1)))) if registers else SIXEL_COLOURS
    return protocol_from_answers(answers, term_program), cell or _cell_size(stdout), colours


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


def _image(width: int, height: int, pixels: bytes, size: tuple[int, int] | None = None):  # type: ignore[no-untyped-def]
    from PIL import Image  # deferred: the explorer starts without Pillow until a picture shows

    image = Image.frombytes("RGB", (width, height), pixels)
    return image if size is None or size == (width, height) else image.resize(size, Image.Resampling.BILINEAR)


def iterm2_image(width: int, height: int, pixels: bytes, cells: tuple[int, int]) -> str:
    """iTerm2's inline image (a PNG of these RGB pixels, row by row) stretched over `cells` (columns, lines) from the
    cursor (`at_cell` puts it somewhere)."""
    import io

    out = io.BytesIO()
    _image(width, height, pixels).save(out, "PNG", compress_level=1)
    data = base64.standard_b64encode(out.getvalue()).decode("ascii")
    keys = f"inline=1;size={out.tell()};width={cells[0]};height={cells[1]};preserveAspectRatio=0;doNotMoveCursor=1"
    return f"\x1b]1337;File={keys}:{data}\x07"


_SIXEL_RUN = re.compile(rb"(.)\1{3,}")  # four or more of one sixel: `!count` is shorter


def sixel_encode(
    width: int, height: int, pixels: bytes, size: tuple[int, int] | None = None, colours: int = SIXEL_COLOURS
) -> str:
    """These RGB pixels (row by row) as a Sixel picture, scaled to `size` (terminal pixels) first: its colours
    quantized to at most `colours` (a palette of percents), six-pixel bands, each colour's run of one sixel as
    `!count`."""
    from PIL import Image

    image = _image(width, height, pixels, size).quantize(colours, Image.Quantize.FASTOCTREE)
    width, height = image.size
    palette = image.getpalette() or []
    indices = image.tobytes()
    used = sorted(set(indices))
    out = [f"\x1bP0;1;0q\"1;1;{width};{height}"]  # 1: pixels no colour is set for stay as they are
    out += [
        f"#{n};2;{round(palette[3 * n] * 100 / 255)};{round(palette[3 * n + 1] * 100 / 255)};{round(palette[3 * n + 2] * 100 / 255)}"
        for n in used
    ]
    to_sixel = bytes(range(63, 127)) + bytes(192)
    for top in range(0, height, 6):
        bands: dict[int, bytearray] = {}
        for bit, row in enumerate(range(top, min(top + 6, height))):
            line = indices[row * width : (row + 1) * width]
            for colour in set(line):
                bands.setdefault(colour, bytearray(width))
            mask = 1 << bit
            for x, colour in enumerate(line):
                bands[colour][x] |= mask
        drawn = []
        for colour, bits in bands.items():
            sixels = bytes(bits).translate(to_sixel).rstrip(b"?")  # ? sets no pixel: none at the end
            run = _SIXEL_RUN.sub(lambda m: b"!%d%c" % (len(m.group(0)), m.group(1)[0]), sixels)
            drawn.append(f"#{colour}{run.decode('ascii')}")
        out.append("$".join(drawn) + "-")  # $: back to the band's start, another colour; -: the next band
    out.append("\x1b\\")
    return "".join(out)


def at_cell(x: int, y: int, picture: str) -> str:
    """Draw a picture drawn from the cursor (Sixel, iTerm2's) with its top-left at screen cell (x, y) (from 0); the
    cursor is left where it was."""
    return f"\x1b7\x1b[{y + 1};{x + 1}H{picture}\x1b8"
