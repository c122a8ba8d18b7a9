"""The `sd` command: every feature of the core, for people (tables) and scripts (--json)."""

from __future__ import annotations

import os
import sys

import typer

from sdtui.cli import common, index, jobs, library, net, ops, organize
from sdtui.command import version

app = typer.Typer(
    help="sdtui's command line: libraries, locations, indexing, search, file operations and devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        print(f"sd {version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    data_dir: str = typer.Option(None, "--data-dir", envvar="SD_DATA_DIR", help="The data dir (default ~/.local/share/sdtui)."),
    library_name: str = typer.Option(None, "--library", "-L", help="The library to use (default: the default library)."),
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print sd's version and exit."
    ),
) -> None:
    common.options.set(common.Options(data_dir, library_name))


for module in (library, index, jobs, organize, ops, net):
    module.register(app)
common.flags_without_type_labels()


def main() -> None:
    """The `sd` command: carried out by the core already running for the data dir, if one is."""
    from sdcore import log
    from sdtui.cli.forward import _globals, forward

    log.setup(_globals(sys.argv[1:])[0], "sd")  # the data dir as the main callback will read it
    try:
        code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        app()
    except BrokenPipeError:  # the reader went away (`sd ls | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # a bug of ours: logged with its traceback, told in one line
        common.unexpected_failure(exc, sys.argv[1:])
        sys.exit(1)
