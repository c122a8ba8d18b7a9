"""What kind of object a file is (image, video, code, ...), from its extension and its first bytes."""

from __future__ import annotations

import os

from sdcore.fs import held

_BY_EXTENSION: dict[str, str] = {}
for _kind, _exts in {
    "image": "jpg jpeg png gif heic heif webp bmp tif tiff svg ico raw cr2 nef arw dng avif",
    "video": "mp4 mkv mov webm avi m4v wmv flv mpg mpeg 3gp",
    "audio": "mp3 flac ogg wav m4a aac opus wma aiff",
    "document": "pdf doc docx odt rtf xls xlsx ods ppt pptx odp epub pages key numbers",
    "code": "py js ts tsx jsx rs c h cc cpp hpp go java kt swift rb php cs css scss html htm sh bash zsh lua sql vue",
    "text": "txt md rst log csv tsv json yaml yml toml xml ini cfg conf",
    "archive": "zip tar gz tgz bz2 xz zst 7z rar iso dmg deb rpm",
    "executable": "exe dll so dylib bin appimage",
    "database": "db sqlite sqlite3",
    "font": "ttf otf woff woff2",
}.items():
    for _ext in _exts.split():
        _BY_EXTENSION[_ext] = _kind

# (offset, magic bytes, kind): the first bytes of a file settle what the extension only suggests.
_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "image"),
    (0, b"\x89PNG\r\n\x1a\n", "image"),
    (0, b"GIF8", "image"),
    (0, b"%PDF-", "document"),
    (0, b"PK\x03\x04", "archive"),
    (0, b"\x1f\x8b", "archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "archive"),
    (0, b"Rar!", "archive"),
    (0, b"\xfd7zXZ\x00", "archive"),
    (0, b"ID3", "audio"),
    (0, b"fLaC", "audio"),
    (0, b"OggS", "audio"),
    (0, b"\x1aE\xdf\xa3", "video"),
    (4, b"ftyp", "video"),
    (0, b"\x7fELF", "executable"),
    (0, b"SQLite format 3\x00", "database"),
]
MAGIC_BYTES = 16
_MAGIC_STARTS = frozenset(magic[:2] for offset, magic, _ in _MAGIC if offset == 0)
"""The first two bytes of every magic at offset 0: most files (text, source) start with none, and skip the list."""


def extension_of(name: str) -> str:
    """The extension without the dot, lower case ('' for none; a leading dot is no extension)."""
    stem, dot, ext = name.lstrip(".").rpartition(".")
    return ext.lower() if dot and stem else ""


def kind_from_extension(extension: str) -> str | None:
    return _BY_EXTENSION.get(extension)


def kind_from_magic(head: bytes, extension: str) -> str | None:
    """The kind the first bytes prove, falling back to the extension's."""
    magic = head[:2] in _MAGIC_STARTS or head[4:8] == b"ftyp" or head[:4] == b"RIFF"
    return (
        (magic and _proven(head, extension))
        or _BY_EXTENSION.get(extension)
        or ("text" if head and _looks_like_text(head) else None)
    )


def _proven(head: bytes, extension: str) -> str | None:
    """The kind a file's magic bytes prove, if any."""
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if kind == "archive" and _BY_EXTENSION.get(extension) == "document":
                return "document"  # docx, odt, epub are zip files
            if kind == "video" and _BY_EXTENSION.get(extension) in ("audio", "image"):
                return _BY_EXTENSION[extension]  # m4a, heic are ISO media files
            return kind
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return {b"WAVE": "audio", b"AVI ": "video", b"WEBP": "image"}[head[8:12]]
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def read_head(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        return os.pread(fd, MAGIC_BYTES, 0)
    finally:
        held.close(fd)
