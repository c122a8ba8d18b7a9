"""For tests and benches of admin sessions: `sd serve` in a child process, OpenSSH's client, a screen read through a pty."""

from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import pty
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pyte

from sdcore.core import Core
from sdcore.net.testing import device_network, pair

SSH = shutil.which("ssh")
SD = [sys.executable, "-m", "sdtui.cli"]
KEYS = {"down": b"\x1b[B", "up": b"\x1b[A", "f5": b"\x1b[15~", "enter": b"\r", "tab": b"\t", "escape": b"\x1b", "home": b"\x1b[H"}


@asynccontextmanager
async def paired_core(tmp_path: Path) -> AsyncIterator[tuple[Core, Any]]:
    """A core on device beta (data dir tmp_path/b) whose network is paired with device alpha (tmp_path/a), both
    in this process on 127.0.0.1: yields (beta's core, alpha's network)."""
    async with (
        device_network(tmp_path / "a", "alpha") as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta)
        async with Core(tmp_path / "b") as core:
            core.network = beta
            yield core, alpha


def free_port() -> int:
    """A port free on 127.0.0.1 now, below the kernel's range of ephemeral ports (32768-60999): a port bind(0) hands out
    is one the kernel may give the next outgoing connection of any test as its local end, and the `sd serve` started on
    it a moment later found it in use (CI, test_net_attacks_review). Random by the OS's randomness (pytest-randomly
    seeds `random` alike in every worker)."""
    while True:
        port = _ports.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


_ports = random.SystemRandom()


async def _pair(server_dir: Path, laptop_dir: Path, port: int, trust: str) -> None:
    async with (
        device_network(server_dir, "server", listen=False) as server,
        device_network(laptop_dir, "laptop", listen=False) as laptop,
    ):
        await server.start(f"127.0.0.1:{port}")
        await pair(server, laptop, host_trust=trust)


class ServedCore:
    """`sd serve` for the data dir tmp/server, its home tmp/home; device "laptop" (tmp/laptop) paired with it."""

    def __init__(self, tmp: Path, trust: str = "full") -> None:
        self.tmp = tmp
        self.data_dir = tmp / "server"
        self.home = tmp / "home"
        self.home.mkdir(exist_ok=True)
        self.port = free_port()
        asyncio.run(_pair(self.data_dir, tmp / "laptop", self.port, trust))
        self.key = tmp / "laptop" / "device_key"  # the laptop's device key: what `sd --device` logs in with
        self.env = {**os.environ, "HOME": str(self.home), "XDG_DATA_HOME": str(self.home / ".local/share")}
        self.proc = subprocess.Popen(
            [*SD, "--data-dir", str(self.data_dir), "serve", "--listen", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=tmp,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("serving "), line + self.proc.stdout.read()

    def ssh(self, *args: str, key: Path | None = None, tty: bool = False) -> list[str]:
        """The OpenSSH client's argv to this server, logging in with `key` (the laptop's by default)."""
        assert SSH is not None
        return [
            SSH, "-F", "/dev/null", "-p", str(self.port), "-i", str(key or self.key), "-l", "sd",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            *(["-tt"] if tty else ["-T"]), "127.0.0.1", *args,
        ]  # fmt: skip

    def run(self, *args: str, key: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ssh(*args, key=key), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def children(self) -> list[int]:
        """The pids of the server's child processes that serve sessions: on a pty or pipes. Not a spare explorer,
        neither waiting for a session (its stdin a socket) nor just forked (its stdin still the server's, /dev/null),
        nor handed a session it has yet to take (it was still importing), nor exited and not yet reaped."""
        return [pid for pid in self.all_children() if _serves_a_session(pid) and not _ended(pid)]

    def all_children(self) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except FileNotFoundError:  # a thread that ended meanwhile
                continue
        return found

    def fds(self) -> list[str]:
        """What the server's open file descriptors point to, by kind (socket, pipe, /dev/ptmx for a pty's master)."""
        out = []
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                out.append(os.readlink(fd).partition(":[")[0])
            except OSError:
                continue
        return sorted(out)

    def log(self) -> str:
        path = self.data_dir / "sdtui.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serves_a_session(pid: int) -> bool:
    """Whether the process's stdin is a pty or a pipe: a session's explorer or `sd` command."""
    try:
        return os.readlink(f"/proc/{pid}/fd/0").startswith(("/dev/pts/", "pipe:"))
    except OSError:
        return False


def _ended(pid: int) -> bool:
    """Whether the process has exited (a zombie its parent has not reaped yet: it serves nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A program on a pseudo-terminal of the test's, its output rendered to a screen (pyte) as a person sees it."""

    def __init__(self, argv: list[str], columns: int = 80, lines: int = 24, env: dict[str, str] | None = None) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.master, slave = pty.openpty()
        self._size(slave, columns, lines)
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=_take_terminal,
            env={**(env or os.environ), "TERM": "xterm-256color"},
        )  # fmt: skip
        os.close(slave)
        self.started = time.monotonic()
        self.received = 0
        """Bytes the program wrote to the terminal so far."""

    @staticmethod
    def _size(fd: int, columns: int, lines: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))

    def pump(self, timeout: float = 0.05) -> bool:
        """Render what arrives until the screen is quiet for `timeout`; False once the program closed the terminal."""
        while select.select([self.master], [], [], timeout)[0]:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return False
            if not data:
                return False
            self.received += len(data)
            self.stream.feed(data)
        return True

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, text: str, timeout: float = 60.0) -> float:  # generous: explorers start slowly under load
        """Seconds until `text` is on the screen."""
        start = time.monotonic()
        while text not in self.text:
            assert time.monotonic() - start < timeout, f"{text!r} never showed:\n{self.text}"
            if not self.pump():
                assert text in self.text, f"the program ended before {text!r} showed:\n{self.text}"
        return time.monotonic() - start

    def until(self, check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out on this screen:\n{self.text}"
            self.pump()

    def press(self, *keys: str) -> None:
        for key in keys:
            os.write(self.master, KEYS.get(key, key.encode()))

    def resize(self, columns: int, lines: int) -> None:
        self.screen.resize(lines, columns)
        self._size(self.master, columns, lines)  # ssh gets SIGWINCH and tells the server

    def row_of(self, text: str) -> int:
        for y, line in enumerate(self.screen.display):
            if text in line:
                return y
        raise AssertionError(f"{text!r} is not on the screen:\n{self.text}")

    def cursor_rows(self, x: int) -> list[int]:
        """The rows of column x drawn in another background than most of it: where a cursor bar crosses it."""
        column = [self.screen.buffer[y][x].bg for y in range(self.screen.lines)]
        usual = collections.Counter(column).most_common(1)[0][0]
        return [y for y, bg in enumerate(column) if bg != usual]

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running:\n{self.text}"
            self.pump()
        while self.pump(0.01):
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def independent_sessions(served: ServedCore, count: int, timeout: float = 120.0) -> list[float]:
    """`count` explorers over SSH at once, on ~/many (24 files) and ~/copies: each moves its cursor to a row of its
    own and keeps it; a copy (F5) made in the first shows in every other's pane and jobs screen (one core's events
    and jobs). Returns the seconds each session took from `ssh` started to its first screen."""
    many, copies = served.home / "many", served.home / "copies"
    many.mkdir(exist_ok=True)
    copies.mkdir(exist_ok=True)
    for i in range(24):
        (many / f"f{i:02d}.txt").write_text(f"file {i}\n")
    x = 40  # inside the left pane at 100 columns
    terms = [Terminal(served.ssh("sdtui", "many", "copies", tty=True), 100, 30) for _ in range(count)]
    try:
        firsts = []
        for term in terms:
            term.wait_for("f00.txt", timeout=timeout)
            firsts.append(time.monotonic() - term.started)
        for i, term in enumerate(terms):
            term.press(*["down"] * (i % 20))
        rows = {i: f"f{i % 20:02d}.txt" for i in range(count)}

        def on_own_row(i: int) -> bool:
            term = terms[i]
            return any(rows[i] in term.screen.display[y] for y in term.cursor_rows(x))

        for i, term in enumerate(terms):
            term.until(lambda i=i: on_own_row(i), timeout=timeout)
        assert len(served.children()) == count
        terms[0].press("f5")  # f00.txt to ~/copies, by the core all sessions share
        for term in terms:  # in every session's right pane (the core's event)
            term.until(lambda term=term: "f00.txt" in "".join(line[60:] for line in term.screen.display), timeout=timeout)
        for term in terms[1:]:
            term.press("w")
            term.until(lambda term=term: "copy" in term.text and "completed" in term.text, timeout=timeout)
            term.press("escape")
        for i, term in enumerate(terms):  # nobody's keys moved anyone else's cursor
            term.until(lambda i=i: on_own_row(i), timeout=timeout)
        for term in terms:
            term.press("q")
        for term in terms:
            assert term.wait_exit(timeout) == 0
        return firsts
    finally:
        for term in terms:
            term.close()
