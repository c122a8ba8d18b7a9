"""Deep indexing: a user indexing photos gets their dimensions and one thumbnail per content."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.index.media import thumbnail_path


async def test_deep_mode_describes_images_and_thumbnails_each_content_once(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (640, 480), "red").save(photos / "beach.jpg")
    shutil.copy(photos / "beach.jpg", photos / "beach copy.jpg")
    Image.new("RGBA", (100, 50), "blue").save(photos / "logo.png")
    (photos / "broken.jpg").write_bytes(b"not an image at all")

    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(photos), mode="deep")
        record = await library.jobs.wait(await index_location(library, location))
        assert record.state == "completed"
        rows = library.read().execute(
            "SELECT c.cas_id, m.width, m.height, m.error FROM media_data m JOIN content_identities c ON c.id = m.content_id"
        ).fetchall()
        sizes = sorted((w, h) for _, w, h, error in rows if error is None)
        assert sizes == [(100, 50), (640, 480)]
        assert [error for _, _, _, error in rows if error is not None] != []  # the broken one is marked, not fatal
        for cas_id, width, _, _ in rows:
            thumb = thumbnail_path(library.thumbnails, cas_id)
            assert thumb.exists() == (width is not None)
            if width:
                with Image.open(thumb) as image:
                    assert max(image.size) <= 256
        assert len(list(library.thumbnails.rglob("*.webp"))) == 2


async def test_content_mode_makes_no_thumbnails(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 64), "green").save(photos / "a.png")
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(photos), mode="content")
        await library.jobs.wait(await index_location(library, location))
        assert list(library.thumbnails.rglob("*.webp")) == []
        assert library.read().execute("SELECT cas_id FROM content_identities").fetchone() is not None


def a_picture_bomb(path: Path, side: int = 12_000) -> Path:
    """A real, whole PNG of side × side black pixels (144 megapixels: under Pillow's own limit) in a few KB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes(side * (1 + side // 8)), 9)  # one bit a pixel, each row after its filter byte
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


async def test_a_picture_bomb_is_described_but_never_decoded_for_a_thumbnail(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    a_picture_bomb(photos / "bomb.png")
    Image.new("RGB", (64, 48), "red").save(photos / "fine.png")
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(photos), mode="deep")
        assert (await library.jobs.wait(await index_location(library, location))).state == "completed"
        sizes = sorted(library.read().execute("SELECT width, height FROM media_data").fetchall())
        assert sizes == [(64, 48), (12_000, 12_000)]  # its size is told; decoding it would take 144 MB and seconds
        assert len(list(library.thumbnails.rglob("*.webp"))) == 1
