"""Ctrl-C and one-off commands in real `sd` processes: a paused command never looks finished, and running
it again carries on where it stopped."""

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

from sdcore.ops.names import is_temp
from tests.functional.test_ops_cli import make_source, tree_state

SD = str(Path(sys.executable).parent / "sd")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SD_DATA_DIR": str(tmp_path / "data"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "COLUMNS": "200",
    }


def sd(env: dict[str, str], *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SD, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


def jobs(env: dict[str, str]) -> list[dict]:
    return json.loads(sd(env, "job", "list", "--all", "--json").stdout)  # type: ignore[no-any-return]


def interrupt_when(proc: subprocess.Popen, ready: object, timeout: float = 60) -> None:
    """Send SIGINT (Ctrl-C) to `proc`'s whole process group, as a terminal does, once `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        assert proc.poll() is None, f"it ended before the moment came: {proc.communicate()}"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGINT)


def writing_a_temp_file(dst: Path) -> object:
    def ready() -> bool:
        try:
            return any(is_temp(n) and os.path.getsize(dst / n) > 0 for n in os.listdir(dst))
        except FileNotFoundError:
            return False

    return ready


def copying_begun(dst: Path) -> object:
    """Any moment of the copy: a first small file there (the whole copy long, not the big file's fraction of a second,
    which a poller on a loaded machine can miss: CI of 18b013b)."""
    small = writing_a_temp_file(dst)

    def ready() -> bool:
        try:
            return bool(os.listdir(dst / "small")) or small()  # type: ignore[operator]
        except FileNotFoundError:
            return False

    return ready


@pytest.mark.parametrize("as_json", [False, True])
def test_a_copy_stopped_with_ctrl_c_exits_130_and_the_same_command_carries_it_on(
    tmp_path: Path, env: dict[str, str], as_json: bool
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_source(src)
    args = ["cp", *(["--json"] if as_json else []), str(src), str(dst)]
    proc = subprocess.Popen([SD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    interrupt_when(proc, writing_a_temp_file(dst))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # `sd cp A B && rm -rf A` must not delete the source
    assert "Traceback" not in err
    if as_json:
        assert json.loads(out)["state"] == "paused"
    (job,) = jobs(env)
    assert job["state"] == "paused"  # (the file after the big one may be in its batch: whether it is there is timing)

    again = sd(env, *args)
    assert again.returncode == 0, again.stderr
    assert f"carrying on job {job['id']}" in again.stderr
    assert [(j["id"], j["state"]) for j in jobs(env)] == [(job["id"], "completed")]  # no second, failed job
    assert tree_state(dst) == expected  # every file once, intact, nothing else (no temp, no "src" inside)
    assert tree_state(src) == expected


def test_background_without_a_running_core_is_refused_and_starts_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    for args in (["cp", "--background", src, tmp_path / "dst"], ["location", "add", src, "--background"]):
        out = sd(env, *args)
        assert out.returncode == 1
        assert "sd serve" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "dst").exists()
    assert jobs(env) == []
    assert json.loads(sd(env, "location", "list", "--json").stdout) == []


def test_a_failed_mkdir_or_rename_says_why_and_leaves_no_failed_job(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "there").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    for args, words in (
        (["mkdir", tmp_path / "there"], "already exists"),
        (["mkdir", tmp_path / "no" / "such"], "sd mkdir -p"),
        (["rename", tmp_path / "a.txt", "b.txt"], "already exists"),
    ):
        out = sd(env, *args)
        assert out.returncode == 1 and words in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "b.txt").read_text() == "b"
    assert sd(env, "mkdir", "-p", tmp_path / "there").returncode == 0  # -p: no error if it exists
    assert [j["state"] for j in jobs(env)] == ["completed"]


def make_tree(root: Path, dirs: int = 300, files_per_dir: int = 100) -> None:
    for d in range(dirs):
        sub = root / f"d{d % 17}" / f"sub{d}"
        sub.mkdir(parents=True)
        for f in range(files_per_dir):
            (sub / f"file{f}.txt").write_bytes(f"{d}-{f}".encode() * (1 + f % 7))


def index_job(data: Path) -> dict | None:
    """The index job's checkpoint as the database holds it now, or None."""
    try:
        db = next((data / "libraries").glob("*.sdlibrary")) / "database.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            row = conn.execute("SELECT checkpoint FROM jobs WHERE name = 'index' AND state = 'running'").fetchone()
        finally:
            conn.close()
    except (StopIteration, sqlite3.Error):
        return None
    return msgpack.unpackb(row[0]) if row and row[0] else None


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30,000 files, made once for both phases (indexing writes nothing into them)."""
    tree = tmp_path_factory.mktemp("big") / "tree"
    make_tree(tree)
    return tree


@pytest.mark.xdist_group("interrupt_index")  # both phases on one worker, which makes big_tree once
@pytest.mark.parametrize("phase", ["discovery", "content"])
def test_ctrl_c_pauses_an_index_in_any_phase_quietly_and_running_it_again_finishes_it(
    big_tree: Path, env: dict[str, str], phase: str
) -> None:
    tree, data = big_tree, Path(env["SD_DATA_DIR"])
    args = ["location", "add", str(tree), "--mode", "content"]
    if phase == "content":  # a first load reads the files as it lists them: here a shallow location's are read after
        assert sd(env, "location", "add", str(tree), "--mode", "shallow").returncode == 0
        args = ["location", "mode", str(tree), "content"]
    before = {j["id"] for j in jobs(env)}
    proc = subprocess.Popen([SD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip

    def in_phase() -> bool:
        state = index_job(data)
        return state is not None and state["phase"] == phase and (state["found"] if phase == "discovery" else state["hashed"]) > 0

    interrupt_when(proc, in_phase)  # the walker and hashing children are in the group a terminal signals
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "status" not in err, err  # the children say nothing either
    assert "paused" in err
    (job,) = [j for j in jobs(env) if j["id"] not in before]
    assert job["state"] == "paused"
    (loc,) = json.loads(sd(env, "location", "list", "--json").stdout)
    assert loc["state"] == "paused"

    # the advice printed is true both ways: the same command again, or `sd job resume` with a prefix of the id
    again = sd(env, *args) if phase == "content" else sd(env, "job", "resume", job["id"][:6])
    assert again.returncode == 0, again.stderr
    assert [(j["id"], j["state"]) for j in jobs(env) if j["id"] not in before] == [(job["id"], "completed")]
    (loc,) = json.loads(sd(env, "location", "list", "--json").stdout)
    assert (loc["state"], loc["files"]) == ("indexed", 30_000)
    db = next((data / "libraries").glob("*.sdlibrary")) / "database.db"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM entries WHERE content_id IS NOT NULL").fetchone() == (30_000,)
        assert conn.execute("SELECT COUNT(*) FROM entries WHERE error IS NOT NULL").fetchone() == (0,)
    finally:
        conn.close()


def test_a_paused_copy_whose_destination_was_removed_copies_everything_again_when_run_again(
    tmp_path: Path, env: dict[str, str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_source(src)
    args = ["cp", str(src), str(dst)]
    proc = subprocess.Popen([SD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    interrupt_when(proc, copying_begun(dst))
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    subprocess.run(["rm", "-rf", str(dst)], check=True)  # starting over, as a person would

    again = sd(env, *args)
    assert again.returncode == 0, again.stderr
    assert tree_state(dst) == expected  # not "copied 302 file(s)" with the 300 before the pause missing
