"""`sd` and `attach()` start without the modules they do not need: the core behind the Api, every command, asyncssh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from subprocess import PIPE

import pytest
import typer
from typer._adapters import build_adapter
from typer.models import OptionInfo

from sdcore.api import wire
from sdcore.api.records import DeviceInfo
from sdcore.core import Core
from sdtui import cli
from sdtui.cli import plain_params


def loaded_after(code: str, stdin: bytes = b"") -> set[str]:
    """The modules a fresh interpreter holds after running `code` (its last line of output lists them)."""
    script = f"import sys\n{code}\nprint(' '.join(sys.modules), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", script], input=stdin, capture_output=True, check=False)
    return set(done.stderr.decode().splitlines()[-1].split())


def test_every_command_is_found_in_the_module_the_table_names() -> None:
    for name in cli.MODULES:
        app = typer.Typer()
        getattr(cli, name).register(app)
        commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
        assert commands == {command for command, module in cli.COMMANDS.items() if module == name}, name


def test_sd_version_loads_neither_the_core_nor_a_command() -> None:
    modules = loaded_after("sys.argv = ['sd', '--version']\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass")
    assert "sdtui.cli.ops" not in modules and "sdcore.core" not in modules and "pydantic" not in modules


def test_a_command_loads_its_own_module_only(tmp_path: object) -> None:
    code = f"sys.argv = ['sd', '--data-dir', '{tmp_path}', 'health']\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass"
    modules = loaded_after(code)
    assert "sdtui.cli.headless" in modules
    assert not {"sdtui.cli.ops", "sdtui.cli.organize", "sdtui.cli.index", "sdcore.api.root"} & modules


def test_a_rescan_loads_neither_the_file_operations_nor_a_walker_process(tmp_path: Path) -> None:
    """`sd location rescan` of a tree indexed before: the walk runs in the process, the job's end needs no undo."""
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "a.txt").write_text("a")
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "sdtui.cli", "--data-dir", str(data), "location", "add", str(tmp_path / "tree"),
                    "--mode", "shallow"], check=True, capture_output=True)  # fmt: skip
    modules = loaded_after(
        "import subprocess\nstarted = subprocess.Popen.__init__\n"
        "def spy(self, args, *a, **k):\n    sys.modules['sd-spawned:' + '|'.join(map(str, args)).replace(' ', '_')] = sys\n"
        "    started(self, args, *a, **k)\nsubprocess.Popen.__init__ = spy\n"
        f"sys.argv = ['sd', '--data-dir', {str(data)!r}, 'location', 'rescan', '1']\n"
        "from sdtui.cli import main\ntry: main()\nexcept SystemExit: pass"
    )
    assert "sdcore.index.indexer" in modules
    assert not {m for m in modules if m == "sdcore.ops" or m.startswith("sdcore.ops.")}
    assert not {m for m in modules if m.startswith("sd-spawned") and "sdcore.index.walker" in m}


def test_attach_reads_the_cores_hello_without_the_core_or_asyncssh() -> None:
    hello = wire.encode({"hello": {"device": DeviceInfo(uuid.uuid4(), "laptop")}})
    code = "from sdcore.api import client, wire\nprint(wire.decode(sys.stdin.buffer.read()))"
    modules = loaded_after(code, hello)
    assert "sdcore.api.records" in modules
    assert not {"asyncssh", "sdcore.api.root", "sdcore.jobs.manager"} & modules


def test_sd_ls_and_a_search_with_a_number_never_load_pydantic(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "report.pdf").write_text("x")
    for command, told in ((["ls", str(tmp_path / "folder")], "report.pdf"), (["search", "x", "--limit", "3"], "")):
        argv = ["sd", "--data-dir", str(tmp_path / "data"), *command]
        script = f"import sys\nsys.argv = {argv!r}\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass"
        script += "\nprint(' '.join(sys.modules), file=sys.stderr)"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
        *said, modules = done.stderr.splitlines()
        assert told in done.stdout and not any("Invalid value" in line for line in said), said
        assert "pydantic" not in modules.split(), f"sd {command[0]} imported pydantic"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["search", "x", "--limit", "5x"], "Invalid value for '--limit': Input should be a valid integer"),
        (["health", "--timeout", "0.01"], "Invalid value for '--timeout': Input should be greater than or equal to 0.1"),
    ],
)
def test_a_mistyped_number_is_still_told_in_typers_words(tmp_path: Path, command: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sdtui.cli", "--data-dir", str(tmp_path), *command],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("annotation", "values"),
    [
        (str, ["", "x", "-", "ü ∂", "\udcff"]),
        (int, ["0", "-0", "007", "12", "-12", "999999999999999999", 3]),
        (float, ["0", "3", "1.5", "-2.25", "0.10", "007.5", 2.0]),
        (list[str], [["a", "b"], ("a",), []]),
        (bool, [True, False]),
    ],
)
def test_a_plain_value_is_what_typers_pydantic_check_makes_of_it(annotation: object, values: list[object]) -> None:
    adapter = build_adapter(annotation, OptionInfo())
    for value in values:
        ours = plain_params._plain(annotation, None, None, value)
        theirs = adapter.validate_python(value)
        assert ours == theirs and type(ours) is type(theirs), (annotation, value)


def test_anything_else_goes_to_typers_own_check() -> None:
    for annotation, low, high, value in [
        (int, None, None, "5x"), (int, None, None, "1_000"), (int, None, None, " 5"), (int, None, None, "1.0"),
        (int, None, None, "9" * 40), (float, 0.1, None, "0.01"), (float, 0.1, None, "abc"), (int, None, 5, "6"),
        (str, None, None, b"bytes"), (list[str], None, None, "one"), (bool, None, None, "yes"), (float, None, None, "1e3"),
    ]:  # fmt: skip
        assert plain_params._plain(annotation, low, high, value) is plain_params._NOT_PLAIN, (annotation, value)


async def test_a_command_the_running_core_carries_out_starts_neither_typer_nor_a_core_here(
    core: Core, tmp_path: Path
) -> None:
    from sdtui.cli.forward import host

    await host(core)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "report.pdf").write_text("x")
    argv = ["sd", "--data-dir", str(core.data_dir), "ls", str(tmp_path / "folder")]
    script = f"import sys\nsys.argv = {argv!r}\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass"
    script += "\nprint(' '.join(sys.modules), file=sys.stderr)"
    client = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(client.communicate(), 60)
    assert "report.pdf" in out.decode(), err.decode()
    modules = set(err.decode().splitlines()[-1].split())
    assert "sdtui.cli.forward" in modules
    assert not {"typer", "sdcore.core", "sdtui.cli.common", "sdtui.cli.index", "asyncio", "ssl"} & modules


@pytest.mark.parametrize(
    ("command", "reader"),
    [(["index", "quick-scan", "FOLDER", "--ephemeral"], "sdcore.index.walker"), (["dupes", "FOLDER"], "sdcore.dedup")],
)
def test_commands_that_read_a_folder_from_disk_load_neither_asyncio_nor_a_library(
    tmp_path: Path, command: list[str], reader: str
) -> None:
    """They read folders and print them: asyncio (and ssl), the library's modules and SQLite would cost a flat
    100,000-file folder's scan a fifth more CPU (issue 18: within 2x of `find`), `sd dupes` of a source tree a
    twentieth (within 1x of `jdupes`)."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "report.pdf").write_text("x")
    argv = ["sd", "--data-dir", str(tmp_path / "data"), *(str(tmp_path / "folder") if a == "FOLDER" else a for a in command)]
    modules = loaded_after(f"sys.argv = {argv!r}\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass")
    assert reader in modules
    loaded = {m for m in modules if m.split(".")[0] in ("asyncio", "ssl", "sqlite3") or m.startswith("sdcore.library")}
    assert not loaded, f"sd {' '.join(command)} imported {sorted(loaded)}"


NEVER_FOR_A_LISTING = {
    "asyncssh", "textual", "sdtui.app", "pydantic", "rich", "sdcore.net", "sdcore.sync.catalogue", "sdcore.sync.service",
    "sdcore.library.volume_locations", "PIL", "zstandard", "sqlite_utils", "sdcore.fs.archive",
}  # fmt: skip
"""What `sd ls` and `sd search` to a pipe must not import: the network, the explorer, rich (a plain table needs none)."""


def test_sd_ls_and_sd_search_load_neither_the_network_nor_the_explorer(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    (tmp_path / "place" / "inner").mkdir(parents=True)
    (tmp_path / "place" / "inner" / "notes.md").write_text("y")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "report.pdf").write_text("x")
    added = subprocess.run(
        [sys.executable, "-m", "sdtui.cli", "--data-dir", data, "location", "add", str(tmp_path / "place"), "--mode", "shallow"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    for command, told, never in (
        (["ls", str(tmp_path / "elsewhere")], "report.pdf", {"sdcore.jobs"}),  # outside every location: from disk
        (["ls", str(tmp_path / "place" / "inner")], "notes.md", {"sdcore.jobs"}),  # inside one: from the index
        (["search", "notes"], "notes.md", set()),  # (it says which locations are still being indexed: their jobs)
    ):
        code = f"sys.argv = {['sd', '--data-dir', data, *command]!r}\nfrom sdtui.cli import main\ntry: main()\nexcept SystemExit: pass"
        script = f"import sys\n{code}\nprint(' '.join(sys.modules), file=sys.stderr)"
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
        assert told in done.stdout, done.stderr
        modules = set(done.stderr.splitlines()[-1].split())
        never |= NEVER_FOR_A_LISTING
        loaded = {m for m in modules for name in never if m == name or m.startswith(name + ".")}
        assert not loaded, f"sd {' '.join(command[:1])} imported {sorted(loaded)}"


def test_the_core_watches_the_mount_table_sdcore_volumes_reads(tmp_path: Path) -> None:
    from sdcore.volumes import MOUNTINFO

    assert Core(tmp_path / "data").mount_table == MOUNTINFO  # written out in the core: it imports no volumes at start
