"""`sd`'s tables printed to a pipe without rich are what rich prints there, character for character."""

from __future__ import annotations

import io
import random
import string

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sdtui.cli import common


def rich_table(columns: tuple[str, ...], rows: list[list[object]]) -> str:
    """The table as print_table drew it with rich only (before the plain path), on a pipe."""
    out = io.StringIO()
    table = Table(*columns, box=None, header_style="bold")
    for row in rows:
        table.add_row(*(Text(common.display(str(v))) if v is not None else "" for v in row))
    Console(file=out, width=common.PIPE_WIDTH).print(table)
    return out.getvalue()


def printed(columns: tuple[str, ...], rows: list[list[object]], capsys: pytest.CaptureFixture[str]) -> str:
    common.print_table(columns, rows)
    return capsys.readouterr().out


def test_a_plain_table_on_a_pipe_is_rich_s_own(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    chance = random.Random(18)
    alphabet = string.printable[:95] + "  \t\néü日本\u0301\x1b😀"  # printable ASCII, spaces, then what rich measures
    for _ in range(300):
        columns = tuple(chance.choice(["name", "kind", "size", "modified", "cas_id", "a", "[x]"]) for _ in range(chance.randint(1, 5)))
        rows: list[list[object]] = [
            [None if chance.random() < 0.1 else "".join(chance.choices(alphabet, k=chance.randint(0, 12))) for _ in columns]
            for _ in range(chance.randint(0, 6))
        ]
        assert printed(columns, rows, capsys) == rich_table(columns, rows), (columns, rows)


def test_a_plain_table_does_not_load_rich(tmp_path: object) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom sdtui.cli import common\n"
        "common.print_table(('name', 'size'), [['report.pdf', '2 B'], ['notes', None]])\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == " name        size \n report.pdf  2 B  \n notes            \n"
    assert done.stderr.strip() == "False"
