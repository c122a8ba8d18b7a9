"""One core per data dir: while `sd serve` or `sdtui` runs, `sd` commands on its data dir are carried out there."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]


def sd(data: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        cwd=cwd, timeout=60,
    )  # fmt: skip


def typing_into(data: Path, typed: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`sd ARGS` with `typed` on its standard input, as a person answering its questions."""
    return subprocess.run(
        [*SD, "--data-dir", str(data), *args], capture_output=True, text=True, input=typed, timeout=60
    )


def ok(data: Path, *args: str, cwd: Path | None = None) -> str:
    out = sd(data, *args, cwd=cwd)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def start(data: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SD, "--data-dir", str(data), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, cwd=cwd,
    )  # fmt: skip


def serve(data: Path) -> subprocess.Popen[str]:
    """`sd serve` on a free port of 127.0.0.1, once it listens."""
    server = start(data, "serve", "--listen", "127.0.0.1:0")
    assert server.stdout is not None
    line = server.stdout.readline()
    assert "serving" in line, line + (server.stderr.read() if server.stderr else "")
    return server


def stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    assert server.wait(10) == 0


def files(root: Path, count: int) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        os.close(os.open(root / f"f{i:05}", os.O_CREAT | os.O_WRONLY, 0o644))


def names(listing: str) -> list[str]:
    return sorted(e["name"] for e in json.loads(listing))


def test_sd_commands_are_carried_out_by_the_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "invoice-2024.txt").write_text("due")
    (tmp_path / "tree" / "sub" / "photo.md").write_text("# photo")
    server = serve(data)
    try:
        sock = data / "control.sock"
        assert stat.S_ISSOCK(os.stat(sock).st_mode) and stat.S_IMODE(os.stat(sock).st_mode) == 0o600

        assert "created library 'Photos'" in ok(data, "library", "create", "Photos", "--default")
        assert [lib["name"] for lib in json.loads(ok(data, "library", "list", "--json"))] == ["Photos"]
        # relative paths are relative to where `sd` runs, not to where the server runs
        assert "indexed tree: 3 entries in 2 folders" in ok(
            data, "location", "add", "tree", "--mode", "content", cwd=tmp_path
        )
        assert names(ok(data, "ls", "sub", "--json", cwd=tmp_path / "tree")) == ["photo.md"]
        ok(data, "tag", "create", "paid", "--color", "green")
        assert "tagged 1 entry with paid" in ok(
            data, "tag", "add", "paid", "invoice-2024.txt", cwd=tmp_path / "tree"
        )
        found = json.loads(ok(data, "search", "invoice", "--json"))
        assert [h["path"] for h in found] == [str(tmp_path / "tree" / "invoice-2024.txt")]
        assert len(json.loads(ok(data, "search", "--tag", "paid", "--json"))) == 1
        jobs = json.loads(ok(data, "job", "list", "--all", "--json"))
        assert [(j["kind"], j["state"]) for j in jobs] == [("index", "completed")]

        # the server holds the library: it, not the commands' processes, did the work
        lock = (data / "libraries" / "Photos.sdlibrary" / ".lock").read_text()
        assert lock.startswith(f"process {server.pid} ")

        missing = sd(data, "ls", str(tmp_path / "missing"))
        assert (
            missing.returncode == 1
            and "does not exist" in missing.stderr
            and "Traceback" not in missing.stderr
        )
        assert sd(data, "no-such-command").returncode == 2
        asked = sd(data, "library", "delete", "Photos")  # no terminal to answer the question: nothing deleted
        assert asked.returncode == 1 and (data / "libraries" / "Photos.sdlibrary").exists()
        # a question is asked where `sd` runs, and answered there
        ok(data, "library", "create", "Scratch")
        declined = typing_into(data, "n\n", "library", "delete", "Scratch")
        assert declined.returncode == 1 and "Delete library 'Scratch'" in declined.stdout
        assert (data / "libraries" / "Scratch.sdlibrary").exists()
        agreed = typing_into(data, "y\n", "library", "delete", "Scratch")
        assert agreed.returncode == 0 and "deleted library 'Scratch'" in agreed.stdout, agreed.stderr
        assert not (data / "libraries" / "Scratch.sdlibrary").exists()
    finally:
        stop(server)
    assert not (data / "control.sock").exists()
    assert [t["name"] for t in json.loads(ok(data, "tag", "list", "--json"))] == ["paid"]  # now run here


def test_a_forwarded_command_typed_in_a_terminal_asks_its_question_there(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = serve(data)
    try:
        terminal, side = pty.openpty()  # `sd trash empty` asks only when a person can answer (a terminal)
        proc = subprocess.Popen([*SD, "--data-dir", str(data), "trash", "empty"], stdin=side, stdout=side, stderr=side)
        os.close(side)
        seen = b""
        deadline = time.monotonic() + 30
        while b"for good?" not in seen and time.monotonic() < deadline:
            seen += os.read(terminal, 1024)
        assert b"Delete everything in the trash for good?" in seen
        os.write(terminal, b"n\n")
        assert proc.wait(30) == 1
        os.close(terminal)
    finally:
        stop(server)


def test_concurrent_commands_each_get_their_own_output_and_ctrl_c_stops_only_theirs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name, count in (("left", 3000), ("right", 2000)):
        files(tmp_path / name, count)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a")
    server = serve(data)
    try:
        ok(data, "library", "create", "Main")
        monitor = start(data, "job", "monitor", "--json")
        time.sleep(0.5)  # it is watching
        runs = [
            (name, start(data, "ls", name, "--json", cwd=tmp_path))
            for name in ("left", "right", "left", "right")
        ]
        index = start(data, "location", "add", str(tmp_path / "docs"), "--json")
        outputs = [(name, proc.communicate(timeout=60)) for name, proc in runs]
        for name, (out, err) in outputs:
            assert names(out) == sorted(f"f{i:05}" for i in range(3000 if name == "left" else 2000)), err
        out, err = index.communicate(timeout=60)
        assert index.returncode == 0 and json.loads(out)["state"] == "completed", err

        time.sleep(0.5)
        monitor.send_signal(signal.SIGINT)
        out, err = monitor.communicate(timeout=20)
        assert monitor.returncode == 130 and "interrupted" in err
        events = [json.loads(line) for line in out.splitlines()]  # nothing but its own JSON lines
        assert {"event": "JobStateChanged", "state": "completed"}.items() <= events[-1].items()
        assert len(json.loads(ok(data, "location", "list", "--json"))) == 1  # the server carries on
    finally:
        stop(server)


def test_ctrl_c_pauses_a_job_the_server_runs_and_the_job_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files(tmp_path / "many", 30000)
    server = serve(data)
    try:
        ok(data, "library", "create", "Main")
        adding = start(data, "location", "add", str(tmp_path / "many"), "--mode", "content")
        deadline = time.monotonic() + 30
        while not [j for j in json.loads(ok(data, "job", "list", "--json")) if j["state"] == "running"]:
            assert time.monotonic() < deadline and adding.poll() is None
            time.sleep(0.05)
        adding.send_signal(signal.SIGINT)
        out, err = adding.communicate(timeout=30)
        assert adding.returncode == 130 and "pausing" in err and "paused" in err, err  # not completed: non-zero
        [job] = json.loads(ok(data, "job", "list", "--json"))
        assert job["state"] == "paused"
        assert f"job {job['id']}: completed" in ok(data, "job", "resume", job["id"])
        [loc] = json.loads(ok(data, "location", "list", "--json"))
        assert loc["files"] == 30000
    finally:
        stop(server)


def test_processes_starting_together_on_a_new_data_dir_agree_on_one_device(tmp_path: Path) -> None:
    data = tmp_path / "data"
    procs = [start(data, "device", "show", "--json") for _ in range(4)]
    shown = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        shown.append(json.loads(out)["id"])
    assert len(set(shown)) == 1 and json.loads(ok(data, "device", "show", "--json"))["id"] == shown[0]
    assert sorted(p.name for p in data.iterdir()) == ["device.json", "device_key"]  # no temporary left


def test_a_socket_left_by_a_dead_core_does_not_stop_sd(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(data / "control.sock"))
    left.close()  # the file stays, nobody listens: what a killed server leaves behind
    assert "created library 'Main'" in ok(data, "library", "create", "Main")
    server = serve(data)  # and a new server takes the socket over
    try:
        assert [lib["name"] for lib in json.loads(ok(data, "library", "list", "--json"))] == ["Main"]
    finally:
        stop(server)


async def test_sdtui_carries_out_sd_commands_while_it_runs(tmp_path: Path) -> None:
    from sdtui.app import SdtuiApp

    data = tmp_path / "data"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plan.md").write_text("plan")

    async def sd_async(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *SD, "--data-dir", str(data), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    app = SdtuiApp(str(tmp_path / "docs"), data_dir=data)
    async with app.run_test() as pilot:
        await app.api.library().info()  # the explorer has the library open (and locked)
        for _ in range(100):
            if (data / "control.sock").exists():
                break
            await pilot.pause(0.05)
        assert stat.S_IMODE(os.stat(data / "control.sock").st_mode) == 0o600
        code, out, err = await sd_async("location", "add", "docs", "--json")
        assert code == 0 and json.loads(out)["state"] == "completed", err
        assert (await sd_async("tag", "create", "todo"))[0] == 0
        code, out, err = await sd_async("tag", "add", "todo", "docs/plan.md")
        assert code == 0 and "tagged 1 entry with todo" in out, err
        hits: Any = json.loads((await sd_async("search", "--tag", "todo", "--json"))[1])
        assert [h["name"] for h in hits] == ["plan.md"]
    assert not (data / "control.sock").exists()
