"""The core's previews (`api.preview`): a picture from the library's thumbnail with its EXIF facts, a paired device's
picture made there and sent as a few pixels, and what is said when pdftotext or ffprobe is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from sdcore import net, preview
from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.index.indexer import index_location
from sdcore.net.testing import pair
from sdcore.sdpath import SdPath


def a_photo(path: Path, size: tuple[int, int] = (1200, 800)) -> Path:
    """A JPEG with EXIF: its camera and when it was taken."""
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[271], exif[272] = "Fujifilm", "X-T5"
    exif.get_ifd(0x8769)[36867] = "2024:05:01 09:30:00"
    image.save(path, exif=exif, quality=80)
    return path


async def test_a_deep_indexed_photo_previews_from_its_thumbnail_with_camera_and_date(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    a_photo(photos / "harbour.jpg")
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(photos), mode="deep")
        await library.jobs.wait(await index_location(library, location))
        api = Api(core)
        made = await api.preview(SdPath(core.device.id, str(photos / "harbour.jpg")), 40, 40)
    facts = dict(made.facts)
    assert facts["pixels"] == "1,200 × 800"
    assert (facts["camera"], facts["taken"]) == ("Fujifilm X-T5", "2024:05:01 09:30:00")
    assert facts["preview"] == "the library's thumbnail"
    assert (made.width, made.height) == (40, 27) and len(made.pixels) == 40 * 27 * 3
    assert all(abs(got - meant) < 12 for got, meant in zip(made.pixels[:3], (200, 120, 40), strict=True))  # webp: near


async def test_a_paired_devices_picture_is_made_there_and_comes_as_pixels(tmp_path: Path) -> None:
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        nas.device.rename("nas")
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop))
        photo = a_photo(tmp_path / "on-nas.jpg", (3000, 2000))
        made = await Api(laptop).preview(SdPath(nas.device.id, str(photo)), 30, 30)
    assert dict(made.facts)["pixels"] == "3,000 × 2,000"
    assert (made.width, made.height) == (30, 20) and len(made.pixels) == 30 * 20 * 3


def test_a_hostile_devices_preview_is_refused_when_it_sends_more_than_asked() -> None:
    big = {"facts": [], "width": 400, "height": 400, "pixels": bytes(400 * 400 * 3), "text": None, "note": None}
    with pytest.raises(SdError, match="another size than asked for"):
        preview.from_wire(big, (40, 40))
    lying = {**big, "width": 10, "height": 10, "pixels": bytes(5)}
    with pytest.raises(SdError, match="another size than asked for"):
        preview.from_wire(lying, (40, 40))


async def test_without_pdftotext_or_ffprobe_the_preview_says_what_would_show_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "song.mp3").write_bytes(b"ID3" + bytes(100))
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        pdf = await api.preview(SdPath(core.device.id, str(tmp_path / "paper.pdf")), 40, 40)
        song = await api.preview(SdPath(core.device.id, str(tmp_path / "song.mp3")), 40, 40)
    assert pdf.note == "pdftotext (from poppler-utils) would show its first page here: install it to see it"
    assert song.note == "ffprobe (from ffmpeg) would show its duration and codecs here: install it to see them"


async def test_pdftotext_and_ffprobe_are_run_with_a_deadline_and_their_answers_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-ins for the programs (the machine may not have them): what each prints is what the preview shows."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pdftotext").write_text("#!/bin/sh\nprintf 'Invoice 42\\nTotal: 10 EUR\\n'\n")
    (bin_dir / "ffprobe").write_text(
        "#!/bin/sh\necho '{\"format\": {\"duration\": \"3725.4\", \"format_long_name\": \"QuickTime / MOV\"},"
        " \"streams\": [{\"codec_type\": \"video\", \"codec_name\": \"h264\", \"width\": 1920, \"height\": 1080},"
        " {\"codec_type\": \"audio\", \"codec_name\": \"aac\", \"sample_rate\": \"48000\", \"channels\": 2}]}'\n"
    )
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "film.mov").write_bytes(bytes(100))
    pdf = preview.preview(str(tmp_path / "paper.pdf"), (40, 40))
    film = preview.preview(str(tmp_path / "film.mov"), (40, 40))
    assert pdf.text == "Invoice 42\nTotal: 10 EUR\n"
    assert film.facts == (("duration", "1:02:05"), ("format", "QuickTime / MOV"), ("video", "h264 1920×1080"),
                          ("audio", "aac (48000 Hz, 2 ch)"))  # fmt: skip


async def test_a_front_end_of_another_process_gets_previews_archives_and_usage_alike(tmp_path: Path) -> None:
    """Over the control socket (sdtui beside a running `sd serve`): the same records, the same streams."""
    import zipfile

    from tests.functional.attach_support import attached

    (tmp_path / "box").mkdir()
    a_photo(tmp_path / "box" / "photo.jpg", (300, 200))
    with zipfile.ZipFile(tmp_path / "box" / "pack.zip", "w") as zf:
        zf.writestr("inner/a.txt", "a" * 1000)
    async with Core(tmp_path / "data") as core, attached(core) as (_, api):
        here = core.device.id
        made = await api.preview(SdPath(here, str(tmp_path / "box" / "photo.jpg")), 30, 30)
        assert (made.width, made.height, dict(made.facts)["camera"]) == (30, 20, "Fujifilm X-T5")
        members = [e.name async for batch in api.browse(SdPath(here, str(tmp_path / "box" / "pack.zip"))) for e in batch]
        assert members == ["inner"]
        sizes = {}
        async for batch in api.usage(SdPath(here, str(tmp_path / "box")), apparent=True):
            sizes.update({e.name: e.size for e in batch})
        assert sizes["pack.zip"] == (tmp_path / "box" / "pack.zip").stat().st_size
        assert sizes["photo.jpg"] == (tmp_path / "box" / "photo.jpg").stat().st_size
        async for batch in api.usage(SdPath(here, str(tmp_path / "box"))):  # the disk's blocks, as du counts
            sizes.update({e.name: e.size for e in batch})
        assert sizes["photo.jpg"] == (tmp_path / "box" / "photo.jpg").stat().st_blocks * 512
        entries, complete = await api.peek(SdPath(here, str(tmp_path / "box" / "pack.zip")), 10)
        assert ([e.name for e in entries], complete) == (["inner"], True)


def test_a_fifo_named_like_a_picture_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "trap.png")
    assert preview.preview(str(tmp_path / "trap.png"), (40, 40)).note == "not a regular file: no preview"


def _opens_but_cannot_be_read(folder: str) -> bool:
    try:
        with os.scandir(folder) as it:
            list(it)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


@pytest.mark.skipif(not _opens_but_cannot_be_read("/proc/1/map_files"),
                    reason="needs a folder that opens but cannot be read (here /proc/1/map_files is read whole)")
async def test_disk_usage_counts_on_past_a_folder_that_opens_but_cannot_be_read(tmp_path: Path) -> None:
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        sizes = {e.name: e.size async for batch in api.usage(SdPath(core.device.id, "/proc/1")) for e in batch}
        assert sizes["map_files"] == 0 and "fdinfo" in sizes  # counted as empty, as du says, and the rest counted
