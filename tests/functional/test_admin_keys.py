"""`sd admin allow|list|revoke`: the keys that may administer a core, kept in the data dir; a running `sd serve`
follows every change at once, and logs who came, from where, with which key."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.api.client import attach
from sdcore.core import Core
from sdcore.errors import SdError

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]
SSH_OPTIONS = [
    "-F", "none", "-T", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
]  # fmt: skip


def keygen(where: Path, name: str, kind: str = "ed25519", bits: int | None = None, comment: str = "") -> Path:
    """A key pair made by ssh-keygen; the public key's path."""
    size = ["-b", str(bits)] if bits else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", comment, "-f", str(where / name)], check=True
    )
    return where / f"{name}.pub"


def sd(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SD, "--data-dir", str(data_dir), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=60, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_a_person_allows_lists_and_revokes_admin_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    laptop = keygen(tmp_path, "id_ed25519", comment="me@laptop")
    phone = keygen(tmp_path, "phone_rsa", "rsa", 3072)  # no comment: named after its file

    added = sd(data, "admin", "allow", str(laptop))
    assert added.returncode == 0, added.stderr
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(laptop)], capture_output=True, text=True).stdout.split()[1]
    assert added.stdout.strip() == f"allowed admin key me@laptop (ED25519 {fingerprint})"
    assert sd(data, "admin", "allow", str(phone)).stdout.startswith("allowed admin key phone_rsa (RSA 3072 SHA256:")
    assert (data / "admins.json").stat().st_mode & 0o777 == 0o600

    table = sd(data, "admin", "list").stdout.splitlines()
    assert table[0].split() == ["name", "type", "fingerprint", "added"]
    assert table[1].split()[:3] == ["me@laptop", "ED25519", fingerprint]
    assert table[2].split()[:4] == ["phone_rsa", "RSA", "3072", "SHA256:" + table[2].split()[3][7:]]
    listed = json.loads(sd(data, "admin", "list", "--json").stdout)
    assert [(k["name"], k["type"]) for k in listed] == [("me@laptop", "ED25519"), ("phone_rsa", "RSA 3072")]
    assert listed[0]["public_key"] == " ".join(laptop.read_text().split()[:2])

    assert "revoked admin key me@laptop" in sd(data, "admin", "revoke", "me@laptop").stdout
    assert one_line_error(sd(data, "admin", "revoke", "me@laptop")) == (
        "error: no admin key called 'me@laptop': see `sd admin list`"
    )
    assert "revoked admin key phone_rsa" in sd(data, "admin", "revoke", listed[1]["fingerprint"]).stdout
    assert sd(data, "admin", "list").stdout.strip() == "no admin keys; `sd admin allow KEYFILE.pub` adds one"

    piped = subprocess.run(
        [*SD, "--data-dir", str(data), "admin", "allow", "-", "--name", "piped"], stdin=laptop.open(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.stdout.strip() == f"allowed admin key piped (ED25519 {fingerprint})", piped.stderr


def test_a_file_that_is_no_public_key_is_refused_in_one_line_and_nothing_is_lost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kept = keygen(tmp_path, "kept", comment="kept")
    assert sd(data, "admin", "allow", str(kept)).returncode == 0
    keygen(tmp_path, "private")
    (tmp_path / "random.pub").write_bytes(os.urandom(200))
    cases = {
        str(tmp_path / "private"): "is a private key: give its public half (the .pub file beside it)",
        str(tmp_path / "missing.pub"): "missing.pub: no such file; give a public key file, e.g. ~/.ssh/id_ed25519.pub",
        str(tmp_path): "is a folder; give a public key file",
        str(tmp_path / "random.pub"): "is not a public key (not text)",
        "/dev/zero": "is too large to be a public key",
    }
    before = (data / "admins.json").read_bytes()
    for path, says in cases.items():
        assert says in one_line_error(sd(data, "admin", "allow", path))
    assert (data / "admins.json").read_bytes() == before


def _pub(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return text


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda t: keygen(t, "k", "rsa", 1024).read_text(), "is a 1024-bit RSA key, too weak: RSA needs 2048 bits"),
        (lambda t: keygen(t, "k", "dsa").read_text(), "DSA keys are too weak"),
        (lambda t: 'from="10.0.0.1",no-pty ' + keygen(t, "k").read_text(), "options come before the key"),
        (lambda t: keygen(t, "k").read_text() + keygen(t, "j").read_text(), "holds 2 lines: give a file with one"),
        (lambda t: "", "holds no public key"),
        (lambda t: "hello world\n", "not an OpenSSH public key"),
        (lambda t: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroken\n", "the key's data is damaged"),
        (lambda t: "ssh-ed25519\n", "has a key type but no key"),
        (lambda t: "sk-ssh-ed25519@openssh.com AAAA x\n", "security-key (FIDO) keys are not taken here"),
    ],
    ids=["rsa-1024", "dsa", "options", "two-keys", "empty", "garbage", "damaged", "type-only", "security-key"],
)
async def test_keys_admins_may_not_have_are_refused_with_what_to_do(
    tmp_path: Path, core: Core, make: object, says: str
) -> None:
    api = Api(core)
    with pytest.raises(SdError) as refused:
        await api.admins.allow(make(tmp_path), file_name="k.pub")  # type: ignore[operator]
    message = str(refused.value)
    assert says in message and "\n" not in message and message.startswith("k.pub")
    assert await api.admins.list() == []


async def test_names_are_printable_and_unique(tmp_path: Path, core: Core) -> None:
    api = Api(core)
    sneaky = keygen(tmp_path, "sneaky", comment="root\x1b]0;PWNED\x07\u202eadmin\u200b").read_text()
    added = await api.admins.allow(sneaky)
    assert added.name == "root]0;PWNEDadmin"  # no control, bidirectional or invisible character
    other = keygen(tmp_path, "other", comment="root\x1b]0;PWNED\x07\u202eadmin\u200b").read_text()
    with pytest.raises(SdError, match="an admin key is called 'root]0;PWNEDadmin' already: give this one another"):
        await api.admins.allow(other)
    with pytest.raises(SdError, match="this key is an admin key already, called 'root]0;PWNEDadmin'"):
        await api.admins.allow(sneaky, name="again")
    with pytest.raises(SdError, match=r"the name 'a\\x1b\[2Jb' holds control or invisible characters"):
        await api.admins.allow(other, name="a\x1b[2Jb")
    assert (await api.admins.allow(other, name="other")).name == "other"
    assert [k.name for k in await api.admins.list()] == ["other", "root]0;PWNEDadmin"]


# -- against a running `sd serve` ---------------------------------------------------------------------


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            if marker in line:
                found.append(line.strip())
                done.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), f"{marker!r} never printed"
    return found[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """`sd serve` on 127.0.0.1 (any free port) for the data dir tmp_path/data: the data dir and the port."""
    data = tmp_path / "data"
    server = subprocess.Popen(
        [*SD, "--data-dir", str(data), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = int(_read_until(server, "serving ").rsplit(":", 1)[1])
        yield data, port
    finally:
        server.terminate()
        server.wait(10)


def _log(data: Path) -> str:
    return (data / "sdtui.log").read_text()


async def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_sd_serve_lets_an_allowed_key_in_and_cuts_it_when_revoked(
    tmp_path: Path, served: tuple[Path, int]
) -> None:
    data, port = served
    keygen(tmp_path, "ops", comment="ops")
    ssh = ["ssh", *SSH_OPTIONS, "-i", str(tmp_path / "ops"), "-p", str(port), "ops@127.0.0.1"]
    refused = subprocess.run([*ssh, "sd", "--version"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr  # not an admin key yet

    allowed = subprocess.run(  # handed to the running core, the key read where the command was typed
        [*SD, "--data-dir", str(data), "admin", "allow", "-"], stdin=(tmp_path / "ops.pub").open(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert allowed.stdout.startswith("allowed admin key ops (ED25519"), allowed.stderr
    attached = await attach(data)  # what an explorer attached to the core sees
    assert attached is not None
    assert [(k.name, k.type) for k in await attached.admins.list()] == [("ops", "ED25519")]
    await attached.close()
    session = await asyncio.create_subprocess_exec(*ssh, "-N", stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await _wait_for(lambda: "login: admin key ops from 127.0.0.1:" in _log(data))
    assert session.returncode is None

    typed = time.monotonic()
    revoked = await asyncio.create_subprocess_exec(*SD, "--data-dir", str(data), "admin", "revoke", "ops")
    assert await revoked.wait() == 0
    answered = time.monotonic()
    await asyncio.wait_for(session.wait(), 10)
    gone = time.monotonic()
    print(f"sd admin revoke: answered in {(answered - typed) * 1000:.0f} ms, ssh gone {(gone - typed) * 1000:.0f} ms")
    assert gone - answered < 2.0  # cut by the time the command answered (a moment more for ssh to see it)
    again = subprocess.run([*ssh, "sd", "--version"], capture_output=True, text=True, timeout=30)
    assert again.returncode == 255 and "Permission denied" in again.stderr

    log = _log(data)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "ops.pub")], capture_output=True, text=True)
    for line in ("admin key ops (ED25519", "login: admin key ops from 127.0.0.1:", "admin key ops (SHA256:",
                 "cut admin key ops from 127.0.0.1:", "its admin key was revoked", "refused login from 127.0.0.1:"):
        assert line in log, line
    assert fingerprint.stdout.split()[1] in log


def test_the_log_escapes_a_command_an_admin_sent(tmp_path: Path, served: tuple[Path, int]) -> None:
    data, port = served
    keygen(tmp_path, "ops", comment="ops")
    assert sd(data, "admin", "allow", str(tmp_path / "ops.pub")).returncode == 0
    ssh = ["ssh", *SSH_OPTIONS, "-i", str(tmp_path / "ops"), "-p", str(port), "ops@127.0.0.1"]
    subprocess.run([*ssh, "sd \x1b]0;PWNED\x07\n2026-01-01 00:00:00,000 sd[1] INFO forged"], timeout=30, check=False)
    log = _log(data)
    assert "PWNED" in log and "\x1b" not in log and "\x07" not in log
    assert not any(line.startswith("2026-01-01") for line in log.splitlines())


async def test_a_damaged_admin_file_lets_no_admin_key_in_and_says_so(tmp_path: Path) -> None:
    from sdcore.net.testing import device_network

    keygen(tmp_path, "ops", comment="ops")
    async with device_network(tmp_path / "a", "alpha") as a:
        a.admins.allow((tmp_path / "ops.pub").read_text())
        (tmp_path / "a" / "admins.json").write_text('{"admins": [{"name": "ops", "public_key": "ssh-ed25519 AAAA')
        proc = await asyncio.create_subprocess_exec(
            "ssh", *SSH_OPTIONS, "-i", str(tmp_path / "ops"), "-p", str(a.port), "ops@127.0.0.1", "sd", "--version",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 255 and b"Permission denied" in out
    listed = sd(tmp_path / "a", "admin", "list")
    assert "admins.json (the admin keys) is damaged; restore it from a backup" in one_line_error(listed)
