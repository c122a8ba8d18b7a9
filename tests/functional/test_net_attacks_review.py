"""A second look at `sd serve` as an attacker on the same network, after issue 11's fixes: what still
got through, against a real server on 127.0.0.1 (the `served` server of the confinement attacks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import test_net_attacks_confine as confine
from test_net_attacks_confine import (
    SD,
    Served,
    _b,
    _pair_all,
    _sftp_packet,
    _string,
    _u32,
    connect_as,
    raw_sftp,
)

from sdcore.errors import SdError
from sdcore.events import DropOffered
from sdcore.fs import trash
from sdcore.net.frames import pack_frame
from sdcore.net.rpc_server import MAX_DEVICE_HANDLES, MAX_HANDLES, MAX_READ
from sdcore.net.testing import device_network, pair
from sdcore.net.trust import TrustStore
from tests.functional.ssh_support import free_port

served = confine.served  # beta's `sd serve` sharing a folder with alpha and gamma (shared trust)


def _fds(served: Served) -> int:
    return len(os.listdir(f"/proc/{served.proc.pid}/fd"))


def test_one_sftp_read_cannot_make_the_server_read_gigabytes_into_memory(served: Served) -> None:
    with open(served.share / "video.bin", "wb") as f:  # a big file in the share (sparse: no disk used)
        f.truncate(256 << 20)

    async def attack() -> int:
        async with connect_as(served) as conn:
            writer, reply = await raw_sftp(conn)
            writer.write(_sftp_packet(3, _u32(1), _string(_b(served.share / "video.bin")), _u32(1), _u32(0)))
            handle = (await reply())[5:]
            writer.write(_sftp_packet(5, _u32(2), handle, (0).to_bytes(8, "big"), _u32(256 << 20)))  # READ
            data = await reply()  # DATA: id, then the bytes as a string
            return int.from_bytes(data[5:9], "big")

    got = asyncio.run(attack())
    assert 0 < got <= MAX_READ, f"one read request made the server read {got / 2**20:.0f} MiB at once"


def test_many_channels_of_one_connection_cannot_take_every_descriptor_of_the_server(served: Served) -> None:
    """The handle cap is per channel: a device opening channel after channel multiplies it."""
    (served.share / "f.txt").write_text("x")
    channels = 24

    async def attack() -> tuple[int, int]:
        before = _fds(served)
        async with connect_as(served) as conn:
            writers = []
            for _ in range(channels):
                try:
                    writer, _reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
                except asyncssh.ChannelOpenError:
                    break
                writers.append((writer, _reader))
            for writer, _reader in writers:
                for i in range(MAX_HANDLES):
                    writer.write(pack_frame([i, "read_open", {"path": _b(served.share / "f.txt")}]))
            peak = before
            for _ in range(40):  # they open in the server's worker threads
                await asyncio.sleep(0.25)
                peak = max(peak, _fds(served))
            async with served.client("c") as other:  # another device is served all along
                assert "f.txt" in [
                    e.name async for b in other.fs_for("beta").list_dir(str(served.share)) for e in b
                ]
            return before, peak

    before, peak = asyncio.run(attack())
    assert peak - before <= MAX_DEVICE_HANDLES + 8, (  # + the connection's own socket and such
        f"one device held {peak - before} descriptors of the server open through {channels} channels"
    )


def test_a_pairing_connection_does_not_outlive_its_pairing_session(served: Served) -> None:
    """Anyone may log in as the pairing user; what it opened must not stay: held connections are
    descriptors and memory an attacker who is not even paired could pile up."""

    async def attack() -> bool:
        async with asyncssh.connect(
            "127.0.0.1",
            served.port,
            username="sd-pair",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
            config=None,
            preferred_auth="none",
        ) as conn:
            writer, reader, _ = await conn.open_session(subsystem="sd-pair", encoding=None)
            await reader.read()  # "no pairing code": the session ends
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if conn.is_closed():
                    return True
                await asyncio.sleep(0.1)
            return False

    assert asyncio.run(attack()), "the pairing connection stayed open after its pairing session ended"


def test_idle_pairing_connections_are_capped(served: Served) -> None:
    """Connections of the pairing user that never open a session are few at a time; paired devices
    are served all along."""

    async def attack() -> int:
        conns = []
        try:
            for _ in range(40):
                try:
                    conns.append(
                        await asyncssh.connect(
                            "127.0.0.1",
                            served.port,
                            username="sd-pair",
                            known_hosts=None,
                            client_keys=None,
                            agent_path=None,
                            config=None,
                            preferred_auth="none",
                        )
                    )
                except (asyncssh.Error, OSError):
                    pass
            await asyncio.sleep(0.5)
            async with served.client("c") as other:  # a paired device is served meanwhile
                assert "alpha" not in str(await other.link("beta").call("stat", path=_b(served.share)))
            return sum(1 for c in conns if not c.is_closed())
        finally:
            for c in conns:
                c.close()

    held = asyncio.run(attack())
    assert held <= 8, f"{held} idle pairing connections held open at once"


def test_connections_that_never_log_in_cannot_take_every_descriptor_of_the_server(served: Served) -> None:
    """Anyone on the network may connect; while logins are pending (30 s each) they are few at a time."""

    async def attack() -> int:
        before = _fds(served)
        silent = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(300)]
        try:
            deadline = time.monotonic() + 15  # half their login time: what is let go by then was dropped for room
            while (held := _fds(served) - before) > 80 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)  # a loaded server accepts and drops them a little later
            async with served.client("c") as other:  # a paired device is served meanwhile
                await other.link("beta").call("stat", path=_b(served.share))
            return held
        finally:
            for _, w in silent:
                w.close()

    held = asyncio.run(attack())
    assert held <= 80, f"{held} descriptors held by connections that never logged in"


@pytest.mark.parametrize(
    "recorded", ["{victim}", "../victim/authorized_keys", "a/../../victim/authorized_keys"]
)
def test_a_trash_a_shared_peer_planted_on_a_shared_drive_cannot_restore_outside_it(
    served: Served, recorded: str
) -> None:
    """A shared drive is the top of its filesystem, so its trash (`.Trash-UID`) is the peer's to write.
    An item there that claims to come from outside the drive would, once its owner restores it,
    put the peer's file there (an `authorized_keys`, an autostart entry)."""
    victim = served.tmp / "victim"
    victim.mkdir()
    planted = served.share / f".Trash-{os.getuid()}"
    recorded = recorded.format(victim=victim / "authorized_keys")

    async def plant() -> None:
        async with connect_as(served) as conn, conn.start_sftp_client() as sftp:
            for sub in ("", "/files", "/info"):
                await sftp.mkdir(f"{planted}{sub}")
            async with sftp.open(f"{planted}/files/keys", "wb") as f:
                await f.write(b"ssh-ed25519 AAAA the peer's key\n")
            async with sftp.open(f"{planted}/info/keys.trashinfo", "wb") as f:
                await f.write(f"[Trash Info]\nPath={recorded}\nDeletionDate=2026-01-01T10:00:00\n".encode())

    asyncio.run(plant())
    items = trash.list_trash([(str(planted), str(served.share))])  # as if the share were a drive's top
    for item in items:
        assert os.path.normpath(item.original_path).startswith(f"{served.share}/"), item.original_path
        trash.restore(item)
    assert not (victim / "authorized_keys").exists()


@pytest.fixture
def accepting(tmp_path: Path) -> Iterator[Served]:
    """beta's `sd serve --auto-accept`: it takes every Spacedrop of its paired devices."""
    port = free_port()
    asyncio.run(_pair_all(tmp_path, port))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg-b")}
    proc = subprocess.Popen(
        [SD, "--data-dir", str(tmp_path / "b"), "serve", "--auto-accept", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    while not (line := proc.stdout.readline()).startswith("serving "):
        assert line, "`sd serve` did not start"
    try:
        yield Served(tmp_path, port, proc, tmp_path / "b" / "spacedrop")
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_accepted_spacedrop_is_no_bigger_than_what_was_offered(accepting: Served) -> None:
    """The person (or --auto-accept) said yes to 10 bytes: a peer must not write gigabytes instead."""

    async def attack() -> list[object]:
        async with accepting.client() as net:
            link = net.link("beta")
            with pytest.raises(
                SdError, match="a size"
            ):  # a huge file and a negative one would show as 10 bytes
                await link.call("drop_offer", names=[b"a", b"b"], sizes=[1 << 40, 10 - (1 << 40)])
            token = await link.call("drop_offer", names=[b"note.txt"], sizes=[10])
            handle = await link.call("drop_open", drop=token, name=b"note.txt")
            chunk = b"x" * (1 << 20)
            got = await asyncio.gather(
                *[link.call("write_chunk", handle=handle, offset=i << 20, data=chunk) for i in range(8)],
                return_exceptions=True,
            )
            got.append(await asyncio.gather(link.call("write_close", handle=handle), return_exceptions=True))
            return got

    got = asyncio.run(attack())
    landed = sum(f.stat().st_size for f in accepting.share.rglob("*") if f.is_file())
    assert landed <= 10, f"{landed} bytes landed for a drop of 10 offered ({got[0]!r})"
    assert any("10 bytes" in str(g) for g in got), got


def test_a_read_asking_a_negative_length_does_not_lift_the_cap_on_memory_held_for_replies(
    served: Served,
) -> None:
    """Replies to a peer that does not read them are held up to 64 MiB per connection; a request
    weighing less than nothing must not make room for more."""
    (served.share / "big.bin").write_bytes(os.urandom(MAX_READ))

    async def attack() -> int:
        async with connect_as(served) as conn:
            writer, _reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
            big = _b(served.share / "big.bin")

            def read() -> bytes:
                return pack_frame([1, "read_open", {"path": big, "length": MAX_READ}])

            for _ in range(8):  # the channel's window fills: these replies wait, unread
                writer.write(read())
            await asyncio.sleep(1)
            before = served.rss
            writer.write(pack_frame([2, "read_open", {"path": big, "length": -(1 << 62)}]))
            for _ in range(50):
                writer.write(read())
            await asyncio.sleep(4)
            return served.rss - before

    grown = asyncio.run(attack())
    assert grown < 96 << 20, f"the server grew by {grown / 2**20:.0f} MiB holding replies nobody reads"


@pytest.mark.parametrize("leaving", [False, True], ids=["waiting", "dropping-its-connections"])
def test_a_shared_device_hashing_a_huge_sparse_file_does_not_stall_the_server_for_others(
    served: Served, leaving: bool
) -> None:
    """Asked 12 hashes of a 64 GiB sparse file (on one connection, or 4 on each of 3 connections it drops), the server
    still answers another device at once; stopped, it ends at once (it waited for every hash to finish: minutes)."""

    async def ask_hashes(count: int) -> list[asyncio.Future[Any]]:
        async with served.client() as net:
            hashes = [
                asyncio.ensure_future(net.link("beta").call("full_hash", path=_b(served.share / "huge.bin")))
                for _ in range(count)
            ]
            await asyncio.sleep(0.5)
            if not leaving:
                await another_device_is_answered()
            return hashes

    async def another_device_is_answered() -> None:
        async with served.client("c") as other:  # another device asks for one small thing
            await asyncio.wait_for(other.link("beta").call("stat", path=_b(served.share)), 5)

    async def attack() -> None:
        await _huge_file(served)
        asked = [await ask_hashes(4) for _ in range(3)] if leaving else [await ask_hashes(12)]
        for h in (h for hashes in asked for h in hashes):
            h.cancel()
        if leaving:
            await another_device_is_answered()

    asyncio.run(attack())
    served.proc.terminate()  # Ctrl-C on `sd serve`: its hashes for devices gone stop, so it ends at once
    served.proc.wait(5)


async def _huge_file(served: Served) -> None:
    """huge.bin in the share: 64 GiB that hashing reads all of (sparse: no disk used)."""
    async with served.client() as net:
        link = net.link("beta")
        handle = await link.call("write_open", path=_b(served.share / "huge.bin"))
        await link.call("write_chunk", handle=handle, offset=64 << 30, data=b"x")
        await link.call("write_close", handle=handle)


def test_two_shared_devices_hashing_huge_files_together_do_not_take_every_worker_thread_of_the_server(
    served: Served,
) -> None:
    """alpha and gamma each ask 4 hashes of a 64 GiB sparse file: each kept to its 3 threads, together they held the
    6 worker threads of a server of 2 cores (asyncio's cpu count + 4), and a stat, which any request, a copy's
    writes or the server's own work takes a thread for, waited minutes."""

    async def attack() -> None:
        await _huge_file(served)
        async with served.client() as alpha, served.client("c") as gamma:
            hashes = [
                asyncio.ensure_future(net.link("beta").call("full_hash", path=_b(served.share / "huge.bin")))
                for net in (alpha, gamma)
                for _ in range(4)
            ]
            await asyncio.sleep(1)
            try:
                await asyncio.wait_for(alpha.link("beta").call("stat", path=_b(served.share)), 5)
            finally:
                for h in hashes:
                    h.cancel()

    asyncio.run(attack())


# -- what held: kept as regression tests ------------------------------------------------------------


def test_what_a_shared_device_tries_beyond_its_share_is_refused(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = served.tmp / "secret.txt"
    secret.write_text("the owner's secret")
    (served.share / "escape").symlink_to(secret)
    monkeypatch.setenv("XDG_DATA_HOME", str(served.tmp / "xdg-b"))  # the server's trash
    (served.tmp / "old.txt").write_text("the owner's, trashed")
    trash.trash(str(served.tmp / "old.txt"))

    async def attack() -> None:
        async with served.client() as net:
            link = net.link("beta")
            for name in ("search", "locations"):  # requests for full trust only
                with pytest.raises(SdError, match="does not offer"):
                    await link.call("ext", name=name, args={})
            with pytest.raises(SdError, match="outside"):  # an owner's trashed file put back outside
                await link.call("restore", key=b"old.txt")
            with pytest.raises(SdError):
                await link.call("read_open", path=_b(served.share / "escape"), offset=-1, length=10)
            await link.call("hello", name="beta")  # this device's own name
        async with served.client("c") as net:
            await net.link("beta").call("hello", name="alpha-2")
            await net.link("beta").call("hello", name="alpha")  # another device's name
        async with connect_as(served) as conn, conn.start_sftp_client() as sftp:
            await sftp.link(str(served.share / "escape"), str(served.share / "hard"))
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.link(str(secret), str(served.share / "hard2"))

    asyncio.run(attack())
    assert (served.share / "hard").is_symlink()  # the link itself, not the file it names
    assert not (served.tmp / "old.txt").exists() and secret.read_text() == "the owner's secret"
    names = sorted(p.name for p in TrustStore(served.tmp / "b").peers())
    assert len(set(names)) == 2 and "beta" not in names, names


def test_spacedrop_names_a_peer_chooses_land_in_the_spacedrop_folder_only(accepting: Served) -> None:
    names = [b"../up.txt", b"/etc/cron.d/evil", b"line\nbreak", b"\xff\xfe-not-utf8", b"nul\x00byte", b".."]

    async def attack() -> list[str]:
        async with accepting.client() as net:
            link = net.link("beta")
            token = await link.call("drop_offer", names=names, sizes=[1] * len(names))
            refused = []
            for name in names:
                try:
                    handle = await link.call("drop_open", drop=token, name=name)
                    await link.call("write_chunk", handle=handle, offset=0, data=b"x")
                    await link.call("write_close", handle=handle)
                except SdError as exc:
                    refused.append(str(exc))
            return refused

    refused = asyncio.run(attack())
    assert len(refused) == 2 and all("Traceback" not in r for r in refused), refused  # the NUL and ".."
    assert sorted(os.listdir(os.fsencode(accepting.share))) == sorted(
        [b"up.txt", b"evil", b"line\nbreak", b"\xff\xfe-not-utf8"]
    )
    assert accepting.proc.poll() is None


async def test_names_with_brackets_are_shown_as_they_are_in_the_explorers_titles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pane titles are text, not markup: a folder `x[` holding `y]` made `x[/y]`, a closing tag that
    matches nothing (the explorer failed on it), and `[@click=app.quit]` made a title that acts."""
    from tui_support import app_for, explorer, wait_for

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    deep = tmp_path / "x[" / "y]" / "[@click=app.quit]trap"
    deep.mkdir(parents=True)
    app = app_for(tmp_path, deep)
    async with app.run_test(size=(140, 30)) as pilot:
        pane = explorer(app).active
        await wait_for(pilot, lambda: pane.path is not None)
        await pilot.pause()
        title = pane._border_title
        assert title is not None and title.plain.endswith("x[/y]/[@click=app.quit]trap"), title
        assert not title.spans


def test_the_pairing_user_gets_pairing_only_and_user_sd_needs_a_paired_key(served: Served) -> None:
    async def attack() -> None:
        for method in ("password", "keyboard-interactive", "none"):
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect(
                    "127.0.0.1", served.port, username="sd", password="sd", known_hosts=None,
                    client_keys=None, agent_path=None, config=None, preferred_auth=method,
                )  # fmt: skip
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="sd-pair", known_hosts=None,
            client_keys=None, agent_path=None, config=None, preferred_auth="none",
        ) as conn:  # fmt: skip
            ran = await conn.run("cat /etc/hostname", timeout=10)
            assert ran.exit_status != 0 and not ran.stdout
        for ask in ("sftp", "forward"):
            async with asyncssh.connect(
                "127.0.0.1", served.port, username="sd-pair", known_hosts=None,
                client_keys=None, agent_path=None, config=None, preferred_auth="none",
            ) as conn:  # fmt: skip
                with pytest.raises((asyncssh.Error, OSError)):
                    if ask == "sftp":
                        async with conn.start_sftp_client() as sftp:
                            await sftp.listdir(str(served.share))
                    else:
                        await conn.open_connection("127.0.0.1", served.port)

    asyncio.run(attack())


def test_a_peer_cannot_take_a_name_that_looks_like_another_devices_by_invisible_characters(
    served: Served,
) -> None:
    async def attack() -> None:
        async with served.client("c") as net:
            await net.link("beta").call("hello", name="alpha\u200b")  # a zero-width space: shows as "alpha"

    asyncio.run(attack())
    names = sorted(p.name for p in TrustStore(served.tmp / "b").peers())
    assert names == ["alpha", "alpha-2"], names


async def test_a_device_asks_one_spacedrop_at_a_time(tmp_path: Path) -> None:
    """Each offer puts a question in front of the person; a peer sending offer after offer must
    not bury the explorer under hundreds of them."""
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b, host_trust="shared")
        with a.bus.subscribe(DropOffered) as offers:
            link = b.link("alpha")
            calls = [
                asyncio.ensure_future(link.call("drop_offer", names=[f"f{i}".encode()], sizes=[1]))
                for i in range(50)
            ]
            asked = [await asyncio.wait_for(offers.__anext__(), 5)]
            await asyncio.sleep(1)
            while True:
                try:
                    asked.append(await asyncio.wait_for(offers.__anext__(), 0.3))
                except TimeoutError:
                    break
            for event in asked:
                assert isinstance(event, DropOffered)
                a.answer_drop(event.drop_id, False)
            got = await asyncio.gather(*calls, return_exceptions=True)
        assert len(asked) == 1, f"{len(asked)} questions asked at once"
        refused = [g for g in got if isinstance(g, SdError)]
        assert len(refused) == 49 and "waits for an answer" in str(refused[0])


def test_a_shared_device_hashing_huge_files_leaves_another_device_a_thread_for_its_own_hash(served: Served) -> None:
    """alpha asks 4 hashes of a 64 GiB sparse file: it holds its 3 threads, and gamma's hash of a small file (a copy's
    check, as its deletes and trash) still finds one of the server's (with all devices held to 3 together, it waited
    minutes for alpha's)."""

    async def attack() -> None:
        await _huge_file(served)
        (served.share / "small.txt").write_text("small")
        async with served.client() as alpha, served.client("c") as gamma:
            hashes = [
                asyncio.ensure_future(alpha.link("beta").call("full_hash", path=_b(served.share / "huge.bin")))
                for _ in range(4)
            ]
            await asyncio.sleep(1)
            try:
                await asyncio.wait_for(gamma.link("beta").call("full_hash", path=_b(served.share / "small.txt")), 5)
            finally:
                for h in hashes:
                    h.cancel()

    asyncio.run(attack())


def test_a_shared_device_asking_restores_from_a_full_trash_does_not_stall_the_server_for_others(served: Served) -> None:
    """Each restore reads every item of the trash to find the one asked (trash.find: 0.8 s CPU for 30,000 items, which
    a device can trash one by one): 60 restores asked at once held every worker thread, and another device's stat
    waited behind them, as for hashes before DEVICE_THREADS."""
    trash = served.tmp / "xdg-b" / "Trash"
    (trash / "info").mkdir(parents=True)
    (trash / "files").mkdir()
    for i in range(30_000):
        (trash / "files" / f"f{i}").touch()
        (trash / "info" / f"f{i}.trashinfo").write_text(
            f"[Trash Info]\nPath={served.share}/f{i}\nDeletionDate=2024-01-01T00:00:00\n"
        )

    async def attack() -> None:
        async with served.client() as alpha, served.client("c") as gamma:
            asked = [asyncio.ensure_future(alpha.link("beta").call("restore", key=b"nope")) for _ in range(60)]
            await asyncio.sleep(1)
            try:
                await asyncio.wait_for(gamma.link("beta").call("stat", path=_b(served.share)), 5)
            finally:
                for a in asked:
                    a.cancel()

    asyncio.run(attack())


def test_the_text_of_an_error_a_paired_devices_core_sends_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """`sd note beta:/srv/x TEXT` makes the file known on beta by beta's core (Entries.make_known), whose errors `sd`
    prints: beta's core answering with an error whose text drives the terminal (a title, a cleared screen) had it
    printed raw, where the same text sent over sd-rpc is escaped (frames.decode_error)."""
    from sdcore.api import wire
    from sdcore.sdpath import SdPath

    async def lying_core(reader: Any, writer: Any, channel: Any) -> None:
        writer.write(wire.frame({"hello": {"device": str(beta_id), "protocol": 1, "pid": 1}}))
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                asked = wire.decode(await wire.read_frame(reader, 1 << 20))
                said = "/srv/x does not exist\x1b]0;owned\x07\x1b[2J"
                writer.write(wire.frame({"id": asked["id"], "error": ["NotFound", said]}))

    async def attack() -> None:
        nonlocal beta_id
        async with (
            device_network(tmp_path / "a", "alpha", listen=False) as alpha,
            device_network(tmp_path / "b", "beta") as beta,
        ):
            await pair(beta, alpha)
            beta_id = beta.device.id
            beta.api_server = lying_core
            async with alpha.core_session(beta.device.id) as core:
                with pytest.raises(SdError) as raised:
                    await core.library("Photos").entries.make_known(SdPath(beta.device.id, "/srv/x"))
            beta.api_server = refusing_core
            with pytest.raises(SdError) as refused:
                await alpha.api_of(beta.device.id)
        for error in (raised.value, refused.value):
            assert "\x1b" not in str(error) and "\\x1b]0;owned\\x07" in str(error), str(error)

    async def refusing_core(reader: Any, writer: Any, channel: Any) -> None:  # its hello an error, as a busy core's
        writer.write(wire.frame({"error": "busy\x1b]0;owned\x07\x1b[2J"}))
        await writer.drain()

    beta_id = None
    asyncio.run(attack())
