"""sdcore.net stays headless: importing it never pulls in a UI or CLI library."""

from __future__ import annotations

import subprocess
import sys


def test_sdcore_net_imports_no_ui_code() -> None:
    code = (
        "import sys, sdcore.net, sdcore.net.network, sdcore.control, sdcore.net.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'typer', 'rich', 'sdtui')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
