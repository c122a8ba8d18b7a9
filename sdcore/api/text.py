"""Words for people that every front end shares: sizes, and paths labelled with their device."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

from sdcore.sdpath import SdPath, display

__all__ = ["display", "human_size", "label", "shorten_home"]


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
