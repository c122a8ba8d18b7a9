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


async def follow_changes(
    library: Library, directories: Sequence[str | SdPath] = (), *, entries: Sequence[SdPath] = ()
) -> None:
    """Announce what an operation changed, once, and re-index the touched directories that lie in locations.

    `entries` are the files and folders it made, renamed or removed: their folders are announced with their
    names. The other `directories` (a path on this device, or an SdPath or its sd:// text on any device) are
    announced whole. The re-index says nothing more: the operation told it.
    """
    context = library.context
    local: list[str] = []
    elsewhere: list[SdPath] = []
    names: dict[SdPath, list[str]] = {}
    for entry in entries:
        names.setdefault(entry.parent, []).append(entry.name)
    for d in [*directories, *names]:
        where = SdPath.parse_canonical(d) if isinstance(d, str) and d.startswith(SCHEME) else d
        if isinstance(where, SdPath):
            if where.device_id != context.device_id:
                elsewhere.append(where)  # a paired device's folder: the UI lists it again, nothing to index
                continue
            where = where.path
        local.append(os.path.abspath(where))
    unique = list(dict.fromkeys(local))
    named = {(d.device_id, d.path): tuple(sorted(set(n))) for d, n in names.items()}
    for directory in unique:
        told = named.get((context.device_id, directory), ())
        context.bus.publish(EntriesChanged(context.device_id, directory, told, library_id=library.id))
    for far in dict.fromkeys(elsewhere):
        context.bus.publish(EntriesChanged(far.device_id, far.path, named.get((far.device_id, far.path), ())))
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
        await refresh(library, indexed, announce=False)
    except Exception:  # noqa: BLE001
        log.warning("re-indexing after the operation failed; the next scan will catch up", exc_info=True)
