"""A picture the terminal draws itself (Kitty's graphics protocol, iTerm2's inline images, Sixel) in a box of cells a
widget keeps blank for it: one class a protocol, one interface (`box`, `set`, `place`, `clear`), made by `picture_for`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from textual.geometry import Region

from sdtui.graphics import (
    Graphics,
    at_cell,
    iterm2_image,
    kitty_forget,
    kitty_hide,
    kitty_place,
    kitty_transmit,
    sixel_encode,
)

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


class Picture:
    """One picture shown where its box is on screen (the visible part of it), moved when the box moves, hidden when
    the box leaves the screen, let go when another picture replaces it. What the terminal is sent is each protocol's.

    Writes go through `write` (the app's driver: in order with Textual's frames, never between a frame's bytes)."""

    in_cells = False
    """True: drawn into the cells, as text is (iTerm2, Sixel): Textual's repaint of a cell wipes the picture's part in it,
    so the widget repaints its box to take it off and draws it again after each repaint of the box (`redraw`)."""

    def __init__(self, graphics: Graphics, write: Callable[[str], None]) -> None:
        self.graphics = graphics
        self._write = write
        self.image_id = 0
        """The picture's id (0: none)."""
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
        picture crosses the network as raw pixels; it is stretched to its cells)."""
        cell_width, cell_height = self.graphics.cell_width, self.graphics.cell_height
        self._scale = min(1.0, MAX_BOX / (columns * cell_width), MAX_BOX / (lines * cell_height))
        return int(columns * cell_width * self._scale), int(lines * cell_height * self._scale)

    def set(self, width: int, height: int, pixels: bytes, max_columns: int) -> None:
        """Take this picture (replacing the one before); shown by the next `place`."""
        self.clear()
        if not (width and height and pixels):
            return
        self.image_id = next(_ids)
        self.width, self.height = width, height
        self.columns = max(1, min(max_columns, math.ceil(width / (self.graphics.cell_width * self._scale))))
        self.lines = max(1, math.ceil(height / (self.graphics.cell_height * self._scale)))
        self._take(pixels)

    def clear(self) -> None:
        """Take the picture off the screen and let it go."""
        if self.image_id:
            self._forget()
        self.image_id = self.width = self.height = self.columns = self.lines = 0
        self.shown = None

    def place(self, box: Region | None, first_line: int = 0, visible_lines: int = 0, redraw: bool = False) -> None:
        """Show lines `first_line` .. `first_line + visible_lines` of the picture with its top-left cell at `box`'s
        (None, or no line visible: hide it). Nothing is written when that is where it already shows, unless `redraw`."""
        placement = None
        if self.image_id and box is not None and visible_lines > 0:
            top = round(first_line * self.height / self.lines)
            bottom = round(min(self.lines, first_line + visible_lines) * self.height / self.lines)
            lines = min(self.lines, first_line + visible_lines) - first_line
            placement = Placement(box.x, box.y, (0, top, self.width, bottom - top), (self.columns, lines))
        if placement == self.shown and not (redraw and placement is not None):
            return
        if placement is None:
            self._hide()
        else:
            self._show(placement)
        self.shown = placement

    def _take(self, pixels: bytes) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        raise NotImplementedError

    def _hide(self) -> None:
        raise NotImplementedError

    def _show(self, placement: Placement) -> None:
        raise NotImplementedError


class KittyPicture(Picture):
    """Kitty's graphics protocol: the picture is sent once and kept by the terminal, below the text; shown, moved and
    hidden by its id, forgotten when replaced."""

    def _take(self, pixels: bytes) -> None:
        self._write(kitty_transmit(self.image_id, self.width, self.height, pixels))

    def _forget(self) -> None:
        self._write(kitty_forget(self.image_id))

    def _hide(self) -> None:
        self._write(kitty_hide(self.image_id))

    def _show(self, placement: Placement) -> None:
        self._write(kitty_place(self.image_id, placement.x, placement.y, placement.source, placement.cells))


class CellPicture(Picture):
    """A picture drawn into the cells (the terminal keeps nothing): its pixels are kept here and the visible part is
    encoded (once a placement) and drawn at its box's top-left cell; hiding writes nothing (the widget repaints)."""

    in_cells = True

    def __init__(self, graphics: Graphics, write: Callable[[str], None]) -> None:
        super().__init__(graphics, write)
        self._pixels = b""
        self._encoded: tuple[tuple[tuple[int, int, int, int], tuple[int, int]], str] | None = None  # of a part, cells

    def _take(self, pixels: bytes) -> None:
        self._pixels = pixels

    def _forget(self) -> None:
        self._pixels = b""
        self._encoded = None

    def _hide(self) -> None:
        pass

    def _show(self, placement: Placement) -> None:
        key = placement.source, placement.cells
        if self._encoded is None or self._encoded[0] != key:
            _x, top, width, height = placement.source
            part = self._pixels[top * width * 3 : (top + height) * width * 3]
            self._encoded = key, self._encode(width, height, part, placement.cells)
        self._write(at_cell(placement.x, placement.y, self._encoded[1]))

    def _encode(self, width: int, height: int, pixels: bytes, cells: tuple[int, int]) -> str:
        raise NotImplementedError


class ITermPicture(CellPicture):
    """iTerm2's inline images (iTerm2, WezTerm): a PNG of the visible part, stretched by the terminal over its cells."""

    def _encode(self, width: int, height: int, pixels: bytes, cells: tuple[int, int]) -> str:
        return iterm2_image(width, height, pixels, cells)


class SixelPicture(CellPicture):
    """Sixel: the visible part scaled here to its cells' pixels (Sixel draws one pixel a pixel), at most 256 colours."""

    def _encode(self, width: int, height: int, pixels: bytes, cells: tuple[int, int]) -> str:
        size = (cells[0] * self.graphics.cell_width, cells[1] * self.graphics.cell_height)
        fitted = (min(size[0], round(width / self._scale)), min(size[1], round(height / self._scale)))
        return sixel_encode(width, height, pixels, fitted, self.graphics.colours)


PICTURES: dict[str, type[Picture]] = {"kitty": KittyPicture, "iterm2": ITermPicture, "sixel": SixelPicture}


def picture_for(graphics: Graphics, write: Callable[[str], None]) -> Picture | None:
    """The picture the terminal draws by `graphics`' protocol; None for half-blocks (drawn as text)."""
    kind = PICTURES.get(graphics.protocol)
    return kind(graphics, write) if kind is not None else None
