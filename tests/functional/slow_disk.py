"""`sd` as it runs on a slow disk: local copies move about 2.5 MB a second, whatever the machine, so a test has
time to watch, pause or kill one under way (a quiet machine copies a GiB before `sd job pause` lands).

Run as `python slow_disk.py ARGS...` (the argv of SLOW_SD); the copy engine itself is the real one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLOW_SD = [sys.executable, str(Path(__file__))]
CHUNK = 128 << 10  # bytes per copy_file_range call, each followed by...
DELAY = 0.05  # ...this many seconds of the disk catching up


def _slow_down() -> None:
    from sdcore.ops import localcopy

    copy_file = localcopy.copy_file

    def slow_copy_file(*args: Any, on_bytes: Callable[[int], None] | None = None, **kwargs: Any) -> Any:
        def slowly(n: int) -> None:
            time.sleep(DELAY)
            if on_bytes is not None:
                on_bytes(n)

        return copy_file(*args, on_bytes=slowly, **kwargs)

    localcopy.RANGE_CHUNK = CHUNK
    localcopy.copy_file = slow_copy_file  # type: ignore[assignment]


if __name__ == "__main__":
    _slow_down()
    from sdtui.cli import main

    sys.argv[0] = "sd"
    main()
