"""Two paired devices over real SSH on 127.0.0.1: RemoteFS round trips, refusals, confinement, revocation."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.events import DeviceConnected, DeviceLost
from sdcore.fs.local import LocalFS
from sdcore.index import cas
from sdcore.net import NetError, Network, PermissionDenied
from sdcore.net.network import PeerLink
from sdcore.net.testing import device_network, pair
from sdcore.net.trust import TrustStore


@pytest.fixture
async def paired(tmp_path: Path) -> AsyncIterator[tuple[Network, Network]]:
    """alpha (the server) and beta (the client), paired with full trust both ways."""
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        yield a, b


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def _names(fs: object, path: str) -> set[str]:
    return {e.name for batch in [b async for b in fs.list_dir(path)] for e in batch}  # type: ignore[attr-defined]


async def test_remote_list_read_write_round_trip(tmp_path: Path, paired: tuple[Network, Network]) -> None:
    a, b = paired
    home = tmp_path / "files"
    home.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 17)
    (home / "big.bin").write_bytes(data)
    (home / "sub").mkdir()
    os.symlink("big.bin", home / "link")
    weird = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: survives the trip
    open(os.fsencode(home) + b"/caf\xe9.txt", "wb").close()
    fs = b.fs_for("alpha")

    assert await _names(fs, str(home)) == {"big.bin", "sub", "link", weird}
    link = await fs.stat(str(home / "link"))
    assert link.kind == "symlink" and link.link_target == "big.bin"
    assert b"".join([c async for c in fs.open_read(str(home / "big.bin"))]) == data
    assert (
        b"".join([c async for c in fs.open_read(str(home / "big.bin"), offset=1_000_000)]) == data[1_000_000:]
    )
    assert await fs.cas_id(str(home / "big.bin")) == cas.cas_id(str(home / "big.bin"))
    assert await fs.full_hash(str(home / "big.bin")) == cas.full_hash(str(home / "big.bin"))

    written = await fs.write_atomic(
        str(home / "sub" / "new.bin"), _chunks(data[:5], data[5:]), mtime=1_000_000.0
    )
    assert written == len(data)
    assert (home / "sub" / "new.bin").read_bytes() == data
    assert (home / "sub" / "new.bin").stat().st_mtime == 1_000_000.0
    assert [p.name for p in (home / "sub").iterdir()] == ["new.bin"]  # no temp file left behind

    await fs.mkdir(str(home / "d1" / "d2"), parents=True)
    await fs.rename(str(home / "sub" / "new.bin"), str(home / "d1" / "d2" / "moved.bin"))
    with pytest.raises(AlreadyExists):
        await fs.rename(str(home / "big.bin"), str(home / "d1" / "d2" / "moved.bin"))
    await fs.delete(str(home / "d1"))
    assert not (home / "d1").exists()
    with pytest.raises(NotFound, match="no such file"):
        await fs.stat(str(home / "d1"))
    with pytest.raises(NotFound):
        [c async for c in fs.open_read(str(home / "nope"))]


async def test_copy_both_ways(tmp_path: Path, paired: tuple[Network, Network]) -> None:
    a, b = paired
    src = tmp_path / "on-beta.txt"
    src.write_bytes(b"from beta" * 1000)
    local = LocalFS()
    # beta -> alpha, through beta's RemoteFS of alpha
    await b.fs_for("alpha").write_atomic(str(tmp_path / "landed-on-alpha.txt"), local.open_read(str(src)))
    # alpha -> beta: alpha reaches beta the other way round (beta listens too)
    back = tmp_path / "back.txt"
    await local.write_atomic(str(back), a.fs_for("beta").open_read(str(tmp_path / "landed-on-alpha.txt")))
    assert back.read_bytes() == src.read_bytes()


async def test_an_unpaired_key_is_refused(tmp_path: Path, paired: tuple[Network, Network]) -> None:
    a, _ = paired
    secret = tmp_path / "secret"
    secret.write_text("s")
    async with device_network(tmp_path / "c", "mallory", listen=False) as c:
        # mallory knows alpha's address and host key, but alpha never paired with it
        c.trust.add(
            replace(
                TrustStore(a.device.data_dir).peers()[0],
                id=a.device.id,
                name="alpha",
                public_key=a.public_key,
                addresses=(a.address or "",),
            )
        )
        with pytest.raises(NetError, match="refused this device's key"):
            await c.fs_for("alpha").stat(str(secret))


async def test_a_changed_host_key_is_refused(tmp_path: Path, paired: tuple[Network, Network]) -> None:
    a, b = paired
    async with device_network(tmp_path / "c", "impostor") as c:
        # beta's stored alpha now points at a server with another key (as if alpha's key changed)
        stored = b.trust.get(a.device.id)
        assert stored is not None
        b.trust.add(replace(stored, addresses=(c.address or "",)))
        with pytest.raises(NetError, match="host key that is not the one stored"):
            await b.fs_for("alpha").stat("/")


async def test_a_revoked_device_is_refused_even_on_an_open_connection(
    tmp_path: Path, paired: tuple[Network, Network]
) -> None:
    a, b = paired
    fs = b.fs_for("alpha")
    assert (await fs.stat(str(tmp_path))).kind == "dir"  # connected
    # revoked from another process (as `sd network unpair beta` would): the trust file changes on disk
    TrustStore(a.device.data_dir).remove(b.device.id)
    with pytest.raises(SdError, match="no longer trusts this one"):
        await fs.stat(str(tmp_path))
    with pytest.raises(NetError, match="refused this device's key"):
        await b.fs_for("alpha").stat(str(tmp_path))


async def test_unpair_closes_open_connections(tmp_path: Path, paired: tuple[Network, Network]) -> None:
    a, b = paired
    fs = b.fs_for("alpha")
    await fs.stat(str(tmp_path))
    with b.bus.subscribe(DeviceLost) as lost:
        await a.unpair("beta")
        event = await asyncio.wait_for(lost.__anext__(), 5)
    assert isinstance(event, DeviceLost) and event.device_id == a.device.id
    with pytest.raises(NetError):
        await fs.stat(str(tmp_path))


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[tuple[Network, Network, Path]]:
    """alpha shares one folder with beta (shared trust)."""
    share = tmp_path / "share"
    (share / "docs").mkdir(parents=True)
    (share / "docs" / "a.txt").write_text("shared text")
    (tmp_path / "private.txt").write_text("private")
    os.symlink(tmp_path / "private.txt", share / "escape")
    os.symlink(tmp_path, share / "escape-dir")
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b, host_trust="shared")
        a.trust.add_share(str(share))
        yield a, b, share


async def test_shared_trust_sees_only_the_share(
    tmp_path: Path, shared: tuple[Network, Network, Path]
) -> None:
    a, b, share = shared
    fs = b.fs_for("alpha")
    assert await fs.roots() == [str(share)]
    assert await _names(fs, str(share / "docs")) == {"a.txt"}
    assert b"".join([c async for c in fs.open_read(str(share / "docs" / "a.txt"))]) == b"shared text"
    await fs.write_atomic(str(share / "docs" / "b.txt"), _chunks(b"ok"))
    assert (share / "docs" / "b.txt").read_bytes() == b"ok"

    refused = [
        "/etc/passwd",
        str(share / ".." / "private.txt"),
        str(share / "docs" / ".." / ".." / "private.txt"),
        str(share / "escape"),
        str(share / "escape-dir" / "private.txt"),
        str(tmp_path),
    ]
    for path in refused:
        with pytest.raises(PermissionDenied, match="outside the folders|'..' is not allowed"):
            [c async for c in fs.open_read(path)]
        if path != str(share / "escape"):
            with pytest.raises(PermissionDenied):
                await fs.stat(path)
    assert (await fs.stat(str(share / "escape"))).kind == "symlink"  # the link itself, not where it leads
    with pytest.raises(PermissionDenied):
        [b async for b in fs.list_dir(str(share / "escape-dir"))]
    with pytest.raises(PermissionDenied):
        await fs.write_atomic(str(tmp_path / "planted.txt"), _chunks(b"x"))
    with pytest.raises(PermissionDenied):
        await fs.rename(str(share / "docs" / "a.txt"), str(tmp_path / "stolen.txt"))
    with pytest.raises(PermissionDenied):
        await fs.delete(str(tmp_path / "private.txt"))
    assert (tmp_path / "private.txt").read_text() == "private"
    assert not (tmp_path / "planted.txt").exists() and not (tmp_path / "stolen.txt").exists()


async def test_twenty_connections_list_a_big_directory(
    tmp_path: Path, paired: tuple[Network, Network]
) -> None:
    """5,000 entries (five batches each) keep CI quick; tests/bench/bench_net_listing.py runs the same check on 100,000."""
    a, b = paired
    big = tmp_path / "big"
    big.mkdir()
    n = 5_000
    for i in range(n):
        os.close(os.open(big / f"f{i:05d}", os.O_CREAT | os.O_WRONLY, 0o644))
    links = [PeerLink(b, a.device.id) for _ in range(20)]
    try:
        from sdcore.net import RemoteFS

        async def listing(link: PeerLink) -> list[str]:
            return [e.name async for batch in RemoteFS(link).list_dir(str(big)) for e in batch]

        results = await asyncio.gather(*(listing(link) for link in links))
        conns = {id(link.conn) for link in links}
    finally:
        for link in links:
            await link.close()
    assert len(conns) == 20
    expected = sorted(f"f{i:05d}" for i in range(n))
    for names in results:  # complete and exact: the same names, none twice
        assert len(names) == n and sorted(names) == expected


async def test_connect_and_lose_events_and_reconnect(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        with b.bus.subscribe(DeviceConnected, DeviceLost) as events:
            link = b.link("alpha")
            link.backoff = (0.05, 0.1)
            await b.fs_for("alpha").stat("/")
            first = await asyncio.wait_for(events.__anext__(), 5)
            assert isinstance(first, DeviceConnected) and first.name == "alpha"
            port = a.port
            await a.close()
            lost = await asyncio.wait_for(events.__anext__(), 5)
            assert isinstance(lost, DeviceLost) and lost.name == "alpha"
            # alpha comes back on the same port: the link reconnects by itself, with backoff
            a2 = Network(a.device, a.bus)
            await a2.start(f"127.0.0.1:{port}")
            try:
                again = await asyncio.wait_for(events.__anext__(), 5)
                assert isinstance(again, DeviceConnected)
                assert link.connected
                assert (await b.fs_for("alpha").stat("/")).kind == "dir"
            finally:
                await a2.close()


async def test_a_read_cut_by_a_server_restart_resumes_at_the_byte(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "movie.bin"
    src.write_bytes(data)
    dst = tmp_path / "copy.bin"
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        port = a.port
        fs = b.fs_for("alpha")
        got = bytearray()
        with pytest.raises(NetError):
            async for chunk in fs.open_read(str(src)):
                got += chunk
                if len(got) >= 2 * 1024 * 1024:
                    await a.close()  # the server dies mid-copy
        assert 0 < len(got) < len(data)
        dst.write_bytes(got)
        a2 = Network(a.device, a.bus)
        await a2.start(f"127.0.0.1:{port}")
        try:
            with dst.open("ab") as out:
                async for chunk in b.fs_for("alpha").open_read(str(src), offset=len(got)):
                    out.write(chunk)
        finally:
            await a2.close()
    assert dst.read_bytes() == data
    assert await LocalFS().full_hash(str(dst)) == cas.full_hash(str(src))


async def test_an_upload_cut_by_a_server_restart_resumes_at_the_byte(tmp_path: Path) -> None:
    data = os.urandom(6 * 1024 * 1024 + 5)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    dst = tmp_path / "landed" / "upload.bin"
    dst.parent.mkdir()
    local = LocalFS()
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        port = a.port
        asked: list[int] = []

        async def dying_source(offset: int) -> AsyncIterator[bytes]:
            asked.append(offset)
            sent = 0
            async for chunk in local.open_read(str(src), offset):
                yield chunk
                sent += len(chunk)
                if sent >= 3 * 1024 * 1024:
                    await asyncio.sleep(0.2)  # let the chunks in flight land
                    await a.close()  # the receiving server dies mid-copy

        with pytest.raises(NetError):
            await b.fs_for("alpha").write_resumable(str(dst), dying_source)
        assert not dst.exists()  # nothing half-written under the final name
        partial = dst.parent / ".upload.bin.sdpart"
        assert 0 < partial.stat().st_size < len(data)
        assert partial.read_bytes() == data[: partial.stat().st_size]  # a clean prefix, no holes

        a2 = Network(a.device, a.bus)
        await a2.start(f"127.0.0.1:{port}")
        try:
            kept = partial.stat().st_size

            def source(offset: int) -> AsyncIterator[bytes]:
                asked.append(offset)
                return local.open_read(str(src), offset)

            size = await b.fs_for("alpha").write_resumable(
                str(dst), source, reread=lambda: local.open_read(str(src))
            )
        finally:
            await a2.close()
    assert size == len(data)
    assert asked == [0, kept]  # the second attempt sent only the missing bytes
    assert dst.read_bytes() == data
    assert not partial.exists()


async def test_a_rename_reaches_paired_devices_on_connect(paired: tuple[Network, Network]) -> None:
    a, b = paired
    a.device.rename("alpha-renamed")
    b.device.rename("beta-renamed")
    await b.fs_for("alpha").stat("/")
    assert [p.name for p in b.devices()] == ["alpha-renamed"]
    assert [p.name for p in a.devices()] == ["beta-renamed"]
    assert (await b.fs_for("alpha-renamed").stat("/")).kind == "dir"  # still trusted, same connection


async def test_the_core_can_offer_more_requests_by_trust_level(tmp_path: Path) -> None:
    async with (
        device_network(tmp_path / "a", "alpha") as a,
        device_network(tmp_path / "b", "beta") as b,
        device_network(tmp_path / "c", "gamma") as c,
    ):
        await pair(a, b)
        await pair(a, c, host_trust="shared")

        async def search(peer: object, query: str) -> list[str]:
            return [f"{query} for {peer.name}"]  # type: ignore[attr-defined]

        a.expose("search", search)
        assert await b.call("alpha", "search", query="cats") == ["cats for beta"]
        with pytest.raises(NetError, match="does not offer 'search'"):
            await c.call("alpha", "search", query="cats")


async def test_an_idle_connection_of_a_device_unpaired_elsewhere_is_closed(
    tmp_path: Path, paired: tuple[Network, Network]
) -> None:
    a, b = paired
    a.sweep_interval = 0.05
    link = b.link("alpha")
    await link.call("hello")
    with b.bus.subscribe(DeviceLost) as lost:
        TrustStore(a.device.data_dir).remove(b.device.id)  # `sd network unpair beta` in another process
        event = await asyncio.wait_for(lost.__anext__(), 5)  # no request needed: alpha hangs up
    assert isinstance(event, DeviceLost) and event.name == "alpha"
    # and beta forgetting alpha (from another process too) stops beta's own link at once
    TrustStore(b.device.data_dir).remove(a.device.id)
    with pytest.raises(NotFound, match="no longer paired"):
        await link.call("hello")


async def test_a_copy_whose_device_goes_away_says_why_and_how_to_carry_on_in_sentences(tmp_path: Path) -> None:
    """The job's failure says why, how far it got and how to carry on: it named only `sd job resume`, in the explorer
    too (whose jobs screen resumes with r); a reason ending in '?' (a device that cannot be reached) got a '.' glued
    on ("is `sd serve` running there?. 3 of 40 files are done": seen by hand, when the device is gone at a retry)."""
    from sdcore import net
    from sdcore.api import Api
    from sdcore.core import Core
    from sdcore.sdpath import SdPath

    source = tmp_path / "photos"
    source.mkdir()
    for n in range(40):
        (source / f"p{n:02}.jpg").write_bytes(os.urandom(1 << 20))
    async with Core(tmp_path / "a") as laptop, Core(tmp_path / "b") as nas:
        await net.attach(nas).start("127.0.0.1:0")
        await pair(net.attach(nas), net.attach(laptop))
        api = Api(laptop)
        job = await api.ops.copy([SdPath(laptop.device.id, str(source))], SdPath(nas.device.id, str(tmp_path / "inbox")))
        jobs = api.library().jobs
        async with asyncio.timeout(30):
            while not any(r.id == job.id and r.done > 0 for r in await jobs.list()):
                await asyncio.sleep(0.01)
        await net.attach(nas).close()  # its server stopped mid-copy
        record = await jobs.wait(job.id)
    error = record.error or ""
    assert record.state == "failed" and "files are done" in error and "?." not in error, error
    assert f"`sd job resume {job.id}`, or r in the explorer's jobs screen" in error, error
