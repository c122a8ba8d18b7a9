"""`sd` start-up in CPU time (issue 18: `sd ls` of a small folder and `sd search` under 200 ms CPU).

Each command runs as a fresh process; what is measured is the CPU time (user + system) of that process alone, from
os.wait4, so the machine's load slows the figures less than wall time would. Each figure is the median of --runs runs,
also given as a ratio to `python -c pass`. With --base DIR (a source tree of sdcore and sdtui, e.g. from
`git archive main | tar -x -C DIR`), every command also runs from DIR, alternating with this tree, in the same run.

    python tests/bench/bench_startup.py [--base DIR] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SD = [sys.executable, "-m", "sdtui.cli"]


def cpu_ms(argv: list[str], env: dict[str, str]) -> float:
    """CPU milliseconds (user + system) of `argv` run to its end, its output thrown away."""
    with open(os.devnull, "wb") as null:  # run in / : `-m` puts the current directory first on sys.path
        child = subprocess.Popen(argv, env=env, stdout=null, stderr=null, stdin=subprocess.DEVNULL, cwd="/")
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with {child.returncode}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def environment(base: str | None, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "SD_DATA_DIR": str(data_dir), "COLUMNS": "100"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: bytecode cached
    if base is not None:
        env["PYTHONPATH"] = base
    return env


def wait_for_socket(data_dir: Path, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not (data_dir / "control.sock").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("sd serve did not start")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a source tree to compare with, run alternately")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--only", help="run only the commands whose label holds this text (and python -c pass)")
    args = parser.parse_args()
    variants = {"this": None} if args.base is None else {"base": os.path.abspath(args.base), "this": None}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small = root / "small"
        small.mkdir()
        for i in range(5):
            (small / f"report{i}.txt").write_text("x")
        place = root / "place"
        (place / "inner").mkdir(parents=True)
        for i in range(5):
            (place / "inner" / f"notes{i}.md").write_text("y")
        envs, servers = {}, []
        for name, base in variants.items():
            data, served = root / f"data-{name}", root / f"served-{name}"
            envs[name] = environment(base, data)
            subprocess.run([*SD, "location", "add", str(place), "--mode", "shallow"], env=envs[name], check=True,
                           capture_output=True, cwd="/")  # fmt: skip
            envs[name + "-served"] = environment(base, served)
            server = subprocess.Popen([*SD, "serve", "--listen", "127.0.0.1:0"], env=envs[name + "-served"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")  # fmt: skip
            servers.append(server)
            wait_for_socket(served, server)
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], ""),
            "sd --version": ([*SD, "--version"], ""),
            "sd --help": ([*SD, "--help"], ""),
            "sd ls SMALLDIR (no location)": ([*SD, "ls", str(small)], ""),
            "sd ls DIR (in a location)": ([*SD, "ls", str(place / "inner")], ""),
            "sd search WORD": ([*SD, "search", "notes"], ""),
            "sd ls SMALLDIR, forwarded (client)": ([*SD, "ls", str(small)], "-served"),
        }
        try:
            print(f"load {os.getloadavg()[0]:.1f}; CPU ms, median of {args.runs}; (x python -c pass)")
            figures: dict[tuple[str, str], float] = {}
            for label, (argv, suffix) in commands.items():
                if args.only and args.only not in label and label != "python -c pass":
                    continue
                times: dict[str, list[float]] = {name: [] for name in variants}
                for _ in range(args.runs):
                    for name in variants:  # alternating: the load falls on each alike
                        times[name].append(cpu_ms(argv, envs[name + suffix]))
                for name in variants:
                    figures[label, name] = statistics.median(times[name])
                python = figures["python -c pass", "this"]
                row = "  ".join(f"{name} {figures[label, name]:6.0f} ms ({figures[label, name] / python:4.1f}x)"
                                for name in variants)  # fmt: skip
                if len(variants) > 1:
                    row += f"  this/base {figures[label, 'this'] / figures[label, 'base']:.2f}"
                print(f"{label:38s} {row}", flush=True)
            print(f"load {os.getloadavg()[0]:.1f}")
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)


if __name__ == "__main__":
    main()
