"""Words for people that every front end shares: sizes, counts, ages, and paths labelled with their device."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping

from sdcore.errors import SdError
from sdcore.sdpath import SdPath, display

__all__ = ["count", "display", "human_size", "label", "parse_age", "shorten_home"]


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
