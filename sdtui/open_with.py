"""The programs that open a file of a given type, from the desktop's database (freedesktop .desktop files and their
mimeinfo.cache), plus the user's editor and pager: what `O` offers."""

from __future__ import annotations

import configparser
import logging
import mimetypes
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from sdtui import programs

log = logging.getLogger(__name__)

FILE_CODES = ("%f", "%F", "%u", "%U")
"""Field codes of a .desktop Exec line that stand for the file (the others are dropped)."""


@dataclass(frozen=True, slots=True)
class Program:
    """A program that can open the file: its name, its command before the file, and whether it needs the terminal."""

    name: str
    command: tuple[str, ...]
    terminal: bool

    def argv(self, path: str) -> list[str]:
        """The command that opens `path` (the file in place of the Exec line's %f, %u…, else after it)."""
        args = [path if a in FILE_CODES else a for a in self.command]
        return args if path in args else [*args, path]


def mime_type(name: str) -> str:
    """The MIME type of a file by its name (text/plain for a name that says nothing)."""
    return mimetypes.guess_type(name, strict=False)[0] or "text/plain"


def application_dirs() -> list[Path]:
    """Where .desktop files live, the user's first ($XDG_DATA_HOME, then $XDG_DATA_DIRS)."""
    home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    system = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(d) / "applications" for d in [home, *system.split(":")] if d]


def programs_for(name: str, dirs: list[Path] | None = None) -> list[Program]:
    """The programs that open a file called `name`: the desktop's for its type (as each directory's mimeinfo.cache
    lists them), then $EDITOR and $PAGER."""
    wanted = mime_type(name)
    found: list[Program] = []
    seen: set[str] = set()
    for directory in application_dirs() if dirs is None else dirs:
        for desktop_id in _cached(directory, wanted):
            if desktop_id in seen:
                continue
            seen.add(desktop_id)
            program = _desktop_entry(directory / desktop_id)
            if program is not None:
                found.append(program)
    for label, command in (("$EDITOR", programs.editor()), ("$PAGER", programs.pager())):
        if command:
            found.append(Program(f"{command[0]} ({label})", tuple(command), True))
    return found


def _cached(directory: Path, wanted: str) -> list[str]:
    """The .desktop ids a directory's mimeinfo.cache gives for a type."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # MIME types keep their case
    try:
        parser.read(directory / "mimeinfo.cache", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        log.warning("%s: cannot read it (%s)", directory / "mimeinfo.cache", exc)
        return []
    listed = parser.get("MIME Cache", wanted, fallback="")
    return [d for d in listed.split(";") if d.endswith(".desktop") and "/" not in d]


def _desktop_entry(path: Path) -> Program | None:
    """The program a .desktop file describes (None: unreadable, hidden, or no command)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
        entry = parser["Desktop Entry"]
    except (configparser.Error, UnicodeDecodeError, KeyError):
        return None
    if entry.get("Hidden") == "true" or entry.get("NoDisplay") == "true" or not entry.get("Exec"):
        return None
    try:
        words = shlex.split(entry["Exec"])
    except ValueError:
        return None
    command = tuple(w.replace("%%", "%") for w in words if not (w.startswith("%") and w != "%%" and w not in FILE_CODES))
    if not command:
        return None
    return Program(entry.get("Name", path.stem), command, entry.get("Terminal") == "true")
