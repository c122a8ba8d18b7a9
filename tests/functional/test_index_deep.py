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
