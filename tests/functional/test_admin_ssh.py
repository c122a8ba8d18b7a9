"""Admin keys at the door of `sd serve`: the real OpenSSH client, keys made by ssh-keygen, a real server on 127.0.0.1.
Who gets in is the key whose signature verified; revoking or downgrading takes the admin away at once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from sdcore.net import Network
from sdcore.net.admin_sessions import MAX_SESSIONS, AdminPrograms
from sdcore.net.network import NOT_ADMIN, PAIR_USER
from sdcore.net.testing import device_network, pair
from sdcore.sshlib import asyncssh
from tests.functional.forged_logins import Forged, auth_again, login

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")

LOG = "sdcore.net.admin"
DENIED = "Permission denied"


def keygen(where: Path, name: str, kind: str = "ed25519", comment: str | None = None) -> Path:
    """A key pair made by ssh-keygen; the private key's path (the public one is beside it, .pub)."""
    key = where / name
    bits = ["-b", "3072"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", comment or f"{name}@test", "-f", str(key)], check=True
    )
    return key


def ssh_args(net: Network, key: Path, *more: str) -> list[str]:
    return [
        "ssh", "-F", "none", "-i", str(key), "-p", str(net.port), "-T",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "admin@127.0.0.1", *more,
    ]  # fmt: skip


async def ssh(net: Network, key: Path, *command: str) -> tuple[int, str]:
    """`ssh -i KEY HOST COMMAND`: its exit status and what it printed (stdout and stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *ssh_args(net, key, *command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def logged_in_as_admin(code: int, output: str) -> bool:
    """An exec request answered by the admin's side of the server (not refused at login, nor as a non-admin)."""
    return code != 255 and DENIED not in output and NOT_ADMIN not in output


async def until(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def admins_connected(net: Network) -> list[str]:
    return [inc.admin for inc in net._incoming if inc.admin is not None]


async def test_an_allowed_key_gets_in_and_an_unknown_one_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOG)
    ops, stranger = keygen(tmp_path, "ops"), keygen(tmp_path, "stranger")
    async with device_network(tmp_path / "a", "alpha") as a:
        allowed = a.admins.allow((tmp_path / "ops.pub").read_text(), file_name="ops.pub")
        assert allowed.name == "ops@test"  # the key's comment
        assert logged_in_as_admin(*await ssh(a, ops, "sd", "--version"))
        code, output = await ssh(a, stranger, "sd", "--version")
        assert code == 255 and DENIED in output
    accepted = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login:")]
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused login")]
    assert len(accepted) == 1 and "admin key ops@test from 127.0.0.1:" in accepted[0]
    assert allowed.fingerprint in accepted[0] and "as user 'admin'" in accepted[0]
    assert len(refused) == 1 and "neither an admin key nor a paired device" in refused[0]
    stranger_fp = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "stranger.pub")], capture_output=True, text=True)
    assert stranger_fp.stdout.split()[1] in refused[0]


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
async def test_ecdsa_and_rsa_admin_keys_get_in_too(tmp_path: Path, kind: str) -> None:
    key = keygen(tmp_path, f"id_{kind}", kind)
    async with device_network(tmp_path / "a", "alpha") as a:
        a.admins.allow((tmp_path / f"id_{kind}.pub").read_text())
        assert logged_in_as_admin(*await ssh(a, key, "sd", "--version"))


async def test_a_revoked_key_is_refused(tmp_path: Path) -> None:
    ops = keygen(tmp_path, "ops")
    async with device_network(tmp_path / "a", "alpha") as a:
        a.admins.allow((tmp_path / "ops.pub").read_text(), name="ops")
        assert logged_in_as_admin(*await ssh(a, ops, "sd", "--version"))
        a.revoke_admin("ops")
        code, output = await ssh(a, ops, "sd", "--version")
        assert code == 255 and DENIED in output


async def test_an_admin_key_is_not_a_device_it_gets_no_files(tmp_path: Path) -> None:
    ops = keygen(tmp_path, "ops")
    (tmp_path / "secret.txt").write_text("secret")
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)  # beta, a device with full trust, shows what stock sftp and scp would get
        a.admins.allow((tmp_path / "ops.pub").read_text())

        async def fetch(program: str, key: Path, to: Path) -> None:
            """Stock sftp, or scp with its own protocol (-O: `scp -f` run over an exec request)."""
            options = ssh_args(a, key)[1:-1]
            options[options.index("-p")] = "-P"
            options.remove("-T")
            secret = tmp_path / "secret.txt"
            args = ("-b", "-", *options, "admin@127.0.0.1") if program == "sftp" else (
                "-O", *options, f"admin@127.0.0.1:{secret}", str(to))  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                program, *args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            await asyncio.wait_for(proc.communicate(f"get {secret} {to}\n".encode()), 30)

        for program in ("sftp", "scp"):
            await fetch(program, b.device.data_dir / "device_key", tmp_path / f"beta-{program}")
            await fetch(program, ops, tmp_path / f"ops-{program}")
            assert (tmp_path / f"beta-{program}").read_text() == "secret"
            assert not (tmp_path / f"ops-{program}").exists()


async def test_a_full_device_is_an_admin_a_shared_one_is_not(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    async with (
        device_network(tmp_path / "a", "alpha") as a,
        device_network(tmp_path / "b", "beta") as b,
        device_network(tmp_path / "c", "carol") as c,
    ):
        await pair(a, b)
        await pair(a, c, host_trust="shared")
        assert logged_in_as_admin(*await ssh(a, b.device.data_dir / "device_key", "sd", "--version"))
        code, output = await ssh(a, c.device.data_dir / "device_key", "sd", "--version")
        assert code == 1 and output.strip() == NOT_ADMIN  # logged in (its files: shares), but no admin
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "login: device beta from 127.0.0.1:" in logged and "full trust, admin beta" in logged
    assert "login: device carol from 127.0.0.1:" in logged and "shared trust, not an admin" in logged
    assert "refused command 'sd --version' from 127.0.0.1:" in logged and "device carol, not an admin" in logged


async def test_the_log_escapes_the_name_a_device_chose(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    evil = "evil\x1b]0;PWNED\x07\x1b[2J"
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", evil) as b:
        await pair(a, b)
        await b.link(a.device.id).connect()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "login: device evil\\x1b]0;PWNED\\x07\\x1b[2J from 127.0.0.1:" in logged
    assert "\x1b" not in logged and "\x07" not in logged


async def open_session(net: Network, key: Path) -> asyncio.subprocess.Process:
    """`ssh -N`: a connection that stays open until the server ends it; returned once it is logged in."""
    before = len(net._incoming)
    proc = await asyncio.create_subprocess_exec(
        *ssh_args(net, key, "-N"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await until(lambda: len(net._incoming) > before)
    return proc


async def seconds_until_exit(proc: asyncio.subprocess.Process, since: float) -> float:
    await asyncio.wait_for(proc.wait(), 10)
    return time.monotonic() - since


async def test_revoking_cuts_an_open_session_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOG)
    ops, dev = keygen(tmp_path, "ops"), keygen(tmp_path, "dev")
    async with device_network(tmp_path / "a", "alpha") as a:
        a.admins.allow((tmp_path / "ops.pub").read_text(), name="ops")
        a.admins.allow((tmp_path / "dev.pub").read_text(), name="dev")
        session, other = await open_session(a, ops), await open_session(a, dev)
        assert sorted(admins_connected(a)) == ["dev", "ops"]
        began = time.monotonic()
        a.revoke_admin("ops")
        cut = await seconds_until_exit(session, began)
        assert cut < 2.0
        assert admins_connected(a) == ["dev"] and other.returncode is None  # the other key's session goes on
        other.terminate()
        await other.wait()
    print(f"revoke -> ssh client gone: {cut * 1000:.0f} ms")
    assert any(r.getMessage().startswith("cut admin key ops from 127.0.0.1:") for r in caplog.records)


async def test_a_key_allowed_or_revoked_by_another_process_counts_at_once(tmp_path: Path) -> None:
    ops = keygen(tmp_path, "ops")
    async with device_network(tmp_path / "a", "alpha") as a:
        elsewhere = Network(a.device).admins  # another process's view of the same admins.json
        elsewhere.allow((tmp_path / "ops.pub").read_text(), name="ops")
        session = await open_session(a, ops)
        began = time.monotonic()
        await asyncio.to_thread(elsewhere.revoke, "ops")
        cut = await seconds_until_exit(session, began)
    print(f"admins.json edited -> ssh client gone: {cut * 1000:.0f} ms")
    assert cut < 2.0


async def test_a_device_downgraded_to_shared_loses_admin_at_once(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        session = await open_session(a, b.device.data_dir / "device_key")
        assert admins_connected(a) == ["beta"]
        began = time.monotonic()
        a.trust.add(dataclasses.replace(a.trust.get(b.device.id), trust="shared"))  # type: ignore[type-var]
        assert admins_connected(a) == []  # at once, for anything it asks from now on
        cut = await seconds_until_exit(session, began)
        assert cut < 2.0
        code, output = await ssh(a, b.device.data_dir / "device_key", "sd", "--version")
        assert code == 1 and output.strip() == NOT_ADMIN


# -- an admin key offered without its signature proves nothing --------------------------------------


def _exec(transport: paramiko.Transport, command: str) -> bytes:
    chan = transport.open_session(timeout=5)
    chan.settimeout(5)
    chan.exec_command(command)
    return chan.makefile("rb").read() + chan.makefile_stderr("rb").read()


@pytest.mark.parametrize("then", ["pairing user", "shared device's own key"])
async def test_an_admin_key_with_a_forged_signature_then_another_login_is_no_admin(
    tmp_path: Path, then: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOG)
    keygen(tmp_path, "ops")
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "c", "carol") as c:
        await pair(a, c, host_trust="shared")
        a.admins.allow((tmp_path / "ops.pub").read_text(), name="ops")

        def attack() -> tuple[bool, bytes]:
            transport = login(a.port)
            try:
                with pytest.raises(paramiko.AuthenticationException):
                    transport.auth_publickey("admin", Forged((tmp_path / "ops.pub").read_text()))
                if then == "pairing user":
                    auth_again(transport, PAIR_USER)
                else:
                    auth_again(transport, "admin", paramiko.Ed25519Key(filename=str(c.device.data_dir / "device_key")))
                return transport.is_authenticated(), _exec(transport, "sd --version")
            finally:
                transport.close()

        authenticated, answer = await asyncio.to_thread(attack)
        assert authenticated
        assert admins_connected(a) == []
        assert (NOT_ADMIN if then != "pairing user" else "only pairing is allowed").encode() in answer
    logins = [r.getMessage() for r in caplog.records if r.getMessage().startswith("login:")]
    assert not any("admin key" in line for line in logins)  # pairing beforehand logged in as the pairing user
    assert ("shared trust, not an admin" if then != "pairing user" else "pairing only") in logins[-1]


async def test_a_flood_of_refused_logins_is_one_line_in_the_log_and_the_next_login_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOG)
    ops, stranger = keygen(tmp_path, "ops"), keygen(tmp_path, "stranger")
    async with device_network(tmp_path / "a", "alpha") as a:
        a.admins.allow((tmp_path / "ops.pub").read_text(), file_name="ops.pub")
        for _ in range(4):  # 16 refused logins, four at a time
            answers = await asyncio.gather(*(ssh(a, stranger, "sd", "--version") for _ in range(4)))
            assert all(code == 255 and DENIED in output for code, output in answers)
        assert logged_in_as_admin(*await ssh(a, ops, "sd", "--version"))
    messages = [r.getMessage() for r in caplog.records]
    refused = [m for m in messages if m.startswith("refused login")]
    assert len(refused) == 1 and "from 127.0.0.1:" in refused[0], refused  # the other 15 are counted, not written
    assert any(m.startswith("login: admin key ops@test from 127.0.0.1:") for m in messages)


async def test_the_core_runs_32_sessions_at_most_and_the_next_is_told_to_close_one(tmp_path: Path) -> None:
    waits = (sys.executable, "-c", "import sys; sys.stdin.read()")  # a session's child that runs until it ends
    keys = [keygen(tmp_path, f"ops{i}") for i in range(MAX_SESSIONS // 8 + 1)]  # 8 sessions each, and one more
    async with device_network(tmp_path / "a", "alpha") as a:
        a.serve_programs(AdminPrograms(explorer=waits, command=waits))
        for key in keys:
            a.admins.allow(key.with_suffix(".pub").read_text(), name=key.name)
        sessions = a.admin_sessions
        assert sessions is not None

        def connect(key: Path) -> asyncssh.SSHClientConnection:
            return asyncssh.connect(
                "127.0.0.1", a.port, username="admin", client_keys=[str(key)], known_hosts=None,
                agent_path=None, config=None,
            )  # fmt: skip

        async with contextlib.AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(connect(key)) for key in keys[:-1]]
            processes = [await conn.create_process("sd job list") for conn in connections for _ in range(8)]
            await until(lambda: len(sessions.children) == MAX_SESSIONS, timeout=60)
            another = await stack.enter_async_context(connect(keys[-1]))  # another admin, its first session
            refused = await another.run("sd job list", check=False)
            assert refused.exit_status == 1
            assert refused.stderr == f"this core runs {MAX_SESSIONS} sessions already: close one and try again\n"
            processes[0].stdin.write_eof()  # one ends: the next gets in
            await until(lambda: len(sessions.children) < MAX_SESSIONS, timeout=30)
            await another.create_process("sd job list")
            await until(lambda: len(sessions.children) == MAX_SESSIONS, timeout=30)
        await until(lambda: not sessions.children, timeout=60)  # the connections closed: their children end
