"""Benchmark of a front end attached to another process's core vs in-process: `python tests/bench/bench_attach.py`.

Side by side, on a directory of 100,000 files in a temporary folder, the core served by a real `sd serve`:
- the API: first batch and the whole listing of the directory (`api.browse`),
- the explorer (run_test): first screen of the directory, and key press to moved cursor (p95),
- 1,000 progress events a second from a job: how far behind the attached explorer's jobs strip is, and how many
  of them it had to draw (a newer progress event replaces the one still queued).
Each attached figure is printed beside the in-process one, with the ratio and the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sdcore.api import Api
from sdcore.api.client import attach
from sdcore.core import Core
from sdcore.sdpath import SdPath

SD = str(Path(sys.executable).parent / "sd")
EVENTS_SERVER = """
import asyncio, sys, time
from sdcore.core import Core
from sdcore.events import JobProgress, JobStateChanged
from sdtui.cli.forward import host

async def main() -> None:
    async with Core(sys.argv[1]) as core:
        await host(core)
        print("serving", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the client is attached and listens
        rate, seconds = int(sys.argv[2]), float(sys.argv[3])
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            core.bus.publish(JobProgress("bench", "copy", i + 1, int(rate * seconds), message=repr(time.time())))
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
        core.bus.publish(JobStateChanged("bench", "copy", "completed"))
        await asyncio.to_thread(sys.stdin.readline)

asyncio.run(main())
"""


def make_big(root: Path, count: int) -> Path:
    big = root / "big"
    big.mkdir()
    for i in range(count):
        os.close(os.open(big / f"f{i:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    return big


def serve(data: Path) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [SD, "--data-dir", str(data), "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None and server.stdout.readline().startswith("serving ")
    return server


async def listing(api: Any, directory: SdPath) -> tuple[float, float]:
    """Seconds to the first batch of the directory, and to its last."""
    started = time.perf_counter()
    first, count = 0.0, 0
    async for batch in api.browse(directory):
        count += len(batch)
        first = first or time.perf_counter() - started
    assert count >= 100_000, count
    return first, time.perf_counter() - started


async def bench_api(data: Path, big: Path) -> dict[str, tuple[float, float]]:
    figures: dict[str, tuple[float, float]] = {}
    async with Core(data) as core:
        local = Api(core)
        directory = SdPath(local.device.id, str(big))
        await listing(local, directory)  # warm the page cache
        inprocess = sorted([await listing(local, directory) for _ in range(5)])[2]
    server = serve(data)
    try:
        remote = await attach(data)
        assert remote is not None
        attached = sorted([await listing(remote, directory) for _ in range(5)])[2]
        await remote.close()
    finally:
        server.terminate()
        server.wait(20)
    figures["API: first batch of 100k"] = (inprocess[0], attached[0])
    figures["API: whole listing of 100k"] = (inprocess[1], attached[1])
    return figures


async def explorer(data: Path, big: Path) -> tuple[float, float]:
    """The explorer (run_test) on `data`: first screen of the big directory (median of five), and key press to moved cursor (p95)."""
    from sdtui.app import SdtuiApp
    from sdtui.screens.explorer import ExplorerScreen

    app = SdtuiApp(str(big.parent), data_dir=data)
    async with app.run_test(size=(160, 50)) as pilot:
        while not isinstance(app.screen, ExplorerScreen):
            await pilot.pause(0.01)
        await pilot.pause(1.0)
        screen = app.screen
        fl = screen.active.file_list
        painted: list[tuple[float, int]] = []
        render_line = fl.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            index = int(fl.scroll_offset.y) + y
            if index < len(fl.rows):
                painted.append((time.perf_counter(), index if index == fl.cursor else -1))
            return render_line(y)

        fl.render_line = spy  # type: ignore[method-assign]
        firsts = []
        for _ in range(5):  # one open is at the mercy of a busy machine: the median of five
            screen.active.open(SdPath(app.api.device.id, str(big.parent)))
            while fl.state != "ready" or len(fl.entries) >= 100_000:
                await pilot.pause(0.01)
            await pilot.pause(0.3)
            painted.clear()
            opened = time.perf_counter()
            screen.active.open(SdPath(app.api.device.id, str(big)))
            while not any(fl.rows) or not painted or len(fl.rows) < 50:
                await asyncio.sleep(0.001)
            firsts.append(painted[-1][0] - opened)
            while fl.state != "ready" or len(fl.entries) < 100_000:
                await pilot.pause(0.01)
        first = sorted(firsts)[2]
        await pilot.pause(0.3)
        keys = []
        for _ in range(100):
            painted.clear()
            before = fl.cursor
            pressed = time.perf_counter()
            await pilot.press("j")
            while not any(c not in (-1, before) for _, c in painted):
                await asyncio.sleep(0.0005)
            keys.append(next(t for t, c in painted if c not in (-1, before)) - pressed)
    return first, sorted(keys)[int(len(keys) * 0.95)]


async def bench_explorer(data: Path, big: Path) -> dict[str, tuple[float, float]]:
    inprocess = await explorer(data, big)
    server = serve(data)
    try:
        attached = await explorer(data, big)
    finally:
        server.terminate()
        server.wait(20)
    return {
        "explorer: first screen of 100k": (inprocess[0], attached[0]),
        "explorer: key press to moved cursor, p95": (inprocess[1], attached[1]),
    }


async def bench_events(
    data: Path, big: Path, attached: bool, rate: int = 1000, seconds: float = 5.0
) -> dict[str, float]:
    """A job publishing `rate` progress events a second (in the serving process when `attached`, else in the
    explorer's own core); the explorer's jobs strip applies what reaches it (a newer progress event replaces the
    one still queued), and keys are pressed meanwhile."""
    from sdtui.app import SdtuiApp
    from sdtui.screens.explorer import ExplorerScreen
    from sdtui.widgets.jobs_strip import JobsStrip

    server = subprocess.Popen(
        [sys.executable, "-c", EVENTS_SERVER, str(data), str(rate), str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) if attached else None  # fmt: skip
    if server is not None:
        assert server.stdin is not None and server.stdout is not None
        assert server.stdout.readline().startswith("serving")
    applied: list[tuple[float, float]] = []  # (when the strip applied it, when the core published it)
    on_progress = JobsStrip.on_progress

    def noted(self: JobsStrip, event: Any, device: str = "") -> None:
        if event.job_id == "bench":
            applied.append((time.time(), float(event.message)))
        on_progress(self, event, device)

    JobsStrip.on_progress = noted  # type: ignore[method-assign]
    try:
        app = SdtuiApp(str(big), data_dir=data)
        async with app.run_test(size=(160, 50)) as pilot:
            while not isinstance(app.screen, ExplorerScreen):
                await pilot.pause(0.01)
            fl = app.screen.active.file_list
            while fl.state != "ready":
                await pilot.pause(0.01)
            await pilot.pause(1.0)
            painted: list[tuple[float, int]] = []
            render_line = fl.render_line

            def spy(y: int):  # type: ignore[no-untyped-def]
                index = int(fl.scroll_offset.y) + y
                if index < len(fl.rows):
                    painted.append((time.perf_counter(), index if index == fl.cursor else -1))
                return render_line(y)

            fl.render_line = spy  # type: ignore[method-assign]
            if server is not None:
                server.stdin.write("go\n")  # type: ignore[union-attr]
                server.stdin.flush()  # type: ignore[union-attr]
            else:
                threading.Thread(target=_publish, args=(app.core.bus, rate, seconds), daemon=True).start()
            presses = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:  # keys pressed while the events pour in: key to moved cursor
                painted.clear()
                before = fl.cursor
                pressed = time.perf_counter()
                app.simulate_key("j")  # not pilot.press: it waits for an idle app, and events keep it busy
                while not any(c not in (-1, before) for _, c in painted):
                    await asyncio.sleep(0.0005)
                presses.append(next(t for t, c in painted if c not in (-1, before)) - pressed)
                await asyncio.sleep(0.05)
            await pilot.pause(1.0)
    finally:
        JobsStrip.on_progress = on_progress  # type: ignore[method-assign]
        if server is not None:
            server.stdin.write("done\n")  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
            server.wait(20)
    lags = sorted(t - published for t, published in applied)
    return {
        "progress events published": rate * seconds,
        "progress events the strip applied": len(applied),
        "lag publish -> strip, median (ms)": lags[len(lags) // 2] * 1000 if lags else float("nan"),
        "lag publish -> strip, worst (ms)": lags[-1] * 1000 if lags else float("nan"),
        "key press to moved cursor during the burst, p95 (ms)": sorted(presses)[int(len(presses) * 0.95)] * 1000,
        "key presses measured during the burst": len(presses),
    }



def _publish(bus: Any, rate: int, seconds: float) -> None:
    """What EVENTS_SERVER does, into a core of this process."""
    from sdcore.events import JobProgress, JobStateChanged

    started, total = time.perf_counter(), int(rate * seconds)
    for i in range(total):
        bus.publish(JobProgress("bench", "copy", i + 1, total, message=repr(time.time())))
        time.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    bus.publish(JobStateChanged("bench", "copy", "completed"))

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--skip-explorer", action="store_true")
    parser.add_argument("--events-only", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sd-bench-attach-"))
    os.environ["HOME"] = str(root)
    try:
        big = make_big(root, args.files)
        data = root / "data"
        figures = {} if args.events_only else asyncio.run(bench_api(data, big))
        if not args.skip_explorer and not args.events_only:
            figures.update(asyncio.run(bench_explorer(data, big)))
        budgets = {"explorer: first screen of 100k": "≤ 1.3x", "explorer: key press to moved cursor, p95": "< 20 ms"}
        print(f"{'figure':45} {'in-process':>11} {'attached':>11} {'ratio':>7}  budget")
        for name, (inprocess, attached) in figures.items():
            ratio = attached / inprocess if inprocess else float("nan")
            print(f"{name:45} {inprocess * 1000:9.1f}ms {attached * 1000:9.1f}ms {ratio:6.2f}x  {budgets.get(name, '')}")
        if not args.skip_explorer:
            local = asyncio.run(bench_events(root / "data-events", big, attached=False))
            remote = asyncio.run(bench_events(root / "data-events", big, attached=True))
            print(f"{'1,000 progress events a second for 5 s':53} {'in-process':>11} {'attached':>11}")
            for name, value in remote.items():
                print(f"{name:53} {local[name]:11.1f} {value:11.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
