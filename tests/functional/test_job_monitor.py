"""`sd job monitor` beside a running `sd serve`: lines a person reads, as the core's jobs run."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

SD = str(Path(sys.executable).parent / "sd")


def test_job_monitor_prints_readable_progress_and_state_lines(tmp_path: Path) -> None:
    env = {**os.environ, "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"part{i}.bin").write_bytes(os.urandom(8 << 20))
    server = subprocess.Popen([SD, "serve", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    monitor = None
    lines: list[str] = []
    try:
        assert server.stdout is not None
        while not server.stdout.readline().startswith("serving "):
            assert server.poll() is None, "`sd serve` did not start"
        monitor = subprocess.Popen([SD, "job", "monitor"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        said: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [said.put(line.rstrip("\n")) for line in monitor.stdout], daemon=True).start()  # type: ignore[union-attr]
        for attempt in range(5):  # a copy made before the monitor listened goes unseen: copy again
            copied = subprocess.run([SD, "cp", src, tmp_path / f"dst{attempt}"], env=env, capture_output=True,
                                    text=True, timeout=60)  # fmt: skip
            assert copied.returncode == 0, copied.stderr
            try:
                while not lines or not lines[-1].endswith(" copy completed"):
                    lines.append(said.get(timeout=10))
                break
            except queue.Empty:
                continue
    finally:
        if monitor is not None:
            monitor.send_signal(signal.SIGINT)
            monitor.wait(20)
        server.terminate()
        server.wait(20)
    assert lines and lines[-1].endswith(" copy completed"), lines
    assert not [line for line in lines if "JobProgress(" in line or "JobStateChanged(" in line]
    job = lines[-1].split()[0]
    progress = [line for line in lines if line.startswith(f"{job} copy ") and "/" in line]
    assert progress, lines
    assert all(re.search(r" \d+%  \d+(\.\d)?( B|K|M)/32M  .*\d/4 files", line) for line in progress), progress
