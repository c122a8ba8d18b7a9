"""Benchmark of the TUI against the issue's budgets: `python tests/bench/bench_tui.py [--files N] [--no-tmux]`.

Measures, on a directory of 100,000 files made in a temporary folder:
- start-up to first paint (run_test, and a real terminal through tmux: process start to the first row drawn),
- opening the big directory: first screen of rows, and the full listing sorted by name,
- cursor movement per key at 100,000 rows (j, and page down/G/gg),
- resident memory with the 100,000-entry pane open.
Each figure is printed with its budget and the ratio figure/budget (below 1.0 is within budget).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sdcore.core import Core
from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.widgets.file_list import FileList

BUDGETS = {
    "first screen of 100k (run_test)": 0.200,
    "full sorted listing of 100k (run_test)": 1.5,
    "cursor move per key at 100k": 0.020,
    "cursor move per key at 100k, 95th percentile": 0.020,
    "cursor move per key at 100k, worst": 0.020,
    "start-up to first paint (run_test)": 0.600,
    "RSS with a 100k pane (MB)": 200,
    "first screen of 100k (tmux)": 0.200,
    "full listing of 100k shown (tmux)": 1.5,
    "start-up to first paint (tmux)": 0.600,
}


def make_big(root: Path, count: int) -> Path:
    big = root / "big"
    big.mkdir()
    for i in range(count):
        os.close(os.open(big / f"f{i:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    (root / "small").mkdir()
    (root / "small" / "a.txt").write_text("a\n")
    return big


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def wait_until(predicate, timeout: float = 30.0, step: float = 0.001) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError
        await asyncio.sleep(step)
    return time.perf_counter() - started


async def bench_run_test(root: Path, big: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with Core(root / "data") as core:  # the device exists already, as for anyone on a second start
        await asyncio.to_thread(core.library)
    first_row_drawn: list[float] = []
    draw_row = FileList.render_line

    def note_first_row(self: FileList, y: int):  # type: ignore[no-untyped-def]
        if not first_row_drawn and self.rows:
            first_row_drawn.append(time.perf_counter())
        return draw_row(self, y)

    FileList.render_line = note_first_row  # type: ignore[method-assign]
    started = time.perf_counter()
    app = SdtuiApp(str(root / "small"), data_dir=root / "data")
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(lambda: bool(first_row_drawn))
        FileList.render_line = draw_row  # type: ignore[method-assign]
        # the first row drawn, not the app idle: start-up work goes on after the first screen
        figures["start-up to first paint (run_test)"] = first_row_drawn[0] - started
        await pilot.pause()

        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        pane = screen.active
        fl = pane.file_list
        painted: list[tuple[float, int]] = []
        render_line = fl.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            # A line reaches the screen: note when the cursor's row (or any row) is drawn.
            index = int(fl.scroll_offset.y) + y
            if index < len(fl.rows):
                painted.append((time.perf_counter(), index if index == fl.cursor else -1))
            return render_line(y)

        fl.render_line = spy  # type: ignore[method-assign]
        await pilot.pause(1.0)  # let start-up work (library, watcher, network import) settle, as in tmux
        opened = time.perf_counter()
        pane.open(app.core.local_path(str(big)))
        await wait_until(lambda: bool(painted))
        figures["first screen of 100k (run_test)"] = painted[0][0] - opened
        await wait_until(lambda: fl.state == "ready" and len(fl.entries) >= 100_000)
        await pilot.pause()
        figures["full sorted listing of 100k (run_test)"] = time.perf_counter() - opened
        names = [e.name for e in fl.rows[:1000]]
        assert names == sorted(names), "not sorted by name"
        await pilot.pause(0.3)

        async def key_to_paint(key: str) -> float:
            painted.clear()
            before = fl.cursor
            t0 = time.perf_counter()
            await pilot.press(key)
            await wait_until(lambda: any(c not in (-1, before) for _, c in painted), timeout=5)
            return next(t for t, c in painted if c not in (-1, before)) - t0

        keys = [await key_to_paint("j") for _ in range(100)]
        figures["cursor move per key at 100k"] = sorted(keys)[len(keys) // 2]
        figures["cursor move per key at 100k, 95th percentile"] = sorted(keys)[int(len(keys) * 0.95)]
        figures["cursor move per key at 100k, worst"] = max(keys)
        jumps = [await key_to_paint(k) for k in ("G", "home", "pagedown", "pagedown", "pageup", "G", "k")]
        figures["long jumps per key at 100k (G, Home, PgDn)"] = max(jumps)
        wall = time.perf_counter()
        for _ in range(50):
            await pilot.press("j")
        figures["pilot.press j, wall per key (incl. pilot's waits)"] = (time.perf_counter() - wall) / 50
        figures["RSS with a 100k pane (MB)"] = rss_mb()
    return figures


class Tmux:
    """`sdtui` in a real terminal: a detached session of a tmux server of this run's own (started with this process's
    environment, killed at `close`), its screen read as a person sees it."""

    def __init__(self) -> None:
        self.server = f"sdtui-bench-{os.getpid()}"
        self.session = "bench"
        self.exe = str(Path(sys.executable).parent / "sdtui")

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True).stdout

    def start(self, *args: str) -> float:
        """Start `sdtui ARGS` in a 160x50 terminal; the moment it was asked to start."""
        started = time.perf_counter()
        # as on a user's machine: Python caches the bytecode (some sandboxes export PYTHONDONTWRITEBYTECODE,
        # which makes every start compile sdtui's modules again)
        command = " ".join(["env -u PYTHONDONTWRITEBYTECODE", self.exe, *args])
        self("new-session", "-d", "-s", self.session, "-x", "160", "-y", "50", command)
        return started

    def wait_for(self, pattern: re.Pattern[str], since: float, timeout: float = 30.0) -> float:
        """Seconds from `since` until the screen shows `pattern`."""
        while time.perf_counter() - since < timeout:
            if pattern.search(self("capture-pane", "-p", "-t", self.session)):
                return time.perf_counter() - since
            time.sleep(0.003)
        raise TimeoutError(pattern.pattern)

    def cpu(self) -> float:
        """CPU seconds (user + system, every thread, and the children it waited for) of the sdtui process so far."""
        pid = int(self("display-message", "-p", "-t", self.session, "#{pane_pid}"))
        while self.exe not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            pid = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])  # a shell before it
        return proc_cpu(pid)

    def stop(self) -> None:
        self("kill-session", "-t", self.session)
        time.sleep(0.5)  # the killed one is gone before the next starts

    def close(self) -> None:
        self("kill-server")


def proc_cpu(pid: int) -> float:
    """CPU seconds of process `pid` so far: user + system of every thread, and of the children it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def bench_tmux(root: Path, big: Path) -> dict[str, float]:
    """Run `sdtui` in a real terminal (tmux) and watch the screen as a person would see it."""
    figures: dict[str, float] = {}
    term = Tmux()
    data = f"--data-dir {root / 'data-tmux'}"
    try:
        startups = []
        for _ in range(5):
            started = term.start(str(root / "small"), data)
            startups.append(term.wait_for(re.compile(r"a\.txt"), started))
            term.stop()
        figures["start-up to first paint (tmux)"] = sorted(startups)[2]  # the median of 5 (the first makes the device)

        # open the big directory from its parent, as a person would: cursor on it, Enter
        started = term.start(str(big.parent), data)
        term.wait_for(re.compile(re.escape(big.name) + "/"), started)
        time.sleep(1.0)
        names = sorted(
            (
                p.name
                for p in big.parent.iterdir()
                if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
            ),
            key=str.casefold,
        )
        term("send-keys", "-t", term.session, *(["j"] * names.index(big.name)))
        time.sleep(0.5)
        pressed = time.perf_counter()
        term("send-keys", "-t", term.session, "Enter")
        # a row of the pane ("││  name"), not the inspector's preview of the directory ("││ name")
        visible = [name for name in os.listdir(big) if not name.startswith(".")]  # hidden files are not shown
        shown = len(visible)
        before = "|".join(re.escape(p.name) for p in big.parent.iterdir())  # the rows shown before Enter
        row = re.compile(rf"││  (?!{before}|loading)\S")  # any first row of the big directory
        figures["first screen of 100k (tmux)"] = term.wait_for(row, pressed)
        figures["full listing of 100k shown (tmux)"] = term.wait_for(re.compile(rf"{shown:,} items"), pressed)
    finally:
        term.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--no-tmux", action="store_true")
    parser.add_argument(
        "--dir", type=Path, help="an existing directory of many files to open instead of making one"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sdtui-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        big = make_big(root, 0 if args.dir else args.files)
        if args.dir:
            big = args.dir
        else:
            print(f"made {args.files:,} files in {time.perf_counter() - t0:.1f}s")
        figures = asyncio.run(bench_run_test(root, big))
        report(figures)
        if not args.no_tmux and shutil.which("tmux"):
            report(bench_tmux(root, big))


def report(figures: dict[str, float]) -> None:
    print(f"{'measure':52} {'figure':>10} {'budget':>8} {'ratio':>6}")
    for name, value in figures.items():
        budget = BUDGETS.get(name)
        unit = "" if "MB" in name else "s"
        shown = (
            f"{value:.1f}" if "MB" in name else (f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s")
        )
        ratio = f"{value / budget:.2f}" if budget else ""
        print(f"{name:52} {shown:>10} {str(budget) + unit if budget else '':>8} {ratio:>6}")


if __name__ == "__main__":
    main()
