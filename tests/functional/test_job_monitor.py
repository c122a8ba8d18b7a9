"""`sd job monitor` beside a running `sd serve`: lines a person reads, as the core's jobs run."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sdcore.control import SOCKET_NAME
from tests.functional.slow_disk import SLOW_SD

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
                    lines.append(said.get(timeout=30))
                break
            except queue.Empty:
                continue
    finally:
        if monitor is not None:
            monitor.send_signal(signal.SIGINT)
            monitor.wait(60)
        server.terminate()
        server.wait(60)
    assert lines and lines[-1].endswith(" copy completed"), lines
    assert not [line for line in lines if "JobProgress(" in line or "JobStateChanged(" in line]
    job = lines[-1].split()[0]
    progress = [line for line in lines if line.startswith(f"{job} copy ") and "/" in line]
    assert progress, lines
    assert all(re.search(r" \d+%  \d+(\.\d)?( B|K|M)/32M  .*\d/4 files", line) for line in progress), progress


# -- beside a foreground `sd cp`: the core is the copy's own process ----------------------------------------


def _monitor_a_foreground_copy(tmp_path: Path, stop: str) -> tuple[str, str, str, int]:
    """Run `sd cp` of 64 MiB from a slow disk, follow it with `sd job monitor`, then `stop` the copy ("pause" or
    "kill") once the monitor shows it under way; the job's id, what the monitor printed and its exit status."""
    env = {**os.environ, "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(64 << 20))  # about 25 s to copy: a stop lands long before it ends
    dst = tmp_path / "dst"
    dst.mkdir()
    copy = subprocess.Popen([*SLOW_SD, "cp", source, dst], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    monitor = None
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / SOCKET_NAME).exists():
            assert copy.poll() is None and time.monotonic() < deadline, "the copy's core never served its socket"
            time.sleep(0.02)
        monitor = subprocess.Popen([SD, "job", "monitor"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        assert monitor.stdout is not None
        first = monitor.stdout.readline()
        while first and "%" not in first:  # a state line may come first
            first = monitor.stdout.readline()
        assert first and copy.poll() is None, "the copy ended before it could be stopped under `sd job monitor`"
        job = first.split()[0]
        if stop == "kill":
            copy.send_signal(signal.SIGKILL)
        else:
            paused = subprocess.run([SD, "job", "pause", job], env=env, capture_output=True, text=True, timeout=60)
            assert paused.returncode == 0, paused.stderr
        out, err = monitor.communicate(timeout=60)  # it ends at once, saying why
        return job, first + out, err, monitor.returncode
    finally:
        copy.kill()
        copy.wait()
        if monitor is not None:
            monitor.kill()
            monitor.wait()


def test_job_monitor_of_a_foreground_copy_that_is_killed_says_which_job_stopped_and_how_to_resume_it(
    tmp_path: Path,
) -> None:
    job, out, err, code = _monitor_a_foreground_copy(tmp_path, "kill")
    assert code == 1, (out, err)
    assert f"`sd job resume {job}`" in err, err  # what to type to carry on
    assert "the core that ran this command stopped" not in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 3, err


def test_job_monitor_of_a_foreground_copy_that_is_paused_says_so_and_how_to_resume_it(tmp_path: Path) -> None:
    job, out, err, code = _monitor_a_foreground_copy(tmp_path, "pause")
    assert f"{job} copy paused" in out and f"`sd job resume {job}`" in out, out
    assert code == 1 and "stopped" in err, err  # the copy's process, the core it followed, is gone
    assert "the core that ran this command stopped" not in err and "Traceback" not in err, err
