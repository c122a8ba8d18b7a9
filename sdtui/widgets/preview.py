"""How the inspector draws what is not text: a picture in Unicode half-blocks, a binary file as hex, a preview's facts."""

from __future__ import annotations

from rich.color import Color
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from sdcore.api import Preview
from sdcore.sdpath import display

HEX_BYTES = 1024
"""How much of a binary file the hex view shows."""
PICTURE_ROWS = 20
"""Lines a picture takes at most (two pixels a line)."""


class HalfBlocks:
    """A picture drawn with `▀`: each cell shows two pixels, the upper in its foreground, the lower in its
    background. Works in any terminal with colour, in tmux and over SSH."""

    def __init__(self, width: int, height: int, pixels: bytes) -> None:
        self.width = width
        self.height = height
        self.pixels = pixels

    def _rgb(self, x: int, y: int) -> Color:
        i = (y * self.width + x) * 3
        return Color.from_rgb(*self.pixels[i : i + 3])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for y in range(0, self.height, 2):
            for x in range(self.width):
                below = self._rgb(x, y + 1) if y + 1 < self.height else None
                yield Segment("▀", Style(color=self._rgb(x, y), bgcolor=below))
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


def shown_text(text: str) -> str:
    """A file's text (or a peer's) as the terminal may get it: its line breaks and tabs kept, every other control
    character escaped (a file could otherwise set the terminal's title or clipboard, or clear it, when previewed)."""
    if text.isprintable():
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join("\t".join(display(part) for part in line.split("\t")) for line in lines)


def preview_renderable(made: Preview) -> RenderableType:
    """A preview as the inspector shows it: its facts, then its picture or text, or why there is none."""
    parts: list[RenderableType] = []
    if made.facts:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for label, text in made.facts:
            table.add_row(display(label), Text(display(text)))
        parts.append(table)
    if made.pixels:
        parts.append(HalfBlocks(made.width, made.height, made.pixels))
    if made.text is not None:
        parts.append(Text(shown_text(made.text.rstrip()) or "(no text on its first page)", no_wrap=True))
    if made.note:
        parts.append(Text(display(made.note), style="dim italic"))
    return Group(*parts)


def hex_view(data: bytes, width: int) -> Text:
    """The first bytes of a binary file as hex and printable ASCII, in lines of `width` columns (4 or 8 bytes)."""
    per_line = 8 if width >= 7 + 8 * 4 else 4
    lines = Text(no_wrap=True)
    shown = data[:HEX_BYTES]
    for offset in range(0, len(shown), per_line):
        row = shown[offset : offset + per_line]
        lines.append(f"{offset:06x} ", style="dim")
        lines.append(" ".join(f"{b:02x}" for b in row).ljust(per_line * 3 - 1) + " ")
        lines.append("".join(chr(b) if 32 <= b < 127 else "." for b in row) + "\n", style="bold")
    if len(data) > HEX_BYTES:
        lines.append(f"… the first {HEX_BYTES:,} bytes; F3 views it all", style="dim italic")
    return lines
