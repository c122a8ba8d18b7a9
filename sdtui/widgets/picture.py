"""A picture the terminal draws itself (Kitty's graphics protocol) in a box of cells a widget keeps blank for it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from textual.geometry import Region

from sdtui.graphics import Graphics, kitty_forget, kitty_hide, kitty_place, kitty_transmit

_ids = itertools.count(1)

MAX_BOX = 640
"""Pixels a picture sent to the terminal has at most, across or down (~1.2 MB of RGB; zlib makes it less)."""


@dataclass(frozen=True)
class Placement:
    """Where a picture shows: screen cell, the part of it (pixels), fitted in (columns, lines)."""

    x: int
    y: int
    source: tuple[int, int, int, int]
    cells: tuple[int, int]


class KittyPicture:
    """One picture on the terminal's side: sent once, then shown where its box is on screen (the visible part of it),
    moved when the box moves, hidden when the box leaves the screen, forgotten when another picture replaces it.

    Writes go through `write` (the app's driver: in order with Textual's frames, never between a frame's bytes)."""

    def __init__(self, graphics: Graphics, write: Callable[[str], None]) -> None:
        self.graphics = graphics
        self._write = write
        self.image_id = 0
        """The terminal's id of the picture sent (0: none)."""
        self.width = 0
        self.height = 0
        self.columns = 0
        """Cells the picture takes, across and down."""
        self.lines = 0
        self.shown: Placement | None = None
        """Where it shows now (None: nowhere)."""
        self._scale = 1.0  # of the pixels asked for by `box`, to the cells' own

    def box(self, columns: int, lines: int) -> tuple[int, int]:
        """The pixels a picture may have to fill `columns` x `lines` cells (at most MAX_BOX a side: a paired device's
        picture crosses the network as raw pixels; the terminal stretches it to its cells)."""
        cell_width, cell_height = self.graphics.cell_width, self.graphics.cell_height
        self._scale = min(1.0, MAX_BOX / (columns * cell_width), MAX_BOX / (lines * cell_height))
        return int(columns * cell_width * self._scale), int(lines * cell_height * self._scale)

    def set(self, width: int, height: int, pixels: bytes, max_columns: int) -> None:
        """Send this picture (replacing the one sent before); shown by the next `place`."""
        self.clear()
        if not (width and height and pixels):
            return
        self.image_id = next(_ids)
        self.width, self.height = width, height
        self.columns = max(1, min(max_columns, math.ceil(width / (self.graphics.cell_width * self._scale))))
        self.lines = max(1, math.ceil(height / (self.graphics.cell_height * self._scale)))
        self._write(kitty_transmit(self.image_id, width, height, pixels))

    def clear(self) -> None:
        """Take the picture off the screen and out of the terminal."""
        if self.image_id:
            self._write(kitty_forget(self.image_id))
        self.image_id = self.width = self.height = self.columns = self.lines = 0
        self.shown = None

    def place(self, box: Region | None, first_line: int = 0, visible_lines: int = 0) -> None:
        """Show lines `first_line` .. `first_line + visible_lines` of the picture with its top-left cell at `box`'s
        (None, or no line visible: hide it). Nothing is written when that is where it already shows."""
        placement = None
        if self.image_id and box is not None and visible_lines > 0:
            top = round(first_line * self.height / self.lines)
            bottom = round(min(self.lines, first_line + visible_lines) * self.height / self.lines)
            lines = min(self.lines, first_line + visible_lines) - first_line
            placement = Placement(box.x, box.y, (0, top, self.width, bottom - top), (self.columns, lines))
        if placement == self.shown:
            return
        if placement is None:
            self._write(kitty_hide(self.image_id))
        else:
            self._write(kitty_place(self.image_id, placement.x, placement.y, placement.source, placement.cells))
        self.shown = placement
