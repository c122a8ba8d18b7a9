"""Which paths go through an archive file: the names that open as folders, and a path split at its archive.

Apart from `sdcore.fs.archive` (which imports tarfile, zipfile and zstandard): every listing asks this first.
"""

from __future__ import annotations

import os
import stat as statmod

SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".7z")
"""The names of files that open as folders."""


def is_archive_name(name: str) -> bool:
    """Whether a file of this name opens as a folder."""
    return name.lower().endswith(SUFFIXES)


def split(path: str) -> tuple[str, str] | None:
    """(the archive file, the path inside it, "/" for its top) when `path` goes through an archive file of this
    machine; else None. Only components named like archives are looked at on disk."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if not is_archive_name(parts[i]):
            continue
        candidate = "/".join(parts[: i + 1])
        try:
            st = os.stat(candidate)
        except OSError:
            return None
        if statmod.S_ISREG(st.st_mode):
            return candidate, "/" + "/".join(p for p in parts[i + 1 :] if p)
    return None
