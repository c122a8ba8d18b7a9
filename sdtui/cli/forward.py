"""One core per data dir: `sd` hands its command to the core already running there (`sd serve`, `sdtui`).

The client sends its arguments, directory and terminal over the data dir's control socket; the running
core parses them with the same typer app in a thread of its own and runs the command's body on its
loop, against its open libraries. The command's stdout and stderr stream back as they are written, a line
it reads (a question's answer) is read where the user typed the command, and the client exits with the
command's exit status; Ctrl-C is passed on (a job pauses, as it does here).
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import queue
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdcore.control_client import SOCKET_NAME
from sdcore.errors import SdError

if TYPE_CHECKING:  # the client side (forward) runs without asyncio, typer and the commands: only the host needs them
    import asyncio

    from sdcore.control import ControlServer, Session
    from sdtui.cli import common

NOT_FORWARDED = {"serve", "health", None}  # serve: a second core, refused here; health: asks the core itself;
# no command: --version, --help, completion
TERMINAL_VARIABLES = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")
CHUNK = 1 << 20

# -- the client ----------------------------------------------------------------------------------


def forward(argv: list[str]) -> int | None:
    """Run `sd ARGV` in the core running for its data dir and return its exit status; None if none runs."""
    data_dir, command = _globals(argv)
    if command in NOT_FORWARDED or _follows_the_core(argv) or not (data_dir / SOCKET_NAME).exists():
        return None  # a monitor attaches to the core itself: it outlives it, to say what the core's end cut off
    try:
        return _forward(data_dir, argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _globals(argv: list[str]) -> tuple[Path, str | None]:
    """The data dir and the command name, read the way the main callback reads them."""
    data_dir, at = _read_globals(argv)
    return data_dir, argv[at] if at < len(argv) else None


def _read_globals(argv: list[str]) -> tuple[Path, int]:
    """The data dir, and where the command's name is in `argv` (its length: no command)."""
    from sdcore.privacy import default_data_dir  # not sdcore.core: a forwarded command's client needs no core

    data_dir, i = None, 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg.startswith("--data-dir="):
            data_dir = arg.split("=", 1)[1]
        elif arg in ("--data-dir", "--library", "-L", "--device") and i + 1 < len(argv):  # an option with a value
            if arg == "--data-dir":
                data_dir = argv[i + 1]
            i += 1
        i += 1
    return (Path(data_dir).expanduser() if data_dir else default_data_dir()), i


def _forward(data_dir: Path, argv: list[str]) -> int | None:
    """The client: no event loop (asyncio and its ssl would cost more CPU than all the rest), one select over the
    core's answers, Ctrl-C (through a wakeup socket) and a line the user typed (read in a thread when asked)."""
    from sdcore.control_client import BlockingCall

    try:
        call = BlockingCall.open(
            # as bytes: a name that is not UTF-8 (os.fsdecode's surrogates) cannot go over the wire as text
            data_dir, "sd", argv=[os.fsencode(a) for a in argv], cwd=os.fsencode(os.getcwd()), width=_width(),
            tty=[sys.stdout.isatty(), sys.stderr.isatty(), sys.stdin is not None and sys.stdin.isatty()],
            env={k: os.environ[k] for k in TERMINAL_VARIABLES if k in os.environ},
        )  # fmt: skip
    except OSError:  # a socket left by a core that died: nobody else holds the library, run here
        return None
    except SdError as exc:  # another user's process listens there: it gets nothing of this command
        print(f"error: {exc}", file=sys.stderr)
        return 1
    interrupts = told = 0

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 2:  # the core does not react: give up waiting for it
            raise KeyboardInterrupt

    woken, waker = socket.socketpair()  # Ctrl-C writes a byte here (set_wakeup_fd): select wakes for it
    typed, typing = socket.socketpair()  # a line the user typed is ready
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    for end in (woken, waker):
        end.setblocking(False)
    previous_fd = signal.set_wakeup_fd(waker.fileno(), warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGINT, on_sigint)

    def read_a_line() -> None:
        lines.put(sys.stdin.readline() if sys.stdin is not None else "")
        typing.send(b".")

    streams = {"out": sys.stdout.buffer, "err": sys.stderr.buffer}
    try:
        while True:
            ready = select.select([call, woken, typed], [], [])[0]
            if woken in ready:
                with contextlib.suppress(BlockingIOError):
                    while woken.recv(512):
                        pass
            while told < interrupts:
                told += 1
                call.tell({"signal": "INT"})
            if typed in ready:
                typed.recv(1)
                call.tell({"stdin": lines.get()})
            if call not in ready:
                continue
            final, answer = call.answer()
            if final:
                return int(answer["exit"])
            if "ask" in answer:  # the command reads a line (a question): the user answers it here
                threading.Thread(target=read_a_line, name="sd stdin", daemon=True).start()
                continue
            for name, data in answer.items():
                streams[name].write(data)
                streams[name].flush()
    except SdError as exc:
        print(f"error: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        call.close()
        for end in (woken, waker, typed, typing):
            end.close()
    return 1


def _width() -> int:
    """The terminal's width as rich finds it: $COLUMNS, else any of stdin, stdout, stderr, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns
        except OSError:
            continue
    return 80


# -- the core's side -----------------------------------------------------------------------------


async def host(core: Any, api: Any = None, finish_commands: bool = False) -> ControlServer:
    """Serve the core API (`api`, else a new `Api(core)`) and carry out `sd` commands for `core`'s data dir until
    the core closes; refuses if a core runs there. Hosting a core twice is hosting it once.

    `finish_commands`: the core, closing, first lets the commands it carries out finish (a foreground `sd`).
    """
    server = core.attached.get("sd commands")
    if server is not None:
        server.finish_commands = finish_commands
        return server
    from sdcore.api import Api
    from sdcore.api.server import serve
    from sdcore.control import ControlServer

    server = ControlServer(core.data_dir)
    server.register("sd", functools.partial(_command, core))
    server.finish_commands = finish_commands
    server.on_finishing = lambda n: print(
        f"finishing {n} command{'s' if n > 1 else ''} typed elsewhere that this one carried out…",
        file=sys.__stderr__, flush=True,
    )  # fmt: skip
    serve(server, api if api is not None else Api(core))
    await server.start()
    core.attached["sd commands"] = server
    core.add_service(server)
    for name, attr in (("stdout", "out"), ("stderr", "err"), ("stdin", "stdin")):
        stream = getattr(sys, name)
        if not isinstance(stream, _Routed):
            setattr(sys, name, _Routed(attr, stream))
    return server


async def _command(
    core: Any,
    session: Session,
    argv: list[bytes],  # bytes: a name that is not UTF-8 survives the wire
    cwd: bytes,
    width: int | None = None,
    tty: tuple[bool, ...] = (False, False, False),  # stdout, stderr, stdin
    env: dict[str, str] | None = None,
) -> dict[str, int]:
    import asyncio

    from sdtui.cli import common

    common.typer_draws_at_the_callers_width()  # here, not when hosting starts: typer's rich_utils costs ~60 ms to import
    words, folder = [os.fsdecode(a) for a in argv], os.fsdecode(cwd)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def emit(name: str, data: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (name, data))

    stdin = _Source(emit, len(tty) > 2 and tty[2])
    request = common.Request(
        core, loop, folder, _Sink("out", emit, tty[0]), _Sink("err", emit, tty[1]), width, env or {}, stdin
    )

    def on_message(message: dict[str, Any]) -> None:
        if message.get("signal") == "INT":
            request.interrupt()
        elif "stdin" in message:
            stdin.answer(str(message["stdin"]))

    session.on_message = on_message
    session.holds_core = not _follows_the_core(words)
    # a thread per command: typer's parsing is synchronous, and a pool could starve the core's to_thread
    threading.Thread(
        target=_invoke, args=(request, words, emit), name="sd " + " ".join(words)[:60], daemon=True
    ).start()
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            for name, items in itertools.groupby(batch, key=lambda item: item[0]):
                if name == "exit":
                    return {"exit": next(items)[1]}
                if name == "ask":
                    await session.send({"ask": True})
                    continue
                data = b"".join(d for _, d in items)
                for start in range(0, len(data), CHUNK):
                    await session.send({name: data[start : start + CHUNK]})
    finally:
        request.stop()  # the client went away (or the core closes): stop waiting for the command
        stdin.answer("")  # and for an answer


def _follows_the_core(argv: list[str]) -> bool:
    """Whether the command only follows what the core does (`sd job monitor`): it ends with the core."""
    words = [a for a in argv[_read_globals(argv)[1] :] if not a.startswith("-")]
    return words[:2] == ["job", "monitor"]


def _invoke(request: common.Request, argv: list[str], emit: Callable[[str, Any], None]) -> None:
    """Parse and run the command in this thread, as `sd` would; report its exit status."""
    from sdtui.cli import app, common

    common.current.set(request)
    code = 1
    try:
        app(args=argv, prog_name="sd")
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException as exc:
        common.unexpected_failure(exc, argv)
    finally:
        emit("exit", code)


class _Sink(io.TextIOBase):
    """stdout or stderr of one forwarded command: what is written goes to its client."""

    def __init__(self, name: str, emit: Callable[[str, Any], None], tty: bool) -> None:
        super().__init__()
        self._name, self._emit, self._tty = name, emit, tty

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._emit(self._name, text.encode("utf-8", "surrogateescape"))
        return len(text)


class _Source(io.TextIOBase):
    """stdin of one forwarded command: each line it reads is asked of its client (where the user types)."""

    def __init__(self, emit: Callable[[str, Any], None], tty: bool) -> None:
        super().__init__()
        self._emit, self._tty = emit, tty
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    encoding = "utf-8"

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]  # typeshed: bytes
        self._emit("ask", b"")
        return self._lines.get()  # "" (end of file) when the client has none, or went away

    def answer(self, line: str) -> None:
        self._lines.put(line)


class _Routed:
    """sys.stdout, stderr or stdin of a process that hosts commands: a command's own, else the process's."""

    routes_commands = True
    """What `common.routes_commands` looks for."""

    def __init__(self, attr: str, fallback: Any) -> None:
        self._attr, self._fallback = attr, fallback

    def _target(self) -> Any:
        from sdtui.cli import common

        request = common.current.get()
        return self._fallback if request is None else getattr(request, self._attr)

    def write(self, text: str) -> int:
        return self._target().write(text)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)
