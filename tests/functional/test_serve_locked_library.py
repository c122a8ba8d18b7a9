"""`sd serve` started while another process holds a library: the library goes live as soon as that one lets go."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SD = str(Path(sys.executable).parent / "sd")

HOLDER = """
import sys
from pathlib import Path
from sdcore.library import Library

library = Library(Path(sys.argv[1]), program="a long sd job")
library.hold_lock()
print("held", flush=True)
sys.stdin.readline()  # until the test lets go
"""


def test_a_library_held_when_serve_starts_is_watched_once_the_holder_lets_go(tmp_path: Path) -> None:
    data, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    (docs / "old.txt").write_text("old")
    env = {**os.environ, "SD_DATA_DIR": str(data)}

    def sd(*args: str) -> str:
        done = subprocess.run([SD, *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    sd("location", "add", str(docs))
    (lock,) = data.rglob(".lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock.parent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    server = subprocess.Popen(
        [SD, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert server.stdout is not None and "serving" in server.stdout.readline()  # not held up by the library
        assert "a long sd job" in lock.read_text()
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(30) == 0

        deadline = time.monotonic() + 30
        while not lock.read_text().startswith(f"process {server.pid} "):  # the server took the library: it is live
            assert time.monotonic() < deadline, f"sd serve never took the library; the lock says {lock.read_text()!r}"
            time.sleep(0.1)
        (docs / "new.txt").write_text("made while sd serve watches")
        deadline = time.monotonic() + 30
        while "new.txt" not in sd("search", "new"):  # no rescan: the watcher saw it
            assert time.monotonic() < deadline, "the new file never reached the index"
            time.sleep(0.2)
    finally:
        holder.kill()
        holder.wait()
        server.terminate()
        server.wait(10)
    logged = (data / "sdtui.log").read_text()
    assert "is open in process" in logged and "(a long sd job)" in logged and "goes live once that lets go" in logged
