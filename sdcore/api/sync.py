"""A library's devices through the core API: who holds it, sharing it with a paired device, and no more."""

from __future__ import annotations

import asyncio
import builtins
from typing import TYPE_CHECKING

from sdcore.api.library import _Part
from sdcore.api.records import LibraryDevice

if TYPE_CHECKING:
    from sdcore.sync.service import SyncService


class Sharing(_Part):
    """`await lib.sharing.share("nas")`, `.list()`, `.unshare("nas")`."""

    async def _service(self) -> SyncService:
        from sdcore.sync.service import sync_of

        core = self._api._core
        if core.network is None:
            await asyncio.to_thread(core.net)  # importing asyncssh takes a while
        return sync_of(core)

    async def list(self) -> builtins.list[LibraryDevice]:
        """This device and those the library is shared with: online or not, and when each last synced."""
        service = await self._service()
        return service.devices(await self._library())

    async def share(self, device: str) -> LibraryDevice:
        """Share the library with a paired device (full trust only): it gets the same library, kept in sync."""
        service = await self._service()
        library = await self._library()
        member = await service.share(library, device)
        await service.start()  # the core that holds the library keeps it in sync from now on
        return next(d for d in service.devices(library) if d.id == member.device_id)

    async def unshare(self, device: str) -> LibraryDevice:
        """Stop sharing the library with a device (it keeps its copy, and syncs it no more)."""
        service = await self._service()
        library = await self._library()
        gone = await service.unshare(library, device)
        return LibraryDevice(gone.device_id, gone.name, False, False, gone.last_sync)
