"""The programs outside sdtui that open a file: the user's pager and editor, and the desktop's opener."""

from __future__ import annotations

import os
import shlex
import shutil
import sys


def pager() -> list[str]:
    """$PAGER, else less or more ([] when there is none)."""
    return _from_environment("PAGER") or _first_installed("less", "more")


def editor() -> list[str]:
    """$VISUAL, else $EDITOR, else nano or vi ([] when there is none)."""
    return _from_environment("VISUAL") or _from_environment("EDITOR") or _first_installed("nano", "vim", "vi")


def desktop_opener() -> list[str]:
    """The desktop's "open with the default application" ([] in a terminal with no desktop, e.g. over SSH)."""
    if sys.platform == "darwin":
        return ["open"]
    if (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and shutil.which("xdg-open"):
        return ["xdg-open"]
    return []


def _from_environment(variable: str) -> list[str]:
    try:
        return shlex.split(os.environ.get(variable, ""))  # EDITOR="code --wait" is a program and its options
    except ValueError:
        return []


def _first_installed(*names: str) -> list[str]:
    return next(([name] for name in names if shutil.which(name)), [])
