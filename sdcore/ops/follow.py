"""After an operation: the index of touched locations follows at once, and the UI hears which folders changed."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sdcore.events import EntriesChanged
from sdcore.sdpath import SCHEME, SdPath

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)


async def follow_changes(library: Library, directories: Sequence[str | SdPath]) -> None:
    """Re-index the touched directories that lie in locations, and publish EntriesChanged for each.

    A directory is a path on this device, or an SdPath (or its sd:// text) on any device.
    """
    context = library.context
    local: list[str] = []
    elsewhere: list[SdPath] = []
    for d in directories:
        where = SdPath.parse_canonical(d) if isinstance(d, str) and d.startswith(SCHEME) else d
        if isinstance(where, SdPath):
            if where.device_id != context.device_id:
                elsewhere.append(where)  # a paired device's folder: the UI lists it again, nothing to index
                continue
            where = where.path
        local.append(os.path.abspath(where))
    unique = list(dict.fromkeys(local))
    for directory in unique:
        context.bus.publish(EntriesChanged(context.device_id, directory, library_id=library.id))
    for far in dict.fromkeys(elsewhere):
        context.bus.publish(EntriesChanged(far.device_id, far.path))
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
