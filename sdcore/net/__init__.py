"""The network: pairing, the trust store, the SSH server and links to paired devices, RemoteFS, Spacedrop."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from typing import TYPE_CHECKING, Any

from sdcore.errors import SdError
from sdcore.net.admin_sessions import AdminPrograms
from sdcore.net.frames import DeviceUnreachable, NetError, PermissionDenied
from sdcore.net.network import DEFAULT_PORT, Network, parse_address
from sdcore.net.pairing import PairingError
from sdcore.net.remote_command import run_on_device
from sdcore.net.remote_fs import RemoteFS
from sdcore.net.trust import Peer, TrustStore
from sdcore.sdpath import SdPath

if TYPE_CHECKING:
    from sdcore.core import Core

__all__ = [
    "AdminPrograms",
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
    "run_on_device",
]


def attach(core: Core, *, auto_accept_drops: bool = False) -> Network:
    """The core's Network, made on first call (client side only; `await network.start(...)` to listen)."""
    network = core.network
    if network is None:
        network = Network(core.device, core.bus, auto_accept_drops=auto_accept_drops)
        network.expose("search", functools.partial(_search_here, core))
        network.expose("locations", functools.partial(_locations_here, core))
        network.expose("preview", functools.partial(_preview_here, core))
        network.api_server = _api_server(core)
        core.network = network
        core.add_service(network)
    if not isinstance(network, Network):
        raise TypeError(f"core.network is a {type(network).__name__}, not an sdcore.net.Network")
    network.auto_accept_drops = network.auto_accept_drops or auto_accept_drops
    return network


def _api_server(core: Core) -> Any:
    """Serve this core's API to an admin over an SSH channel (one Api for all of them, as live as the core)."""
    api: Any = None

    async def serve(reader: Any, writer: Any, channel: Any) -> None:
        nonlocal api
        from sdcore.api import Api
        from sdcore.api.server import serve_stream

        api = api or Api(core, live=True)
        await serve_stream(api, reader, writer, channel)

    return serve


async def _search_here(core: Core, peer: Peer, query: str) -> list[dict[str, Any]]:
    """`sd search --device` from a paired device: the query (Query.to_json) run on this device's default library."""
    from sdcore import search

    hits = await asyncio.to_thread(search.run, core.library(), search.Query.from_json(query))
    return [{**dataclasses.asdict(h), "device_id": str(core.device.id)} for h in hits]


async def _preview_here(core: Core, peer: Peer, path: bytes, box: list[int]) -> dict[str, Any]:
    """The preview of a file of this device for a paired device's inspector (a picture as small pixels)."""
    from sdcore.api import Api
    from sdcore.preview import to_wire

    if not isinstance(path, bytes) or not (isinstance(box, list) and len(box) == 2 and all(isinstance(n, int) for n in box)):
        raise SdError("a preview is asked for with a path (bytes) and a box of two numbers")
    made = await Api(core).preview(SdPath(core.device.id, os.fsdecode(path)), box[0], box[1])
    return to_wire(made)


async def _locations_here(core: Core, peer: Peer) -> list[dict[str, Any]]:
    """The locations of this device's default library (what a `full`-trust device's explorer opens it on)."""
    library = await asyncio.to_thread(core.library)
    return [{"name": loc.name, "path": os.fsencode(loc.path)} for loc in await asyncio.to_thread(library.locations.list)]
