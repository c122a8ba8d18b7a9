"""The `sd` command: every feature of the core, for people (tables) and scripts (--json).

This module is what starts `sd`: it stays light (no typer, no asyncio) so `sd --version` answers at once; the typer
app lives in sdtui.cli.commands.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MODULES = ("library", "index", "jobs", "organize", "ops", "net", "admin", "headless", "volume")
COMMANDS = {
    "library": "library", "device": "library", "ls": "index", "location": "index", "index": "index", "job": "jobs",
    "note": "organize", "fav": "organize", "search": "organize", "dupes": "organize", "tag": "organize",
    "cp": "ops", "mv": "ops", "rm": "ops", "rename": "ops", "mkdir": "ops", "trash": "ops", "undo": "ops",
    "serve": "net", "drop": "net", "network": "net", "share": "net", "admin": "admin", "health": "headless",
    "volume": "volume",
}  # fmt: skip
"""The module of `sdtui.cli` that registers each command: `sd CMD` imports CMD's only (all of them take 0.3 s)."""


def with_commands(command: str | None) -> Any:
    """The `sd` app (a typer.Typer) with `command` registered, or every command when `command` is not one."""
    from sdtui.cli.commands import with_commands

    return with_commands(command)


def __getattr__(name: str) -> Any:  # `app`: every command; a module of commands by its name
    if name == "app":
        return with_commands(None)
    if name in MODULES:
        return importlib.import_module(f"sdtui.cli.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextmanager
def _loading() -> Iterator[None]:
    """Import modules without the collector: they make ~40,000 objects that live as long as `sd`, which it would
    scan again and again (while importing, and in every full collection after, such as a library's close); once
    made, they are moved where it never looks (gc.freeze; `common.run` freezes the core's modules too)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    """The `sd` command: carried out by the core already running for the data dir, if one is."""
    if sys.argv[1:2] == ["--version"]:  # before the core's modules, and typer's parser (which imports pydantic)
        from sdtui.command import version

        print(f"sd {version()}")
        raise SystemExit(0)
    with _loading():  # no typer yet: a command that a running core carries out needs none here
        from sdcore import log
        from sdtui.cli.forward import _globals, forward

    data_dir, command = _globals(sys.argv[1:])
    log.setup(data_dir, "sd")  # the data dir as the main callback will read it
    try:
        code = None
        if any(arg.startswith("--device") for arg in sys.argv[1:]):
            from sdtui.cli.net import on_device

            code = on_device(sys.argv[1:])
        if code is None:
            code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        with _loading():
            app = with_commands(command)
        app(prog_name="sd")  # run as `python -m sdtui.cli` (`sd serve`'s sessions), click would name it that
    except BrokenPipeError:  # the reader went away (`sd ls | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # a bug of ours: logged with its traceback, told in one line
        from sdtui.cli import common

        common.unexpected_failure(exc, sys.argv[1:])
        sys.exit(1)
