"""A spare explorer for `sd serve`: sdtui imported ahead of time, waiting to take the next SSH session's terminal.

`sd serve` starts it in a session of its own with a Unix socket as stdin. The session's request arrives there:
one JSON message {"argv", "cwd", "env"} with the pseudo-terminal's descriptor; the spare makes that terminal its
own (stdin, stdout, stderr and controlling terminal) and runs the explorer as `sdtui ARGV` would. The socket
closing without a request (the server stopped) ends it.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import socket
import sys
import termios

import sdtui.app  # the slow part, done before anyone waits for it

FIRST_USE = (
    "sdcore.net", "sdcore.ops", "sdcore.search", "sdcore.tags", "sdtui.command", "textual.drivers.linux_driver",
    "textual.layouts.horizontal", "textual.scrollbar", "textual._xterm_parser",
)  # fmt: skip
"""Modules the explorer imports on first use (the sidebar's devices, the drivers, ...): loaded ahead here too."""


def main() -> int:
    for module in FIRST_USE:
        importlib.import_module(module)
    channel = socket.socket(fileno=os.dup(0))
    try:
        message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 1)
    finally:
        channel.close()
    if not fds:
        return 0
    request = json.loads(message)
    for fd in (0, 1, 2):
        os.dup2(fds[0], fd)
    os.close(fds[0])
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.argv = ["sdtui", *request["argv"]]
    return sdtui.app.main(request["argv"])


if __name__ == "__main__":
    sys.exit(main())
