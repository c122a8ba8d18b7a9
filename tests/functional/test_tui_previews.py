"""The inspector's previews of pictures and binary files, and archives opened as folders in a pane."""

from __future__ import annotations

import base64
import io
import math
import re
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image
from rich.color import Color
from rich.console import RenderableType
from textual._compositor import CompositorUpdate
from textual.app import App
from textual.screen import Screen
from textual.widgets import Static
from tui_support import app_for, explorer, names, own_home, settle, shown_text, wait_for  # noqa: F401 (own_home)

from sdcore.sdpath import SdPath
from sdtui import programs
from sdtui.graphics import Graphics
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.pane import Pane
from sdtui.widgets.picture import KittyPicture


def a_picture(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """Red above, blue below."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (0, size[1] // 2, size[0], size[1]))
    image.save(path)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is `width` x `height` and holds no pixels at all."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def cell_colours(inspector: Inspector) -> set[tuple[str | None, str | None]]:
    """The (foreground, background) of every half-block the inspector shows."""
    found = set()
    for y in range(inspector.size.height):
        for segment in inspector.render_line(y):
            if segment.text and set(segment.text) == {"▀"} and segment.style is not None:
                fg, bg = segment.style.color, segment.style.bgcolor
                found.add((fg.name if fg else None, bg.name if bg else None))
    return found


async def test_a_picture_shows_as_half_blocks_with_its_pixel_size(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    a_picture(pictures / "flag.png")
    app = app_for(tmp_path, pictures)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "▀" in shown_text(inspector))
        assert "64 × 48" in shown_text(inspector)
        red, blue = Color.from_rgb(255, 0, 0).name, Color.from_rgb(0, 0, 255).name
        colours = cell_colours(inspector)
        assert (red, red) in colours and (blue, blue) in colours  # the top half red, the bottom half blue
        assert (blue, red) not in colours  # upright: blue never above red


async def test_a_hostile_picture_is_refused_with_its_size_said(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    (pictures / "bomb.png").write_bytes(png_header(12_000, 12_000))  # 144 megapixels, says its header
    (pictures / "huge.png").write_bytes(png_header(100_000, 100_000))  # 10 gigapixels
    app = app_for(tmp_path, pictures)
    async with app.run_test(size=(200, 40)) as pilot:  # an inspector of 48 columns
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "not decoded" in shown_text(inspector))
        assert "12,000 × 12,000" in shown_text(inspector) and "more than 40 megapixels: not decoded" in shown_text(inspector)
        await pilot.press("j")
        await wait_for(pilot, lambda: "huge.png" in shown_text(inspector) and "not decoded" in shown_text(inspector))


async def test_enter_on_a_picture_never_runs_the_pager(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    a_picture(pictures / "flag.png")
    ran = tmp_path / "pager-ran"
    monkeypatch.setattr(programs, "desktop_opener", lambda: [])
    monkeypatch.setattr(programs, "pager", lambda: ["sh", "-c", f"touch {ran}", "pager"])
    app = app_for(tmp_path, pictures)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "previewed in the inspector" in shown_text(app.screen.query_one("#status", Static)))
        assert not ran.exists()


async def test_a_binary_file_previews_as_hex(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "blob.dat").write_bytes(b"\x7fELF\x02\x01\x00\x00" + bytes(range(40)))
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(200, 40)) as pilot:  # an inspector of 48 columns: 8 bytes a line
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "000000 7f 45 4c 46 02 01 00 00 .ELF...." in shown_text(inspector))
        assert "000008 00 01 02 03 04 05 06 07 ........" in shown_text(inspector)


async def test_a_text_file_cannot_send_escape_sequences_to_the_terminal_through_its_preview(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()  # a title, the clipboard (OSC 52) and a cleared screen, set by merely resting the cursor on it
    (folder / "readme.txt").write_bytes(b"before\x1b]0;owned\x1b\\\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\x9b31mafter\n")
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "before" in shown_text(inspector))
        shown = shown_text(inspector)
        assert not any(c in shown for c in "\x1b\x07\x9b"), shown
        assert "before\\x1b]0;owned" in shown  # shown escaped, as the file holds it


async def test_enter_on_a_zip_lists_its_members_and_f5_unpacks_the_selection(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    folder.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    with zipfile.ZipFile(folder / "pack.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("inner/dir/one.txt", "one\n")
        zf.writestr("inner/two.bin", bytes(range(256)) * 100)
        zf.writestr("top.txt", "top\n")
    app = app_for(tmp_path, folder)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        left, right = screen.query_one("#left", Pane), screen.query_one("#right", Pane)
        inspector = screen.query_one(Inspector)
        await wait_for(pilot, lambda: "inner/" in shown_text(inspector) and "top.txt" in shown_text(inspector))
        right.open(SdPath(app.api.device.id, str(out)))
        await pilot.press("enter")  # into pack.zip
        await wait_for(pilot, lambda: names(left) == ["inner", "top.txt"])
        assert "pack.zip" in str(left.border_title)
        await pilot.press("j")  # a member's preview is its text, as any file's
        await wait_for(pilot, lambda: "top.txt" in shown_text(inspector) and "\ntop" in shown_text(inspector).replace("│ ", "\n"))
        await pilot.press("k")
        await pilot.press("enter")  # into inner/
        await wait_for(pilot, lambda: names(left) == ["dir", "two.bin"])
        assert str(left.border_title).endswith("pack.zip/inner")
        await pilot.press("space", "space", "f5")  # dir/ and two.bin, to the other pane
        await wait_for(pilot, lambda: (out / "two.bin").exists() and (out / "dir" / "one.txt").exists())
        await wait_for(pilot, lambda: (out / "two.bin").stat().st_size == 25_600)
        assert (out / "two.bin").read_bytes() == bytes(range(256)) * 100
        assert (out / "dir" / "one.txt").read_text() == "one\n"
        await wait_for(pilot, lambda: "unpacked 2 items" in shown_text(screen.query_one("#status", Static)))


def kitty_commands(written: list[str]) -> list[tuple[dict[str, str], str]]:
    """Kitty's graphics commands among what was written to the terminal: (keys, payload) each."""
    found = []
    for text in written:
        for body in re.findall(r"\x1b_G([^\x1b]*)\x1b\\", text):
            keys, _, payload = body.partition(";")
            found.append((dict(k.split("=", 1) for k in keys.split(",")), payload))
    return found


async def test_a_picture_is_drawn_by_kitty_protocol_where_the_terminal_has_it_and_cleared_on_leaving(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    a_picture(pictures / "flag.png", (640, 480))
    (pictures / "notes.txt").write_text("plain words\n")
    app = app_for(tmp_path, pictures, graphics=Graphics("kitty", 8, 16))
    async with app.run_test(size=(160, 40)) as pilot:
        written: list[str] = []
        app._driver.write = written.append  # type: ignore[method-assign,union-attr]  # what reaches the terminal
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: any(k.get("a") == "p" for k, _ in kitty_commands(written)))
        commands = kitty_commands(written)
        first = next(i for i, (k, _) in enumerate(commands) if k.get("a") == "t")
        keys = commands[first][0]
        assert (keys["f"], keys["o"]) == ("24", "z")  # RGB, compressed
        width, height, image_id = int(keys["s"]), int(keys["v"]), keys["i"]
        assert (width, height) == (inspector.content_size.width * 8, inspector.content_size.width * 8 * 3 // 4)
        payload = ""
        for keys, chunk in commands[first:]:
            assert len(chunk) <= 4096
            payload += chunk
            if keys.get("m") == "0":
                break
        pixels = zlib.decompress(base64.b64decode(payload))
        assert len(pixels) == width * height * 3
        assert pixels[:3] == b"\xff\x00\x00" and pixels[-3:] == b"\x00\x00\xff"  # red above, blue below
        place = next(k for k, _ in commands if k.get("a") == "p")
        assert place["i"] == image_id and int(place["c"]) <= inspector.content_size.width
        shown = shown_text(inspector)
        assert "640 × 480" in shown and "▀" not in shown  # its size said; no half-blocks under it
        row = next(t for t in written if "a=p" in t)  # placed at its blank box's top-left cell, below the facts
        lines = [inspector.render_line(y).text.rstrip() for y in range(inspector.content_size.height)]
        box_y = inspector.content_region.y + lines.index("pixels 640 × 480") + 1
        assert f"\x1b[{box_y + 1};{inspector.content_region.x + 1}H" in row
        written.clear()
        await pilot.press("question_mark")  # a dialog over it: the picture hides (it would show through), then returns
        await wait_for(pilot, lambda: ({"a": "d", "d": "i", "i": image_id, "p": "1", "q": "2"}, "") in kitty_commands(written))
        await pilot.press("escape")
        await wait_for(pilot, lambda: any(k.get("a") == "p" for k, _ in kitty_commands(written)))
        written.clear()
        await pilot.press("j")  # the text file: the picture leaves the screen and the terminal's memory
        await wait_for(pilot, lambda: "plain words" in shown_text(inspector))
        assert ({"a": "d", "d": "I", "i": image_id, "q": "2"}, "") in kitty_commands(written)
        assert not any(k.get("a") in ("t", "p") for k, _ in kitty_commands(written))


async def test_half_blocks_write_no_picture_escapes(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    a_picture(pictures / "flag.png")
    app = app_for(tmp_path, pictures)  # as under tests, tmux and `sd serve`: half-blocks
    async with app.run_test(size=(160, 40)) as pilot:
        written: list[str] = []
        app._driver.write = written.append  # type: ignore[method-assign,union-attr]
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: "▀" in shown_text(inspector))
        assert inspector.picture is None and not kitty_commands(written)


def test_a_picture_for_big_cells_is_asked_no_bigger_than_640_pixels_and_still_fills_its_cells() -> None:
    picture = KittyPicture(Graphics("kitty", 20, 40), lambda _: None)  # a HiDPI terminal: 48 x 20 cells = 960 x 800
    assert picture.box(48, 20) == (640, 533)
    picture.set(640, 480, bytes(640 * 480 * 3), 48)  # a 4:3 picture fitted in that box
    assert (picture.columns, picture.lines) == (48, 18)  # the cells it fills: as wide as the inspector


def sixel_decode(text: str) -> tuple[tuple[int, int], dict[tuple[int, int], tuple[int, int, int]]]:
    """A Sixel picture's declared size and its pixels' colours (in percents), as a terminal reads it."""
    body = text[text.index("q", text.index("\x1bP")) + 1 : text.index("\x1b\\", text.index("\x1bP"))]
    raster = re.match(r'"1;1;(\d+);(\d+)', body)
    assert raster is not None
    size = int(raster.group(1)), int(raster.group(2))
    palette: dict[int, tuple[int, int, int]] = {}
    pixels: dict[tuple[int, int], tuple[int, int, int]] = {}
    colour, x, top = 0, 0, 0
    for token in re.findall(r"#\d+(?:;2;\d+;\d+;\d+)?|![0-9]+[?-~]|[?-~]|\$|-", body[raster.end() :]):
        if token.startswith("#"):
            numbers = [int(n) for n in token[1:].split(";")]
            colour = numbers[0]
            if len(numbers) == 5:
                palette[colour] = (numbers[2], numbers[3], numbers[4])
        elif token == "$":
            x = 0
        elif token == "-":
            x, top = 0, top + 6
        else:
            count, char = (int(token[1:-1]), token[-1]) if token.startswith("!") else (1, token)
            bits = ord(char) - 63
            for _ in range(count):
                for bit in range(6):
                    if bits >> bit & 1:
                        pixels[(x, top + bit)] = palette[colour]
                x += 1
    return size, pixels


def test_sixel_encoding_decodes_back_to_its_picture() -> None:
    from sdtui.graphics import sixel_encode

    pixels = (b"\xff\x00\x00" * 7 * 5) + (b"\x00\x00\xff" * 7 * 4)  # 7 x 9: red above, blue below (bands split)
    size, decoded = sixel_decode(sixel_encode(7, 9, pixels))
    assert size == (7, 9) and len(decoded) == 63
    assert {decoded[(x, y)] for x in range(7) for y in range(5)} == {(100, 0, 0)}
    assert {decoded[(x, y)] for x in range(7) for y in range(5, 9)} == {(0, 0, 100)}
    size, decoded = sixel_decode(sixel_encode(7, 9, pixels, (14, 18)))  # scaled to the cells' pixels
    assert size == (14, 18) and decoded[(13, 0)] == (100, 0, 0) and decoded[(0, 17)] == (0, 0, 100)
    rainbow = bytes(v for i in range(64 * 8) for v in (i % 64 * 4, i // 64 * 32, 255 - i % 64 * 4))  # 512 colours
    sixel = sixel_encode(64, 8, rainbow, colours=16)  # xterm as a VT340: 16 colour registers
    assert len(set(re.findall(r"#(\d+);2;", sixel))) <= 16 and len(sixel_decode(sixel)[1]) == 64 * 8


def drawn_pictures(written: list[str], start: str) -> list[tuple[int, int, str]]:
    """Pictures drawn into the cells (Sixel's `ESC P`, iTerm2's `ESC ] 1337`) among what was written: the screen line
    and column (from 1) the cursor was moved to first, and the picture's escape, each."""
    found = []
    for text in written:
        for line, column, escape in re.findall(r"\x1b7\x1b\[(\d+);(\d+)H(" + re.escape(start) + r".*?(?:\x1b\\|\x07))\x1b8", text, re.S):
            found.append((int(line), int(column), escape))
    return found


def picture_stays(written: list[str], start: str, lines: range) -> bool:
    """Whether the picture was drawn after the last of Textual's frames that repainted any of `lines` (a frame over
    a picture drawn into the cells wipes it)."""
    drawn = [i for i, text in enumerate(written) if start in text]
    painted = [i for i, text in enumerate(written) if "\x1b7" not in text and repainted_lines([text]) & set(lines)]
    return bool(drawn) and (not painted or drawn[-1] > painted[-1])


def repainted_lines(written: list[str]) -> set[int]:
    """The screen lines (from 1) Textual's frames among what was written move the cursor to, to paint them."""
    return {int(line) for text in written if "\x1b7" not in text for line in re.findall(r"\x1b\[(\d+);\d+H", text)}


def record_terminal(app: App[object], written: list[str]) -> None:
    """Keep in `written` what reaches the terminal: what is written to it, and Textual's frames (rendered as a real
    terminal gets them: a headless app does not write them)."""
    app._driver.write = written.append  # type: ignore[method-assign,union-attr]
    display = app._display

    def frame(screen: Screen[object], update: RenderableType | None) -> None:
        if isinstance(update, CompositorUpdate):
            written.append(update.render_segments(app.console))
        display(screen, update)

    app._display = frame  # type: ignore[method-assign]


async def a_picture_drawn_in_cells(tmp_path: Path, protocol: str, start: str) -> tuple[str, int, int]:
    """A 640 x 480 picture drawn by `protocol` at its blank box, after the frame that painted it; drawn again when a
    dialog over it goes; its box repainted, and it never drawn again, when the cursor moves on to a text file.
    Returns the escape that drew it first, and the cells it fills (columns, lines)."""
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    a_picture(pictures / "flag.png", (640, 480))
    (pictures / "notes.txt").write_text("plain words\n")
    app = app_for(tmp_path, pictures, graphics=Graphics(protocol, 8, 16))
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        written: list[str] = []
        record_terminal(app, written)
        await settle(pilot, app)
        inspector = app.screen.query_one(Inspector)
        await wait_for(pilot, lambda: bool(drawn_pictures(written, start)))
        assert inspector.picture is not None and inspector.picture.in_cells
        line, column, escape = drawn_pictures(written, start)[0]
        lines = [inspector.render_line(y).text.rstrip() for y in range(inspector.content_size.height)]
        box_y = inspector.content_region.y + lines.index("pixels 640 × 480") + 1
        assert (line, column) == (box_y + 1, inspector.content_region.x + 1)  # at its blank box's top-left cell
        columns, rows = inspector.picture.columns, inspector.picture.lines
        assert columns == inspector.content_size.width and rows == math.ceil(columns * 8 * 3 / 4 / 16)
        await settle(pilot, app)
        assert picture_stays(written, start, range(line, line + rows))  # drawn after the frame that painted its box
        written.clear()
        app.notify("a toast over it " * 60, timeout=0.5)  # toasts show bottom right: over the inspector
        await wait_for(pilot, lambda: bool(app.screen.query("Toast")))
        toast = app.screen.query_one("Toast").region
        assert toast.y < line + rows - 1 and toast.right > column  # over the picture's box (lines from 1, regions from 0)
        await wait_for(pilot, lambda: not app.screen.query("Toast"))
        await settle(pilot, app)
        assert picture_stays(written, start, range(line, line + rows))  # drawn again where the toast was
        written.clear()
        await pilot.press("question_mark")
        await pilot.press("escape")  # the dialog's frames wiped it: drawn again over the explorer's
        await wait_for(pilot, lambda: bool(drawn_pictures(written, start)))
        assert drawn_pictures(written, start)[-1][:2] == (line, column)
        await settle(pilot, app)
        assert picture_stays(written, start, range(line, line + rows))
        written.clear()
        await pilot.press("j")  # the text file: the box's lines repainted, the picture not drawn again
        await wait_for(pilot, lambda: "plain words" in shown_text(inspector))
        await settle(pilot, app)
        assert not drawn_pictures(written, start) and inspector.picture.shown is None
        assert set(range(line, line + rows)) <= repainted_lines(written)
    return escape, columns, rows


async def test_a_picture_is_drawn_by_sixel_at_its_cells_pixel_size_and_wiped_on_leaving(tmp_path: Path) -> None:
    escape, columns, rows = await a_picture_drawn_in_cells(tmp_path, "sixel", "\x1bP")
    size, pixels = sixel_decode(escape)
    assert size == (columns * 8, columns * 8 * 3 // 4)  # the picture's own pixels at the cells' size: no stretching
    assert len(pixels) == size[0] * size[1]
    assert pixels[(0, 0)] == pixels[(size[0] - 1, size[1] // 2 - 2)] == (100, 0, 0)  # red above
    assert pixels[(0, size[1] // 2 + 2)] == pixels[(size[0] - 1, size[1] - 1)] == (0, 0, 100)  # blue below


async def test_a_picture_is_drawn_by_iterm2_inline_image_stretched_over_its_cells(tmp_path: Path) -> None:
    escape, columns, rows = await a_picture_drawn_in_cells(tmp_path, "iterm2", "\x1b]1337;")
    keys, _, data = escape[len("\x1b]1337;File=") : -1].partition(":")
    fields = dict(field.split("=") for field in keys.split(";"))
    assert (fields["inline"], fields["width"], fields["height"], fields["preserveAspectRatio"]) == ("1", str(columns), str(rows), "0")
    png = base64.b64decode(data)
    assert int(fields["size"]) == len(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (columns * 8, columns * 8 * 3 // 4)
    assert image.getpixel((0, 0)) == (255, 0, 0) and image.getpixel((image.width - 1, image.height - 1)) == (0, 0, 255)


def test_a_sixel_picture_scrolled_half_out_draws_its_visible_lines_only() -> None:
    from textual.geometry import Region

    from sdtui.widgets.picture import SixelPicture

    written: list[str] = []
    picture = SixelPicture(Graphics("sixel", 8, 16), written.append)
    assert picture.box(10, 10) == (80, 160)
    picture.set(80, 60, b"\xff\x00\x00" * 80 * 30 + b"\x00\x00\xff" * 80 * 30, 10)  # red above, blue below
    assert (picture.columns, picture.lines) == (10, 4) and not written  # nothing drawn before it is placed
    picture.place(Region(5, 3, 0, 0), first_line=2, visible_lines=2)  # its top two lines scrolled out of view
    assert len(written) == 1 and written[0].startswith("\x1b7\x1b[4;6H\x1bP") and written[0].endswith("\x1b\\\x1b8")
    size, pixels = sixel_decode(written[0])
    assert size == (80, 30) and set(pixels.values()) == {(0, 0, 100)}  # its lower half: blue only
    picture.place(Region(5, 3, 0, 0), first_line=2, visible_lines=2)
    assert len(written) == 1  # where it is: not drawn again...
    picture.place(Region(5, 3, 0, 0), first_line=2, visible_lines=2, redraw=True)
    assert written[1] == written[0]  # ...unless its cells were repainted
    picture.place(None)
    assert len(written) == 2 and picture.shown is None  # hiding writes nothing: the widget repaints the cells
