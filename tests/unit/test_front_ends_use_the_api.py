"""The front ends (the explorer and `sd`) reach the core only through its API: no SQL, no job-result dicts, no
sdcore internals anywhere in sdtui/."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import sdtui

SDTUI = Path(sdtui.__file__).parent

ALLOWED = ("sdcore.api", "sdcore.sdpath", "sdcore.errors", "sdcore.events", "sdcore.log", "sdcore.jobs.results")
"""The API, and the modules that are pure values (paths, errors, events, the typed results of jobs) or set up
the log."""

WORDS = {
    "execute(": "SQL",
    "SELECT ": "SQL",
    "import sqlite3": "SQL",
    "result.get(": "a job's result dict",
    ".result or {}": "a job's result dict",
    'result["': "a job's result dict",
}

HOSTS: dict[str, set[str]] = {
    # Not debt: the processes that start a core and serve its API hold it (the API is what they serve).
    # The explorer builds the Core it serves when none runs for its data dir:
    "app.py": {"imports sdcore.core"},
    # `sd`: run() opens the Core (an SQLite error it meets is told by the core) and hosts others' commands on it:
    "cli/common.py": {"imports sdcore.core"},
    # the data dir and its control socket, without a core (the client side: without asyncio either)
    "cli/forward.py": {"imports sdcore.control", "imports sdcore.control_client", "imports sdcore.privacy"},
    "cli/net.py": {"imports sdcore.net"},  # `sd serve`: the core's host starts the network the API's devices use
    # `sd index --ephemeral` lists a folder with no core at all: opening one (its data dir, its lock, a library)
    # would cost more than the scan it prints as it goes; nothing of a core is read or written.
    "cli/index.py": {"imports sdcore.index.listing"},
}


def findings(source: str) -> set[str]:
    """What a module of sdtui does that only the core may: SQL, decoding a job's result dict, using internals."""
    found = {f"{what}: {word}" for word, what in WORDS.items() if word in source}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            modules = [f"sdcore.{name}" for name in names] if node.module == "sdcore" else [node.module]
        else:
            continue
        for module in modules:
            inside = module == "sdcore" or module.startswith("sdcore.")
            if inside and not any(module == ok or module.startswith(ok + ".") for ok in ALLOWED):
                found.add(f"imports {module}")
    return found


def test_sdtui_reaches_the_core_only_through_its_api() -> None:
    new, paid = {}, {}
    for path in sorted(SDTUI.rglob("*.py")):
        name = path.relative_to(SDTUI).as_posix()
        found = findings(path.read_text())
        debt = HOSTS.get(name, set())
        if found - debt:
            new[name] = sorted(found - debt)
        if debt - found:
            paid[name] = sorted(debt - found)
    assert new == {}, "use the core API (sdcore.api) instead"
    assert paid == {}, "no longer imported: strike these off HOSTS"


def test_the_check_sees_sql_result_dicts_and_internals() -> None:
    """A check that cannot fail is no check: each thing it forbids, written as a front end would."""
    source = textwrap.dedent(
        """
        import sqlite3
        from sdcore import tags, api
        from sdcore.search import entry_at
        import sdcore.ops.copy
        from sdcore.api import Api
        from sdcore.sdpath import SdPath
        from sdcore.events import JobProgress

        size = library.read().execute("SELECT size FROM entries").fetchone()
        outcomes = record.result.get("outcomes")
        result = record.result or {}
        copied = result["bytes"]
        """
    )
    assert findings(source) == {
        "SQL: import sqlite3", "SQL: execute(", "SQL: SELECT ",
        "a job's result dict: result.get(", "a job's result dict: .result or {}", 'a job\'s result dict: result["',
        "imports sdcore.tags", "imports sdcore.search", "imports sdcore.ops.copy",
    }
