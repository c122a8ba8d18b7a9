"""The core never knows the UI exists: importing any sdcore module pulls in no Textual, typer, rich or sdtui."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import sdcore

FORBIDDEN = ("textual", "typer", "rich", "sdtui")

SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import sdcore

    forbidden = FORBIDDEN
    def bad():
        return sorted(m for m in sys.modules if m.split(".")[0] in forbidden)

    modules, culprits = [], {}
    for info in pkgutil.walk_packages(sdcore.__path__, "sdcore."):
        before = set(bad())
        importlib.import_module(info.name)
        modules.append(info.name)
        new = sorted(set(bad()) - before)
        if new:
            culprits[info.name] = new
    print(json.dumps({"modules": modules, "culprits": culprits, "loaded": bad()}))
    """
).replace("FORBIDDEN", repr(FORBIDDEN))


def test_importing_every_sdcore_module_loads_no_ui_code() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # the walk really covered the core, so an empty result means something
    for module in ("sdcore.core", "sdcore.sdpath", "sdcore.index.indexer", "sdcore.index.watcher",
                   "sdcore.library.library", "sdcore.jobs.manager", "sdcore.events"):
        assert module in report["modules"]
    assert report["culprits"] == {}
    assert report["loaded"] == []


def test_the_check_itself_sees_a_forbidden_import() -> None:
    """A hygiene check that cannot fail is no check: importing sdtui's command line must show up as forbidden."""
    script = SCRIPT.replace("import sdcore\n", "import sdcore, sdtui.cli.commands\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)["loaded"]
    assert "typer" in loaded and "sdtui" in loaded



def test_asyncssh_is_imported_only_through_sdcore_sshlib() -> None:
    """The newest cryptography warns when asyncssh is imported; sdcore.sshlib is where that is silenced."""
    root = Path(sdcore.__file__).parent
    direct = []
    for source in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(n.split(".")[0] == "asyncssh" for n in names):
                direct.append(f"{source.relative_to(root)}:{node.lineno}")
    assert direct == ["sshlib.py:10"]
    out = subprocess.run([sys.executable, "-c", "import sdcore.net.network"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == "", out.stderr
