"""7z archives through the 7-Zip command of this machine (`7zz`, `7z`, `7za` or `7zr`): its members as a listing
streams them, and a member's bytes, never more than it declares.

Why a command and not a library: py7zr, the one pure-Python reader, pulls ten wheels (4.6 MB, seven of them compiled:
pycryptodomex, brotli, pyzstd's backport, pyppmd, pybcj, inflate64, psutil) into every install for a format few
users open; 7-Zip is one package of every distribution (`7zip`, or `p7zip-full`) and faster. Without it, a 7z lists
as an error that says what to install.
"""

from __future__ import annotations

import os
import shutil
import stat as statmod
import subprocess
import time
from collections.abc import Generator, Iterator

from sdcore.fs.base import CHUNK, FsError

PROGRAMS = ("7zz", "7z", "7za", "7zr")
"""7-Zip's commands, the first found is used (7zz: 7-Zip itself; the others: p7zip's)."""
_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}  # names come out as UTF-8
_NO_PASSWORD = "-p-"  # an encrypted archive fails at once instead of asking on a terminal


class SevenZipMissing(FsError):
    """No 7-Zip command on this machine."""


def program() -> str:
    """The 7-Zip command to run, or SevenZipMissing saying what to install."""
    for name in PROGRAMS:
        found = shutil.which(name)
        if found:
            return found
    raise SevenZipMissing(
        "7z archives open with 7-Zip, which is not installed here: install it (the 7zip or p7zip-full package) and "
        "open it again"
    )


def members(path: str) -> Generator[tuple[str, tuple[str, int, float, int, str | None], int], None, None]:
    """(name, (kind, size, mtime, mode, link target), number) of each member, as `7z l -slt` lists them."""
    with subprocess.Popen(
        [program(), "l", "-slt", "-ba", "-sccUTF-8", _NO_PASSWORD, "--", path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_ENV,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        try:
            fields: dict[str, str] = {}
            number = 0
            for raw in proc.stdout:
                line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
                if not line:
                    if "Path" in fields:
                        yield _member(fields, number)
                        number += 1
                    fields = {}
                    continue
                key, sep, value = line.partition(" = ")
                if not sep:
                    key, sep, value = line.partition(" =")  # "CRC =": an empty value
                if not sep or (key == "Path" and "Path" in fields):
                    raise FsError(f"7-Zip listed {path} in a way sdtui cannot read (a member's name holds a line break?)")
                fields[key] = value
            if "Path" in fields:
                yield _member(fields, number)
            if proc.wait() != 0:
                said = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                raise FsError(f"7-Zip cannot list it: {said[-1] if said else f'status {proc.returncode}'}")
        finally:
            if proc.poll() is None:
                proc.kill()


def _member(fields: dict[str, str], number: int) -> tuple[str, tuple[str, int, float, int, str | None], int]:
    attributes = fields.get("Attributes", "").split()
    unix = attributes[1] if len(attributes) > 1 and len(attributes[1]) == 10 else ""
    is_dir = fields.get("Folder") == "+" or (bool(attributes) and "D" in attributes[0]) or unix.startswith("d")
    mode = sum(1 << (8 - i) for i, c in enumerate(unix[1:]) if c not in "-") if unix else 0
    try:
        size = int(fields.get("Size") or 0)
    except ValueError:
        size = 0
    mtime = _when(fields.get("Modified", ""))
    name = fields["Path"].replace("\\", "/") if os.sep == "\\" else fields["Path"]
    if is_dir:
        return name, ("dir", 0, mtime, statmod.S_IFDIR | (mode or 0o755), None), number
    if unix.startswith("l"):
        return name, ("symlink", 0, mtime, statmod.S_IFLNK | 0o777, "?"), number  # its target is its content
    if unix and unix[0] != "-":
        return name, ("other", 0, mtime, statmod.S_IFREG | mode, None), number
    return name, ("file", size, mtime, statmod.S_IFREG | (mode or 0o644), None), number


def _when(text: str) -> float:
    """`2026-12-07 08:35:09.9507386` (local time, as 7-Zip prints it) as a timestamp; 0 when absent."""
    day, _, clock = text.partition(" ")
    try:
        whole, _, fraction = clock.partition(".")
        stamp = time.mktime(time.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S"))
        return stamp + (float("0." + fraction) if fraction.isdigit() else 0.0)
    except (ValueError, OverflowError):
        return 0.0


def read(path: str, name: str, size: int) -> Iterator[bytes]:
    """Member `name`'s bytes (at most `size`, what it declares), as `7z x -so` unpacks them; FsError when fewer come
    (a member gone, a wrong password, a damaged archive)."""
    with subprocess.Popen(
        [program(), "x", "-so", "-spd", "-sccUTF-8", _NO_PASSWORD, "--", path, name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_ENV,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        try:
            left = size
            while left > 0 and (chunk := proc.stdout.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk
            if left:
                proc.wait()
                said = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                why = said[-1] if said else "fewer bytes than it declares"
                raise FsError(f"7-Zip could not unpack {name}: {why}")
        finally:
            if proc.poll() is None:
                proc.kill()
