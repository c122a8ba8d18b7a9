"""`sd` commands carried out by a core another process runs: any name goes there, and their output is theirs alone."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from sdcore.control import SOCKET_NAME

SD = str(Path(sys.executable).parent / "sd")


def test_a_command_run_beside_a_foreground_copy_does_not_get_the_copys_progress_bar(tmp_path: Path) -> None:
    data, src, dst = tmp_path / "data", tmp_path / "big.bin", tmp_path / "dst"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for _ in range(1024):
            f.write(block)
    dst.mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.txt").write_text("report")
    env = {**os.environ, "SD_DATA_DIR": str(data), "COLUMNS": "80"}
    for made in (["tag", "create", "work"], ["location", "add", str(tmp_path / "docs")]):
        assert subprocess.run([SD, *made], capture_output=True, env=env, timeout=120).returncode == 0
    terminal, side = pty.openpty()  # the copy's bar draws on a terminal, as a person sees it
    copy = subprocess.Popen([SD, "cp", str(src), str(dst), "--verify"], stdin=side, stdout=side, stderr=side, env=env)
    os.close(side)
    try:
        deadline = time.monotonic() + 60
        while not (data / SOCKET_NAME).exists():
            assert copy.poll() is None and time.monotonic() < deadline, "the copy never served its core"
            time.sleep(0.05)
        def sd(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([SD, *args], capture_output=True, text=True, env=env, timeout=120)

        report = str(tmp_path / "docs" / "report.txt")
        wrong = sd("tag", "add", "nosuchtag", report)  # its error, printed while the copy's bar is drawn
        assert wrong.returncode == 1
        assert wrong.stdout == "" and wrong.stderr.count("\n") == 1, wrong.stderr  # one line, no bar in it
        assert wrong.stderr.startswith("error: no tag named 'nosuchtag'"), wrong.stderr
        tagged = sd("tag", "add", "work", report)
        assert copy.poll() is None, "the copy ended before the tag was added: make the file bigger"
        assert tagged.returncode == 0, tagged.stdout + tagged.stderr
        said = tagged.stdout + tagged.stderr
        assert "tagged 1 entry with work" in said
        assert "copy" not in said and "━" not in said, said  # the foreground copy's bar stays in its terminal
    finally:
        copy.kill()
        copy.wait()
        os.close(terminal)


def test_a_name_that_is_not_utf8_goes_to_a_running_core_and_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    odd_dir = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(odd_dir)
    with open(os.path.join(odd_dir, b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    env = {**os.environ, "SD_DATA_DIR": str(data)}
    server = subprocess.Popen([SD, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None and "serving" in server.stdout.readline()
        for args, cwd in (([odd_dir], None), ([b"."], odd_dir)):  # named, and the folder it runs in
            listed = subprocess.run([SD, "ls", *args], capture_output=True, env=env, cwd=cwd, timeout=120)
            assert listed.returncode == 0, listed.stderr
            assert b"bad\\xff.txt" in listed.stdout, listed.stdout  # shown escaped
    finally:
        server.terminate()
        server.wait(10)
