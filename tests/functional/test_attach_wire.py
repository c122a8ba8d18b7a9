"""The core API over the control socket, on a small facade: what crosses, what is refused, what a client may hold."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdcore.api import server as api_server
from sdcore.api import wire
from sdcore.api.client import Chain, Disconnected, RemoteApi, attach
from sdcore.control import SOCKET_NAME, ControlServer
from sdcore.errors import NotFound, SdError
from sdcore.events import EventBus, JobProgress, JobStateChanged
from sdcore.sdpath import SdPath

DEVICE = uuid.uuid4()


@wire.register
@dataclass(frozen=True, slots=True)
class Device:
    id: uuid.UUID
    name: str


@wire.register
class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"


@wire.register
@dataclass(frozen=True, slots=True)
class Thing:
    path: SdPath
    kind: Kind
    names: tuple[str, ...]
    data: bytes
    sizes: dict[str, int]


@dataclass(frozen=True)
class Unregistered:
    x: int


for record in (SdPath, JobProgress, JobStateChanged, NotFound):
    wire.register(record)


class Tags:
    def __getitem__(self, name: str) -> Tag:
        return Tag(name)


class Tag:
    def __init__(self, name: str) -> None:
        self._name = name

    async def name(self) -> str:
        return self._name


class ToyApi:
    """A facade as the contract shapes it: async leaves, handles made without I/O, private state under _."""

    def __init__(self) -> None:
        self._secret = "the core"
        self._bus = EventBus()
        self.device = Device(DEVICE, "toy")
        self.tags = Tags()
        self.closed_streams = 0
        self.started = asyncio.Event()

    async def _for_client(self, library: object) -> ToyApi:
        return self

    async def echo(self, value: object, twice: bool = False) -> object:
        return [value, value] if twice else value

    async def fail(self) -> None:
        raise NotFound("no such tag: work; create it with `sd tag create work`")

    async def bug(self) -> None:
        raise ZeroDivisionError("division by zero")

    async def odd(self) -> Unregistered:
        return Unregistered(1)

    async def numbers(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                yield i
                await asyncio.sleep(0)
        finally:
            self.closed_streams += 1

    async def forever(self) -> AsyncIterator[int]:
        try:
            self.started.set()
            while True:
                yield 1
                await asyncio.sleep(0.01)
        finally:
            self.closed_streams += 1

    async def events(self) -> AsyncIterator[object]:
        with self._bus.subscribe() as events:
            self.started.set()
            async for event in events:
                yield event

    async def publish(self, n: int) -> None:
        for i in range(n):
            self._bus.publish(JobProgress("j1", "copy", i, n))
        self._bus.publish(JobStateChanged("j1", "copy", "completed"))

    async def slow(self) -> None:
        await asyncio.sleep(60)


@pytest.fixture
def facade(monkeypatch: pytest.MonkeyPatch) -> ToyApi:
    monkeypatch.setattr(api_server, "FACADE", __name__)
    monkeypatch.setattr(api_server, "_offers", {})
    return ToyApi()


@pytest.fixture
async def served(tmp_path: Path, facade: ToyApi) -> AsyncIterator[tuple[ControlServer, ToyApi]]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    control = ControlServer(data)
    api_server.serve(control, facade)
    await control.start()
    yield control, facade
    await control.close()


@pytest.fixture
async def api(served: tuple[ControlServer, ToyApi]) -> AsyncIterator[RemoteApi]:
    remote = await attach(served[0].path.parent)
    assert remote is not None
    yield remote
    await remote.close()


async def test_no_core_running_attaches_to_nothing(tmp_path: Path) -> None:
    assert await attach(tmp_path) is None
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / SOCKET_NAME))  # a socket left by a core that died: nobody listens
    stale.close()
    assert await attach(tmp_path) is None


async def test_records_cross_unchanged_names_that_are_not_utf8_too(api: RemoteApi) -> None:
    assert api.device == Device(DEVICE, "toy")
    odd = os.fsdecode(b"caf\xe9 \xff.txt")
    thing = Thing(SdPath(DEVICE, "/home/me/" + odd), Kind.DIR, ("a", odd), b"\x00\xff", {odd: 3})
    assert await api.echo(thing) == thing
    assert await api.echo([thing, None, 1.5, True, DEVICE], twice=True) == [[thing, None, 1.5, True, DEVICE]] * 2
    assert await api.tags["work/acme"].name() == "work/acme"
    listing = [Thing(SdPath(DEVICE, f"/d/{i}{odd}"), Kind.FILE, (), b"", {}) for i in range(1000)]
    assert await api.echo(listing) == listing  # a listing's batch travels as columns of fields
    here = SdPath(DEVICE, "/d")
    shared = [Thing(here, Kind.FILE, (), b"", {odd: i}) for i in range(10)]  # one directory: sent once
    echoed = await api.echo(shared)
    assert echoed == shared and echoed[0].path is echoed[9].path
    alike = [Device(DEVICE, name) for name in [0, False, 0.0] * 4]  # equal values of other types stay apart
    assert [type(d.name) for d in await api.echo(alike)] == [int, bool, float] * 4


async def test_errors_come_back_as_the_same_class(api: RemoteApi) -> None:
    with pytest.raises(NotFound, match="create it with"):
        await api.fail()
    with pytest.raises(SdError, match="ZeroDivisionError: division by zero"):
        await api.bug()
    with pytest.raises(SdError, match="cannot send its answer"):
        await api.odd()
    with pytest.raises(SdError, match="is a stream: iterate it"):
        await api.numbers(3)
    with pytest.raises(SdError, match="not a stream"):
        async for _ in api.echo(1):
            pass
    assert await api.echo("still serving") == "still serving"


@pytest.mark.parametrize(
    "chain",
    [
        [["get", "_secret"]],
        [["get", "__class__"]],
        [["get", "echo"], ["get", "__globals__"]],
        [["get", "tags"], ["item", "x"], ["get", "_name"]],
        [["get", "device"], ["get", "id"]],  # a record travels whole: nothing is walked on it
        [["get", "tags"], ["call", [], {}]],  # not a method
        [["get", "closed_streams"], ["get", "real"]],
        [["get", "echo"], ["call", [1], {"_x": 1}]],
        [["nope"]],
    ],
)
async def test_nothing_private_is_reachable(api: RemoteApi, chain: list[list[object]]) -> None:
    with pytest.raises(SdError) as raised:
        await Chain(api._connection, tuple(chain))
    assert raised.type in (api_server.Refused, wire.WireError)
    with pytest.raises(AttributeError):
        api._secret  # noqa: B018  # the proxy refuses too, before asking
    assert await api.echo(1) == 1


async def test_a_stream_stops_on_the_server_when_the_client_stops_iterating(api: RemoteApi, facade: ToyApi) -> None:
    assert [n async for n in api.numbers(5)] == [0, 1, 2, 3, 4]
    async for _ in api.forever():
        break
    for _ in range(100):
        if facade.closed_streams == 2:
            break
        await asyncio.sleep(0.02)
    assert facade.closed_streams == 2


async def test_a_canceled_call_is_canceled_on_the_server(api: RemoteApi, served: tuple[ControlServer, ToyApi]) -> None:
    call = asyncio.ensure_future(api.slow())
    await asyncio.sleep(0.1)
    call.cancel()
    await asyncio.sleep(0.1)
    assert await api.echo(2) == 2


async def test_progress_coalesces_and_every_state_arrives(api: RemoteApi, facade: ToyApi) -> None:
    events = api.events().__aiter__()
    first = asyncio.ensure_future(events.__anext__())
    await facade.started.wait()
    await api.publish(5000)
    seen = [await first]
    while not isinstance(seen[-1], JobStateChanged):
        seen.append(await events.__anext__())
    assert len(seen) < 5001 and seen[-2] == JobProgress("j1", "copy", 4999, 5000)
    await events.aclose()


async def test_the_core_gone_fails_every_pending_call_and_ends_streams(served: tuple[ControlServer, ToyApi]) -> None:
    control, facade = served
    api = await attach(control.path.parent)
    assert api is not None
    call = asyncio.ensure_future(api.slow())
    stream = api.forever().__aiter__()
    assert await stream.__anext__() == 1
    await asyncio.sleep(0.05)
    await control.close()
    with pytest.raises(Disconnected, match="stopped"):
        await asyncio.wait_for(call, 2)
    with pytest.raises(Disconnected):
        while True:
            await asyncio.wait_for(stream.__anext__(), 2)
    assert isinstance(await asyncio.wait_for(api.wait_lost(), 2), Disconnected)
    with pytest.raises(Disconnected):
        await api.echo(1)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


async def _raw(control: ControlServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(control.path))
    writer.write(wire.frame({"cmd": "api", "args": {}}))
    assert "hello" in wire.decode(await wire.read_frame(reader, 1 << 20))
    return reader, writer


async def test_a_malformed_frame_gets_an_error_and_the_core_keeps_serving(
    served: tuple[ControlServer, ToyApi], api: RemoteApi
) -> None:
    control, _ = served
    reader, writer = await _raw(control)
    bad = [
        b"\xc1",  # never used in msgpack
        b"\x93\x01",  # an array cut short
        wire.encode([1, 2]),
        wire.encode({"id": "x", "chain": []}),
        wire.encode({"id": 1, "chain": [["get"]]}),
        bytes([0xC7, 2, 1]) + wire.encode([]),  # a record with no name
        wire._pack(msgpack_ext(1, ["Popen", "sh"])),  # a class the wire never registered
        wire._pack(msgpack_ext(6, ["Popen", 8, [["sh"] * 8]])),
        wire._pack(msgpack_ext(6, ["Device", 8, [[1] * 8]])),  # rows of a record one field short
        wire._pack(msgpack_ext(6, ["Device", 8, [[DEVICE] * 7, {"same": "x"}]])),  # a column one value short
        wire._pack(msgpack_ext(6, ["Device", 8, [{"other": DEVICE}, {"same": "x"}]])),
        wire._pack(msgpack_ext(6, ["Device", -1, [{"same": DEVICE}, {"same": "x"}]])),
        wire._pack(msgpack_ext(6, ["Device", 1 << 40, [{"same": DEVICE}, {"same": "x"}]])),  # rows out of nothing
        wire._pack(msgpack_ext(6, ["Device", [[DEVICE, "x"]] * 8])),  # the rows format that came before columns
        b"\xdd\xff\xff\xff\xff",  # an array of 4 billion items
    ]
    for body in bad:
        writer.write(_frame(body))
        answer = wire.decode(await wire.read_frame(reader, 1 << 20))
        assert answer.get("error") and answer["error"][0] in ("WireError", "Refused"), (body, answer)
    writer.write(wire.frame({"id": 7, "chain": [["get", "echo"], ["call", ["ok"], {}]]}))
    assert wire.decode(await wire.read_frame(reader, 1 << 20)) == {"id": 7, "done": "ok"}
    writer.write(struct.pack(">I", 1 << 31))  # too large to read: said, then this connection closes
    assert "at most" in wire.decode(await wire.read_frame(reader, 1 << 20))["error"][1]
    assert await reader.read() == b""
    assert await api.echo("others are served") == "others are served"


def msgpack_ext(code: int, payload: object) -> object:
    import msgpack

    return msgpack.ExtType(code, wire.encode(payload))


async def test_a_client_holds_a_bounded_number_of_streams(
    served: tuple[ControlServer, ToyApi], api: RemoteApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_server, "MAX_STREAMS", 3)
    streams = [api.forever().__aiter__() for _ in range(3)]
    for stream in streams:
        await stream.__anext__()
    with pytest.raises(SdError, match="at most 3 streams"):
        async for _ in api.forever():
            pass
    assert await api.echo(3) == 3  # a one-answer request still runs
    for stream in streams:
        await stream.aclose()


async def test_a_client_that_does_not_read_is_dropped_and_the_core_goes_on(
    served: tuple[ControlServer, ToyApi], api: RemoteApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    control, _ = served
    monkeypatch.setattr(api_server, "MAX_QUEUED", 4 << 20)
    _, writer = await _raw(control)
    big = b"x" * (1 << 20)
    for i in range(64):  # never read: the answers pile up in the core until it drops this client
        writer.write(wire.frame({"id": i, "chain": [["get", "echo"], ["call", [big], {}]]}))
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    await asyncio.sleep(0.5)
    assert await asyncio.wait_for(api.echo("alive"), 5) == "alive"
    assert writer.transport.is_closing() or writer.transport.get_write_buffer_size() == 0


NOBODY = 65534


def _as_nobody(socket_path: Path) -> tuple[int, bytes, bytes]:
    """Connect to the control socket from a child that became user nobody; its exit status, stdout, stderr."""
    script = (
        "import os, socket, struct, sys\n"
        f"os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        f"body = {wire.encode({'cmd': 'api', 'args': {}})!r}\n"
        "s.settimeout(10)\n"
        "try:\n    s.sendall(struct.pack('>I', len(body)) + body)\n"
        "except BrokenPipeError:\n    pass  # refused before it asked\n"
        "print(s.recv(1 << 16))\n"
    )
    child = subprocess.run([sys.executable, "-c", script, str(socket_path)], capture_output=True, timeout=30)
    return child.returncode, child.stdout, child.stderr


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to become another user")
async def test_another_users_process_is_refused(facade: ToyApi) -> None:
    data = Path(tempfile.mkdtemp(prefix="sd-attach-"))  # not under tmp_path: nobody must reach it
    try:
        control = ControlServer(data)
        api_server.serve(control, facade)
        await control.start()
        code, _, err = await asyncio.to_thread(_as_nobody, control.path)
        assert code != 0 and b"PermissionError" in err  # the owner-only data dir stops it first
        os.chmod(data, 0o755)  # even past the owner-only data dir and the 0600 socket,
        os.chmod(control.path, 0o666)  # the core checks who connects (SO_PEERCRED)
        code, out, err = await asyncio.to_thread(_as_nobody, control.path)
        assert code == 0, err
        assert b"refused: uid 65534 does not own this core" in out and b"hello" not in out
        remote = await attach(data)  # its owner is served as before
        assert remote is not None and await remote.echo(1) == 1
        await remote.close()
        await control.close()
    finally:
        shutil.rmtree(data)


def test_every_error_of_the_core_comes_back_as_itself_in_a_fresh_client() -> None:
    import importlib
    import pkgutil

    import sdcore

    for module in pkgutil.walk_packages(sdcore.__path__, "sdcore."):
        importlib.import_module(module.name)
    names, errors = set(), [SdError]
    while errors:
        for cls in errors.pop().__subclasses__():
            errors.append(cls)
            if cls.__module__.startswith("sdcore.") and cls.__module__ not in ("sdcore.api.client", "sdcore.api.server"):
                names.add(cls.__name__)
    script = (
        "import sys\nfrom sdcore.api import wire\n"
        "for name in sys.argv[1:]:\n    print(name, type(wire.raise_error([name, 'm'])).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, *sorted(names)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    wrong = [line for line in out.stdout.splitlines() if line.split()[0] != line.split()[1]]
    assert not wrong, f"add their modules to sdcore.api.wire._ERROR_MODULES: {wrong}"
