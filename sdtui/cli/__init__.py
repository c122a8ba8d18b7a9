"""The `sd` command: every feature of the core, for people (tables) and scripts (--json)."""

from __future__ import annotations

import typer

from sdtui.cli import common, index, jobs, library, net, ops, organize

app = typer.Typer(
    help="sdtui's command line: libraries, locations, indexing, search, file operations and devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    data_dir: str = typer.Option(None, "--data-dir", envvar="SD_DATA_DIR", help="The data dir (default ~/.local/share/sdtui)."),
    library_name: str = typer.Option(None, "--library", "-L", help="The library to use (default: the default library)."),
) -> None:
    common.options.set(common.Options(data_dir, library_name))


for module in (library, index, jobs, organize, ops, net):
    module.register(app)


def main() -> None:
    """The `sd` command: carried out by the core already running for the data dir, if one is."""
    import sys

    from sdtui.cli.forward import forward

    code = forward(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    app()
