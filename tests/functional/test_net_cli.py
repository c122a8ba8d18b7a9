"""The `sd` network commands as a user runs them: two data dirs, two processes, real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]


def sd(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SD, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SD, "--data-dir", str(data_dir), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 20) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; got {lines}")


def test_pair_list_drop_and_unpair_from_the_command_line(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    sd(a, "device", "rename", "alpha")
    sd(b, "device", "rename", "beta")

    gen = start(a, "network", "pair", "generate", "--listen", "127.0.0.1:0")
    try:
        lines = read_until(gen, "--host")
        join_line = next(line for line in lines if "sd network pair join" in line)
        words_and_host = join_line.split("sd network pair join", 1)[1].split()
        words, host = words_and_host[:12], words_and_host[-1]
        assert len(words) == 12

        bad = sd(b, "network", "pair", "join", *words[:11], "--host", host, check=False)
        assert (
            bad.returncode == 1 and "not a valid pairing code" in bad.stderr
        )  # a typo does not burn the code

        out = sd(b, "network", "pair", "join", *words, "--host", host).stdout
        assert "paired with alpha" in out
        assert gen.wait(20) == 0
        assert "paired with beta" in (gen.stdout.read() if gen.stdout else "")
    finally:
        gen.kill()
        gen.wait()

    devices = json.loads(sd(a, "network", "devices", "--json").stdout)
    assert [(d["name"], d["trust"]) for d in devices] == [("beta", "full")]
    assert [d["name"] for d in json.loads(sd(b, "network", "devices", "--json").stdout)] == ["alpha"]

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report-2024.pdf").write_bytes(b"%PDF-1.4")
    sd(a, "location", "add", str(docs), "--mode", "shallow")
    server = start(a, "serve", "--listen", "127.0.0.1:0", "--auto-accept")
    try:
        address = read_until(server, "serving alpha")[-1].rsplit(" ", 1)[1]
        # beta learnt alpha's address while pairing; the server now runs on another free port
        trust = json.loads((b / "trust.json").read_text())
        trust["peers"][0]["addresses"] = [address]
        (b / "trust.json").write_text(json.dumps(trust))
        note = tmp_path / "note.txt"
        note.write_text("dropped")
        out = sd(b, "drop", str(note), "alpha").stdout
        assert "sent 1 file to alpha" in out
        assert (a / "spacedrop" / "note.txt").read_text() == "dropped"

        # a paired device's files, by its name, from the plain command line
        listed = json.loads(sd(b, "ls", f"alpha:{a / 'spacedrop'}", "--json").stdout)
        assert [(e["name"], e["size"]) for e in listed] == [("note.txt", 7)]
        back = tmp_path / "back"
        back.mkdir()
        sd(b, "cp", f"alpha:{a / 'spacedrop' / 'note.txt'}", str(back))
        assert (back / "note.txt").read_text() == "dropped"
        found = json.loads(sd(b, "search", "port-20", "--device", "alpha", "--json").stdout)
        assert [h["path"] for h in found] == [str(docs / "report-2024.pdf")]
    finally:
        server.terminate()
        assert server.wait(10) == 0

    assert "unpaired alpha" in sd(b, "network", "unpair", "alpha").stdout
    assert json.loads(sd(b, "network", "devices", "--json").stdout) == []
    gone = sd(b, "drop", str(tmp_path / "note.txt"), "alpha", check=False)
    assert gone.returncode == 1 and "no paired device called 'alpha'" in gone.stderr
    assert os.stat(a / "trust.json").st_mode & 0o077 == 0  # the trust store is owner-only


def test_pair_generate_hands_its_code_to_the_running_server(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    sd(a, "device", "rename", "alpha")
    sd(b, "device", "rename", "beta")
    server = start(a, "serve", "--listen", "127.0.0.1:0")
    other = start(b, "serve", "--listen", "127.0.0.1:0", "--auto-accept")
    try:
        b_address = read_until(other, "serving beta")[-1].rsplit(" ", 1)[1]
        address = read_until(server, "serving alpha")[-1].rsplit(" ", 1)[1]
        assert os.stat(a / "control.sock").st_mode & 0o077 == 0  # owner-only
        second = sd(a, "serve", "--listen", "127.0.0.1:0", check=False)
        assert second.returncode == 1 and "already running" in second.stderr

        gen = start(a, "network", "pair", "generate", "--trust", "shared")
        try:
            join_line = next(line for line in read_until(gen, "--host") if "sd network pair join" in line)
            words = join_line.split("sd network pair join", 1)[1].split()
            assert words[-1] == address  # the code belongs to the server, which waits for the join
            out = sd(b, "network", "pair", "join", *words[:12], "--host", address).stdout
            assert "paired with alpha" in out
            assert gen.wait(20) == 0
        finally:
            gen.kill()
            gen.wait()
        devices = json.loads(sd(a, "network", "devices", "--json").stdout)
        # beta's running server joined, so alpha learnt where to reach beta
        assert [(d["name"], d["trust"], d["addresses"]) for d in devices] == [("beta", "shared", [b_address])]
        gift = tmp_path / "gift.txt"
        gift.write_text("for beta")
        assert "sent 1 file to beta" in sd(a, "drop", str(gift), "beta").stdout
        assert (b / "spacedrop" / "gift.txt").read_text() == "for beta"
        assert "unpaired beta" in sd(a, "network", "unpair", "beta").stdout
    finally:
        for proc in (server, other):
            proc.terminate()
            proc.wait(10)
    assert not (a / "control.sock").exists()


def test_a_command_whose_server_is_killed_says_in_one_line_where_its_work_went(tmp_path: Path) -> None:
    """kill -9 of `sd serve` while `sd cp` ran in it left "error: the core that ran this command stopped before it
    finished": nothing on the copy, which that server resumes when it starts again."""
    a = tmp_path / "a"
    server = start(a, "serve", "--listen", "127.0.0.1:0")
    try:
        read_until(server, "serving ")
        waiting = start(a, "network", "pair", "generate")  # carried out by the server: it waits there for a join
        read_until(waiting, "--host")
        server.kill()
        server.wait(10)
        said = waiting.communicate(timeout=30)[0].splitlines()[-1]
        assert waiting.returncode == 1
        assert said.startswith("error: the core that ran this command (`sd serve` or sdtui) stopped"), said
        assert "`sd job list`" in said
    finally:
        server.kill()
        server.wait()


def test_a_device_that_joined_without_a_server_is_reached_once_it_serves(tmp_path: Path) -> None:
    """The README's pairing: alpha serves and shows a code, beta joins with a one-shot `sd`; beta serves later."""
    a, b = tmp_path / "a", tmp_path / "b"
    sd(a, "device", "rename", "alpha")
    sd(b, "device", "rename", "beta")
    (b / "shelf").mkdir(parents=True)
    (b / "shelf" / "book.txt").write_text("beta's")
    server = start(a, "serve", "--listen", "127.0.0.1:0")
    other = None
    try:
        address = read_until(server, "serving alpha")[-1].rsplit(" ", 1)[1]
        gen = start(a, "network", "pair", "generate")
        try:
            join_line = next(line for line in read_until(gen, "--host") if "sd network pair join" in line)
            sd(b, "network", "pair", "join", *join_line.split("sd network pair join", 1)[1].split()[:12], "--host", address)
            assert gen.wait(20) == 0
        finally:
            gen.kill()
            gen.wait()
        unknown = sd(a, "ls", f"beta:{b / 'shelf'}", check=False)
        assert unknown.returncode == 1 and "has not said where it listens" in unknown.stderr
        assert "sd serve` there" in unknown.stderr

        other = start(b, "serve", "--listen", "127.0.0.1:0")
        b_address = read_until(other, "serving beta")[-1].rsplit(" ", 1)[1]
        deadline = time.monotonic() + 20
        while json.loads(sd(a, "network", "devices", "--json").stdout)[0]["addresses"] != [b_address]:
            assert time.monotonic() < deadline, "beta never told alpha where it listens"
            time.sleep(0.2)
        listed = json.loads(sd(a, "ls", f"beta:{b / 'shelf'}", "--json").stdout)
        assert [e["name"] for e in listed] == ["book.txt"]
    finally:
        for proc in (server, other):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
