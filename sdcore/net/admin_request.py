"""What an admin's SSH session asks for: the explorer (a pty, maybe folders) or one `sd` command, never a shell."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from pathlib import Path

from sdcore.sdpath import display, split_remote

# unquoted, a shell would act on these; inside double quotes the expansions still would
SHELL_CHARS = set(";&|<>()`$\n\r{}")
EXPANSIONS = set("`$")
DESCRIBED = 300  # characters of a request shown in the log and in an error (a command may be 256 KiB long)
TERM_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
USAGE = (
    "sd serve: run `ssh -t HOST` for the explorer, `ssh -t HOST sdtui [PATH [OTHER]]` to open it on folders, "
    "or `ssh HOST sd COMMAND...` for a command (e.g. `ssh HOST sd job list`)"
)


class Refused(Exception):
    """A session request this server does not carry out; its text is the one line the client reads."""

    def __init__(self, line: str, status: int = 1) -> None:
        super().__init__(line)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Request:
    """What a session runs: the explorer or an `sd` command, with the client's words after the program."""

    program: str  # "explorer" or "sd"
    args: tuple[str, ...]

    def arguments(self) -> list[str]:
        """What follows the program's argv (and --data-dir): the command's words; the explorer's options, then its
        folders whole (an attached explorer's paths are resolved by the core, in the core's own folder)."""
        if self.program == "sd":
            return list(self.args)
        options, folders = _explorer_args(self.args)
        return [*options, *(_at_home(f) for f in folders or ["."])]

    def describe(self) -> str:
        """The request as the log and the client's errors show it: escaped, and cut short past DESCRIBED."""
        words = display(shlex.join(("sdtui" if self.program == "explorer" else "sd", *self.args)))
        return words if len(words) <= DESCRIBED else f"{words[:DESCRIBED]}... ({len(words)} characters)"


def parse_request(command: str | None, pty: bool) -> Request:
    """The session a client asked for (`ssh HOST`, `ssh HOST sd ...`, `ssh -t HOST sdtui PATH`); Refused if none."""
    if command is None or not command.strip():
        if pty:
            return Request("explorer", ())
        raise Refused(USAGE, status=2)
    if "\0" in command:
        raise Refused("a command cannot hold a NUL character: ssh HOST sd COMMAND...")
    bad = _shell_syntax(command)
    if bad is not None:
        raise Refused(
            f"sd serve runs one sd command, not a shell: {bad!r} is refused "
            "(quote a name that holds it in single quotes: ssh HOST \"sd ls '/a;b'\")"
        )
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise Refused(f"cannot read the command ({exc}): quote it as a shell would") from None
    program, args = words[0], tuple(words[1:])
    if any(a == "--data-dir" or a.startswith("--data-dir=") for a in args):
        raise Refused("the server chooses the data dir (its own core's): drop --data-dir")
    if program == "sd":
        return Request("sd", args)
    if program == "sdtui":
        if not pty:
            raise Refused("the explorer needs a terminal: ssh -t HOST sdtui [PATH [OTHER]]")
        _explorer_args(args)
        return Request("explorer", args)
    raise Refused(
        f"sd serve is not a shell: it runs sd commands and the explorer only, not {display(program)!r}; "
        "try ssh HOST sd --help"
    )


def _shell_syntax(command: str) -> str | None:
    """The first character a shell would act on (outside single quotes), None when there is none."""
    quote = ""
    escaped = False
    for ch in command:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if ch == "'" else quote
        elif ch == "\\":
            escaped = True
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch in EXPANSIONS:
                return ch
        elif ch in "'\"":
            quote = ch
        elif ch in SHELL_CHARS:
            return ch
    return None


def _explorer_args(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The explorer's options and folders; over SSH it takes up to two folders and -L/--library LIBRARY."""
    options: list[str] = []
    folders: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("-L", "--library") and i + 1 < len(args):
            options += args[i : i + 2]
            i += 2
            continue
        if args[i].startswith("-"):
            raise Refused(
                f"over SSH the explorer takes folders and -L LIBRARY only, not {display(args[i])!r}: "
                "ssh -t HOST sdtui [PATH [OTHER]]"
            )
        folders.append(args[i])
        i += 1
    if len(folders) > 2:
        raise Refused("the explorer opens at most two folders: ssh -t HOST sdtui [PATH [OTHER]]")
    return options, folders


def _at_home(folder: str) -> str:
    """A folder as the session means it: a relative one (or ~) is in the home folder, as in a login shell."""
    if split_remote(folder) is not None:
        return folder
    if folder == "~" or folder.startswith("~/"):
        folder = folder[2:]
    return os.path.join(Path.home(), folder)


def terminal_type(asked: str) -> str:
    """The TERM a client asked for, if it is a terminal's name (a peer chose it: nothing else goes to the child)."""
    return asked if TERM_TYPE.fullmatch(asked) else "xterm"
