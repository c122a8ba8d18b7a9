"""Admins: the admin keys that may administer this core over SSH, besides devices paired with full trust."""

from __future__ import annotations

import asyncio
import builtins
from typing import TYPE_CHECKING

from sdcore.api.records import AdminKey

if TYPE_CHECKING:
    from sdcore.api.root import Api
    from sdcore.net import Network


class Admins:
    """`api.admins`: allow an SSH public key to administer this core, list the keys, revoke one."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def _network(self) -> Network:
        core = self._api._core
        if core.network is None:
            return await asyncio.to_thread(core.net)  # importing asyncssh takes a while
        return core.net()

    async def list(self) -> builtins.list[AdminKey]:
        """The admin keys, by name."""
        return (await self._network()).admins.keys()

    async def allow(self, public_key: str, *, name: str | None = None, file_name: str | None = None) -> AdminKey:
        """Let the key in `public_key` (an OpenSSH .pub file's content: ed25519, ecdsa, rsa of 2048 bits or more)
        administer this core, named `name`, else by the key's comment, else by `file_name` without `.pub`."""
        return (await self._network()).admins.allow(public_key, name=name, file_name=file_name)

    async def revoke(self, name: str) -> AdminKey:
        """Take an admin key away, by name or fingerprint; its open sessions end now."""
        return (await self._network()).revoke_admin(name)
