"""Stress `sd serve`: five paired clients (full and shared trust) send random valid and invalid requests
(RPC frames and SFTP) while a sixth lists and copies. The server must stay up, its open descriptors and
memory must come back within 10% of where they started once the clients are gone, and every listing and
copy of the sixth client must be exact.

Run: python tests/bench/stress_serve.py [--seconds 120] [--seed 1]
The CI suite runs the same code for 8 seconds (tests/functional/test_net_stress.py).

"Start" is measured after a short warm-up by the same clients, so one-time costs (lazy imports, the
thread pool, caches) do not count as growth. Resident memory then still rises for a minute or two to a
plateau: glibc raises its mmap threshold after freeing large read buffers and keeps later ones in its
heaps (with MALLOC_MMAP_THRESHOLD_=131072 the rise is a third as large); the report shows it every 10 s. Each client keeps few handles open at once (at most
HANDLES), so the per-connection caps on handles and requests in flight show up as refusals in the
report rather than as the point of the test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncssh  # noqa: E402

from sdcore.errors import SdError  # noqa: E402
from sdcore.net.network import RPC_SUBSYSTEM  # noqa: E402
from sdcore.net.remote_fs import RemoteFS  # noqa: E402
from sdcore.net.rpc_client import RpcClient  # noqa: E402
from sdcore.net.testing import device_network, pair  # noqa: E402
from sdcore.sdpath import DeviceId  # noqa: E402

_SCRIPT = Path(sys.executable).parent / "sd"
# the `sd` installed beside this Python (a system Python puts scripts elsewhere: then run it as a module)
SD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from sdtui.cli import main; main()"]
CHAOS = [
    ("full-1", "full"),
    ("full-2", "full"),
    ("full-3", "full"),
    ("shared-1", "shared"),
    ("shared-2", "shared"),
]
HANDLES = 8  # most handles a chaos client holds open at once
TOLERANCE = 0.10


@dataclass(frozen=True)
class Usage:
    """What the server process holds: open descriptors and resident memory."""

    fds: int
    rss_kib: int

    def within(self, start: Usage, tolerance: float = TOLERANCE) -> bool:
        return self.fds <= start.fds * (1 + tolerance) and self.rss_kib <= start.rss_kib * (1 + tolerance)

    def __str__(self) -> str:
        return f"{self.fds} descriptors, {self.rss_kib / 1024:.1f} MiB resident"


def usage(pid: int) -> Usage:
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return Usage(len(os.listdir(f"/proc/{pid}/fd")), rss)


@dataclass
class Report:
    """What a stress run saw."""

    seconds: float
    start: Usage
    peak: Usage
    end: Usage
    requests: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    resident: list[int] = field(default_factory=list)  # MiB, every 10 s of the run: growth or plateau?
    mismatches: list[str] = field(default_factory=list)
    server_alive: bool = True

    @property
    def ok(self) -> bool:
        return self.server_alive and not self.mismatches and self.checks > 0 and self.end.within(self.start)

    def __str__(self) -> str:
        lines = [
            f"{self.seconds:.0f} s, {sum(self.requests.values())} requests by 5 clients, "
            f"{self.checks} exact listings and copies by the sixth",
            f"server: start {self.start}; peak {self.peak}; end {self.end} "
            f"({'within' if self.end.within(self.start) else 'NOT within'} {TOLERANCE:.0%} of the start)",
            "resident MiB every 10 s: " + " ".join(str(m) for m in self.resident),
            "requests: " + ", ".join(f"{k} {v}" for k, v in self.requests.most_common()),
            "refused (most often): " + "; ".join(f"{v}x {k}" for k, v in self.refusals.most_common(8)),
        ]
        if self.mismatches:
            lines.append("MISMATCHES: " + "; ".join(self.mismatches[:10]))
        if not self.server_alive:
            lines.append("THE SERVER DIED")
        return "\n".join(lines)


# -- the files the server holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """The server's files: `root` for full-trust clients, `share` (inside it) for shared ones."""

    root: Path
    share: Path
    files: dict[str, tuple[int, bytes]]  # path -> size and sha256 of what the sixth client must find there

    def dirs(self) -> list[Path]:
        return sorted({Path(p).parent for p in self.files})


def make_tree(root: Path, rng: random.Random, n_files: int = 120) -> Tree:
    share = root / "shared"
    files: dict[str, tuple[int, bytes]] = {}
    for d in ("docs", "photos/2024", "shared", "shared/inner"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        folder = root / rng.choice(("docs", "photos/2024", "shared", "shared/inner"))
        data = rng.randbytes(rng.choice((0, 1, 700, 5_000, 70_000, 300_000, 1_100_000)))
        path = folder / f"file-{i:03d}.bin"
        path.write_bytes(data)
        files[str(path)] = len(data), hashlib.sha256(data).digest()
    for name, _ in CHAOS:  # where chaos clients may write: never a folder the sixth client checks
        (root / "scratch" / name).mkdir(parents=True)
        (share / "scratch" / name).mkdir(parents=True)
    (root / "scratch" / "checker").mkdir()
    return Tree(root, share, files)


# -- the five clients that try everything -----------------------------------------------------------

Errors = (
    SdError,
    asyncssh.Error,
    ConnectionError,
    OSError,
    asyncio.IncompleteReadError,
    asyncio.TimeoutError,
)


class Chaos:
    """One paired device sending random valid and invalid requests over RPC and SFTP."""

    def __init__(
        self, name: str, trust: str, data_dir: Path, port: int, tree: Tree, rng: random.Random, report: Report
    ) -> None:
        self.name, self.trust, self.port, self.tree, self.rng, self.report = (
            name,
            trust,
            port,
            tree,
            rng,
            report,
        )
        self.key = asyncssh.read_private_key(str(data_dir / "device_key"))
        self.top = tree.root if trust == "full" else tree.share
        self.scratch = self.top / "scratch" / name
        self.mine = [p for p in tree.files if p.startswith(str(self.top) + "/")]
        self.theirs = [p for p in tree.files if p not in self.mine] or ["/nonexistent"]  # never its to change
        self.conn: asyncssh.SSHClientConnection | None = None
        self.rpc: RpcClient | None = None
        self.held: list[int] = []  # read handles left open on purpose (the server frees them at disconnect)

    async def run(self, until: float) -> None:
        actions: list[Callable[[], Awaitable[None]]] = [
            self.valid_rpc, self.valid_rpc, self.invalid_rpc, self.pipelined, self.garbage_frames, self.sftp,
        ]  # fmt: skip
        while time.monotonic() < until:
            try:
                await self.connect()
                for _ in range(self.rng.randint(10, 80)):
                    if time.monotonic() >= until:
                        break
                    action = self.rng.choice(actions)
                    self.report.requests[action.__name__] += 1
                    try:
                        await asyncio.wait_for(action(), 30)
                    except Errors as exc:
                        self.refused(exc)
                    if self.rpc is None or self.rpc.closed is not None:
                        await self.open_rpc()
            except Errors as exc:
                self.refused(exc)
                await asyncio.sleep(0.05)
            finally:
                await self.disconnect()

    def refused(self, exc: BaseException) -> None:
        text = " ".join(str(exc).split()[:7]) or type(exc).__name__
        self.report.refusals[f"{type(exc).__name__}: {text}"] += 1

    async def connect(self) -> None:
        self.conn = await asyncssh.connect(
            "127.0.0.1", self.port, username="sd", client_keys=[self.key], known_hosts=None,
            agent_path=None, config=None, preferred_auth="publickey", connect_timeout=20,
        )  # fmt: skip
        await self.open_rpc()

    async def open_rpc(self) -> None:
        assert self.conn is not None
        if self.rpc is not None:
            await self.rpc.close()
        writer, reader, _ = await self.conn.open_session(subsystem=RPC_SUBSYSTEM, encoding=None)
        self.rpc = RpcClient(reader, writer, self.name)
        self.held = []

    async def disconnect(self) -> None:
        if self.rpc is not None:
            await self.rpc.close()
        if self.conn is not None:
            self.conn.close()
            with contextlib.suppress(Exception):
                await self.conn.wait_closed()
        self.conn = self.rpc = None

    def path(self) -> str:
        """A path this client may use, mostly; now and then one it may not."""
        r = self.rng.random()
        if r < 0.7:
            return self.rng.choice(self.mine)
        if r < 0.8:
            return str(self.rng.choice(self.tree.dirs()))
        if r < 0.9:
            return self.rng.choice(list(self.tree.files))  # outside the share for a shared client
        return self.rng.choice(("/etc/passwd", "/proc/version", f"{self.top}/../..", f"{self.top}/missing"))

    async def call(self, method: str, **args: Any) -> Any:
        assert self.rpc is not None
        return await self.rpc.call(method, **args)

    async def valid_rpc(self) -> None:
        fs = RemoteFS(self)
        pick = self.rng.randrange(6)
        if pick == 0:
            await fs.stat(self.path())
        elif pick == 1:
            async for _ in fs.list_dir(str(self.rng.choice([self.top, *self.tree.dirs()])), batch_size=7):
                pass
        elif pick == 2:
            async for _ in fs.open_read(self.path()):
                pass
        elif pick == 3:  # a read left open, up to HANDLES of them
            handle, _ = await self.call("read_open", path=os.fsencode(self.path()), length=100)
            if handle:
                self.held.append(handle)
            while len(self.held) > HANDLES:
                await self.call("read_close", handle=self.held.pop(0))
        elif pick == 4:
            target = str(self.scratch / f"w{self.rng.randrange(5)}")

            async def data() -> Any:
                yield self.rng.randbytes(self.rng.choice((10, 200_000)))

            await fs.write_atomic(target, data())
            if self.rng.random() < 0.5:
                await fs.delete(target)
        else:
            await fs.cas_id(self.path())

    async def invalid_rpc(self) -> None:
        here = os.fsencode(self.path())
        method, args = self.rng.choice(
            [
                ("no_such_request", {}),
                ("stat", {"path": 12}),
                ("stat", {"path": here, "extra": 1}),
                ("stat", {"path": b"relative/path"}),
                ("stat", {"path": b"/tmp/\x00nul"}),
                ("read", {"handle": 987654, "offset": 0, "length": 10}),
                ("read", {"handle": "x", "offset": -5, "length": 1 << 40}),
                ("read_open", {"path": here, "offset": -1, "length": 10}),
                ("list_open", {"path": here, "batch_size": -3}),
                ("list_next", {"handle": 424242}),
                ("write_chunk", {"handle": 31337, "offset": 0, "data": b"x"}),
                (
                    "write_file",
                    {"path": os.fsencode(self.rng.choice(self.theirs)), "data": b"owned"},
                ),
                ("delete", {"path": os.fsencode(self.rng.choice(self.theirs))}),
                ("rename", {"src": here, "dst": b"/tmp/stolen"}),
                (
                    "mkdir",
                    {"path": os.fsencode(self.rng.choice(self.mine)) + b"/under-a-file", "parents": True},
                ),
                ("ext", {"name": "nothing", "args": {}}),
            ]
        )
        if self.trust == "full" and method in ("write_file", "delete", "rename"):
            method, args = (
                "stat",
                {"path": b"/nonexistent"},
            )  # full trust may do these: not on the checked tree
        await self.call(method, **args)

    async def pipelined(self) -> None:
        """Many requests at once on one channel, answers read as they come."""
        calls = [self.call("stat", path=os.fsencode(self.path())) for _ in range(self.rng.randint(5, 40))]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                self.refused(result)

    async def garbage_frames(self) -> None:
        """A second sd-rpc channel fed bytes that are not frames, then dropped."""
        assert self.conn is not None
        writer, reader, _ = await self.conn.open_session(subsystem=RPC_SUBSYSTEM, encoding=None)
        junk = self.rng.choice(
            [
                self.rng.randbytes(self.rng.randint(1, 3000)),
                (0xFFFFFFF0).to_bytes(4, "big") + b"never all of it",
                (5).to_bytes(4, "big") + b"\xc1\xc1\xc1\xc1\xc1",  # not msgpack
                (3).to_bytes(4, "big") + b"\x93\x01\xa1",  # cut short
                (1).to_bytes(4, "big") + b"\x07",  # a frame, but not a request
            ]
        )
        writer.write(junk)
        with contextlib.suppress(*Errors):
            await asyncio.wait_for(reader.read(1000), 0.3)
        writer.close()

    async def sftp(self) -> None:
        assert self.conn is not None
        async with self.conn.start_sftp_client() as sftp:
            handles = []
            try:
                for _ in range(self.rng.randint(1, 15)):
                    path = self.path()
                    pick = self.rng.randrange(5)
                    try:
                        if pick == 0:
                            await sftp.listdir(str(self.rng.choice([self.top, *self.tree.dirs()])))
                        elif pick == 1:
                            await sftp.lstat(path)
                        elif pick == 2 and len(handles) < HANDLES:
                            f = await sftp.open(path, "rb")
                            handles.append(f)
                            await f.read(self.rng.choice((10, 70_000)))
                        elif pick == 3:
                            async with sftp.open(str(self.scratch / "s"), "wb") as f:
                                await f.write(self.rng.randbytes(3000))
                        else:  # what a shared device may not do, and nobody may do to the checked tree
                            target = self.rng.choice(self.theirs)
                            if self.trust == "shared":
                                await self.rng.choice([sftp.remove, lambda p: sftp.rename(p, p + ".x")])(
                                    target
                                )
                            await sftp.open(path + "/not-a-dir/x", "rb")
                    except (asyncssh.SFTPError, OSError) as exc:
                        self.refused(exc)
            finally:
                for f in handles:
                    with contextlib.suppress(*Errors):
                        await f.close()


# -- the sixth client, whose results must be exact --------------------------------------------------


async def check(
    net: Any, server_id: DeviceId, tree: Tree, until: float, rng: random.Random, report: Report
) -> None:
    """List folders and copy files both ways, each compared with what is known to be there; any
    difference or error is a mismatch."""
    fs = net.fs_for(server_id)
    rounds = 0
    while time.monotonic() < until or rounds == 0:
        rounds += 1
        folder = rng.choice(tree.dirs())
        expected = {Path(p).name: size for p, (size, _) in tree.files.items() if Path(p).parent == folder}
        data = rng.randbytes(rng.choice((1, 90_000, 600_000)))
        target = tree.root / "scratch" / "checker" / f"up-{rounds % 3}"
        try:
            listed = {}
            async for batch in fs.list_dir(str(folder), batch_size=rng.choice((5, 1000))):
                listed.update({e.name: e.size for e in batch if e.kind == "file"})
            if listed != expected:
                report.mismatches.append(f"listing {folder}: {sorted(set(listed) ^ set(expected))[:5]}")
            for path in rng.sample(list(tree.files), 3):
                digest = hashlib.sha256()
                async for chunk in fs.open_read(path):
                    digest.update(chunk)
                if digest.digest() != tree.files[path][1]:
                    report.mismatches.append(f"copy of {path} differs")
            await fs.write_atomic(str(target), _chunks(data))
            if target.read_bytes() != data:
                report.mismatches.append(f"upload to {target} differs")
        except Errors as exc:
            report.mismatches.append(f"{type(exc).__name__}: {exc}")
        report.checks += 5


async def _chunks(data: bytes) -> Any:
    yield data


# -- one run ----------------------------------------------------------------------------------------


async def stress(work: Path, seconds: float, seed: int = 1, warmup: float = 3.0) -> Report:
    """Set up a server and six paired clients in `work`, run them for `seconds`, report."""
    rng = random.Random(seed)
    tree = make_tree(work / "files", rng)
    server_dir = work / "server"
    async with device_network(server_dir, "server") as host:
        host.trust.add_share(str(tree.share))
        server_id = host.device.id
        for name, trust in [*CHAOS, ("checker", "full")]:
            async with device_network(work / name, name, listen=False) as client:
                await pair(host, client, host_trust=trust)
    log = work / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*SD, "--data-dir", str(server_dir), "serve", "--listen", "127.0.0.1:0"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        port = await _port(log, server)
        async with device_network(work / "checker", "checker", listen=False) as checker:
            peer = checker.trust.get(server_id)
            assert peer is not None
            checker.trust.add(dataclasses.replace(peer, addresses=(f"127.0.0.1:{port}",)))
            scratch = Report(0, usage(server.pid), usage(server.pid), usage(server.pid))
            await _round(work, port, tree, checker, server_id, warmup, rng, scratch)
            await checker.link(server_id).close()
            start = await _settled(server.pid)
            report = Report(seconds, start, start, start)
            sampler = asyncio.create_task(_sample(server.pid, report))
            began = time.monotonic()
            await _round(work, port, tree, checker, server_id, seconds, rng, report)
            report.seconds = time.monotonic() - began
            await checker.link(server_id).close()
            sampler.cancel()
        report.end = await _settled(server.pid, target=report.start)
        report.server_alive = server.poll() is None
        return report
    finally:
        server.terminate()
        server.wait(10)


async def _round(
    work: Path,
    port: int,
    tree: Tree,
    checker: Any,
    server_id: DeviceId,
    seconds: float,
    rng: random.Random,
    report: Report,
) -> None:
    until = time.monotonic() + seconds
    clients = [
        Chaos(name, trust, work / name, port, tree, random.Random(rng.random()), report)
        for name, trust in CHAOS
    ]
    await asyncio.gather(
        *(c.run(until) for c in clients), check(checker, server_id, tree, until, rng, report)
    )


async def _port(log: Path, server: subprocess.Popen[Any]) -> int:
    for _ in range(600):
        text = log.read_text()
        if "serving" in text:
            return int(text.split("serving", 1)[1].split("\n", 1)[0].rsplit(":", 1)[1])
        if server.poll() is not None:
            raise RuntimeError(f"sd serve did not start: {text}")
        await asyncio.sleep(0.05)
    raise RuntimeError("sd serve did not start within 30 s")


async def _sample(pid: int, report: Report) -> None:
    for tick in itertools.count():
        now = usage(pid)
        report.peak = Usage(max(report.peak.fds, now.fds), max(report.peak.rss_kib, now.rss_kib))
        if tick % 50 == 0:
            report.resident.append(round(now.rss_kib / 1024))
        await asyncio.sleep(0.2)


async def _settled(pid: int, target: Usage | None = None, timeout: float = 20.0) -> Usage:
    """The server's usage once it stopped changing (and, given a target, once within it or timed out)."""
    deadline = time.monotonic() + timeout
    last = usage(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = usage(pid)
        if now == last and (target is None or now.within(target)):
            return now
        last = now
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the same load before `start`")
    args = parser.parse_args()
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # writes to connections the server closed
    with tempfile.TemporaryDirectory() as work:
        report = asyncio.run(stress(Path(work), args.seconds, args.seed, args.warmup))
    print(report)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
