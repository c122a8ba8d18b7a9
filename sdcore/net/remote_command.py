"""`sd --device NAME ...`: an `sd` command run on a paired device's core over SSH, this process's stdio bridged to it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

from sdcore.device import load_or_create
from sdcore.net.network import Network
from sdcore.sshlib import asyncssh


async def run_on_device(data_dir: Path, device: str, argv: list[str]) -> int:
    """Run `sd ARGV` on `device` (paired with this data dir's device, which it must trust fully); its exit status.

    With a terminal on stdin and stdout the command gets a terminal there too (Ctrl-C, colours, the width);
    otherwise stdin, stdout and stderr are passed as they are and Ctrl-C interrupts it there.
    """
    net = Network(load_or_create(data_dir))
    try:
        link = net.link(device)
        await link.connect()
        assert link.conn is not None
        terminal = os.isatty(0) and os.isatty(1)
        size = os.get_terminal_size(1) if terminal else None
        process = await link.conn.create_process(
            shlex.join(["sd", *argv]),
            encoding=None,
            term_type=os.environ.get("TERM", "xterm") if terminal else None,
            term_size=(size.columns, size.lines) if size else None,
        )
        with _raw(terminal):
            return await _bridge(process, terminal)
    finally:
        await net.close()


@contextlib.contextmanager
def _raw(terminal: bool) -> Iterator[None]:
    """This terminal in raw mode while the other side's terminal does the work (keys go there as typed)."""
    if not terminal:
        yield
        return
    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


async def _bridge(process: asyncssh.SSHClientProcess[bytes], terminal: bool) -> int:
    loop = asyncio.get_running_loop()

    def typed(data: bytes) -> None:
        if data:
            process.stdin.write(data)
        else:
            process.stdin.write_eof()

    def read_stdin() -> None:  # a thread: stdin may be a terminal, a pipe or a file, and reading it blocks
        while True:
            try:
                data = os.read(0, 1 << 16)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(typed, data)
            if not data:
                return

    def resized() -> None:
        size = os.get_terminal_size(1)
        process.change_terminal_size(size.columns, size.lines)

    threading.Thread(target=read_stdin, name="stdin to the device", daemon=True).start()
    if terminal:
        loop.add_signal_handler(signal.SIGWINCH, resized)
    else:
        loop.add_signal_handler(signal.SIGINT, lambda: process.send_signal("INT"))

    async def copy(source: asyncssh.SSHReader[bytes], fd: int) -> None:
        while data := await source.read(1 << 16):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    try:
        await asyncio.gather(copy(process.stdout, sys.stdout.fileno()), copy(process.stderr, sys.stderr.fileno()))
        await process.wait_closed()
    finally:
        loop.remove_signal_handler(signal.SIGWINCH if terminal else signal.SIGINT)
    if process.exit_signal is not None:
        number = getattr(signal, f"SIG{process.exit_signal[0]}", signal.SIGTERM)
        return 128 + int(number)
    return process.exit_status if process.exit_status is not None else 255
