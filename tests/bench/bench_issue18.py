"""Every row of issue 18's table in one run: sd's figure beside its peer's, the ratio, the budget, met or not.

    python tests/bench/bench_issue18.py [--rounds 3] [--skip tui,remote,200k]

Corpora under $SD_BENCH_DIR (as bench_index.py: the 200k tree and the flat 100,000 files made by
../shared/bench/gen_tree.py, the Linux 6.1 source unpacked from Debian's linux-source-6.1) and a deep tree made
here (`deep_tree`). Peers: apt-get install plocate jdupes b3sum tmux. Runs this checkout's sd (PYTHONPATH).

The machine is shared and loaded, so the ratios are of CPU time: user + system of the command and every process it
waited for (sd's walker child too), from getrusage; for the explorer in tmux, the sdtui process's own (and the
serving device's, over loopback) from /proc at the moment the screen shows the first row. Wall times are printed
beside. Each figure is the median of --rounds, sd and its peer alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
os.environ["PYTHONPATH"] = str(ROOT)  # sd, sdtui and `sd serve` run this checkout's code

import bench_index as index  # noqa: E402
import bench_startup as startup  # noqa: E402

Figure = tuple[float, float]  # (wall, CPU) seconds
ROWS: list[tuple[str, str, str, str, str]] = []  # row, sd, peer, ratio, budget and met


def median(runs: list[Figure]) -> Figure:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def alternate(rounds: int, *runs: Callable[[], Figure]) -> list[Figure]:
    """The median (wall, CPU) of each of `runs`, run one after the other `rounds` times (the load falls on each alike)."""
    took: list[list[Figure]] = [[] for _ in runs]
    for _ in range(rounds):
        for out, run in zip(took, runs, strict=True):
            out.append(run())
    return [median(t) for t in took]


def row(work: str, ours: Figure, peers: dict[str, Figure], budget: float, against: str = "", unit: str = "s") -> None:
    """One line of the table: the ratio (CPU) to the peer named `against` (the first by default) vs its budget."""
    against = against or next(iter(peers))

    def shown(f: Figure) -> str:
        return f"{f[1]:.2f} {unit} CPU ({f[0]:.2f} wall)" if unit == "s" else f"{f[1]:,.0f} {unit}"

    ratio = ours[1] / peers[against][1]
    others = "; ".join(f"{name} {shown(f)}" for name, f in peers.items())
    ratios = " / ".join(f"{ours[1] / f[1]:.2f}x" for f in peers.values())
    ROWS.append((work, shown(ours), others, ratios, f"<= {budget}x {against}: {'met' if ratio <= budget else 'NOT met'}"))
    print(f"{work}: sd {shown(ours)} | {others} | {ratios} | {ROWS[-1][-1]}", flush=True)


def deep_tree(out: Path) -> Path:
    """A deep tree as node_modules makes them, from a fixed seed: 50 chains of 50 nested folders (app00 to app49,
    then node_modules and a package name in turn), 20 empty files in each: 52,500 entries, whose paths average
    358 characters when the tree's own is 25 long (/tmp/index18c-corpus/deep)."""
    if out.exists():
        return out
    rng = random.Random(18)
    words = "react lodash babel core utils types eslint plugin loader webpack parser runtime helpers config".split()
    part = out.with_name(out.name + ".part")
    for chain in range(50):
        folder = part
        for level in range(50):
            name = "node_modules" if level % 2 else f"{rng.choice(words)}-{rng.choice(words)}"[:12]
            name = f"app{chain:02d}" if level == 0 else name
            folder = folder / name
            folder.mkdir(parents=True)
            for i in range(20):
                (folder / f"{rng.choice(words)}{i:02d}.js").touch()
    part.rename(out)
    return out


def bench_shallow(tree: Path, label: str, rounds: int, reindex: bool, size: bool) -> None:
    """Shallow first index vs updatedb -U and find -printf; re-index unchanged vs find; the index's size on disk."""
    find = ["find", str(tree), "-printf", r"%i %s %T@ %p\n"]
    took: list[dict[str, Figure]] = []
    finds: list[Figure] = []
    for _ in range(rounds):
        took.append(index.shallow_round(tree))
        finds.append(index.timed(find))
    sd, updatedb, rescan = (median([t[k] for t in took]) for k in ("sd", "updatedb", "rescan"))
    entries, text = index.paths_as_text(tree)
    row(f"shallow index, {label} ({entries:,} entries, average path {text / entries - 1:.0f} characters)",
        sd, {"updatedb -U": updatedb, "find -printf": median(finds)}, 3)  # fmt: skip
    if reindex:
        row(f"re-index, nothing changed, {label}", rescan, {"find -printf": median(finds)}, 2)
    if size:
        ours, theirs = took[-1]["sd database"][0], took[-1]["updatedb database"][0]
        row(f"index size on disk, {label} ({ours / 2**20:.1f} MiB)", (ours, ours / entries),
            {"the paths as text": (text, text / entries), "plocate's database": (theirs, theirs / entries)}, 2,
            unit="bytes an entry")  # fmt: skip


def bench_quick_scan(flat: Path, rounds: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="sdbench-"))
    index.wall([index.SD, "--data-dir", str(data), "library", "list"])  # set up before, as on a user's machine
    ours, find = alternate(rounds, lambda: index.timed(index.quick_scan(data, flat)),
                           lambda: index.timed(["find", str(flat), "-maxdepth", "1", "-printf", r"%i %s %T@ %p\n"]))  # fmt: skip
    shutil.rmtree(data)
    row("`sd index quick-scan` of a flat 100,000-file folder", ours, {"find -maxdepth 1 -printf": find}, 2)


def bench_content(tree: Path, label: str, rounds: int) -> None:
    """Content index from nothing (`sd location add --mode content`) vs b3sum of every file, 2 processes."""

    def ours() -> Figure:
        data = Path(tempfile.mkdtemp(prefix="sdbench-"))
        index.wall([index.SD, "--data-dir", str(data), "library", "list"])
        took = index.timed([index.SD, "--data-dir", str(data), "location", "add", str(tree), "--mode", "content"])
        shutil.rmtree(data)
        return took

    b3sum = f"find {tree} -type f -print0 | xargs -0 -P 2 -n 1000 b3sum --num-threads 1"
    sd, peer = alternate(rounds, ours, lambda: index.timed(["sh", "-c", b3sum]))
    row(f"content index of the {label} (from nothing)", sd, {"b3sum of every file, 2 processes": peer}, 2)


def bench_dupes(tree: Path, label: str, rounds: int, budget: float) -> None:
    """`sd dupes TREE` (from disk, nothing indexed) vs `jdupes -r`."""
    data = Path(tempfile.mkdtemp(prefix="sdbench-"))
    index.wall([index.SD, "--data-dir", str(data), "library", "list"])
    index.timed(["jdupes", "-r", "-q", str(tree)])  # every file read once before: the page cache warm for both
    sd, peer = alternate(rounds, lambda: index.timed([index.SD, "--data-dir", str(data), "dupes", str(tree)]),
                         lambda: index.timed(["jdupes", "-r", "-q", str(tree)]))  # fmt: skip
    shutil.rmtree(data)
    row(f"`sd dupes TREE` from nothing, {label}", sd, {"jdupes -r": peer}, budget)


def bench_startup(runs: int) -> None:
    """`sd --help`, `sd --version` and `sd ls` of a small folder vs `python -c pass` (CPU of the process, median)."""
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small"
        small.mkdir()
        for i in range(5):
            (small / f"report{i}.txt").write_text("x")
        env = startup.environment(None, Path(tmp) / "data")
        commands = {"python -c pass": [sys.executable, "-c", "pass"], "sd --help": [*startup.SD, "--help"],
                    "sd --version": [*startup.SD, "--version"], "sd ls SMALLDIR": [*startup.SD, "ls", str(small)]}  # fmt: skip
        startup.cpu_ms(commands["sd ls SMALLDIR"], env)  # the device made first
        ms = {label: [] for label in commands}  # type: dict[str, list[float]]
        for _ in range(runs):
            for label, argv in commands.items():
                ms[label].append(startup.cpu_ms(argv, env))
    python = statistics.median(ms.pop("python -c pass")) / 1000
    for label, limit in {"sd --help": None, "sd --version": 0.120, "sd ls SMALLDIR": 0.200}.items():
        took = statistics.median(ms[label]) / 1000
        met = "—" if limit is None else f"< {limit * 1000:.0f} ms: {'met' if took < limit else 'NOT met'}"
        ROWS.append((f"`{label}`", f"{took * 1000:.0f} ms CPU", f"python -c pass {python * 1000:.0f} ms CPU",
                     f"{took / python:.2f}x", met))  # fmt: skip
        print(" | ".join(ROWS[-1]), flush=True)


def first_screen(term, args: list[str], row_shown: re.Pattern[str], server: int | None = None) -> Figure:  # type: ignore[no-untyped-def]
    """Start `sdtui ARGS` in tmux: (wall seconds to the first row on screen, CPU seconds of sdtui by then, and of
    the serving device's process `server`'s since the start)."""
    import bench_tui

    served = bench_tui.proc_cpu(server) if server else 0.0
    started = term.start(*args)
    took = term.wait_for(row_shown, started)
    cpu = term.cpu() + (bench_tui.proc_cpu(server) - served if server else 0.0)
    term.stop()
    return took, cpu


def bench_explorer(rounds: int, remote: bool) -> None:
    """The first screen of a 100,000-file folder vs of a 1-file folder, in a real terminal; and a paired device's
    100,000-file folder over loopback (a `sd serve` on 127.0.0.1), vs the local 1-file folder."""
    import bench_tui

    with tempfile.TemporaryDirectory(prefix="sdtui-bench-") as tmp:
        root = Path(tmp)
        big = bench_tui.make_big(root, 100_000)  # and root/small/a.txt
        term = bench_tui.Tmux()
        data = f"--data-dir {root / 'near'}"
        any_file = re.compile(r"││  f\d{6}\.txt")
        one_file = re.compile(r"a\.txt")
        server = None
        try:
            first_screen(term, [str(root / "small"), data], one_file)  # the library made first
            small, ours = alternate(rounds, lambda: first_screen(term, [str(root / "small"), data], one_file),
                                    lambda: first_screen(term, [str(big), data], any_file))  # fmt: skip
            row("`sdtui DIR` to the first screen, DIR = 100,000 files (tmux)", ours, {"sdtui on a 1-file DIR": small}, 1.3)
            if not remote:
                return
            port = asyncio.run(pair_near_and_far(root))
            server = subprocess.Popen([index.SD, "--data-dir", str(root / "far"), "serve", "--listen", f"127.0.0.1:{port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            startup.wait_for_socket(root / "far", server)
            far = [f"far:{big}", data]
            first_screen(term, far, any_file, server.pid)  # the link's first use
            small, ours = alternate(rounds, lambda: first_screen(term, [str(root / "small"), data], one_file),
                                    lambda: first_screen(term, far, any_file, server.pid))  # fmt: skip
            row("`sdtui DEVICE:DIR`, a paired device over loopback, DIR = 100,000 files (CPU: sdtui and the device's"
                " `sd serve`)", ours, {"local 1-file DIR": small}, 1.6)  # fmt: skip
        finally:
            term.close()
            if server is not None:
                server.terminate()
                server.wait(30)


async def pair_near_and_far(root: Path) -> int:
    """Devices `near` and `far` paired (each trusts the other fully) in data dirs under `root`: far's port."""
    from sdcore.net.testing import device_network, pair

    async with device_network(root / "near", "near", listen=False) as near, device_network(root / "far", "far") as far:
        await pair(far, near)
        assert far.address is not None
        return int(far.address.rsplit(":", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated: tui, remote, 200k (the rows to leave out)")
    args = ap.parse_args()
    skip, rounds = set(args.skip.split(",")), args.rounds
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; corpora in {index.CORPUS}; median of {rounds}, CPU time")
    missing = [p for p in ("updatedb", "jdupes", "b3sum", "tmux") if not shutil.which(p)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not installed: apt-get install plocate jdupes b3sum tmux")
    linux = index.linux_tree()
    if linux is None:
        raise SystemExit("no Linux source: apt-get install linux-source-6.1 (bench_index.linux_tree unpacks it)")
    if "tui" not in skip:
        bench_explorer(rounds, "remote" not in skip)
    bench_shallow(linux, "Linux 6.1 source", rounds, reindex=True, size=True)
    bench_shallow(deep_tree(index.CORPUS / "deep"), "deep synthetic tree", rounds, reindex=False, size=False)
    bench_quick_scan(index.corpus("flat", "flat"), rounds)
    bench_content(linux, "Linux source tree", rounds)
    bench_dupes(linux, "Linux source tree", rounds, 1)
    if "200k" not in skip:
        bench_dupes(index.corpus("tree", "tree"), "200k synthetic tree", rounds, 0.3)
    bench_startup(9)
    print(f"\nload {os.getloadavg()[0]:.1f}\n\n| work | sd | peer | ratio (CPU) | budget |\n|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
