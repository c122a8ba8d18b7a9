"""Deep indexing of images: dimensions, when and with what they were taken, and a thumbnail per content."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THUMBNAIL_SIZE = (256, 256)
_EXIF_DATETIME = 36867  # DateTimeOriginal
_EXIF_MAKE, _EXIF_MODEL, _EXIF_IFD = 271, 272, 34665


@dataclass(frozen=True, slots=True)
class MediaData:
    """What deep indexing learns of an image."""

    width: int
    height: int
    taken: str | None = None
    camera: str | None = None


def thumbnail_path(thumbnails: Path, cas_id: str) -> Path:
    """Where a content's thumbnail lives: sharded by the first three hex digits, as Spacedrive does."""
    return thumbnails / cas_id[:3] / f"{cas_id}.webp"


def describe_image(path: str, thumbnails: Path, cas_id: str) -> MediaData:
    """Read an image's metadata and write its thumbnail (atomically). Raises OSError or ValueError if it is no image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from sdcore.preview import MAX_IMAGE_PIXELS, MAX_JPEG_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # its pixels are counted below
            image = Image.open(path)  # reads the header only
        with image:
            width, height = image.size
            taken, camera = exif_facts(image)
            target = thumbnail_path(thumbnails, cas_id)
            bomb = width * height > (MAX_JPEG_PIXELS if image.format == "JPEG" else MAX_IMAGE_PIXELS)
            if not target.exists() and not bomb:  # a picture too big to decode is described, never thumbnailed
                image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at a reduced scale, far faster
                thumb = ImageOps.exif_transpose(image)
                thumb.thumbnail(THUMBNAIL_SIZE)
                if thumb.mode not in ("RGB", "RGBA"):
                    thumb = thumb.convert("RGBA" if "A" in thumb.getbands() else "RGB")
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                tmp = target.with_suffix(f".tmp{os.getpid()}")
                with open(
                    os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb"
                ) as f:
                    thumb.save(f, "WEBP", quality=70)  # owner-only, like all of the data dir
                os.replace(tmp, target)
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"not a readable image: {exc}") from None
    return MediaData(width, height, taken, camera)


def exif_facts(image: Any) -> tuple[str | None, str | None]:
    """When an open PIL image was taken and with what camera, from its EXIF (None: not said)."""
    exif = image.getexif()
    ifd = exif.get_ifd(_EXIF_IFD) if exif else {}
    taken = ifd.get(_EXIF_DATETIME) or exif.get(306)
    camera = " ".join(str(exif[k]).strip(" \t\r\n\0") for k in (_EXIF_MAKE, _EXIF_MODEL) if exif.get(k)) or None
    return (str(taken).strip(" \t\r\n\0") if taken else None), camera
