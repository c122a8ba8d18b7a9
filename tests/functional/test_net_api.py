"""Pairing, paired devices, unpairing and shares through the core API, in-process and attached over the socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.api.client import Chain, attach
from sdcore.api.server import Refused, serve
from sdcore.control import ControlServer
from sdcore.core import Core
from sdcore.errors import NotFound


@pytest.fixture(params=["in-process", "attached"])
async def two(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Any, Api]]:
    """The API of device A (in-process, or over its control socket) and of device B (in-process)."""
    async with Core(tmp_path / "a") as a, Core(tmp_path / "b") as b:
        if request.param == "in-process":
            yield Api(a), Api(b)
            return
        control = ControlServer(a.data_dir)
        serve(control, Api(a))
        await control.start()
        remote = await attach(a.data_dir)
        assert remote is not None
        try:
            yield remote, Api(b)
        finally:
            await remote.close()
            await control.close()


async def test_pair_with_a_trust_list_with_key_and_date_then_unpair(two: tuple[Any, Api]) -> None:
    a, b = two
    address = await a.devices.listen("127.0.0.1:0")
    code = await a.devices.pair_code("shared")
    waiter = asyncio.ensure_future(a.devices.wait_paired())
    alpha = await b.devices.pair_join(code.split(), address, trust="shared")
    beta = await waiter
    assert (alpha.id, alpha.trust, beta.id, beta.trust) == (a.device.id, "shared", b.device.id, "shared")
    [listed] = await a.devices.list()
    assert listed.id == b.device.id and listed.public_key.startswith("ssh-") and listed.paired_at > 0
    assert (await a.devices.unpair(str(b.device.id)[:8])).id == b.device.id
    assert await a.devices.list() == []
    with pytest.raises(NotFound, match="sd network devices"):
        await a.devices.unpair(b.device.id)


async def test_share_and_unshare_a_folder(two: tuple[Any, Api], tmp_path: Path) -> None:
    a, _ = two
    (tmp_path / "photos").mkdir()
    assert (await a.devices.share(str(tmp_path / "photos"))).path == str((tmp_path / "photos").resolve())
    assert await a.devices.shares() == [str((tmp_path / "photos").resolve())]
    await a.devices.unshare(str(tmp_path / "photos"))
    assert await a.devices.shares() == []
    with pytest.raises(NotFound, match="not a directory"):
        await a.devices.share(str(tmp_path / "nothing"))


async def test_the_network_behind_the_devices_is_out_of_reach_of_a_socket(tmp_path: Path) -> None:
    async with Core(tmp_path / "a") as core:
        control = ControlServer(core.data_dir)
        serve(control, Api(core))
        await control.start()
        remote = await attach(core.data_dir)
        assert remote is not None
        try:
            for private in ("_network", "_api"):  # the Network and its trust store; the core behind the api
                with pytest.raises(Refused):
                    await Chain(remote._connection, (["get", "devices"], ["get", private]))
        finally:
            await remote.close()
            await control.close()


async def test_rename_this_device_and_tell_a_paired_one(two: tuple[Any, Api]) -> None:
    a, b = two
    address = await a.devices.listen("127.0.0.1:0")
    code = await a.devices.pair_code()
    waiter = asyncio.ensure_future(a.devices.wait_paired())
    await b.devices.pair_join(code, address)
    await waiter
    renamed = await b.devices.rename_this("  gamma ")
    assert (renamed.name, renamed.paired, b.device.name) == ("gamma", 1, "gamma")
    assert len(renamed.told) == 1  # told at once, not when it next connects
    assert [d.name for d in await a.devices.list()] == ["gamma"]
    assert (await a.devices.rename_this("")).name == a.device.name  # a blank name keeps the one it has
