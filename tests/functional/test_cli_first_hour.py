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


# -- 12.10: output a person can read -----------------------------------------------------------------


def test_a_piped_table_keeps_its_full_width(tmp_path: Path, env: dict[str, str]) -> None:
    deep = tmp_path / ("linux-source-" + "x" * 60) / ("drivers-" + "y" * 60)
    deep.mkdir(parents=True)
    ok(sd(env, "location", "add", deep, "--mode", "shallow"))
    listed = ok(sd(env, "location", "list"))  # stdout is a pipe here, as in `sd location list | grep linux`
    assert str(deep) in listed and "…" not in listed
    assert max(len(line) for line in listed.splitlines()) > 150


def test_a_forwarded_usage_error_is_drawn_at_the_callers_width(tmp_path: Path, env: dict[str, str]) -> None:
    server = subprocess.Popen(
        [SD, "serve", "--listen", "127.0.0.1:0"], env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and "serving" in server.stdout.readline()
        out = sd({**env, "COLUMNS": "60"}, "ls", "--no-such-option")
        assert out.returncode == 2 and "No such option" in out.stderr, out.stderr
        drawn = [line for line in out.stderr.splitlines() if line.startswith(("╭", "╰"))]
        assert drawn and all(len(line) == 60 for line in drawn), out.stderr
        helped = ok(sd({**env, "COLUMNS": "60"}, "location", "--help"))
        assert max(len(line) for line in helped.splitlines()) == 60
    finally:
        server.terminate()
        server.wait(10)


# -- 12.13: errors that reached the user as tracebacks ----------------------------------------------


def test_a_data_dir_that_is_a_file_is_a_one_line_error(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused(sd(env, "--data-dir", tmp_path / "notes.txt", "ls", tmp_path), "notes.txt", "is a file", "--data-dir")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_damaged_device_or_trust_file_is_named_and_kept(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "data"
    ok(sd(env, "network", "devices"))  # the first run makes the device
    (data / "device.json").write_text('{"id": "trunc')
    (data / "device.json").chmod(0o600)
    refused(sd(env, "ls", tmp_path), "device.json", "damaged", "move it away")
    assert (data / "device.json").read_text() == '{"id": "trunc'  # never written over
    (data / "device.json").unlink()
    ok(sd(env, "ls", tmp_path))  # made again from the key
    (data / "trust.json").write_text('{"peers": [')
    (data / "trust.json").chmod(0o600)  # damaged content, not a mode the privacy check would repair and report
    refused(sd(env, "network", "devices"), "trust.json", "damaged", "pair")
    assert (data / "trust.json").read_text() == '{"peers": ['


def test_an_unexpected_failure_is_one_line_naming_the_log_which_holds_the_traceback(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """A bug of ours (here planted: ops.copy raises TypeError) is told in one line; the log has the details."""
    planted = (
        "import sdcore.ops\n"
        "async def broken(*args, **kwargs): raise TypeError('unsupported operand')\n"
        "sdcore.ops.copy = broken\n"
        "from sdtui.cli import main; main()\n"
    )
    (tmp_path / "a").write_text("a")
    out = subprocess.run(
        [sys.executable, "-c", planted, "cp", str(tmp_path / "a"), str(tmp_path / "b")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = refused(out, "sd cp", "unexpected", "sdtui.log")
    assert "Traceback" not in out.stderr and "TypeError" not in line
    log = (tmp_path / "data" / "sdtui.log").read_text()
    assert "Traceback" in log and "TypeError: unsupported operand" in log


def test_a_job_that_fails_unexpectedly_says_so_in_a_sentence(tmp_path: Path, env: dict[str, str]) -> None:
    planted = (
        "from sdcore.ops.transfer import TransferJob\n"
        "async def broken(self, ctx): raise TypeError('unsupported operand')\n"
        "TransferJob.run = broken\n"
        "from sdtui.cli import main; main()\n"
    )
    (tmp_path / "a").write_text("a")
    out = subprocess.run(
        [sys.executable, "-c", planted, "cp", str(tmp_path / "a"), str(tmp_path / "b")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = refused(out, "failed", "unexpected error", "sdtui.log")
    assert "TypeError" not in line and "unsupported operand" not in line
    (job,) = json.loads(ok(sd(env, "job", "list", "--all", "--json")))
    assert job["state"] == "failed" and "TypeError" not in job["error"]
    assert "TypeError: unsupported operand" in (tmp_path / "data" / "sdtui.log").read_text()


def test_copying_into_proc_does_not_blame_the_space(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "x").write_text("x")
    out = sd(env, "cp", tmp_path / "x", "/proc/y")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "space" not in out.stderr.split(";")[0] and "/proc/y" in out.stderr, out.stderr


# -- 12.14: basics ------------------------------------------------------------------------------------


def test_version_help_and_completion(tmp_path: Path, env: dict[str, str]) -> None:
    from sdtui.command import version

    assert ok(sd(env, "--version")).strip() == f"sd {version()}"
    sdtui = str(Path(SD).parent / "sdtui")
    out = subprocess.run([sdtui, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"sdtui {version()}"
    for command in (["--help"], ["cp", "--help"], ["search", "--help"]):
        assert "<bool>" not in ok(sd(env, *command)), command
    helped = subprocess.run([sdtui, "--help"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "Usage: sdtui [OPTIONS] [PATH]" in helped and "╭─ Options" in helped and "--data-dir" in helped
    script = ok(sd(env, "--show-completion", "bash"))
    assert "_SD_COMPLETE" in script
    completing = {**env, "_SD_COMPLETE": "complete_bash", "COMP_WORDS": "sd location mo", "COMP_CWORD": "2"}
    assert ok(sd(completing)).split() == ["mode"]
    ok(sd({**env, "SHELL": "/bin/bash"}, "--install-completion", "bash"))
    assert "sd" in (Path(env["HOME"]) / ".bashrc").read_text()


# -- 12.15: smaller ------------------------------------------------------------------------------------


def test_a_move_within_one_disk_is_a_rename_and_claims_no_verification(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF" * 1000)
    said = ok(sd(env, "mv", tmp_path / "report.pdf", tmp_path / "final.pdf"))
    assert said.strip() == "moved 1 file" and (tmp_path / "final.pdf").exists()
    copied = ok(sd(env, "cp", "--verify", tmp_path / "final.pdf", tmp_path / "copy.pdf"))
    assert "(verified)" in copied and "3.9K" in copied  # a real copy still says so


def test_trash_empty_takes_an_age_like_search(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "old.log").write_text("old")
    ok(sd(env, "rm", tmp_path / "old.log"))
    for age in ("3d", "12h", "2", "2024-05-01"):
        assert ok(sd(env, "trash", "empty", "--older-than", age, "--yes")).startswith("removed 0 items"), age
    refused(sd(env, "trash", "empty", "--older-than", "soonish", "--yes"), "'soonish' is not an age", "3d")
    assert ok(sd(env, "trash", "empty", "--older-than", "0s", "--yes")).startswith("removed 1 item,")


def test_a_file_trashed_by_a_relative_path_is_restored_by_the_same_path(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "usb" / "backup").mkdir(parents=True)
    (tmp_path / "usb" / "backup" / "paper.pdf").write_text("paper")
    ok(sd(env, "rm", "usb/backup/paper.pdf", cwd=tmp_path))
    assert ok(sd(env, "trash", "restore", "usb/backup/paper.pdf", cwd=tmp_path)).startswith("restored")
    assert (tmp_path / "usb" / "backup" / "paper.pdf").read_text() == "paper"


def test_deleting_a_folder_that_holds_a_location_warns_and_yes_removes_it(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "projects" / "site").mkdir(parents=True)
    (tmp_path / "projects" / "site" / "index.html").write_text("<html>")
    ok(sd(env, "location", "add", tmp_path / "projects" / "site"))
    out = sd(env, "rm", tmp_path / "projects")
    assert out.returncode == 0 and "warning:" in out.stderr and "location 1" in out.stderr, out.stderr
    assert "sd location remove 1" in out.stderr and "--yes" in out.stderr
    assert len(json.loads(ok(sd(env, "location", "list", "--json")))) == 1  # kept: nobody said to remove it
    ok(sd(env, "trash", "restore", tmp_path / "projects"))
    out = sd(env, "rm", "--yes", tmp_path / "projects")
    assert out.returncode == 0 and "removed location 1" in out.stderr, out.stderr
    assert json.loads(ok(sd(env, "location", "list", "--json"))) == []


def test_job_monitor_without_a_running_core_says_so_and_leaves_the_library_to_other_commands(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "a.txt").write_text("a")
    monitor = subprocess.Popen([SD, "job", "monitor"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out, err = monitor.communicate(timeout=30)  # it used to wait for jobs no other process could run
    finally:
        monitor.kill()
    assert monitor.returncode == 1 and "sd serve" in err and "Traceback" not in err, err
    ok(sd(env, "cp", tmp_path / "a.txt", tmp_path / "b.txt"))


def test_ls_of_an_indexed_folder_counts_one_file_in_the_singular(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "place" / "one").mkdir(parents=True)
    (tmp_path / "place" / "one" / "a.txt").write_text("a")
    ok(sd(env, "location", "add", tmp_path / "place"))
    listed = ok(sd(env, "ls", tmp_path / "place"))
    assert "1 file " in listed and "1 files" not in listed, listed


def test_names_with_brackets_are_shown_as_they_are_not_read_as_markup(tmp_path: Path, env: dict[str, str]) -> None:
    place = tmp_path / "place"
    place.mkdir()
    for name in ("[bold]markup[b].txt", "[red]alert.txt", "[link=http://x]click[/link].txt".replace("/", "_")):
        (place / name).write_text("x")
    listed = ok(sd(env, "ls", place))  # from disk
    assert "[bold]markup[b].txt" in listed and "[red]alert.txt" in listed, listed
    assert "[link=http:__x]click[_link].txt" in listed, listed
    ok(sd(env, "location", "add", place))
    listed = ok(sd(env, "ls", place))  # from the index
    assert "[bold]markup[b].txt" in listed and "[red]alert.txt" in listed, listed


def test_job_list_says_a_copys_progress_in_sizes_a_person_reads(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(3 << 20))
    ok(sd(env, "cp", tmp_path / "big.bin", tmp_path / "copy.bin"))
    listed = ok(sd(env, "job", "list", "--all"))
    assert "3.0M/3.0M" in listed and "3,145,728" not in listed, listed  # as `sd job monitor` and the explorer say it
