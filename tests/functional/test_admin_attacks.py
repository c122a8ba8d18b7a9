"""Attacks on remote administration over SSH, each as the attacker would run it: a stranger on the LAN (no key),
a device paired with `shared` trust, an admin whose key was revoked, an admin's own client sending what it likes.
Real servers on 127.0.0.1: `sd serve` in a child process, or a Network in this one; OpenSSH, asyncssh and paramiko
clients."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from paramiko.common import cMSG_DISCONNECT

from sdcore import net
from sdcore.api import Api, client
from sdcore.api.client import Disconnected
from sdcore.control import SOCKET_NAME
from sdcore.core import Core
from sdcore.net.admins import AdminStore
from sdcore.net.network import PAIR_USER
from sdcore.net.testing import device_network, pair
from sdcore.sshlib import asyncssh
from tests.functional.ssh_support import ServedCore

pytestmark = [
    pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH's client (ssh) is not installed"),
    pytest.mark.xdist_group("admin_attacks"),  # one worker makes the served core, once (pyproject.toml)
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedCore]:
    """`sd serve` with the laptop paired with full trust (an admin); these attacks change nothing it keeps."""
    core = ServedCore(tmp_path_factory.mktemp("served"))
    try:
        yield core
    finally:
        core.stop()


def _transport(port: int) -> paramiko.Transport:
    transport = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
    transport.start_client(timeout=10)
    return transport


def _bytes_taken(transport: paramiko.Transport, channels: int, each: int) -> int:
    """Open up to `channels` sessions, asking for nothing on them, and push up to `each` bytes into each: what
    the server took (it buffers all of it, for a session that never starts)."""
    block = b"x" * (64 << 10)
    taken = 0
    for _ in range(channels):
        try:
            channel = transport.open_session(timeout=10)
        except paramiko.ChannelException:
            break
        channel.settimeout(1.0)
        sent = 0
        try:
            while sent < each:
                sent += channel.send(block)
        except TimeoutError:  # the server's window is full: it takes no more on this channel
            pass
        taken += sent
    return taken


async def test_a_stranger_on_the_lan_cannot_make_the_server_hold_megabytes_on_channels_it_never_uses(
    tmp_path: Path,
) -> None:
    """Anyone may log in as the pairing user, without a key. Each session channel it opened took a window of
    16 MiB of data before any request, and it could open as many as it liked: 10 of them held 160 MiB."""
    async with device_network(tmp_path / "a", "alpha") as a:

        def attack() -> int:
            transport = _transport(a.port)
            try:
                transport.auth_none(PAIR_USER)
                return _bytes_taken(transport, channels=10, each=4 << 20)
            finally:
                transport.close()

        taken = await asyncio.to_thread(attack)
    assert taken <= 256 << 10, f"the server took {taken >> 10} KiB from a stranger"


async def test_a_shared_device_cannot_open_sessions_without_end(tmp_path: Path) -> None:
    """A device paired with shared trust opens session channels and never uses them, over one connection and then
    over more: the server refuses more than 8 for the device (each may hold a 16 MiB window of its data: 32 of them
    held 512 MiB)."""
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "c", "carol") as c:
        await pair(a, c, host_trust="shared")
        key = paramiko.Ed25519Key(filename=str(c.device.data_dir / "device_key"))

        def attack() -> list[int]:
            transports, opened = [], []
            try:
                for _ in range(4):
                    transport = _transport(a.port)
                    transports.append(transport)
                    transport.auth_publickey("carol", key)
                    for _ in range(100):
                        try:
                            opened.append(transport.open_session(timeout=10))
                        except paramiko.ChannelException:
                            break
                counts = [len([ch for ch in opened if ch.get_transport() is t]) for t in transports]
                opened[0].close()  # one closes: one more may open
                deadline = time.monotonic() + 10
                while True:
                    try:
                        transports[-1].open_session(timeout=10).close()
                        return counts
                    except paramiko.ChannelException:
                        assert time.monotonic() < deadline, "a closed session never made room for another"
                        time.sleep(0.1)
            finally:
                for transport in transports:
                    transport.close()

        counts = await asyncio.to_thread(attack)
    assert counts[0] == 8 and sum(counts) == counts[0], counts


def test_a_shared_device_cannot_tunnel_to_the_control_socket_nor_any_port(tmp_path: Path) -> None:
    """The data dir's control socket serves the whole core API to whoever connects: a shared device asks the
    server to connect it there (ssh -L PORT:SOCKET), or to a TCP port on the server's loopback. Both refused."""
    shared = ServedCore(tmp_path, trust="shared")
    control = shared.data_dir / SOCKET_NAME
    assert control.is_socket()

    async def scenario() -> None:
        async with asyncssh.connect(
            "127.0.0.1", shared.port, username="sd", client_keys=[str(shared.key)], known_hosts=None,
            agent_path=None, config=None,
        ) as conn:  # fmt: skip
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_unix_connection(str(control))
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", shared.port)

    try:
        asyncio.run(scenario())
    finally:
        shared.stop()


async def test_an_admin_key_revoked_by_another_process_loses_its_open_core_api(tmp_path: Path) -> None:
    """An admin holds the core API open (sd-api) when someone runs `sd admin revoke` in another process (which
    only rewrites admins.json): its next request fails, it gets no answer after the revoke."""
    async with Core(tmp_path / "nas") as nas:
        served = net.attach(nas)
        await served.start("127.0.0.1:0")
        key = asyncssh.generate_private_key("ssh-ed25519")
        served.admins.allow(key.export_public_key().decode(), name="ops")
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="ops", client_keys=[key], known_hosts=None, agent_path=None,
            config=None,
        ) as conn:  # fmt: skip
            writer, reader, _ = await conn.open_session(subsystem="sd-api", encoding=None)
            remote = await client.over(reader, writer, "the core of nas", limits=client.REMOTE_LIMITS)
            assert await remote.library().tags.list() == []
            AdminStore(tmp_path / "nas").revoke("ops")
            lost = await asyncio.wait_for(remote.wait_lost(), 10)
            assert isinstance(lost, Disconnected)
            with pytest.raises(Disconnected):
                await remote.library().tags.create("after-revoke")
        assert [t.name for t in await Api(nas).library().tags.list()] == []


def test_the_environment_an_ssh_client_sends_never_reaches_the_command(served: ServedCore) -> None:
    """`ssh -o SetEnv=...`: PYTHONPATH with a sitecustomize.py that would run in the child, SD_DATA_DIR naming
    another data dir, LD_PRELOAD. The command runs as if none was sent."""
    evil = served.tmp / "evil"
    evil.mkdir()
    (evil / "sitecustomize.py").write_text(f"open({str(served.tmp / 'pwned')!r}, 'w').write('ran')\n")
    other = served.tmp / "other-data-dir"
    argv = served.ssh("sd", "library", "list")
    argv[1:1] = ["-o", f"SetEnv=PYTHONPATH={evil} SD_DATA_DIR={other} LD_PRELOAD={evil}/missing.so TERM=\x1b[2J"]
    ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0 and "My Library" in ran.stdout, ran
    assert str(served.data_dir) in ran.stdout
    assert "missing.so" not in ran.stderr  # the loader never saw it
    assert not (served.tmp / "pwned").exists() and not other.exists()


def test_a_command_too_long_for_the_system_is_refused_in_one_short_line(served: ServedCore) -> None:
    """A command with an argument of 200,000 bytes (over the system's limit for one argument): the refusal says so
    in one line, without echoing the whole command back, and the log keeps short lines."""

    async def scenario() -> asyncssh.SSHCompletedProcess:
        async with asyncssh.connect(
            "127.0.0.1", served.port, username="sd", client_keys=[str(served.key)], known_hosts=None,
            agent_path=None, config=None,
        ) as conn:  # fmt: skip
            return await conn.run("sd ls " + "x" * 200_000, check=False)

    refused = asyncio.run(scenario())
    said = str(refused.stderr)
    assert refused.exit_status == 1 and said.count("\n") == 1 and "Argument list too long" in said
    assert len(said) < 1000, f"{len(said)} characters"
    assert max(len(line) for line in served.log().splitlines()) < 5000
    assert served.run("sd", "--version").returncode == 0


def test_a_stranger_cannot_write_a_megabyte_into_the_log_and_roll_the_logins_out(served: ServedCore) -> None:
    """The log keeps the last 4 MiB; it says who logged in and who was refused. A stranger's client ends its
    connection with a reason of its choosing (SSH_MSG_DISCONNECT): 250,000 control characters were logged whole,
    escaped four times as long, so four such connections pushed every login out of the log."""
    assert served.run("sd", "--version").returncode == 0  # a login the log must keep
    transport = _transport(served.port)
    try:
        with pytest.raises(paramiko.BadAuthenticationType):
            transport.auth_none("stranger")
        goodbye = paramiko.Message()
        goodbye.add_byte(cMSG_DISCONNECT)
        goodbye.add_int(2)  # a protocol error: its reason is the text the server reports
        goodbye.add_string("\x01" * 250_000)
        goodbye.add_string("")
        transport._send_message(goodbye)
    finally:
        transport.close()
    deadline = time.monotonic() + 30
    while "refused login from 127.0.0.1" not in served.log():
        assert time.monotonic() < deadline, "the refused login was never logged"
        time.sleep(0.1)
    lines = served.log().splitlines()
    refused = next(line for line in lines if "as user 'stranger'" in line)
    assert len(refused) < 5000, f"a line of {len(refused)} characters"
    assert "\x01" not in refused and "login: device laptop" in served.log()


@pytest.fixture(autouse=True)
def _quiet_asyncssh() -> None:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    raise AssertionError("no VmRSS")


def test_a_stranger_cannot_grow_the_servers_memory_with_requests_nobody_reads(served: ServedCore) -> None:
    """The pairing user (anyone, no key) opens its one session and, before asking for anything, sends 100 MiB of
    environment variables and 50,000 window changes and signals. The server kept every one (an environment
    variable until the channel closed, a window change or signal until a reader took it): its memory grew by as
    much, and more with each request, for as long as the connection lasted."""
    before = _rss_mib(served.proc.pid)
    transport = _transport(served.port)
    try:
        transport.auth_none(PAIR_USER)
        channel = transport.open_session(timeout=10)
        value = "v" * (100 << 10)
        for i in range(1000):
            channel.set_environment_variable(f"K{i}", value)
        for i in range(25_000):
            channel.resize_pty(80 + i % 50, 24)
            if i % 5 == 0:
                channel.transport._send_user_message(_signal(channel, "INT"))  # noqa: SLF001
        assert transport.global_request("sync@sdtui", wait=True) is None  # answered: every request above was read
        grew = _rss_mib(served.proc.pid) - before
    finally:
        transport.close()
    assert grew < 40, f"the server grew by {grew} MiB"


def _signal(channel: paramiko.Channel, name: str) -> paramiko.Message:
    """A `signal` channel request (paramiko has no call for one)."""
    message = paramiko.Message()
    message.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    return message
