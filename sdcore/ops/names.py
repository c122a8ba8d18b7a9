"""Names an operation makes: temporary names of files being written, free names for conflicts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import blake3

TEMP_PREFIX = ".sdtmp-"


def temp_name(dst: str, job_id: str) -> str:
    """The temporary name a job writes `dst` under: beside it, hidden, the same on every resume of the job."""
    directory, name = os.path.split(dst)
    digest = blake3.blake3(os.fsencode(name)).hexdigest()[:16]
    return os.path.join(directory, f"{TEMP_PREFIX}{job_id}-{digest}")


def is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def conflict_name(name: str, n: int) -> str:
    """`report.pdf` -> `report (n).pdf`; a dotfile or a name without extension gets ` (n)` at its end."""
    stem, ext = os.path.splitext(name)
    if not stem:
        stem, ext = name, ""
    return f"{stem} ({n}){ext}"


def numbered(name: str) -> Iterator[str]:
    """`report.pdf`, then `report (1).pdf`, `report (2).pdf`, ...: the names tried for a free one."""
    yield name
    n = 1
    while True:
        yield conflict_name(name, n)
        n += 1


def free_name(name: str, taken: Callable[[str], bool]) -> str:
    """The first of `numbered(name)` that is not `taken` (a second Spacedrop of a name, say)."""
    return next(candidate for candidate in numbered(name) if not taken(candidate))
