"""What the `sdtui` and `sd` command lines share: the version, and help drawn in panels as typer draws it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def version() -> str:
    """The version of sdtui (and of its `sd` command)."""
    from sdtui import __version__

    return __version__


class PanelHelp(argparse.Action):
    """-h/--help of an argparse parser, drawn as `sd --help` is: usage, description, then panels."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: Any) -> None:
        super().__init__(
            option_strings, dest, default=argparse.SUPPRESS, nargs=0, help="Show this message and exit."
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print_help(parser)
        parser.exit()


def print_help(parser: argparse.ArgumentParser) -> None:
    from rich import box
    from rich.console import Console, Group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console()
    positionals = [a for a in parser._actions if not a.option_strings and a.help != argparse.SUPPRESS]
    optionals = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
    usage = Text.assemble(("Usage: ", "yellow"), (f"{parser.prog} ", "bold"), "[OPTIONS]")
    for action in positionals:
        name = (action.metavar or action.dest).upper()
        usage.append(f" [{name}]" if action.nargs in ("?", "*") else f" {name}")
    parts: list[Any] = [Padding(usage, (1, 1, 0, 1))]
    if parser.description:
        parts.append(Padding(parser.description, (1, 1, 1, 1)))
    for title, actions in (("Arguments", positionals), ("Options", optionals)):
        if not actions:
            continue
        grid = Table.grid(padding=(0, 2), expand=True)
        for _ in range(3):
            grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        for action in actions:
            long = ",".join(o for o in action.option_strings if o.startswith("--"))
            short = ",".join(o for o in action.option_strings if not o.startswith("--"))
            takes_value = action.nargs != 0 and action.option_strings
            value = (action.metavar or action.dest).upper() if takes_value else ""
            if not action.option_strings:
                long, value = (action.metavar or action.dest).upper(), ""
            help_text = sentence((action.help or "").replace("%(default)s", str(action.default)))
            grid.add_row(
                Text(long, "bold cyan"), Text(short, "bold green"), Text(value, "bold yellow"), help_text
            )
        parts.append(Panel(grid, title=title, title_align="left", border_style="dim", box=box.ROUNDED))
    if parser.epilog:
        parts.append(Padding(parser.epilog, (0, 1, 1, 1), style="dim"))
    console.print(Group(*parts))


def sentence(text: str) -> str:
    """Help as `sd`'s reads: a capital first, a full stop last."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")
