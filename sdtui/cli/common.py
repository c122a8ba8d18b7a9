"""What every `sd` command shares: global options, running a Core, printing tables or JSON, errors."""

from __future__ import annotations

import concurrent.futures
import contextvars
import gc
import io
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import typer

from sdcore.errors import SdError
from sdcore.sdpath import SCHEME, display, split_remote

if TYPE_CHECKING:  # asyncio (and its ssl) is imported where a loop is run: `sd ls` and a quick scan run none
    import asyncio

T = TypeVar("T")


@dataclass
class Options:
    """Global options of `sd` (set by the main callback)."""

    data_dir: str | None = None
    library: str | None = None


options: ContextVar[Options | None] = ContextVar("sd_options", default=None)
"""The options of the command being run (a core hosting commands runs several at once)."""


def chosen() -> Options:
    """The global options of this command."""
    return options.get() or Options()


def data_dir() -> Path:
    """The data dir this command works on: --data-dir, else $SD_DATA_DIR, else the default."""
    from sdcore.core import default_data_dir

    given = chosen().data_dir
    return Path(given).expanduser() if given else default_data_dir()


def shell_word(text: str) -> str:
    """`text` as one word a person can paste into a shell to type it: quoted where need be; a name that is not
    UTF-8 or holds control characters as bash's $'...' with \\xNN escapes (as `display` shows them)."""
    import shlex

    if display(text) == text:
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF or not ch.isprintable():
            out.append(display(ch) if display(ch) != ch else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


@dataclass
class Request:
    """An `sd` command that another process handed to the core running here (see sdtui.cli.forward)."""

    core: Any
    loop: asyncio.AbstractEventLoop
    cwd: str
    """Where the command was typed: relative paths are relative to it."""
    out: io.TextIOBase
    err: io.TextIOBase
    width: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    """The caller's terminal variables (TERM, COLUMNS, NO_COLOR...), for rich."""
    stdin: io.TextIOBase = field(default_factory=io.StringIO)
    """What the command reads: lines the caller types (sdtui.cli.forward), else nothing (end of file)."""
    on_interrupt: Callable[[], bool] | None = None
    _future: concurrent.futures.Future[Any] | None = None
    _stopped: bool = False

    def run(self, body: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """`body(core)` on the running core's loop; this thread waits for it."""
        import asyncio

        self._future = asyncio.run_coroutine_threadsafe(body(self.core), self.loop)  # carries our context
        if self._stopped:
            self._future.cancel()
        return self._future.result()  # type: ignore[no-any-return]

    def interrupt(self) -> None:
        """The caller pressed Ctrl-C (called on the core's loop)."""
        if self.on_interrupt is None or not self.on_interrupt():
            self.stop()

    def stop(self) -> None:
        self._stopped = True
        if self._future is not None:
            self._future.cancel()


current: ContextVar[Request | None] = ContextVar("sd_request", default=None)
"""The forwarded command this thread or task works for; None in a plain `sd` process."""


def run(body: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `body(core)` with a Core for the chosen data dir; a user error prints its message and exits 1."""
    from sdcore.core import Core

    program = _command_path()

    async def main() -> T:
        async with Core(chosen().data_dir) as core:
            core.libraries.program = program
            core.libraries.on_lock_wait = lambda line: print(line, file=sys.stderr, flush=True)
            await _host(core)
            try:
                return await body(core)
            except Exception as exc:  # a damaged database or a full disk, said in one line (the core tells which)
                told = core.libraries.explain(exc)
                if told is None:
                    raise
                raise told from exc

    request = current.get()
    try:
        if request is None:
            import asyncio

            gc.freeze()  # the core's modules, loaded just now, live as long as `sd` (see sdtui.cli.main)
            # What a command makes lives until its batch is written (a walk's listings, no cycles among them): the
            # collector looks at young objects every 10,000 made, not 700 (a Linux tree's rescan: 113 looks, 0.015 s CPU)
            thresholds = gc.get_threshold()
            gc.set_threshold(10_000)
            try:
                return asyncio.run(main())
            finally:
                gc.set_threshold(*thresholds)
        try:
            return request.run(body)
        except Exception as exc:  # as above
            told = request.core.libraries.explain(exc)
            if told is None:
                raise
            raise told from exc
    except SdError as exc:
        fail(str(exc))
    except (KeyboardInterrupt, concurrent.futures.CancelledError):
        fail("interrupted", code=130)


async def _host(core: Any) -> None:
    """While this command runs, other `sd` and `sdtui` on its data dir use its core (`sd job list` beside a
    foreground `sd cp`); not when a core started there since `sd` looked (then this one waits for the library)."""
    from sdtui.cli.forward import host

    try:
        await host(core, finish_commands=True)
    except (SdError, OSError):  # OSError: a data dir whose socket path is too long, say; the command runs on
        pass


def _command_path() -> str:
    """The command as a person typed it, options left out (`sd cp`): the lock file names its holder so."""
    import importlib

    for module in ("typer._click.globals", "click.globals"):  # newer typer carries a click of its own
        try:
            context = importlib.import_module(module).get_current_context(silent=True)
        except (ImportError, AttributeError):
            continue
        if context is not None:
            return str(context.command_path)
    return os.path.basename(sys.argv[0])


@contextmanager
def on_interrupt(callback: Callable[[], bool]) -> Iterator[None]:
    """While inside, Ctrl-C calls `callback` (on the core's loop); if it returns False the command stops."""
    request = current.get()
    if request is not None:
        context = contextvars.copy_context()  # the callback prints to this command's output
        request.on_interrupt = lambda: context.run(callback)
        try:
            yield
        finally:
            request.on_interrupt = None
        return

    def handler() -> None:
        if not callback():
            raise KeyboardInterrupt

    import asyncio

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, handler)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def here(text: str) -> str:
    """A path as the user typed it, made absolute where `sd` ran when another process runs the command."""
    request = current.get()
    if request is None or text.startswith(SCHEME) or split_remote(text) is not None:
        return text
    return os.path.join(request.cwd, os.path.expanduser(text))


def routes_commands() -> bool:
    """Whether this process carries out others' `sd` commands (its sys.stdout routes each one's output to it)."""
    return current.get() is not None or bool(getattr(sys.stdout, "routes_commands", False))


PIPE_WIDTH = 100_000
"""The width of output that goes to a pipe or a file: lines are never cut (a table is as wide as its rows)."""


def console(stderr: bool = False) -> Any:
    """A rich Console on this command's stdout (or stderr), sized for its terminal; unlimited when piped."""
    from rich.console import Console

    request = current.get()
    if request is None:
        out: Any = sys.stderr if stderr else sys.stdout
        return Console(stderr=stderr, width=None if out.isatty() else PIPE_WIDTH)
    out = request.err if stderr else request.out
    width = request.width if out.isatty() else PIPE_WIDTH
    return Console(file=cast(IO[str], out), width=width, _environ=request.env)


def unexpected_failure(exc: BaseException, argv: list[str]) -> None:
    """An error `sd` did not expect: logged with its traceback, told in one line that names the log."""
    from sdcore.log import unexpected
    from sdtui.cli.forward import _globals  # the command's name, read as the main callback reads it

    print(f"error: {unexpected(exc, ' '.join(['sd', _globals(argv)[1] or '']).strip())}", file=sys.stderr)


def typer_draws_at_the_callers_width() -> None:
    """typer draws help and usage errors on a Console of its own, sized for this process: a command forwarded
    here (sdtui.cli.forward) gets them at the width of the terminal it was typed in."""
    from typer import rich_utils

    make = rich_utils._get_rich_console
    if getattr(make, "for_callers", False):
        return

    def for_callers(stderr: bool = False) -> Any:
        console = make(stderr)
        request = current.get()
        if request is not None and request.width:
            console.width = request.width
        return console

    for_callers.for_callers = True  # type: ignore[attr-defined]
    rich_utils._get_rich_console = for_callers


def flags_without_type_labels() -> None:
    """typer labels each option in --help with its Python type; a flag takes no value, so it shows none
    (`--json`, not `--json <bool>`)."""
    from typer.core import TyperOption

    labelled = getattr(TyperOption, "display_type_rich", None)
    if labelled is None or getattr(labelled, "for_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else labelled(self, ctx)  # type: ignore[no-any-return]

    display_type_rich.for_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def library_of(core: Any) -> Any:
    return core.library(chosen().library)


def api_of(core: Any) -> Any:
    """The core API of `core`, where `api.library()` is the library chosen with --library (else the default)."""
    from sdcore.api import Api

    return Api(core, library=chosen().library)


def run_api(body: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """`run` for a command written against the core API: `body(api)` (see `api_of`)."""
    return run(lambda core: body(api_of(core)))


def print_json(data: Any) -> None:
    """JSON on stdout, ASCII-escaped: a name that is not UTF-8 keeps its bytes as \\udcXX (os.fsencode restores them)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    cells = [[display(str(v)) if v is not None else "" for v in row] for row in rows]
    if title is None and _plain_table(columns, cells):
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(*columns, title=title, box=None, header_style="bold")
    for row in cells:  # as Text: a name such as "[bold]x" is shown as it is, never read as markup
        table.add_row(*(Text(v) if v else "" for v in row))
    console().print(table)


def _plain_table(columns: Sequence[str], cells: list[list[str]]) -> bool:
    """Print the table as rich would, without rich (~40 ms of imports), where that is plain: output to a pipe or a
    file (no styles, no width to fit), every cell printable ASCII (one column per character); False: not printed."""
    request = current.get()
    out: Any = sys.stdout if request is None else request.out
    env = os.environ if request is None else request.env
    if out.isatty() or "FORCE_COLOR" in env or env.get("TTY_COMPATIBLE") == "1":
        return False  # styles, or a width to fit: rich's
    lines = [list(columns), *cells]
    if any(len(line) != len(columns) for line in cells) or any("[" in column for column in columns):
        return False  # rows rich pads, or a header it would read as markup
    if not all(_PLAIN_CELL.fullmatch(cell) for line in lines for cell in line):
        return False  # a wide or a combining character: rich measures it
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    if sum(widths) + 2 * len(widths) > PIPE_WIDTH:
        return False
    out.write("".join(" " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " \n" for line in lines))
    return True


_PLAIN_CELL = re.compile("[ -~]*")
"""Printable ASCII: each character one column wide, as rich counts it."""
