"""`sd cp` of a folder of many small files to a paired device, against `scp -r` to an OpenSSH server, as ratios.

Run: python tests/bench/bench_copy_device.py [--files 5000] [--rounds 3]

Two real `sd serve` on 127.0.0.1 (alpha and beta, paired as the tests pair them); `sd --data-dir alpha cp FOLDER
beta:DEST/` runs the copy in alpha's `sd serve`, which writes each file on beta through beta's `sd serve` (temp file,
fsync, rename: whole or absent after a crash). Beside it, in the same rounds, alternating: `scp -r FOLDER` to a
throwaway sshd on 127.0.0.1 (plain writes, no fsync). CPU is user + system of every process taking part: both `sd
serve` and the `sd` client; scp and the ssh it runs, and sshd with the session processes it forked. Median of the
rounds. Needs Debian's openssh-server and openssh-client (/usr/sbin/sshd, scp).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_net import scp, start_sshd  # noqa: E402
from tests.bench.bench_sync import cpu_s, load, settled  # noqa: E402
from tests.functional.test_net_served import Server, free_port, sd  # noqa: E402


def make_folder(folder: Path, files: int, seed: int = 17) -> int:
    """`files` files of 1-8 KiB of random bytes in folders of 500; their total size."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        sub = folder / f"d{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(1024, 8193)
        (sub / f"file-{i:05d}.dat").write_bytes(rng.randbytes(size))
        total += size
    return total


async def pair_devices(tmp: Path, ports: dict[str, int]) -> None:
    from sdcore.net.testing import device_network, pair

    async with (
        device_network(tmp / "a", "alpha", listen=False) as a,
        device_network(tmp / "b", "beta", listen=False) as b,
    ):
        await a.start(f"127.0.0.1:{ports['a']}")
        await b.start(f"127.0.0.1:{ports['b']}")
        await pair(a, b)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of the children it has reaped (sshd and its session processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def without_children(pid: int, timeout: float = 10) -> None:
    """Wait until `pid` has reaped its children (sshd's session processes end after scp does): their CPU is counted."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/task/{pid}/children").read_text().split() and time.monotonic() < deadline:
        time.sleep(0.02)


def children_s() -> float:
    t = os.times()
    return t.children_user + t.children_system


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def profile(tmp: Path, folder: Path, servers: dict[str, Server], out: Path) -> None:
    """One more `sd cp` with py-spy recording each `sd serve` (collapsed stacks, threads and idle included)."""
    dest = tmp / "profiled"
    dest.mkdir()
    spies = []
    for name, server in servers.items():
        assert server.proc is not None
        spies.append(subprocess.Popen(["py-spy", "record", "-p", str(server.proc.pid), "-f", "raw", "-r", "200",
                                       "-o", f"{out}.{name}", "--threads", "--nonblocking"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    time.sleep(1)
    sd(tmp, "a", "cp", str(folder), f"beta:{dest}/")
    for spy in spies:
        spy.send_signal(2)
        spy.wait()
    print(f"  profiles: {out}.alpha, {out}.beta")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=Path, help="after the rounds, one more sd copy under py-spy: collapsed stacks of "
                    "both sd serve written to PROFILE.alpha and PROFILE.beta (pip install py-spy)")
    opts = ap.parse_args()
    if not shutil.which("scp") or not os.path.exists("/usr/sbin/sshd"):
        sys.exit("needs openssh-server and openssh-client: apt-get install openssh-server openssh-client")
    with tempfile.TemporaryDirectory(prefix="bench-copy-device-") as t:
        tmp = Path(t)
        folder = tmp / "photos"
        size = make_folder(folder, opts.files)
        ports = {"a": free_port(), "b": free_port()}
        asyncio.run(pair_devices(tmp, ports))
        alpha, beta = Server(tmp, "a", ports["a"]), Server(tmp, "b", ports["b"])
        key = tmp / "scp_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        sshd_dir = tmp / "sshd"
        sshd_dir.mkdir()
        sshd, port, known = start_sshd(sshd_dir, key.with_suffix(".pub").read_text().strip())
        alpha.start()
        beta.start()
        try:
            settled(alpha, beta)
            sd(tmp, "a", "ls", f"beta:{tmp}")  # alpha's connection to beta is up, as in a long-lived core
            runs: dict[str, list[tuple[float, float, float, float]]] = {"scp": [], "sd": []}  # wall, cpu, here, there
            for r in range(opts.rounds):
                for tool in ("scp", "sd") if r % 2 == 0 else ("sd", "scp"):
                    dest = tmp / f"{tool}-{r}"
                    dest.mkdir()
                    os.sync()  # the other tool's writes are not flushed on this one's time
                    if tool == "scp":
                        before = (children_s(), tree_cpu_s(sshd.pid))
                        wall = scp(key, port, known, "-r", str(folder), f"HOST:{dest}/")
                        without_children(sshd.pid)
                        here, there = children_s() - before[0], tree_cpu_s(sshd.pid) - before[1]
                    else:
                        before = (children_s(), cpu_s(alpha), cpu_s(beta))
                        start = time.perf_counter()
                        sd(tmp, "a", "cp", str(folder), f"beta:{dest}/")
                        wall = time.perf_counter() - start
                        here = children_s() - before[0] + cpu_s(alpha) - before[1]
                        there = cpu_s(beta) - before[2]
                    assert same_files(folder, dest / folder.name), f"{tool} copied something else"
                    runs[tool].append((wall, here + there, here, there))
                    shutil.rmtree(dest)
            med = {tool: [statistics.median(x[i] for x in runs[tool]) for i in range(4)] for tool in runs}
            n = opts.files
            print(f"{n:,} files of 1-8 KiB ({size / 2**20:.1f} MiB) to another device over SSH on 127.0.0.1, "
                  f"median of {opts.rounds}, alternating  [{load()}, {os.cpu_count()} cores]")  # fmt: skip
            for tool, (wall, cpu, here, there) in med.items():
                print(f"  {tool:>3}: wall {wall:6.2f} s ({n / wall:,.0f} files/s); CPU {cpu:6.2f} s = sender "
                      f"{here:.2f} + receiver {there:.2f} ({there / n * 1000:.2f} ms a file received)")  # fmt: skip
            (sw, sc, _, _), (dw, dc, _, _) = med["scp"], med["sd"]
            print(f"  sd / scp -r: wall x{dw / sw:.2f}, CPU x{dc / sc:.2f} "
                  "(sd: each file synced to disk before it is linked at its name; scp: plain writes, no fsync)")  # fmt: skip
            if opts.profile:
                profile(tmp, folder, {"alpha": alpha, "beta": beta}, opts.profile)
        finally:
            alpha.stop()
            beta.stop()
            sshd.terminate()
            sshd.wait()


if __name__ == "__main__":
    main()
