"""`sd cp` of a folder of many small files to a paired device, against `scp -r` to an OpenSSH server, as ratios.

Run: python tests/bench/bench_copy_device.py [--files 5000] [--rounds 3]

Real `sd serve` on 127.0.0.1 (alpha, beta and gamma; alpha paired with the others as the tests pair them):
`sd --data-dir alpha cp FOLDER beta:DEST/` runs the copy in alpha's `sd serve`, which sends the files to beta's
`sd serve` 64 to a request (each written unnamed, synced, then linked at its name: whole or absent after a crash).
In the same rounds, in turns: `scp -r FOLDER` to a throwaway sshd on 127.0.0.1 (plain writes, no fsync); and `sd cp`
to gamma, whose `sd serve` answers as one from before write_files (each file sent with write_file and rename, as
every copy was before). CPU is user + system of every process taking part: alpha's `sd serve`, the `sd` client and
the receiving `sd serve`; scp and the ssh it runs, and sshd with the session processes it forked. Median of the
rounds; `--profile` records both `sd serve` of one more copy with py-spy. Needs Debian's openssh-server and
openssh-client (/usr/sbin/sshd, scp).
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
from tests.functional.test_sync_served import _pair_all  # noqa: E402


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


# gamma's `sd serve` as one from before write_files: it answers "unknown request", alpha writes each file with
# write_file and rename, as every copy did before (Server runs WRAP + its own `python -c ...` command line)
BEFORE = (sys.executable, "-c", "import sys; sys.argv = sys.argv[:1] + sys.argv[4:]; "
          "from sdcore.net.rpc_server import RpcSession; del RpcSession.rpc_write_files; "
          "from sdtui.cli import main; main()")  # fmt: skip


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
        ports = {"a": free_port(), "b": free_port(), "c": free_port()}
        asyncio.run(_pair_all(tmp, ports))  # (as the tests pair them: each with the others)
        alpha, beta = Server(tmp, "a", ports["a"]), Server(tmp, "b", ports["b"])
        gamma = Server(tmp, "c", ports["c"], wrap=BEFORE)
        key = tmp / "scp_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        sshd_dir = tmp / "sshd"
        sshd_dir.mkdir()
        sshd, port, known = start_sshd(sshd_dir, key.with_suffix(".pub").read_text().strip())
        for server in (alpha, beta, gamma):
            server.start()
        try:
            settled(alpha, beta, gamma)
            for device in ("beta", "gamma"):
                sd(tmp, "a", "ls", f"{device}:{tmp}")  # alpha's connections are up, as in a long-lived core
            tools = {"scp -r": None, "sd": beta, "sd as before": gamma}  # (the receiving sd serve)
            runs: dict[str, list[tuple[float, float, float, float]]] = {t: [] for t in tools}  # wall, cpu, here, there
            for r in range(opts.rounds):
                for tool in list(tools)[r % 3 :] + list(tools)[: r % 3]:
                    dest = tmp / f"round-{r}"
                    dest.mkdir()
                    os.sync()  # the other tool's writes are not flushed on this one's time
                    receiver = tools[tool]
                    if receiver is None:
                        before = (children_s(), tree_cpu_s(sshd.pid))
                        wall = scp(key, port, known, "-r", str(folder), f"HOST:{dest}/")
                        without_children(sshd.pid)
                        here, there = children_s() - before[0], tree_cpu_s(sshd.pid) - before[1]
                    else:
                        before = (children_s(), cpu_s(alpha), cpu_s(receiver))
                        start = time.perf_counter()
                        sd(tmp, "a", "cp", str(folder), f"{'beta' if receiver is beta else 'gamma'}:{dest}/")
                        wall = time.perf_counter() - start
                        here = children_s() - before[0] + cpu_s(alpha) - before[1]
                        there = cpu_s(receiver) - before[2]
                    assert same_files(folder, dest / folder.name), f"{tool} copied something else"
                    runs[tool].append((wall, here + there, here, there))
                    shutil.rmtree(dest)
            med = {tool: [statistics.median(x[i] for x in runs[tool]) for i in range(4)] for tool in runs}
            n = opts.files
            print(f"{n:,} files of 1-8 KiB ({size / 2**20:.1f} MiB) to another device over SSH on 127.0.0.1, "
                  f"median of {opts.rounds}, in turns  [{load()}, {os.cpu_count()} cores]")  # fmt: skip
            for tool, (wall, cpu, here, there) in med.items():
                print(f"  {tool:>12}: wall {wall:6.2f} s ({n / wall:,.0f} files/s); CPU {cpu:6.2f} s = sender "
                      f"{here:.2f} + receiver {there:.2f} ({there / n * 1000:.2f} ms a file received)")  # fmt: skip
            sw, sc = med["scp -r"][:2]
            for tool in ("sd", "sd as before"):
                print(f"  {tool} / scp -r: wall x{med[tool][0] / sw:.2f}, CPU x{med[tool][1] / sc:.2f}")
            print("  (sd: each file synced to disk before it is linked at its name, 64 files a request; as before: "
                  "write_file and rename a file, each synced; scp: plain writes, no fsync)")  # fmt: skip
            if opts.profile:
                profile(tmp, folder, {"alpha": alpha, "beta": beta}, opts.profile)
        finally:
            for server in (alpha, beta, gamma):
                server.stop()
            sshd.terminate()
            sshd.wait()


if __name__ == "__main__":
    main()
