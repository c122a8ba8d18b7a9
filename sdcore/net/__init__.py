"""The network: pairing, the trust store, the SSH server and links to paired devices, RemoteFS, Spacedrop."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from typing import TYPE_CHECKING, Any

from sdcore.net.frames import DeviceUnreachable, NetError, PermissionDenied
from sdcore.net.network import DEFAULT_PORT, Network, parse_address
from sdcore.net.pairing import PairingError
from sdcore.net.remote_fs import RemoteFS
from sdcore.net.trust import Peer, TrustStore

if TYPE_CHECKING:
    from sdcore.core import Core

__all__ = [
    "attach",
    "DEFAULT_PORT",
    "DeviceUnreachable",
    "NetError",
    "Network",
    "PairingError",
    "Peer",
    "PermissionDenied",
    "RemoteFS",
    "TrustStore",
    "parse_address",
]


def attach(core: Core, *, auto_accept_drops: bool = False) -> Network:
    """The core's Network, made on first call (client side only; `await network.start(...)` to listen)."""
    network = core.network
    if network is None:
        network = Network(core.device, core.bus, auto_accept_drops=auto_accept_drops)
        network.expose("search", functools.partial(_search_here, core))
        network.expose("locations", functools.partial(_locations_here, core))
        core.network = network
        core.add_service(network)
    if not isinstance(network, Network):
        raise TypeError(f"core.network is a {type(network).__name__}, not an sdcore.net.Network")
    network.auto_accept_drops = network.auto_accept_drops or auto_accept_drops
    return network


async def _search_here(core: Core, peer: Peer, query: str) -> list[dict[str, Any]]:
    """`sd search --device` from a paired device: the query (Query.to_json) run on this device's default library."""
    from sdcore import search

    hits = await asyncio.to_thread(search.run, core.library(), search.Query.from_json(query))
    return [{**dataclasses.asdict(h), "device_id": str(core.device.id)} for h in hits]


async def _locations_here(core: Core, peer: Peer) -> list[dict[str, Any]]:
    """The locations of this device's default library (what a `full`-trust device's explorer opens it on)."""
    library = await asyncio.to_thread(core.library)
    return [{"name": loc.name, "path": os.fsencode(loc.path)} for loc in await asyncio.to_thread(library.locations.list)]
