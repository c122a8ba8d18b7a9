"""What every `sd` command shares: global options, running a Core, printing tables or JSON, errors."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from sdcore.errors import SdError
from sdcore.sdpath import display

T = TypeVar("T")


@dataclass
class Options:
    """Global options of `sd` (set by the main callback)."""

    data_dir: str | None = None
    library: str | None = None


options = Options()

JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


def run(body: Callable[[Any], Awaitable[T]]) -> T:
    """Run `body(core)` with a Core for the chosen data dir; a user error prints its message and exits 1."""
    from sdcore.core import Core

    async def main() -> T:
        async with Core(options.data_dir) as core:
            return await body(core)

    try:
        return asyncio.run(main())
    except SdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)


def fail(message: str, code: int = 1) -> Any:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def library_of(core: Any) -> Any:
    return core.library(options.library)


def print_json(data: Any) -> None:
    """JSON on stdout, ASCII-escaped: a name that is not UTF-8 keeps its bytes as \\udcXX (os.fsencode restores them)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title, box=None, header_style="bold")
    for row in rows:
        table.add_row(*(display(str(v)) if v is not None else "" for v in row))
    Console().print(table)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
