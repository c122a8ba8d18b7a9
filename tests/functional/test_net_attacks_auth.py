"""Attacks on `sd serve`'s logins, tried the way an attacker on the network would: paramiko and OpenSSH
against a real server on 127.0.0.1. A connection is who its verified key says, and nothing more."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from sdcore.errors import SdError
from sdcore.net import Network
from sdcore.net.network import PAIR_USER
from sdcore.net.testing import device_network, pair
from tests.functional.forged_logins import Forged, auth_again, login


def _own_key(net: Network) -> paramiko.PKey:
    return paramiko.Ed25519Key(filename=str(net.device.data_dir / "device_key"))


def _what_it_gets(transport: paramiko.Transport, secret: Path, planted: Path) -> list[str]:
    """Everything an authenticated connection managed to do beyond pairing."""
    got = []
    try:
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        try:
            with sftp.open(str(secret)) as f:
                got.append(f"sftp read {f.read()!r}")
        except OSError:
            pass
        try:
            with sftp.open(str(planted), "w") as f:
                f.write(b"planted")
            got.append("sftp write")
        except OSError:
            pass
    except (paramiko.SSHException, EOFError):
        pass
    for command in ("id", f"scp -f {secret}"):
        try:
            chan = transport.open_session(timeout=5)
            chan.settimeout(5)
            chan.exec_command(command)
            output = chan.makefile("rb").read()
            if chan.recv_exit_status() == 0 or b"secret" in output:
                got.append(f"exec {command!r}: {output!r}")
        except (paramiko.SSHException, EOFError, OSError):
            pass
    for where in (("127.0.0.1", 22), ("127.0.0.1", transport.getpeername()[1])):
        try:
            transport.open_channel("direct-tcpip", where, ("127.0.0.1", 1), timeout=5).close()
            got.append(f"port forwarding to {where}")
        except (paramiko.SSHException, EOFError, OSError):
            pass
    try:
        if transport.request_port_forward("127.0.0.1", 0):
            got.append("remote port forwarding")
    except (paramiko.SSHException, EOFError, OSError):
        pass
    return got


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("secret")
    return path


async def test_a_paired_devices_public_key_with_a_wrong_signature_then_the_pairing_user_gets_nothing(
    tmp_path: Path, secret: Path
) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)  # alpha trusts beta fully: beta's public key is what the attacker offers
        planted = tmp_path / "planted.txt"

        def attack() -> tuple[bool, list[str]]:
            transport = login(a.port)
            try:
                with pytest.raises(paramiko.AuthenticationException):
                    transport.auth_publickey("me", Forged(b.public_key))
                auth_again(transport, PAIR_USER)  # the same login, now as the pairing user
                return transport.is_authenticated(), _what_it_gets(transport, secret, planted)
            finally:
                transport.close()

        authenticated, got = await asyncio.to_thread(attack)
        assert authenticated  # pairing needs no key...
        assert got == []  # ...and gives nothing but the pairing subsystem
        assert not planted.exists()


async def test_a_wrong_signature_alone_does_not_log_in(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)

        def attack() -> bool:
            transport = login(a.port)
            try:
                with pytest.raises(paramiko.AuthenticationException):
                    transport.auth_publickey("me", Forged(b.public_key))
                with pytest.raises(paramiko.SSHException):
                    auth_again(transport, "me")
                return transport.is_authenticated()
            finally:
                transport.close()

        assert not await asyncio.to_thread(attack)


async def test_a_shared_device_that_first_offers_a_full_devices_key_stays_shared(
    tmp_path: Path, secret: Path
) -> None:
    async with (
        device_network(tmp_path / "a", "alpha") as a,
        device_network(tmp_path / "b", "beta") as b,
        device_network(tmp_path / "c", "carol") as c,
    ):
        await pair(a, b)  # beta: full trust
        await pair(a, c, host_trust="shared")  # carol: shared, and nothing is shared

        def attack() -> list[str]:
            transport = login(a.port)
            try:
                with pytest.raises(paramiko.AuthenticationException):
                    transport.auth_publickey("me", Forged(b.public_key))
                auth_again(transport, "me", _own_key(c))
                sftp = paramiko.SFTPClient.from_transport(transport)
                assert sftp is not None
                got = []
                for path in (str(secret), "/etc/passwd"):
                    try:
                        with sftp.open(path) as f:
                            got.append(f.read().decode()[:20])
                    except OSError:
                        pass
                return got
            finally:
                transport.close()

        assert await asyncio.to_thread(attack) == []


async def test_a_paired_device_may_not_forward_ports(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)

        def attack() -> list[str]:
            transport = login(a.port)
            try:
                transport.auth_publickey("me", _own_key(b))
                got = []
                try:
                    transport.open_channel("direct-tcpip", ("127.0.0.1", a.port), ("127.0.0.1", 1), timeout=5)
                    got.append("direct-tcpip")
                except (paramiko.SSHException, EOFError, OSError):
                    pass
                try:
                    if transport.request_port_forward("127.0.0.1", 0):
                        got.append("tcpip-forward")
                except (paramiko.SSHException, EOFError, OSError):
                    pass
                return got
            finally:
                transport.close()

        assert await asyncio.to_thread(attack) == []


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
async def test_ssh_with_a_command_fails_after_one_line_saying_why(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{a.port} {a.public_key}\n")
        proc = await asyncio.create_subprocess_exec(
            "ssh", "-i", str(b.device.data_dir / "device_key"), "-p", str(a.port),
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-F", "/dev/null", "me@127.0.0.1", "id",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode != 0
        assert out == b""
        lines = err.decode().splitlines()
        assert len(lines) == 1 and "sftp" in lines[0], lines


# -- a pairing code lives as long as its command ----------------------------------------------------

_SCRIPT = Path(sys.executable).parent / "sd"
# the `sd` installed beside this Python (a system Python puts scripts elsewhere: then run it as a module)
SD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from sdtui.cli import main; main()"]


def _sd(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SD, "--data-dir", str(data_dir), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SD, "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> list[str]:
    """Lines of the process's stdout up to the one with `marker` (a reader thread keeps the deadline)."""
    assert proc.stdout is not None
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if marker in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"{marker!r} never printed; got {lines}"
    return lines


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`sd serve` for device alpha in tmp_path/a, and the address it listens on."""
    assert _sd(tmp_path / "a", "device", "rename", "alpha").returncode == 0
    assert _sd(tmp_path / "b", "device", "rename", "beta").returncode == 0
    server = _start(tmp_path / "a", "serve", "--listen", "127.0.0.1:0")
    try:
        address = _read_until(server, "serving alpha")[-1].rsplit(" ", 1)[1]
        yield server, address
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_pairing_code_ends_with_the_command_that_showed_it(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str], how: signal.Signals
) -> None:
    server, address = served
    generate = _start(tmp_path / "a", "network", "pair", "generate")  # handed to the running server
    try:
        join_line = next(line for line in _read_until(generate, "--host") if "pair join" in line)
        words = join_line.split("sd network pair join", 1)[1].split()[:12]
        generate.send_signal(how)
        generate.wait(20)
    finally:
        generate.kill()
        generate.wait()
    _read_until(server, "pairing: withdrawn")
    late = _sd(tmp_path / "b", "network", "pair", "join", *words, "--host", address)
    assert late.returncode == 1
    assert "withdrawn" in late.stderr and "Traceback" not in late.stderr
    assert _sd(tmp_path / "a", "network", "devices", "--json").stdout.strip() == "[]"
    assert server.poll() is None  # the server itself goes on


# -- one name, one device --------------------------------------------------------------------------


async def test_two_devices_with_one_name_get_distinct_names(tmp_path: Path) -> None:
    async with (
        device_network(tmp_path / "a", "vm") as a,
        device_network(tmp_path / "b", "vm") as b,
        device_network(tmp_path / "c", "vm") as c,
        device_network(tmp_path / "d", "laptop") as d,
    ):
        await pair(a, b)  # the same name as this device
        await pair(a, c)  # and as a paired one
        await pair(a, d)
        assert {p.name: p.id for p in a.devices()} == {
            "vm-2": b.device.id, "vm-3": c.device.id, "laptop": d.device.id
        }  # fmt: skip
        assert [p.name for p in b.devices()] == ["vm-2"]
        d.device.rename("vm")  # renamed on its side: its new name reaches alpha at its next hello
        await a.link(d.device.id).connect()
        assert a.trust.get(d.device.id).name == "vm-4"  # type: ignore[union-attr]
        assert a.device_id_of("vm") == a.device.id
        assert a.device_id_of("vm-4") == d.device.id


async def test_a_name_of_this_device_and_of_a_paired_one_is_refused(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "vm") as b:
        await pair(a, b)
        own = str(a.device.id)
    assert _sd(tmp_path / "a", "device", "rename", "vm").returncode == 0  # after pairing: now both are vm
    (tmp_path / "here.txt").write_text("local")
    listed = _sd(tmp_path / "a", "ls", f"vm:{tmp_path}")
    assert listed.returncode == 1 and "here.txt" not in listed.stdout
    assert listed.stderr.splitlines()[-1].startswith("error: 'vm' could be this device, vm ("), listed.stderr
    removed = _sd(tmp_path / "a", "rm", f"vm:{tmp_path / 'here.txt'}")
    assert removed.returncode == 1 and (tmp_path / "here.txt").exists()
    assert "Traceback" not in listed.stderr + removed.stderr
    mine = _sd(tmp_path / "a", "ls", f"{own[:8]}:{tmp_path}", "--json")  # an id prefix says which
    assert mine.returncode == 0 and "here.txt" in mine.stdout, mine.stderr


# -- what a peer chose never drives the terminal ----------------------------------------------------

EVIL = "evil\x1b]0;PWNED\x07\x1b[31mRED"
EVIL_SHOWN = "evil\\x1b]0;PWNED\\x07\\x1b[31mRED"


def _raw(text: str) -> bool:
    return any(c in text for c in "\x1b\x07\x9b")


async def test_sd_serve_and_sd_network_show_a_peers_chosen_names_escaped(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", EVIL) as b:
        await pair(a, b)
        alpha = a.device.id
    devices = _sd(tmp_path / "a", "network", "devices")
    assert EVIL_SHOWN in devices.stdout and not _raw(devices.stdout)
    server = _start(tmp_path / "a", "serve", "--listen", "127.0.0.1:0", "--auto-accept")
    try:
        address = _read_until(server, "serving alpha")[-1].rsplit(" ", 1)[1]
        async with device_network(tmp_path / "b", EVIL, listen=False) as b:
            b.trust.add(dataclasses.replace(b.trust.get(alpha), addresses=(address,)))  # type: ignore[type-var]
            dropped = tmp_path / f"photo\x1b[2J{EVIL}.jpg"
            dropped.write_text("x")
            await b.drop(alpha, [str(dropped)])
        unpaired = _sd(tmp_path / "a", "network", "unpair", str(b.device.id)[:8])
        assert unpaired.returncode == 0 and EVIL_SHOWN in unpaired.stdout and not _raw(unpaired.stdout)
        log = _read_until(server, "drop from ")  # a drop's own connection ending is not logged as a loss
    finally:
        server.terminate()
        server.wait(10)
    shown = "\n".join(log)
    assert (
        f"connected: {EVIL_SHOWN}" in shown
        and f"drop from {EVIL_SHOWN}: photo\\x1b[2J{EVIL_SHOWN}.jpg" in shown
    )
    assert not _raw(shown)


async def test_an_error_a_peer_sends_is_shown_escaped(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)

        async def search(peer: object, query: str) -> None:
            raise SdError(f"no such thing\x1b]0;PWNED\x07\x1b[2J{EVIL}")

        b.expose("search", search)  # what `sd search --device beta` asks
        proc = await asyncio.create_subprocess_exec(
            *SD, "--data-dir", str(tmp_path / "a"), "search", "x", "--device", "beta",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"no such thing\\x1b]0;PWNED\\x07\\x1b[2J{EVIL_SHOWN}" in err.decode()
    assert not _raw((out + err).decode())


async def test_search_hits_from_a_peer_are_told_as_that_peer_s_whatever_device_they_claim(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)

        async def search(peer: object, query: str) -> list[dict[str, object]]:
            hit = {"entry_id": 7, "location_id": 1, "path": "/srv/x.txt", "relative": "x.txt", "name": "x.txt",
                   "kind": "file", "object_kind": "text", "size": 1, "mtime": 0.0}  # fmt: skip
            return [{**hit, "device_id": str(a.device.id)}]  # claims the asker's own disk

        b.expose("search", search)
        proc = await asyncio.create_subprocess_exec(
            *SD, "--data-dir", str(tmp_path / "a"), "search", "x", "--device", "beta", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    (hit,) = json.loads(out)
    assert (hit["path"], hit["device_id"]) == ("/srv/x.txt", str(b.device.id))


async def test_a_renamed_device_tells_its_paired_devices_at_once(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        b.device.rename("beta-laptop")
        assert await b.announce() == ["alpha"]
        assert a.trust.get(b.device.id).name == "beta-laptop"  # type: ignore[union-attr]


async def test_a_paired_device_points_this_one_only_at_itself_and_once_a_connection(tmp_path: Path) -> None:
    """Where a device that joined without a server listens comes in its hello: the host is the one its connection
    came from whatever it says, and a flood of hellos with other ports does not rewrite the trust store."""
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta", listen=False) as b:
        await pair(a, b)
        assert a.trust.get(b.device.id).addresses == ()  # type: ignore[union-attr]
        link = b.link("alpha")
        for port in range(1000, 1200):
            await link.call("hello", name="beta", id=str(b.device.id), port=port, host="203.0.113.9",
                            addresses=["203.0.113.9:22"])  # fmt: skip
        await link.call("hello", name="beta", id=str(b.device.id), port=True)
        assert a.trust.get(b.device.id).addresses == ("127.0.0.1:1000",)  # type: ignore[union-attr]
