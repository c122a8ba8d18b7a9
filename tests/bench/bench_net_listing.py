"""Benchmark and check: 20 SSH connections list one 100,000-entry directory at once, every listing exact.

Run: python tests/bench/bench_net_listing.py [--entries 100000] [--connections 20]
Exits 1 if any listing misses, repeats or invents a name. (CI runs the same check on 20,000 entries:
tests/functional/test_net_transport.py::test_twenty_connections_list_a_big_directory.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore.net import RemoteFS  # noqa: E402
from sdcore.net.network import PeerLink  # noqa: E402
from sdcore.net.testing import device_network, pair  # noqa: E402


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=20)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_net_listing_"))
    try:
        big = work / "big"
        big.mkdir()
        started = time.perf_counter()
        expected = [f"f{i:06d}" for i in range(args.entries)]
        for name in expected:
            os.close(os.open(big / name, os.O_CREAT | os.O_WRONLY, 0o644))
        print(f"made {args.entries:,} empty files in {time.perf_counter() - started:.1f} s")

        async with device_network(work / "a", "alpha") as a, device_network(work / "b", "beta") as b:
            await pair(a, b)
            links = [PeerLink(b, a.device.id) for _ in range(args.connections)]
            try:
                started = time.perf_counter()
                await asyncio.gather(*(RemoteFS(link).stat("/") for link in links))
                print(f"{args.connections} connections up in {time.perf_counter() - started:.2f} s")

                async def listing(link: PeerLink) -> tuple[list[str], float]:
                    first = 0.0
                    names: list[str] = []
                    async for batch in RemoteFS(link).list_dir(str(big)):
                        first = first or time.perf_counter() - started
                        names.extend(e.name for e in batch)
                    return names, first

                started = time.perf_counter()
                results = await asyncio.gather(*(listing(link) for link in links))
                took = time.perf_counter() - started
                assert len({id(link.conn) for link in links}) == args.connections
            finally:
                for link in links:
                    await link.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    bad = [i for i, (names, _) in enumerate(results) if sorted(names) != expected]
    firsts = sorted(first for _, first in results)
    total = args.connections * args.entries
    print(
        f"{args.connections} listings of {args.entries:,} entries at once: {took:.1f} s "
        f"({total / took:,.0f} entries/s), first batch after {firsts[0] * 1000:.0f}-{firsts[-1] * 1000:.0f} ms"
    )
    if bad:
        print(f"FAILED: listings {bad} are not exactly the directory's names", file=sys.stderr)
        return 1
    print("every listing complete and exact (same names, no duplicates)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
