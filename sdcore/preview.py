"""Previews of files a text preview cannot show, made on the device that holds them: pictures (small pixels, within
limits a hostile image cannot pass), a PDF's first page (`pdftotext`), a recording's duration and codecs (`ffprobe`)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.api.records import Preview
from sdcore.errors import SdError
from sdcore.index.kinds import extension_of

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGES = frozenset("png jpg jpeg gif webp bmp tif tiff".split())
DOCUMENTS = frozenset(["pdf"])
RECORDINGS = frozenset(
    "mp3 flac ogg wav m4a aac opus wma aiff mp4 mkv mov webm avi m4v wmv flv mpg mpeg 3gp".split()
)

MAX_IMAGE_BYTES = 256 << 20
"""A bigger image file is not decoded (its size and facts are still shown)."""
MAX_IMAGE_PIXELS = 40_000_000
"""... nor one of more pixels than this (a decompression bomb says it has billions; 40 MP of RGBA are 160 MB)..."""
MAX_JPEG_PIXELS = 160_000_000
"""... but a JPEG, decoded at an eighth of its size (draft mode)."""
PROGRAM_TIMEOUT = 5.0
"""Seconds pdftotext or ffprobe may take on one file."""
MAX_TEXT = 16 * 1024


def previewable(name: str) -> bool:
    """Whether a file of this name has a preview of its own (else its first bytes are shown)."""
    ext = extension_of(name)
    return ext in IMAGES or ext in DOCUMENTS or ext in RECORDINGS


def preview(path: str, box: tuple[int, int], thumbnail: Path | None = None) -> Preview:
    """The preview of the file at `path`, its picture fitted in `box` pixels (the library's `thumbnail` of it, when
    there is one, is decoded instead of the file). Blocking: run it in a thread."""
    ext = extension_of(os.path.basename(path))
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO named x.png would hold a decoder for good
            return Preview(note="not a regular file: no preview")
    except OSError as exc:
        return Preview(note=f"cannot be read: {exc.strerror or exc}")
    if ext in IMAGES:
        return picture(path, box, thumbnail)
    if ext in DOCUMENTS:
        return document(path)
    if ext in RECORDINGS:
        return recording(path)
    return Preview(note="no preview of its own")


def picture(path: str, box: tuple[int, int], thumbnail: Path | None = None) -> Preview:
    from PIL import Image, UnidentifiedImageError

    from sdcore.index.media import exif_facts

    bad = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # its pixels are counted below
            image = Image.open(path)  # reads the header only
        with image:
            width, height = image.size
            facts: list[tuple[str, str]] = [("pixels", f"{width:,} × {height:,}")]
            try:
                taken, camera = exif_facts(image)
            except bad:
                taken = camera = None
            facts += [(k, v) for k, v in (("camera", camera), ("taken", taken)) if v]
            if thumbnail is None:
                if os.stat(path).st_size > MAX_IMAGE_BYTES:
                    return Preview(tuple(facts), note=f"larger than {MAX_IMAGE_BYTES >> 20} MiB: not decoded")
                limit = MAX_JPEG_PIXELS if image.format == "JPEG" else MAX_IMAGE_PIXELS
                if width * height > limit:
                    return Preview(tuple(facts), note=f"more than {limit // 1_000_000} megapixels: not decoded")
                small = _fitted(image, box)
        if thumbnail is not None:
            facts.append(("preview", "the library's thumbnail"))
            with Image.open(thumbnail) as thumb:
                small = _fitted(thumb, box, transpose=False)  # made upright when it was made
    except Image.DecompressionBombError:  # Pillow's own limit (179 MP), past ours: not even its header is kept
        return Preview(note=f"more than {MAX_JPEG_PIXELS // 1_000_000} megapixels: not decoded")
    except bad as exc:
        return Preview(note=f"cannot be shown: {exc}")
    return Preview(tuple(facts), small.width, small.height, small.tobytes())


def _fitted(image: PILImage, box: tuple[int, int], transpose: bool = True) -> PILImage:
    """The image decoded (at a reduced scale where the format allows: JPEG), upright, fitted in `box`, as RGB."""
    from PIL import Image, ImageOps

    image.draft("RGB", box)  # JPEG: decode at 1/2, 1/4 or 1/8 scale, far faster and smaller
    upright = (ImageOps.exif_transpose(image) if transpose else None) or image
    upright.thumbnail(box)
    if upright.mode in ("RGBA", "LA", "P", "PA") and ("A" in upright.getbands() or "transparency" in upright.info):
        background = Image.new("RGB", upright.size, (32, 32, 32))  # transparency over a dark grey
        background.paste(upright.convert("RGBA"), mask=upright.convert("RGBA").getchannel("A"))
        return background
    return upright.convert("RGB")


def document(path: str) -> Preview:
    program = shutil.which("pdftotext")
    if program is None:
        return Preview(note="pdftotext (from poppler-utils) would show its first page here: install it to see it")
    try:
        done = subprocess.run(
            [program, "-f", "1", "-l", "1", "-layout", "-q", path, "-"],
            capture_output=True, timeout=PROGRAM_TIMEOUT, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Preview(note=f"pdftotext took more than {PROGRAM_TIMEOUT:g} s on it: no preview")
    if done.returncode != 0:
        return Preview(note=f"pdftotext could not read it (status {done.returncode})")
    return Preview(text=done.stdout[:MAX_TEXT].decode("utf-8", errors="replace"))


def recording(path: str) -> Preview:
    program = shutil.which("ffprobe")
    if program is None:
        return Preview(note="ffprobe (from ffmpeg) would show its duration and codecs here: install it to see them")
    try:
        done = subprocess.run(
            [program, "-v", "error", "-show_entries",
             "format=duration,format_long_name:stream=codec_type,codec_name,width,height,sample_rate,channels",
             "-of", "json", path],
            capture_output=True, timeout=PROGRAM_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        probed = json.loads(done.stdout or b"{}")
    except subprocess.TimeoutExpired:
        return Preview(note=f"ffprobe took more than {PROGRAM_TIMEOUT:g} s on it: no preview")
    except ValueError:
        probed = {}
    return Preview(tuple(recording_facts(probed))) if probed.get("format") else Preview(note="ffprobe could not read it")


def recording_facts(probed: dict) -> list[tuple[str, str]]:
    """What ffprobe's JSON says of a recording, as (label, text) rows."""
    facts: list[tuple[str, str]] = []
    form = probed.get("format") or {}
    try:
        seconds = float(form.get("duration", ""))
        minutes, sec = divmod(int(seconds + 0.5), 60)
        facts.append(("duration", f"{minutes // 60}:{minutes % 60:02}:{sec:02}" if minutes >= 60 else f"{minutes}:{sec:02}"))
    except ValueError:
        pass
    if form.get("format_long_name"):
        facts.append(("format", str(form["format_long_name"])))
    for stream in probed.get("streams") or []:
        kind, codec = str(stream.get("codec_type", "?")), str(stream.get("codec_name", "?"))
        if kind == "video" and stream.get("width"):
            facts.append(("video", f"{codec} {stream['width']}×{stream.get('height', '?')}"))
        elif kind == "audio":
            extra = ", ".join(str(x) for x in (f"{stream['sample_rate']} Hz" if stream.get("sample_rate") else None,
                                               f"{stream['channels']} ch" if stream.get("channels") else None) if x)
            facts.append(("audio", codec + (f" ({extra})" if extra else "")))
        else:
            facts.append((kind, codec))
    return facts


def to_wire(made: Preview) -> dict[str, object]:
    """A preview as a paired device's request answers it (msgpack values)."""
    return {"facts": [list(f) for f in made.facts], "width": made.width, "height": made.height,
            "pixels": made.pixels, "text": made.text, "note": made.note}  # fmt: skip


def from_wire(data: object, box: tuple[int, int]) -> Preview:
    """A preview a paired device answered, checked: no more pixels than asked for, short texts (it may be hostile)."""
    if not isinstance(data, dict):
        raise SdError("the other device answered the preview with something else; if its sdtui is older, update it")
    width, height, pixels = data.get("width"), data.get("height"), data.get("pixels")
    if not (isinstance(width, int) and isinstance(height, int) and isinstance(pixels, bytes)):
        raise SdError("the other device answered the preview with something else")
    if not (0 <= width <= box[0] and 0 <= height <= box[1] and len(pixels) == width * height * 3):
        raise SdError("the other device answered a picture of another size than asked for")
    facts = data.get("facts") or []
    rows = tuple(
        (str(f[0])[:40], str(f[1])[:200]) for f in facts[:20] if isinstance(f, list | tuple) and len(f) == 2
    )
    text, note = data.get("text"), data.get("note")
    return Preview(rows, width, height, pixels, str(text)[:MAX_TEXT] if text is not None else None,
                   str(note)[:300] if note is not None else None)  # fmt: skip
