"""A library that closes while another thread still reads it: the read ends and the process lives.

A connection closed from one thread while another runs a query on it makes SQLite free what the query still uses:
the interpreter dies (a segfault, as an xdist worker did in the sync tests when a core closed under a puller's read).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

READ_WHILE_CLOSING = """
import sqlite3, sys, threading, time
from pathlib import Path
from sdcore.library.library import Library, create_folder

library = Library(create_folder(Path(sys.argv[1]), "Photos"))
reading = threading.Event()
counted = []

def count():
    conn = library.read()
    reading.set()
    rows = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000000) SELECT count(*) FROM n"
    counted.append(conn.execute(rows).fetchone()[0])

reader = threading.Thread(target=count)
reader.start()
reading.wait()
time.sleep(0.05)
library.close()
print("closed while reading:", reader.is_alive())
reader.join()
print("counted", counted)
try:
    library.read()
except sqlite3.ProgrammingError as exc:
    print("then:", exc)
"""


def test_a_library_closing_while_another_thread_reads_it_lets_the_read_end(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", READ_WHILE_CLOSING, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert done.stdout.splitlines() == [
        "closed while reading: True", "counted [2000000]", "then: library 'Photos' is closed",
    ]  # fmt: skip
