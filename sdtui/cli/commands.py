"""The `sd` typer app: global options, and each command registered from its module when first needed."""

from __future__ import annotations

import importlib
import threading

import typer

from sdtui.cli import COMMANDS, MODULES, common, plain_params
from sdtui.command import version

_app = typer.Typer(
    help="sdtui's command line: libraries, locations, indexing, search, file operations and devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        print(f"sd {version()}")
        raise SystemExit(0)


@_app.callback()
def main_options(
    data_dir: str = typer.Option(None, "--data-dir", envvar="SD_DATA_DIR", help="The data dir (default ~/.local/share/sdtui)."),
    library_name: str = typer.Option(None, "--library", "-L", help="The library to use (default: the default library)."),
    device: str = typer.Option(
        None, "--device", metavar="NAME",
        help="Run the command on this paired device's core, over SSH (it must trust this device fully).",
    ),  # fmt: skip
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print sd's version and exit."
    ),
) -> None:
    common.options.set(common.Options(data_dir, library_name))


common.flags_without_type_labels()
plain_params.install()
_registered: set[str] = set()
_registering = threading.Lock()  # the core runs forwarded commands in threads: none may see a module half registered


def with_commands(command: str | None) -> typer.Typer:
    """The `sd` app with `command` registered (with its module's other commands), or every command when
    `command` is not one (`sd`, `sd --help`, a typo that typer should answer with the list)."""
    with _registering:
        for name in [COMMANDS[command]] if command in COMMANDS else MODULES:
            if name not in _registered:
                importlib.import_module(f"sdtui.cli.{name}").register(_app)
                _registered.add(name)
    return _app


