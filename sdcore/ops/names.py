"""Names an operation makes: temporary names of files being written, free names for conflicts."""

from __future__ import annotations

import os

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
