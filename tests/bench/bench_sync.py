"""The sync over SSH between two real `sd serve` on loopback (issue 16). Run: python tests/bench/bench_sync.py [--files N]

1. First sync of an N-entry catalogue (default 200,000) from one device to a new one, started by
   `sd library share`, until the receiver holds every entry; beside it OpenSSH's `scp` of the owner's database
   file from the same `sd serve` (its SSH server serves scp to a full-trust device), and the peak memory (VmHWM)
   of both `sd serve` processes.
2. 10,000 tag operations made on the owner while the receiver is off: the time from the receiver's `sd serve`
   starting again until it holds all of them.
The tree is made with /work/shared/bench/gen_tree.py under $SD_BENCH_DIR (default /work/corpus).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
GEN = Path("/work/shared/bench/gen_tree.py")
CORPUS = Path(os.environ.get("SD_BENCH_DIR", "/work/corpus"))

from tests.functional.test_net_served import Server, free_port, sd  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def corpus(files: int) -> Path:
    out = CORPUS / f"sync-{files}"
    if not out.exists():
        CORPUS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "tree", str(out), "--files", str(files), "--dirs", str(max(1, files // 20)),
                        "--scale", "0.001", "--large-mb", ""], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def query(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    finally:
        conn.close()


def searchable_and_sortable(db: Path) -> bool:
    """Every entry in the search index (no load holds it back) and the entries' six secondary indexes there."""
    return query(db, "SELECT count(*) FROM fts_pause") == 0 and query(
        db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND name LIKE 'entries_by_%'"
    ) >= 6


def peak_mb(server: Server) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def prepare(tmp: Path, tree: Path, mode: str, ports: dict[str, int]) -> None:
    from sdcore.core import Core
    from sdcore.index.indexer import index_location
    from sdcore.net.testing import device_network, pair

    async with Core(tmp / "a") as core:
        library = core.library()
        start = time.perf_counter()
        record = await library.jobs.wait(await index_location(library, library.locations.add(str(tree), mode=mode)))
        assert record.state == "completed", record.error
        print(f"(indexed {tree} {mode} in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    async with device_network(tmp / "a", "owner", listen=False) as a, device_network(tmp / "b", "newbox", listen=False) as b:
        await a.start(f"127.0.0.1:{ports['a']}")
        await b.start(f"127.0.0.1:{ports['b']}")
        await pair(a, b)


def cpu_s(server: Server) -> float:
    """CPU seconds (user + system) the server's process has used so far."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(*servers: Server, quiet: float = 2.0, timeout: float = 300) -> float:
    """Wait until no thread of these servers has run for `quiet` seconds (the owner's watcher catches up with its
    location when `sd serve` starts: a quiet rescan that is not the first sync). Under load a starved process uses
    little CPU too, so a thread's state (R) is watched, not its CPU."""
    start = calm = time.perf_counter()
    while time.perf_counter() - calm < quiet:
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"the servers did not settle within {timeout} s")
        for server in servers:
            assert server.proc is not None
            for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
                try:
                    if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R":
                        calm = time.perf_counter()
                except FileNotFoundError:
                    pass
        time.sleep(0.05)
    return time.perf_counter() - start


def until(check: object, timeout: float) -> float:
    start = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"not done within {timeout} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--mode", default="content")
    parser.add_argument("--ops", type=int, default=10_000)
    args = parser.parse_args()
    tree = corpus(args.files)
    with tempfile.TemporaryDirectory(dir=CORPUS) as t:
        tmp = Path(t)
        ports = {"a": free_port(), "b": free_port()}
        asyncio.run(prepare(tmp, tree, args.mode, ports))
        owner, receiver = Server(tmp, "a", ports["a"]), Server(tmp, "b", ports["b"])
        owner.start()
        receiver.start()
        try:
            waited = settled(owner, receiver)
            [owner_db] = (tmp / "a" / "libraries").glob("*.sdlibrary/database.db")
            entries = query(owner_db, "SELECT count(*) FROM entries")
            owner_cpu, receiver_cpu = cpu_s(owner), cpu_s(receiver)
            start = time.perf_counter()
            sd(tmp, "a", "library", "share", "My Library", "newbox")
            shared = time.perf_counter() - start
            library_id = json.loads((owner_db.parent / "library.json").read_text())["id"]
            [receiver_db] = [p / "database.db" for p in (tmp / "b" / "libraries").glob("*.sdlibrary")
                             if json.loads((p / "library.json").read_text())["id"] == library_id]  # fmt: skip
            until(lambda: query(receiver_db, "SELECT count(*) FROM catalogue_entries") >= entries, 1800)
            until(lambda: searchable_and_sortable(receiver_db), 1800)  # a sync ends when its load's last pass did
            took = time.perf_counter() - start
            owner_cpu, receiver_cpu = cpu_s(owner) - owner_cpu, cpu_s(receiver) - receiver_cpu
            copy = tmp / "copy.db"
            key = tmp / "b" / "device_key"
            scp_cpu, children = cpu_s(owner), os.times()
            start = time.perf_counter()
            subprocess.run(["scp", "-q", "-i", str(key), "-P", str(ports["a"]), "-o", "StrictHostKeyChecking=no",
                            "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                            f"sd@127.0.0.1:{owner_db}", str(copy)], check=True)  # fmt: skip
            scp = time.perf_counter() - start
            after = os.times()
            scp_cpu = cpu_s(owner) - scp_cpu + after.children_user + after.children_system - children.children_user - children.children_system
            size = owner_db.stat().st_size / 2**20
            print(f"first sync of {entries:,} entries over SSH: {took:.1f} s from `sd library share` (which took "
                  f"{shared:.1f} s) ({entries / took:,.0f} entries/s); scp of the "
                  f"owner's database ({size:.0f} MiB) {scp:.1f} s: x{took / scp:.2f}; peak memory: owner {peak_mb(owner):.0f} MB,"
                  f" receiver {peak_mb(receiver):.0f} MB  [{load()}]")  # fmt: skip
            print(f"  CPU: the sync's owner {owner_cpu:.2f} s + receiver {receiver_cpu:.2f} s; scp's server + client "
                  f"{scp_cpu:.2f} s: x{(owner_cpu + receiver_cpu) / scp_cpu:.2f} (the servers settled {waited:.0f} s after "
                  "starting: the owner's watcher catches up with its location first)")  # fmt: skip

            receiver.stop()
            files = sorted(str(p) for p in tree.rglob("*") if p.is_file())[: args.ops]
            sd(tmp, "a", "tag", "create", "bench")
            for i in range(0, len(files), 2000):
                sd(tmp, "a", "tag", "add", "bench", *files[i : i + 2000])
            held = query(owner_db, "SELECT count(*) FROM sync_ops")
            start = time.perf_counter()
            receiver.start()
            started = time.perf_counter() - start
            caught_up = until(lambda: query(receiver_db, "SELECT count(*) FROM sync_ops") >= held, 600)
            print(f"{len(files):,} tag operations made while the receiver was off reached it {caught_up:.1f} s after its "
                  f"`sd serve` printed `serving` (which took {started:.1f} s)  [{load()}]")  # fmt: skip
        finally:
            owner.stop()
            receiver.stop()


if __name__ == "__main__":
    main()
