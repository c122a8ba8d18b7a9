"""A paired device's core API over SSH (sd-api): two real cores on 127.0.0.1, one using the other's library."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import net
from sdcore.api import Api, client
from sdcore.api.client import Disconnected, RemoteApi
from sdcore.api.records import DeviceInfo
from sdcore.api.wire import frame
from sdcore.core import Core
from sdcore.errors import NotAdmin, SdError
from sdcore.net.testing import pair
from sdcore.sdpath import SdPath


async def two_cores(tmp_path: Path, trust: str) -> AsyncIterator[tuple[Core, Core]]:
    """Laptop (a) and nas (b), b listening on 127.0.0.1; b trusts a `trust`, a trusts b fully."""
    async with Core(tmp_path / "a") as a, Core(tmp_path / "b") as b:
        a.device.rename("laptop")
        b.device.rename("nas")
        await net.attach(b).start("127.0.0.1:0")
        await pair(net.attach(b), net.attach(a), host_trust=trust)
        yield a, b


@pytest.fixture
async def cores(tmp_path: Path) -> AsyncIterator[tuple[Core, Core]]:
    async for pair_of in two_cores(tmp_path, "full"):
        yield pair_of


@pytest.fixture
async def nas(cores: tuple[Core, Core]) -> AsyncIterator[RemoteApi]:
    """The nas's core API as the laptop reaches it."""
    a, b = cores
    remote = await net.attach(a).api_of("nas")
    yield remote
    await remote.close()


async def test_the_laptop_indexes_tags_searches_and_copies_on_the_nas(
    cores: tuple[Core, Core], nas: RemoteApi, tmp_path: Path
) -> None:
    _, b = cores
    photos = tmp_path / "nas-photos"
    (photos / "2024").mkdir(parents=True)
    (photos / "2024" / "harbour.jpg").write_bytes(b"\xff\xd8" + b"x" * 5000)
    (tmp_path / "nas-backup").mkdir()
    assert nas.device == DeviceInfo(b.device.id, "nas")

    location = await nas.library().locations.add(SdPath(b.device.id, str(photos)), mode="content", index=True)
    assert [loc.name for loc in await nas.library().locations.list()] == [location.name]
    harbour = SdPath(b.device.id, str(photos / "2024" / "harbour.jpg"))
    assert await nas.library().tags["trips/2024"].add(harbour) == 1
    assert [e.name for e in await nas.library().search("harbour")] == ["harbour.jpg"]

    job_id = (await nas.ops.copy([harbour], SdPath(b.device.id, str(tmp_path / "nas-backup")))).id
    assert (await nas.library().jobs.wait(job_id)).state == "completed"
    assert (tmp_path / "nas-backup" / "harbour.jpg").read_bytes() == (photos / "2024" / "harbour.jpg").read_bytes()

    here = Api(b)  # the nas's own view: the tag is in its database, the job in its list
    assert [e.name for e in await here.library().tags["trips/2024"].files()] == ["harbour.jpg"]
    assert job_id in [j.id for j in await here.library().jobs.list()]


async def test_the_nas_events_reach_the_laptop(cores: tuple[Core, Core], nas: RemoteApi, tmp_path: Path) -> None:
    _, b = cores
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.bin").write_bytes(b"a" * 100_000)
    (tmp_path / "dst").mkdir()
    events = nas.events()
    seen: list[Any] = []

    async def collect() -> None:
        async for event in events:
            seen.append(event)
            if getattr(event, "state", None) == "completed":
                return

    collecting = asyncio.ensure_future(collect())
    await asyncio.sleep(0.2)  # the subscription is made on the nas
    job = await nas.ops.copy([SdPath(b.device.id, str(tmp_path / "src" / "a.bin"))], SdPath(b.device.id, str(tmp_path / "dst")))
    await asyncio.wait_for(collecting, 10)
    assert job.id in {getattr(e, "job_id", None) for e in seen}
    await events.aclose()


async def test_a_shared_device_is_refused_the_core_api_in_one_line(tmp_path: Path) -> None:
    async for a, _ in two_cores(tmp_path, "shared"):
        with pytest.raises(NotAdmin, match=r"core API is for admins only \(admin keys, devices paired with full trust\); this device is paired with shared trust"):
            await net.attach(a).api_of("nas")
        assert await net.attach(a).fs_for("nas").roots() == []  # its files as before: its shares (none)


async def test_a_dropped_link_is_said_within_two_seconds(cores: tuple[Core, Core], nas: RemoteApi) -> None:
    _, b = cores
    assert (await nas.library().info()).name
    started = time.monotonic()
    await b.network.close()  # type: ignore[union-attr]  # the nas goes away
    lost = await asyncio.wait_for(nas.wait_lost(), 2)
    assert isinstance(lost, Disconnected) and "the core of nas stopped" in str(lost)
    assert time.monotonic() - started < 2
    with pytest.raises(Disconnected):
        await nas.library().tags.list()


async def test_a_hostile_core_cannot_flood_or_wedge_the_laptop(
    cores: tuple[Core, Core], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nas's core floods a stream nobody reads, and announces an answer too large: the laptop stops both.
    The limits are made small here: the real ones (256 MiB unread, 64 MiB a frame) take long to reach through SSH."""
    monkeypatch.setattr(client, "REMOTE_LIMITS", client.Limits(answer=4 << 20, unread=8 << 20))
    a, b = cores
    hostile = net.attach(b)
    hello = frame({"hello": {"device": DeviceInfo(b.device.id, "nas"), "protocol": 1, "pid": 1}})

    async def flood(reader: Any, writer: Any, channel: Any) -> None:
        writer.write(hello)
        await asyncio.sleep(0.2)  # the laptop asks for a stream meanwhile
        chunk = frame({"id": 1, "more": "x" * (1 << 20)})
        for _ in range(20):  # 20 MiB unread
            writer.write(chunk)
            await writer.drain()
        await asyncio.sleep(30)

    hostile.api_server = flood
    remote = await net.attach(a).api_of("nas")
    stream = aiter(remote.events())  # asked for at once (request 1), read only later
    with pytest.raises(SdError, match="the core of nas sent more than 8 MiB unread"):
        await asyncio.wait_for(_read_all_later(stream), 30)
    await remote.close()

    async def huge(reader: Any, writer: Any, channel: Any) -> None:
        writer.write(hello)
        writer.write(struct.pack(">I", 1 << 30))  # an answer of 1 GiB announced
        await asyncio.sleep(30)

    hostile.api_server = huge
    remote = await net.attach(a).api_of("nas")
    with pytest.raises(Disconnected, match=r"a frame of 1073741824 bytes \(at most 4194304\)"):
        await asyncio.wait_for(remote.library().info(), 5)


async def _read_all_later(stream: Any) -> None:
    await asyncio.sleep(3)  # nobody reads while it floods
    async for _ in stream:
        pass


async def test_the_nas_trusting_the_laptop_less_cuts_its_open_core_api(
    cores: tuple[Core, Core], nas: RemoteApi
) -> None:
    _, b = cores
    assert await nas.library().tags.list() == []
    trust = net.attach(b).trust
    laptop = trust.resolve("laptop")
    trust.add(dataclasses.replace(laptop, trust="shared"))  # as `sd network` in another process would
    lost = await asyncio.wait_for(nas.wait_lost(), 5)  # the server sweeps every 2 s
    assert isinstance(lost, Disconnected)
    with pytest.raises(NotAdmin, match="paired with shared trust"):
        await net.attach(cores[0]).api_of("nas")


async def test_an_admin_key_uses_the_core_api_and_a_stranger_is_never_let_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a device: an SSH key allowed with `sd admin allow` opens sd-api with any SSH client; a key that is not
    allowed never gets as far as a session."""
    from sdcore.sshlib import asyncssh

    caplog.set_level(logging.INFO, logger="sdcore.net.admin")
    async with Core(tmp_path / "nas") as b:
        served = net.attach(b)
        await served.start("127.0.0.1:0")
        admin, stranger = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
        served.admins.allow(admin.export_public_key().decode(), name="ops laptop")
        await Api(b).library().tags.create("audited")

        async def connect(key: Any) -> Any:
            return await asyncssh.connect(
                "127.0.0.1", served.port, username="sd", client_keys=[key], known_hosts=None, config=None,
                agent_path=None,
            )  # fmt: skip

        async with await connect(admin) as conn:
            writer, reader, _ = await conn.open_session(subsystem="sd-api", encoding=None)
            remote = await client.over(reader, writer, "the core of nas", limits=client.REMOTE_LIMITS)
            assert [t.name for t in await remote.library().tags.list()] == ["audited"]
            await remote.close()
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(stranger)
    said = [r.getMessage() for r in caplog.records if r.name == "sdcore.net.admin" and "core API" in r.getMessage()]
    assert said[0].startswith("core API opened: admin key ops laptop from 127.0.0.1:"), said
