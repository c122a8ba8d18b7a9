"""A paired device is known by its DeviceId: across restarts (trust.json read again), in events, and never by
an id a peer sends in a malformed form (refused with a clear error)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sdcore.device import load_or_create
from sdcore.errors import NotFound, SdError
from sdcore.events import DeviceConnected
from sdcore.net import Network, PermissionDenied
from sdcore.net.frames import NotTrusted, pack_frame, read_frame
from sdcore.net.network import PAIR_SUBSYSTEM, PAIR_USER
from sdcore.net.pairing import PairingError, joiner_side
from sdcore.net.testing import device_network, pair
from sdcore.net.trust import TrustStore, key_text

SD = Path(sys.executable).parent / "sd"


@contextlib.asynccontextmanager
async def _restarted(data_dir: Path, port: int = 0) -> AsyncIterator[Network]:
    """The device of `data_dir` started again: a new process would read its id and trust.json from disk."""
    net = Network(load_or_create(data_dir))
    await net.start(f"127.0.0.1:{port}")
    try:
        yield net
    finally:
        await net.close()


async def test_a_paired_device_is_recognised_after_both_restart_and_a_shared_one_stays_confined(
    tmp_path: Path,
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "plan.txt").write_text("the plan")
    (tmp_path / "secret.txt").write_text("not shared")
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b, host_trust="shared")
        a.trust.add_share(str(share))
        port, alpha, beta = a.port, a.device.id, b.device.id
    stored = json.loads((tmp_path / "a" / "trust.json").read_text())["peers"]
    # on disk the id stays its text, as before
    assert [(p["id"], p["trust"]) for p in stored] == [(str(beta), "shared")]

    async with _restarted(tmp_path / "a", port) as a, _restarted(tmp_path / "b") as b:
        with a.bus.subscribe(DeviceConnected) as connected:
            fs = b.fs_for(alpha)
            assert b"".join([c async for c in fs.open_read(str(share / "plan.txt"))]) == b"the plan"
            event = await asyncio.wait_for(connected.__anext__(), 10)
        assert (event.device_id, event.name) == (beta, "beta")  # the id the explorer keys its sidebar by
        assert a.trust.get(beta) is not None and a.resolve(beta).trust == "shared"
        assert a.device_id_of(str(beta)[:8]) == beta
        with pytest.raises(PermissionDenied, match="outside the folders"):
            await fs.stat(str(tmp_path / "secret.txt"))

        TrustStore(tmp_path / "a").remove(beta)  # `sd network unpair beta` in another process
        with pytest.raises(SdError, match="no longer trusts this one"):
            await fs.stat(str(share / "plan.txt"))
        with pytest.raises(NotFound):
            a.resolve(beta)

    listed = subprocess.run(
        [SD, "--data-dir", str(tmp_path / "b"), "network", "devices", "--json"],
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert [(d["id"], d["name"]) for d in json.loads(listed.stdout)] == [(str(alpha), "alpha")]


def test_a_device_id_as_text_is_a_bug_the_trust_store_says_so(tmp_path: Path) -> None:
    """A text id would match no paired device, silently: as if the device were not paired."""
    store = TrustStore(tmp_path)
    with pytest.raises(TypeError, match="DeviceId"):
        store.get(str(load_or_create(tmp_path / "x").id))  # type: ignore[arg-type]


def test_a_trust_json_with_a_damaged_id_is_refused_clearly_and_kept(tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    key = key_text(load_or_create(tmp_path / "x").key)
    trust.write_text(
        json.dumps({"peers": [{"id": "not-an-id", "name": "x", "public_key": key}], "shares": []})
    )
    shown = subprocess.run(
        [SD, "--data-dir", str(tmp_path), "network", "devices"], capture_output=True, text=True
    )
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert "is damaged; restore it from a backup" in shown.stderr.splitlines()[-1], shown.stderr
    assert "not-an-id" in trust.read_text()  # never written over


@pytest.mark.parametrize("claimed", ["not-an-id", 42, None, b"\x01" * 16])
async def test_a_joiner_that_sends_a_malformed_id_is_refused_and_nothing_is_stored(
    tmp_path: Path, claimed: Any
) -> None:
    async with device_network(tmp_path / "a", "alpha") as a:
        code = a.pair_generate()
        waited = asyncio.create_task(a.wait_paired(timeout=30))
        joiner = load_or_create(tmp_path / "m")
        async with asyncssh.connect(
            "127.0.0.1", a.port, username=PAIR_USER, known_hosts=None, client_keys=None, agent_path=None,
            config=None, preferred_auth="none",
        ) as conn:  # fmt: skip
            writer, reader, _ = await conn.open_session(subsystem=PAIR_SUBSYSTEM, encoding=None)
            me = {"key": key_text(joiner.key), "name": "mallory", "id": claimed}
            with pytest.raises(PairingError, match="malformed device id") as told:
                await joiner_side(code, me, a.public_key, reader, writer)
        assert "Traceback" not in str(told.value)
        with pytest.raises(PairingError, match="malformed device id"):
            await waited
        assert a.devices() == []


class _AnyKey(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True


@contextlib.asynccontextmanager
async def _tampered(key: asyncssh.SSHKey, hello: Any) -> AsyncIterator[str]:
    """A server with a paired device's own key (its software changed) that answers `hello` with `hello`."""

    async def session(process: asyncssh.SSHServerProcess[bytes]) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, asyncssh.Error, ConnectionError):
            rid, _, _ = await read_frame(process.stdin)
            process.stdout.write(pack_frame([rid, True, hello]))
            await process.stdout.drain()
            await process.stdin.read()
        process.exit(0)

    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[key], server_factory=_AnyKey, process_factory=session, encoding=None
    )
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize(
    ("hello", "said"),
    [
        ({"id": "not-an-id", "name": "beta"}, "without a valid device id"),
        ({"id": 42}, "without a valid device id"),
        ({"name": "beta"}, "without a valid device id"),
        (["beta"], "without a valid device id"),
        ("other", "answered as another device"),
    ],
)
async def test_a_paired_device_that_answers_with_a_malformed_or_other_id_is_refused(
    tmp_path: Path, hello: Any, said: str
) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(b, a)
        beta = b.device.id
    if hello == "other":
        hello = {"id": str(load_or_create(tmp_path / "c").id), "name": "beta"}
    async with (
        _restarted(tmp_path / "a") as a,
        _tampered(load_or_create(tmp_path / "b").key, hello) as address,
    ):
        a.trust.add(dataclasses.replace(a.resolve(beta), addresses=(address,)))
        with a.bus.subscribe(DeviceConnected) as connected:
            with pytest.raises(NotTrusted, match=said):
                await a.link(beta).connect()
            assert connected.get_nowait() is None
        assert not a.link(beta).connected
        assert a.trust.get(beta) is not None  # still paired: a person decides, not the peer
