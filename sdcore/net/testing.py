"""Helpers for tests and benchmarks: devices in throwaway data dirs, listening on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sdcore.device import load_or_create
from sdcore.net.network import Network


@asynccontextmanager
async def device_network(
    data_dir: Path, name: str, *, listen: bool = True, auto_accept_drops: bool = False
) -> AsyncIterator[Network]:
    """A device made in `data_dir`, named `name`, with its server on a free port of 127.0.0.1."""
    device = load_or_create(data_dir)
    device.rename(name)
    net = Network(device, auto_accept_drops=auto_accept_drops)
    if listen:
        await net.start("127.0.0.1:0")
    try:
        yield net
    finally:
        await net.close()


async def pair(host: Network, joiner: Network, host_trust: str = "full", joiner_trust: str = "full") -> None:
    """Pair two devices the way a user does: `generate` on one, `join` with its code on the other.

    `host_trust` is what the host grants the joiner; `joiner_trust` what the joiner grants the host.
    """
    assert host.address is not None
    code = host.pair_generate(trust=host_trust)
    await joiner.pair_join(code, host.address, trust=joiner_trust)
    await host.wait_paired(timeout=10)
