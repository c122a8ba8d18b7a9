"""The explorer and `sd` commands served to admins over SSH: one child process per session, on a pty or pipes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import socket
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdcore.net.admin_request import Refused, Request, parse_request, terminal_type
from sdcore.net.refusals import RefusalLog
from sdcore.sdpath import display
from sdcore.sshlib import asyncssh

log = logging.getLogger("sdcore.net.admin")

MAX_SESSIONS = 32  # children at once on this core, over all connections: nobody exhausts the ptys
MAX_SESSIONS_PER_CONNECTION = 8
CHUNK = 64 << 10
MAX_TERMINAL = 1000  # columns or lines of a session's terminal, whatever the client says (the explorer draws them all)
HANGUP_GRACE = 2.0  # a child that outlives its hung-up connection this long is killed
INTERRUPT_GRACE = 10.0  # an interrupted `sd` command may take this long to pause its job and exit
DRAIN_GRACE = 1.0  # output still coming after the child exited (a grandchild holding the pty) is cut here
SIGNALS = {"INT", "TERM", "HUP", "QUIT", "KILL"}  # what a client may send its own session's child


@dataclasses.dataclass(frozen=True)
class AdminPrograms:
    """The programs an admin's session runs, given by `sd serve` (sdcore does not know them).

    Each is an argv; a session adds `--data-dir DATA_DIR` and then the words the client asked for.
    """

    explorer: tuple[str, ...]
    command: tuple[str, ...]
    spare: tuple[str, ...] = ()
    """An explorer started ahead of the next session (imports done), taking its terminal and the explorer's
    arguments over a Unix socket on its stdin (see sdtui/spare.py); empty: every explorer starts cold."""


class AdminSessions:
    """Runs admins' sessions for one core: counts them, spawns one child per session, logs each."""

    def __init__(self, programs: AdminPrograms, data_dir: Path, refusals: RefusalLog | None = None) -> None:
        self.programs = programs
        self.refusals = refusals or RefusalLog(log)
        self.data_dir = data_dir.absolute()  # the children start in the home folder
        self.children: dict[int, object] = {}  # pid -> the connection it serves
        self._starting: dict[object, int] = {}
        self._spare: _Spare | None = None
        self._warming: asyncio.Task[None] | None = None

    def warm(self) -> None:
        """Have a spare explorer ready (imported) for the next session, if the programs offer one.

        Called when an explorer session starts, not at login: most logins of full-trust devices only sync or run
        commands, and a spare costs half a second of CPU and an explorer's memory; the login a first explorer
        session follows is milliseconds ahead of it, too late for a spare to finish importing anyway."""
        if self.programs.spare and self._spare is None and (self._warming is None or self._warming.done()):
            self._warming = asyncio.ensure_future(self._start_spare())

    async def _start_spare(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.programs.spare, stdin=theirs.fileno(), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, cwd=Path.home(), env=self._env(None), start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            ours.close()
            log.error("cannot start a spare explorer (%s): every explorer starts cold", exc)
            return
        finally:
            theirs.close()
        self._spare = _Spare(proc, ours)

    def _take_spare(self) -> _Spare | None:
        spare, self._spare = self._spare, None
        self.warm()  # the next session's
        return spare

    async def close(self) -> None:
        """Stop the spare explorer (the sessions end with their connections)."""
        if self._warming is not None:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
        spare, self._spare = self._spare, None
        if spare is not None:
            await spare.stop()

    def _argv(self, request: Request) -> list[str]:
        program = self.programs.explorer if request.program == "explorer" else self.programs.command
        return [*program, "--data-dir", str(self.data_dir), *request.arguments()]

    def _count(self, connection: object) -> int:
        return sum(1 for c in self.children.values() if c is connection) + self._starting.get(connection, 0)

    async def run(self, process: asyncssh.SSHServerProcess[bytes], connection: object, who: str, where: str) -> None:
        """Serve one session of an admin (`who`, from `where`) to its end; the channel is closed after."""
        pty = process.term_type is not None
        try:
            request = parse_request(process.command, pty)
            if len(self.children) + sum(self._starting.values()) >= MAX_SESSIONS:
                raise Refused(f"this core runs {MAX_SESSIONS} sessions already: close one and try again")
            if self._count(connection) >= MAX_SESSIONS_PER_CONNECTION:
                raise Refused(
                    f"this connection has {MAX_SESSIONS_PER_CONNECTION} sessions open already: close one first"
                )
        except Refused as exc:
            self.refusals.refused(
                who, "refused %s from %s: %s (%s)",
                display(who), display(where), display(process.command or "(no command)"), exc,
            )  # fmt: skip
            await refuse(process, str(exc), exc.status)
            return
        started = time.monotonic()
        what = request.describe()
        term = terminal_type(process.term_type or "") if pty else None
        shown = f"{what} on a pty ({term} {'x'.join(map(str, terminal_size(process.term_size)[:2]))})" if pty else what
        log.info("%s from %s started %s", display(who), display(where), shown)
        self._starting[connection] = self._starting.get(connection, 0) + 1
        status = -1
        try:
            child = _PtyChild(process) if pty else _PipeChild(process)
            spare = self._take_spare() if request.program == "explorer" else None
            try:
                await child.start(self._argv(request), self._env(term), spare)
            finally:
                self._starting[connection] -= 1
                if not self._starting[connection]:
                    del self._starting[connection]
            self.children[child.pid] = connection
            try:
                status = await child.serve()
            finally:
                del self.children[child.pid]
        except OSError as exc:
            log.error("%s from %s: cannot start %s: %s", display(who), display(where), what, exc)
            await refuse(process, f"sd serve could not start {what}: {exc.strerror or exc}")
            return
        finally:
            log.info(
                "%s from %s ended %s: %s after %.1f s",
                display(who), display(where), what,
                "connection closed" if status < 0 else f"exit {status}", time.monotonic() - started,
            )  # fmt: skip
        with contextlib.suppress(asyncssh.Error, ConnectionError, OSError):
            process.exit(max(status, 0) if status >= 0 else 255)

    def _env(self, term: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "SD_DATA_DIR", "TERM")}
        if term:
            env["TERM"] = term
        env["SDTUI_GRAPHICS"] = "halfblocks"  # a picture's escapes would cross the network each redraw: half-blocks
        return env


async def refuse(process: asyncssh.SSHServerProcess[bytes], why: str, status: int = 1) -> None:
    """End a session with one line on stderr and a failing exit status."""
    try:
        process.stderr.write(why.encode() + b"\n")
        await process.stderr.drain()
    except (asyncssh.Error, ConnectionError):
        pass
    process.exit(status)


class _Child:
    """One session's child process and the bridge between it and the SSH channel."""

    HANGUP = signal.SIGHUP
    GRACE = HANGUP_GRACE

    def __init__(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        self.process = process
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, argv: list[str], env: dict[str, str], spare: _Spare | None = None) -> None:
        """Start the child with this argv and environment (or hand the session to a spare explorer)."""
        raise NotImplementedError

    def pumps(self) -> list[asyncio.Task[None]]:
        """Tasks that carry the child's output to the client (they end at the child's end of file)."""
        raise NotImplementedError

    async def feed(self) -> None:
        """Carry the client's input, signals and window sizes to the child until the client's end of file."""
        raise NotImplementedError

    def signal(self, name: str) -> None:
        if name in SIGNALS:
            self.kill(getattr(signal, f"SIG{name}"))

    def kill(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)  # the child leads its own session: its group is its own and its children's

    async def serve(self) -> int:
        """Bridge until the child exits (its status) or the connection closes (-1: the child is stopped)."""
        assert self.proc is not None
        out = self.pumps()
        feeding = asyncio.ensure_future(self.feed())
        exited = asyncio.ensure_future(self.proc.wait())
        closed = asyncio.ensure_future(self.process.channel.wait_closed())
        try:
            await asyncio.wait([exited, closed], return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                await asyncio.wait(out, timeout=DRAIN_GRACE)
                code = exited.result()
                return code if code >= 0 else 128 - code
            self.kill(self.HANGUP)
            await asyncio.wait([exited], timeout=self.GRACE)
            if not exited.done():
                self.kill(signal.SIGKILL)
                await exited
            return -1
        finally:
            for task in (*out, feeding, closed):
                task.cancel()
            if not exited.done():  # cancelled itself (the core closes): leave no child behind
                self.kill(signal.SIGKILL)
                await asyncio.shield(exited)
            await asyncio.gather(*out, feeding, closed, return_exceptions=True)
            self.close()

    def close(self) -> None:
        pass

    async def read_client(self, on_size: Callable[[Any], None]) -> bytes:
        """The client's next input (b"" at its end), acting on the signals and size changes in between."""
        while True:
            try:
                return await self.process.stdin.read(CHUNK)
            except asyncssh.TerminalSizeChanged as exc:
                on_size(exc)
            except asyncssh.BreakReceived:
                self.signal("INT")
            except asyncssh.SignalReceived as exc:
                self.signal(exc.signal)
            except (asyncssh.Error, ConnectionError):
                return b""


class _Spare:
    """An explorer started ahead, waiting on a socket for a session (AdminPrograms.spare)."""

    def __init__(self, proc: asyncio.subprocess.Process, channel: socket.socket) -> None:
        self.proc = proc
        self.channel = channel

    def hand_over(self, terminal: int, argv: list[str], env: dict[str, str]) -> asyncio.subprocess.Process | None:
        """Give it this session (its terminal, the explorer's arguments); None when it is gone (start one cold)."""
        # the arguments are what follows the program (`sdtui ARGS`) in the explorer's argv
        args = argv[argv.index("--data-dir") :]
        request = json.dumps({"argv": args, "cwd": str(Path.home()), "env": env}).encode()
        try:
            if self.proc.returncode is not None:
                return None
            socket.send_fds(self.channel, [request], [terminal])
            return self.proc
        except OSError:
            return None
        finally:
            self.channel.close()

    async def stop(self) -> None:
        self.channel.close()  # it reads the end of file and exits
        try:
            await asyncio.wait_for(self.proc.wait(), HANGUP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


def _take_terminal() -> None:
    """In the child, after setsid: its stdin, the pty, becomes its controlling terminal (Ctrl-C, SIGWINCH, SIGHUP)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def terminal_size(size: Any) -> tuple[int, int, int, int]:
    """A client's window size (columns, lines, pixel width and height) as its session's pty gets it: a client says
    what it likes, it gets a sane size."""
    width, height = (min(int(n), MAX_TERMINAL) for n in size[:2])
    pixwidth, pixheight = (min(int(n), 0xFFFF) for n in size[2:4])
    return width, height, pixwidth, pixheight


def _set_size(fd: int, size: Any) -> None:
    width, height, pixwidth, pixheight = terminal_size(size)
    if width and height:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, pixwidth, pixheight))


class _PtyChild(_Child):
    """The child on a pseudo-terminal of its own: the explorer, or `sd` under `ssh -t`."""

    master = -1

    async def start(self, argv: list[str], env: dict[str, str], spare: _Spare | None = None) -> None:
        self.master, slave = os.openpty()
        try:
            _set_size(slave, self.process.term_size)
            self.proc = spare.hand_over(slave, argv, env) if spare is not None else None
            if self.proc is None:
                self.proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, cwd=Path.home(), env=env,
                    start_new_session=True, preexec_fn=_take_terminal,
                )  # fmt: skip
        except BaseException:
            self.close()
            raise
        finally:
            os.close(slave)  # the child holds it now: its end of file reaches us when it exits
        os.set_blocking(self.master, False)

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def pumps(self) -> list[asyncio.Task[None]]:
        return [asyncio.ensure_future(self._out())]

    async def _wait(self, add: Callable[..., None], remove: Callable[[int], Any]) -> None:
        ready = asyncio.get_running_loop().create_future()
        add(self.master, lambda: None if ready.done() else ready.set_result(None))
        try:
            await ready
        finally:
            remove(self.master)

    async def _out(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait(loop.add_reader, loop.remove_reader)
            try:
                data = os.read(self.master, CHUNK)
            except BlockingIOError:
                continue
            except OSError:  # EIO: every holder of the pty's other end closed it
                return
            if not data:
                return
            try:
                self.process.stdout.write(data)
                await self.process.stdout.drain()
            except (asyncssh.Error, ConnectionError):
                return

    async def feed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.read_client(lambda size: _set_size(self.master, size.term_size))
            if not data:
                return  # a terminal's client has no end of file of its own: the session ends with the connection
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self.master, view) :]
                except BlockingIOError:
                    await self._wait(loop.add_writer, loop.remove_writer)
                except OSError:
                    return


class _PipeChild(_Child):
    """A command without a terminal (`ssh HOST sd job list`): stdin, stdout and stderr as pipes."""

    HANGUP = signal.SIGINT  # a lost connection interrupts the command as Ctrl-C would (its job pauses)
    GRACE = INTERRUPT_GRACE

    async def start(self, argv: list[str], env: dict[str, str], spare: _Spare | None = None) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=Path.home(), env=env, start_new_session=True,
        )  # fmt: skip

    def pumps(self) -> list[asyncio.Task[None]]:
        assert self.proc is not None and self.proc.stdout is not None and self.proc.stderr is not None
        return [
            asyncio.ensure_future(self._out(self.proc.stdout, self.process.stdout)),
            asyncio.ensure_future(self._out(self.proc.stderr, self.process.stderr)),
        ]

    async def _out(self, source: asyncio.StreamReader, to: asyncssh.SSHWriter[bytes]) -> None:
        while data := await source.read(CHUNK):
            try:
                to.write(data)
                await to.drain()
            except (asyncssh.Error, ConnectionError):
                return

    async def feed(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        stdin = self.proc.stdin
        try:
            while data := await self.read_client(lambda size: None):
                stdin.write(data)
                await stdin.drain()
            stdin.close()
        except (ConnectionError, OSError):  # the child stopped reading: the rest is not for anyone
            pass
