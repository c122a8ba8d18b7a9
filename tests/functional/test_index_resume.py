"""A user kills `sd location add` with kill -9; `sd job resume` finishes with the same index as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

SD = str(Path(sys.executable).parent / "sd")  # this environment's sd, activated or not


def make_tree(root: Path, dirs: int = 300, files_per_dir: int = 100) -> None:
    for d in range(dirs):
        sub = root / f"d{d % 17}" / f"sub{d}"
        sub.mkdir(parents=True)
        for f in range(files_per_dir):
            (sub / f"file{f}.txt").write_bytes(f"{d}-{f}".encode() * (1 + f % 7))


def sd(data: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )


def index_rows(data: Path) -> set[tuple]:
    db = next((data / "libraries").glob("*.sdlibrary")) / "database.db"
    conn = sqlite3.connect(db)
    try:
        return set(
            conn.execute(
                "SELECT p.path, e.name, e.kind, e.size, e.files, c.cas_id FROM entries e"
                " LEFT JOIN directory_paths p ON p.entry_id = e.parent_id"
                " LEFT JOIN content_identities c ON c.id = e.content_id"
            )
        )
    finally:
        conn.close()


def job_state(db: Path) -> tuple[str, dict] | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            row = conn.execute("SELECT id, checkpoint FROM jobs WHERE name = 'index' AND state = 'running'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if row is None or row[1] is None:
        return None
    return row[0], msgpack.unpackb(row[1])


pytestmark = pytest.mark.xdist_group("index_resume")  # one worker makes the tree and its reference index, once


@pytest.fixture(scope="module")
def indexed_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[tuple]]:
    """A tree of 30,000 files and its index by an uninterrupted run, shared by the kills (none writes to it)."""
    root = tmp_path_factory.mktemp("indexed")
    tree, reference = root / "tree", root / "reference"
    make_tree(tree)
    assert sd(reference, "location", "add", str(tree), "--mode", "content").returncode == 0
    return tree, index_rows(reference)


@pytest.mark.parametrize("kill_in", ["discovery", "content"])
def test_a_killed_index_resumes_to_the_same_result(
    tmp_path: Path, kill_in: str, indexed_tree: tuple[Path, set[tuple]]
) -> None:
    tree, reference_rows = indexed_tree
    victim = tmp_path / "victim"
    command = ["location", "add", str(tree), "--mode", "content"]
    if kill_in == "content":  # a first load reads the files as it lists them: here a shallow location's are read after
        assert sd(victim, "location", "add", str(tree), "--mode", "shallow").returncode == 0
        command = ["location", "mode", str(tree), "content"]

    child = subprocess.Popen(
        [SD, "--data-dir", str(victim), *command],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    killed_state = None
    while time.monotonic() < deadline and child.poll() is None:
        libs = list((victim / "libraries").glob("*.sdlibrary")) if (victim / "libraries").exists() else []
        state = job_state(libs[0] / "database.db") if libs else None
        if state and state[1]["phase"] == kill_in and (kill_in != "content" or state[1]["hashed"] > 0):
            os.kill(child.pid, signal.SIGKILL)
            killed_state = state
            break
        time.sleep(0.005)
    child.wait()
    assert killed_state is not None, "the index finished before it could be killed; make the tree bigger"
    job_id = killed_state[0]

    listed = json.loads(sd(victim, "job", "list", "--json").stdout)
    assert [j["state"] for j in listed if j["id"] == job_id] == ["interrupted"]
    resumed = sd(victim, "job", "resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(sd(victim, "job", "list", "--json", "--all").stdout)[0]["state"] == "completed"
    assert index_rows(victim) == reference_rows
    db = next((victim / "libraries").glob("*.sdlibrary")) / "database.db"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM scan_queue").fetchone() == (0,)
