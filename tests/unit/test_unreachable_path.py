"""A path behind a folder the user may not enter is said to be unreachable, not missing."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.errors import NotFound
from sdcore.library import Library

NOBODY = 65534


@contextlib.contextmanager
def without_root() -> Iterator[None]:
    """Run as a user the permission bits apply to (root reads any folder)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_location_behind_a_closed_folder_is_refused_as_unreachable(library: Library, tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "photos").mkdir(parents=True)
    closed.chmod(0)
    try:
        with without_root(), pytest.raises(NotFound) as refused:
            library.locations.add(str(closed / "photos"))
    finally:
        closed.chmod(0o755)
    assert "photos cannot be reached (permission denied); a location must be an existing folder" in str(refused.value)
    with pytest.raises(NotFound, match="gone does not exist"):
        library.locations.add(str(tmp_path / "gone"))
