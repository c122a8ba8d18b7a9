"""Words for people that every front end shares: sizes, counts, ages, and paths labelled with their device."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Mapping

from sdcore.errors import SdError
from sdcore.sdpath import SdPath, display

__all__ = ["count", "display", "human_size", "label", "name_order", "parse_age", "shorten_home"]


_DIGITS = re.compile(r"[0-9]+")


def name_order(name: str) -> str:
    """Where a name sorts among its siblings, as file managers list them: case aside, a run of digits by its value
    (note-2 before note-10, IMG_9 before IMG_10)."""
    return _DIGITS.sub(_padded, name.casefold())


def _padded(digits: re.Match[str]) -> str:
    return digits[0].rjust(20, "0")  # (a longer run: a larger number, which sorts after as it should)


def human_size(size: int) -> str:
    """A size for people: 512 B, 1.5K, 23M, 4.0G."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in "KMGTPE":
        value /= 1024
        if value < 10:
            return f"{value:.1f}{unit}"
        if value < 1024:
            return f"{value:.0f}{unit}"
    return f"{value:.0f}Z"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """A number of things for people: `1 item`, `2 items`, `1,024 entries` (`plural` where `noun`+s is wrong)."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MOST_BYTES = 1 << 63


def parse_size(text: str | int) -> int:
    """'1500', '10k', '1.5M', '2GiB' -> bytes (units are powers of 1024)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise SdError(f"{text!r} is not a size; write it like 500, 10k, 1.5M or 2G")
    size = float(m.group(1)) * _UNITS[m.group(2)]
    if size >= _MOST_BYTES:  # the database holds sizes as 64-bit numbers (and no file is this big)
        raise SdError(f"{text!r} is more than any file holds; write at most 8000000T")
    return int(size)


def parse_age(text: str) -> float:
    """An age in seconds as people write it: 3d, 12h, 2w, a date (the time since then), or a number of days."""
    from sdcore.search import parse_when  # search is not needed to draw a first screen

    try:
        return float(text) * 86400
    except ValueError:
        pass
    try:
        return time.time() - parse_when(text)
    except SdError:
        raise SdError(f"{text!r} is not an age; write it like 3d, 12h, 2w, a date (2024-05-01) or a number of days") from None


def shorten_home(path: str) -> str:
    """`path` with the home directory shown as `~`."""
    home = os.path.expanduser("~").rstrip("/")
    if home and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def label(path: SdPath, here: uuid.UUID, names: Mapping[uuid.UUID, str]) -> str:
    """A path for people: `~/docs` on this device (`here`), `laptop:/home/me/docs` on a paired one (`names`:
    device id -> name; an unknown device shows its id)."""
    if path.device_id == here:
        return display(shorten_home(path.path))
    return f"{display(names.get(path.device_id, str(path.device_id)))}:{display(path.path)}"
