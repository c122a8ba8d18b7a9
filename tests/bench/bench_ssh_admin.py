"""Benchmark of the explorer served over SSH to OpenSSH's client: `python tests/bench/bench_ssh_admin.py`.

Over loopback, against a real `sd serve` whose home holds a directory of 10,000 files:
- from `ssh -tt` started to the first screen of that directory (budget 1.5 s),
- a key press (down) to the redrawn cursor, p95 over many presses (budget 40 ms),
- memory of an idle session: RSS and PSS of its explorer process (budget 120 MB).
`--parts`: the key press over SSH and on a local pty (same core, presses in turns) and in process (run_test);
`--sessions-at-once 20`: twenty explorers at once stay independent (tests/functional/ssh_support.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.functional.ssh_support import ServedCore, Terminal, independent_sessions  # noqa: E402

MB = 1 << 20


def make_big(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        os.close(os.open(folder / f"f{i:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))


def memory(pid: int) -> tuple[int, int]:
    """RSS and PSS of a process, in bytes (smaps_rollup)."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            value = int(rest.split()[0]) * 1024
            rss, pss = (value, pss) if name == "Rss" else (rss, value)
    return rss, pss


def cpu(pid: int) -> float:
    """CPU seconds a process used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_screen(served: ServedCore, runs: int) -> tuple[list[float], list[float]]:
    """Seconds from `ssh` started to the first screen; CPU seconds the session's explorer and the server spent."""
    times, cpus = [], []
    for _ in range(runs):
        time.sleep(2)  # the spare explorer of the next session is ready, as it is for a person
        spares = {pid: cpu(pid) for pid in served.all_children()}
        server = cpu(served.proc.pid)
        term = Terminal(served.ssh("sdtui", "big", tty=True), 160, 45)
        try:
            term.wait_for("f000000.txt", timeout=30)
            times.append(time.monotonic() - term.started)
            (child,) = served.children()
            cpus.append(cpu(child) - spares.get(child, 0.0) + cpu(served.proc.pid) - server)
            term.press("q")
            term.wait_exit()
        finally:
            term.close()
    return times, cpus


class CursorWalk:
    """The cursor walked down the first screen of a terminal's left pane, one key press at a time, each timed."""

    X = 40  # inside the left pane at 160 columns (the sidebar takes the first 26)

    def __init__(self, term: Terminal, pid: int) -> None:
        self.term = term
        self.pid = pid
        """The explorer's process (its CPU is counted)."""
        self.position = 0
        self.times: list[float] = []

    def _on(self, name: str) -> bool:
        return any(name in self.term.screen.display[y] for y in self.term.cursor_rows(self.X))

    def step(self) -> None:
        """One press of down, timed from the key written to the cursor drawn on the next name."""
        if self.position == 25:  # back to the top: the cursor walks the first screen, never scrolling
            self.term.press("home")
            self.term.until(lambda: self._on("f000000.txt"))
            self.term.pump(0.1)
            self.position = 0
        self.position += 1
        name = f"f{self.position:06d}.txt"
        start = time.monotonic()
        self.term.press("down")
        while not self._on(name):
            self.term.pump(0.002)
            assert time.monotonic() - start < 5, f"the cursor never reached {name}:\n{self.term.text}"
        self.times.append(time.monotonic() - start)


def key_to_cursor(served: ServedCore, presses: int) -> tuple[list[float], float]:
    """Seconds from each key press to the cursor drawn on the next row; CPU seconds per press (explorer + server)."""
    term = Terminal(served.ssh("sdtui", "big", tty=True), 160, 45)
    try:
        term.wait_for("f000000.txt", timeout=30)
        term.pump(1.0)
        (child,) = served.children()
        walk = CursorWalk(term, child)
        spent = cpu(child) + cpu(served.proc.pid)
        server = cpu(served.proc.pid)
        received = term.received
        for _ in range(presses):
            walk.step()
        spent = cpu(child) + cpu(served.proc.pid) - spent
        print(
            f"  of which the server: {(cpu(served.proc.pid) - server) / presses * 1000:.1f} ms per press; "
            f"{(term.received - received) / presses:,.0f} bytes to the terminal per press"
        )
    finally:
        term.close()
    return walk.times, spent / presses


def key_to_cursor_parts(served: ServedCore, presses: int) -> None:
    """Where a key press's time goes: the same walk over SSH and on a terminal of the bench's own (the explorer
    attached to the same core, no SSH), presses taken in turns so that both see the same load; then the explorer
    in this process (run_test, no terminal at all): key to its cursor's line rendered."""
    local_argv = [sys.executable, "-m", "sdtui.app", "--data-dir", str(served.data_dir), str(served.home / "big")]
    over_ssh = Terminal(served.ssh("sdtui", "big", tty=True), 160, 45)
    local = Terminal(local_argv, 160, 45, env=served.env)
    try:
        for term in (over_ssh, local):
            term.wait_for("f000000.txt", timeout=60)
        (child,) = served.children()
        walks = {"over ssh": CursorWalk(over_ssh, child), "on a local pty": CursorWalk(local, local.proc.pid)}
        for term in (over_ssh, local):
            term.pump(1.0)
        spent = {name: cpu(walk.pid) for name, walk in walks.items()}
        received = {name: walk.term.received for name, walk in walks.items()}
        server = cpu(served.proc.pid)
        for _ in range(presses):
            for walk in walks.values():
                walk.step()
        server = cpu(served.proc.pid) - server
        for name, walk in walks.items():
            cpu_ms = (cpu(walk.pid) - spent[name]) / presses * 1000
            print(
                f"key press to redrawn cursor {name}: p50 {statistics.median(walk.times) * 1000:.1f} ms, "
                f"p95 {p95(walk.times) * 1000:.1f} ms; explorer CPU per press {cpu_ms:.1f} ms; "
                f"{(walk.term.received - received[name]) / presses:,.0f} bytes to the terminal per press"
            )
        print(f"  the server's CPU per press (both walks: the SSH bridge and the core) {server / presses * 1000:.1f} ms")
    finally:
        over_ssh.close()
        local.close()
    rendered = asyncio.run(in_process(served, presses))
    print(
        f"key press to cursor line rendered in this process (run_test): p50 {statistics.median(rendered) * 1000:.1f} ms, "
        f"p95 {p95(rendered) * 1000:.1f} ms"
    )


async def in_process(served: ServedCore, presses: int) -> list[float]:
    """Seconds from a key posted to the explorer (run_test, attached to the served core) to its cursor's line rendered."""
    os.environ.update(HOME=served.env["HOME"], XDG_DATA_HOME=served.env["XDG_DATA_HOME"])
    from sdtui.app import SdtuiApp
    from sdtui.screens.explorer import ExplorerScreen

    app = SdtuiApp(str(served.home / "big"), data_dir=served.data_dir)
    times = []
    async with app.run_test(size=(160, 45)) as pilot:
        while not isinstance(app.screen, ExplorerScreen) or len(app.screen.active.file_list.rows) < 40:
            await pilot.pause(0.01)
        await pilot.pause(1.0)
        fl = app.screen.active.file_list
        painted: list[tuple[float, int]] = []
        render_line = fl.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            index = int(fl.scroll_offset.y) + y
            if index == fl.cursor:
                painted.append((time.perf_counter(), index))
            return render_line(y)

        fl.render_line = spy  # type: ignore[method-assign]
        for i in range(presses):
            if i % 25 == 0:
                await pilot.press("home")
                await pilot.pause(0.1)
            painted.clear()
            before = fl.cursor
            pressed = time.perf_counter()
            await pilot.press("down")
            while not any(c != before for _, c in painted):
                await asyncio.sleep(0.0005)
            times.append(next(t for t, c in painted if c != before) - pressed)
    return times


def idle_memory(served: ServedCore, sessions: int) -> list[tuple[int, int]]:
    terms = [Terminal(served.ssh("sdtui", "big", tty=True), 160, 45) for _ in range(sessions)]
    try:
        for term in terms:
            term.wait_for("f000000.txt", timeout=60)
        time.sleep(3)
        for term in terms:
            term.pump(0.1)
        return [memory(pid) for pid in served.children()]
    finally:
        for term in terms:
            term.close()


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--presses", type=int, default=120)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument(
        "--parts", action="store_true", help="only the key press, over SSH, on a local pty and in process, side by side"
    )
    parser.add_argument(
        "--sessions-at-once", type=int, metavar="N",
        help="only this: N explorers over SSH at once, each its own cursor, a copy in one seen in all",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        served = ServedCore(Path(tmp))
        try:
            make_big(served.home / "big", args.files)
            print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            if args.sessions_at_once:
                started = time.monotonic()
                firsts = independent_sessions(served, args.sessions_at_once, timeout=600)
                print(
                    f"{args.sessions_at_once} sessions at once stayed independent (own cursors, the same copy job and "
                    f"its event in each): first screens median {statistics.median(firsts):.1f} s, "
                    f"max {max(firsts):.1f} s; all done in {time.monotonic() - started:.1f} s"
                )
                print(f"load average at the end: {os.getloadavg()[0]:.1f}")
                return
            if args.parts:
                key_to_cursor_parts(served, args.presses)
                print(f"load average at the end: {os.getloadavg()[0]:.1f}")
                return
            screens, cpus = first_screen(served, args.runs)
            print(
                f"ssh start to first screen of {args.files:,} entries: median {statistics.median(screens):.2f} s, "
                f"max {max(screens):.2f} s (budget 1.5 s) over {args.runs} runs; CPU of the session's explorer "
                f"and the server meanwhile: median {statistics.median(cpus):.2f} s"
            )
            keys, per_key = key_to_cursor(served, args.presses)
            print(
                f"key press to redrawn cursor: p50 {statistics.median(keys) * 1000:.1f} ms, "
                f"p95 {p95(keys) * 1000:.1f} ms (budget 40 ms) over {len(keys)} presses; "
                f"CPU per press (explorer + server) {per_key * 1000:.1f} ms"
            )
            mem = idle_memory(served, args.sessions)
            rss = statistics.mean(r for r, _ in mem) / MB
            pss = statistics.mean(p for _, p in mem) / MB
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
            print(f"memory per idle session: RSS {rss:.0f} MB, PSS {pss:.0f} MB (budget 120 MB) over {len(mem)} sessions")
        finally:
            served.stop()


if __name__ == "__main__":
    main()
