"""After an operation: the index of touched locations follows at once, and the UI hears which folders changed."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from sdcore.events import EntriesChanged

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)


async def follow_changes(library: Library, directories: list[str]) -> None:
    """Re-index the touched directories that lie in locations, and publish EntriesChanged for each."""
    unique = list(dict.fromkeys(os.path.abspath(d) for d in directories))
    core = library.core
    if core is not None:
        for directory in unique:
            core.bus.publish(EntriesChanged(str(core.device.id), directory, library_id=str(library.id)))
    try:
        indexed = [d for d in unique if library.locations.containing(d) is not None]
    except Exception:  # noqa: BLE001 - the index is a convenience; the files are what matter
        log.warning("could not look up locations for %d directories", len(unique), exc_info=True)
        return
    if not indexed:
        return
    try:
        from sdcore.index.indexer import refresh
    except ImportError:
        return
    try:
        await refresh(library, indexed)
    except Exception:  # noqa: BLE001
        log.warning("re-indexing after the operation failed; the next scan will catch up", exc_info=True)
