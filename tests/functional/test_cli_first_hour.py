"""A new user's first hour with `sd` (issue 12), in real subprocesses: wrong inputs are refused clearly,
output reads well when piped, errors name what to do, and the basics (version, help, completion) work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SD = str(Path(sys.executable).parent / "sd")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's environment of their own: data dir, trash and home in tmp_path; no terminal width set."""
    home = tmp_path / "home"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**environ, "HOME": str(home), "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def sd(env: dict[str, str], *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SD, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def refused(out: subprocess.CompletedProcess[str], *words: str) -> str:
    """A one-line error that says what to do; never a traceback."""
    assert out.returncode != 0, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- 12.9: wrong inputs that passed silently --------------------------------------------------------


def test_copying_to_a_missing_folder_with_a_trailing_slash_is_refused_like_cp(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "report.txt").write_text("report")
    refused(sd(env, "cp", tmp_path / "report.txt", f"{tmp_path}/missing-dir/"), "missing-dir/", "sd mkdir")
    refused(sd(env, "mv", tmp_path / "report.txt", f"{tmp_path}/missing-dir/"), "missing-dir/")
    assert not (tmp_path / "missing-dir").exists() and (tmp_path / "report.txt").exists()
    (tmp_path / "a-file").write_text("keep")
    refused(sd(env, "cp", tmp_path / "report.txt", f"{tmp_path}/a-file/"), "is a file")
    assert (tmp_path / "a-file").read_text() == "keep"
    (tmp_path / "box").mkdir()
    ok(sd(env, "cp", tmp_path / "report.txt", f"{tmp_path}/box/"))
    assert (tmp_path / "box" / "report.txt").read_text() == "report"
    ok(sd(env, "cp", tmp_path / "report.txt", tmp_path / "new-name"))  # without the slash: a new name
    assert (tmp_path / "new-name").read_text() == "report"


def test_dupes_of_a_folder_that_does_not_exist_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    refused(sd(env, "dupes", tmp_path / "nonexistent"), "nonexistent", "does not exist")


def test_a_locations_mode_changes_with_sd_location_mode(tmp_path: Path, env: dict[str, str]) -> None:
    home = tmp_path / "docs"
    home.mkdir()
    (home / "a.txt").write_text("some text")
    ok(sd(env, "location", "add", home, "--mode", "shallow"))
    line = refused(sd(env, "location", "add", home, "--mode", "deep"), "already", "shallow", "sd location mode")
    assert "deep" in line
    for bogus in (("location", "add", home, "--mode", "bogus"), ("location", "mode", home, "bogus")):
        refused(sd(env, *bogus), "'bogus'", "shallow, content, deep")
    ok(sd(env, "location", "add", tmp_path / "docs"))  # no --mode: carries on in the mode it has
    ok(sd(env, "location", "mode", "docs", "content", cwd=tmp_path))
    (loc,) = json.loads(ok(sd(env, "location", "list", "--json")))
    assert loc["mode"] == "content"
    (hit,) = json.loads(ok(sd(env, "search", "a.txt", "--json")))
    (entry,) = json.loads(ok(sd(env, "ls", home, "--json")))
    assert entry["cas_id"], "the content mode hashed what the shallow index had left"
    assert hit["name"] == "a.txt"


def test_search_takes_several_words_and_globs(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "linux"
    (src / "kernel" / "sched").mkdir(parents=True)
    for name in ("core.c", "fair.c", "core.h", "sched.h"):
        (src / "kernel" / "sched" / name).write_text(name)
    (src / "kernel" / "core.c").write_text("not in sched")
    (src / "kernel" / "notes.cpp").write_text("cpp")
    (src / "kernel" / "50%_off.c").write_text("odd name")
    ok(sd(env, "location", "add", src, "--mode", "shallow"))

    def found(*words: str) -> set[str]:
        return {os.path.relpath(h["path"], src) for h in json.loads(ok(sd(env, "search", *words, "--json")))}

    assert found("sched", "core") == {"kernel/sched/core.c", "kernel/sched/core.h"}  # every word must match
    assert found("*.c") == {"kernel/sched/core.c", "kernel/sched/fair.c", "kernel/core.c", "kernel/50%_off.c"}
    assert found("sched", "?ore.*") == {"kernel/sched/core.c", "kernel/sched/core.h"}
    assert found("50%_*") == {"kernel/50%_off.c"}  # % and _ are plain characters in a name
    assert found("*.C") == found("*.c")  # like the rest of search, case does not matter
