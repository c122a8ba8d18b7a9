"""One core per data dir: `sd` hands its command to the core already running there (`sd serve`, `sdtui`).

The client sends its arguments, directory and terminal over the data dir's control socket; the running
core parses them with the same typer app in a thread of its own and runs the command's body on its
loop, against its open libraries. The command's stdout and stderr stream back as they are written, a line
it reads (a question's answer) is read where the user typed the command, and the client exits with the
command's exit status; Ctrl-C is passed on (a job pauses, as it does here).
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import os
import queue
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdcore.control import SOCKET_NAME, Call, ControlServer, Session
from sdcore.errors import SdError

if TYPE_CHECKING:  # the client side (forward) runs without typer and the commands: only the host imports them
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
        return asyncio.run(_forward(data_dir, argv))
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


async def _forward(data_dir: Path, argv: list[str]) -> int | None:
    try:
        call = await Call.open(
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
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 2:  # the core does not react: give up waiting for it
            raise KeyboardInterrupt
        loop.create_task(call.tell({"signal": "INT"}))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    streams = {"out": sys.stdout.buffer, "err": sys.stderr.buffer}
    try:
        async for final, answer in call.answers():
            if final:
                return int(answer["exit"])
            if "ask" in answer:  # the command reads a line (a question): the user answers it here
                line = await asyncio.to_thread(sys.stdin.readline) if sys.stdin is not None else ""
                await call.tell({"stdin": line})
                continue
            for name, data in answer.items():
                streams[name].write(data)
                streams[name].flush()
    except SdError as exc:
        print(f"error: {exc}", file=sys.stderr)
    finally:
        call.close()
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


_hosted: weakref.WeakKeyDictionary[Any, ControlServer] = weakref.WeakKeyDictionary()


async def host(core: Any, api: Any = None, finish_commands: bool = False) -> ControlServer:
    """Serve the core API (`api`, else a new `Api(core)`) and carry out `sd` commands for `core`'s data dir until
    the core closes; refuses if a core runs there. Hosting a core twice is hosting it once.

    `finish_commands`: the core, closing, first lets the commands it carries out finish (a foreground `sd`).
    """
    server = _hosted.get(core)
    if server is not None:
        server.finish_commands = finish_commands
        return server
    from sdcore.api import Api
    from sdcore.api.server import serve

    server = ControlServer(core.data_dir)
    server.register("sd", functools.partial(_command, core))
    server.finish_commands = finish_commands
    server.on_finishing = lambda n: print(
        f"finishing {n} command{'s' if n > 1 else ''} typed elsewhere that this one carried out…",
        file=sys.__stderr__, flush=True,
    )  # fmt: skip
    serve(server, api if api is not None else Api(core))
    await server.start()
    _hosted[core] = server
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
