"""`sd cp|mv|rm|trash` in real subprocesses: JSON output, refusals, and a copy killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdcore.ops.localcopy import hash_file
from sdcore.ops.names import is_temp

SD = [sys.executable, "-c", "from sdtui.cli import main; main()"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SD_DATA_DIR": str(tmp_path / "data"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "COLUMNS": "200",
    }


def sd(env: dict[str, str], *args: str | bytes | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SD, *map(os.fsdecode, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        errors="surrogateescape",
    )


def tree_state(root: Path) -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            full = os.path.join(d, n)
            out[os.path.relpath(full, root)] = hash_file(full)
    return out


def test_cp_prints_json_and_refuses_conflicts_before_writing(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    raw = os.path.join(os.fsencode(src), b"\xffraw")
    with open(raw, "wb") as f:
        f.write(b"raw bytes")
    done = sd(env, "cp", "--json", "--verify", src, tmp_path / "dst")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "completed" and out["result"]["files"] == 2 and out["result"]["verified"]
    assert open(os.path.join(os.fsencode(tmp_path / "dst"), b"\xffraw"), "rb").read() == b"raw bytes"

    (src / "b.txt").write_text("b")
    done = sd(env, "cp", src / "a.txt", src / "b.txt", tmp_path / "dst")
    assert done.returncode == 1
    assert "1 item exists at the destination" in done.stderr and "dst/a.txt" in done.stderr and "--on-conflict" in done.stderr
    assert not (tmp_path / "dst" / "b.txt").exists()
    done = sd(env, "cp", "--json", src / "a.txt", tmp_path / "dst")
    assert done.returncode == 1
    failed = json.loads(done.stdout)
    assert failed["state"] == "failed" and "dst/a.txt" in failed["error"]
    done = sd(env, "cp", "--on-conflict", "rename", src / "a.txt", src / "b.txt", tmp_path / "dst")
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "dst")) == sorted(
        [os.fsdecode(b"\xffraw"), "a (1).txt", "a.txt", "b.txt"]
    )


def test_job_list_tells_bytes_as_sizes_like_the_explorer(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "video.mkv").write_bytes(os.urandom(3 << 20))
    (tmp_path / "backup").mkdir()
    done = sd(env, "cp", tmp_path / "video.mkv", tmp_path / "backup")
    assert done.returncode == 0 and "copied 1 file, 3.0M" in done.stdout, done.stderr
    listed = sd(env, "job", "list", "--all").stdout
    assert "3.0M/3.0M" in listed and "3,145,728" not in listed, listed


def test_refusals_print_a_message_not_a_traceback(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("f")
    done = sd(env, "cp", tmp_path / "dir", tmp_path / "dir" / "inner")
    assert done.returncode == 1 and "into itself" in done.stderr and "Traceback" not in done.stderr
    done = sd(env, "mv", tmp_path / "dir", tmp_path / "file")
    assert done.returncode == 1 and "is a file where a directory is expected" in done.stderr
    done = sd(env, "cp", tmp_path / "nothing", tmp_path / "x")
    assert done.returncode == 1 and "no such file" in done.stderr


def test_mv_rm_and_the_trash_round_trip(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "draft").mkdir()
    (tmp_path / "draft" / "text.md").write_text("# hello")
    assert sd(env, "mv", tmp_path / "draft", tmp_path / "final").returncode == 0
    done = sd(env, "rm", "--json", tmp_path / "final")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["trashed"][0][0] == str(tmp_path / "final")
    listed = json.loads(sd(env, "trash", "list", "--json").stdout)
    assert [i["original_path"] for i in listed] == [str(tmp_path / "final")]
    assert sd(env, "trash", "restore", tmp_path / "final").returncode == 0
    assert (tmp_path / "final" / "text.md").read_text() == "# hello"
    assert sd(env, "rm", tmp_path / "final").returncode == 0
    refused = sd(env, "trash", "empty")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert json.loads(sd(env, "trash", "empty", "--yes", "--json").stdout)["removed"] == 1
    assert json.loads(sd(env, "trash", "list", "--json").stdout) == []


def test_mkdir_rename_and_rm_say_what_they_did(tmp_path: Path, env: dict[str, str]) -> None:
    made = sd(env, "mkdir", tmp_path / "drafts")
    assert (made.returncode, made.stdout) == (0, f"made {tmp_path / 'drafts'}\n"), made.stderr
    renamed = sd(env, "rename", tmp_path / "drafts", "final")
    assert (renamed.returncode, renamed.stdout) == (0, f"renamed to {tmp_path / 'final'}\n"), renamed.stderr
    trashed = sd(env, "rm", tmp_path / "final")
    gone = tmp_path / "final"
    assert trashed.stdout == f"trashed {gone} (`sd trash restore {gone}` brings it back)\n", trashed.stderr
    assert not gone.exists()


def make_source(src: Path) -> dict[str, str]:
    """300 small files, then a big one (to be caught in the middle of), then one more; their hashes."""
    (src / "small").mkdir(parents=True)
    for i in range(300):
        (src / "small" / f"s{i:03}.bin").write_bytes(os.urandom(16_384))
    block = os.urandom(1 << 20)
    with open(src / "zbig.bin", "wb") as f:
        for i in range(192):
            f.write(i.to_bytes(4, "little") + block[4:])
    (src / "zz-after.txt").write_text("the last one")
    return tree_state(src)


def kill_in_the_middle(args: list[str], dst: Path, env: dict[str, str]) -> None:
    """Run `sd ARGS`, SIGKILL it while a temporary file is being written in `dst`."""
    proc = subprocess.Popen([*SD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    caught = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            names = os.listdir(dst)
        except FileNotFoundError:
            names = []
        temp = [n for n in names if is_temp(n)]
        try:
            if temp and os.path.getsize(dst / temp[0]) > 0:
                os.kill(proc.pid, signal.SIGKILL)
                caught = True
                break
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    proc.wait()
    assert caught, f"the job finished before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    assert proc.returncode == -signal.SIGKILL
    assert any(is_temp(n) for n in os.listdir(dst))  # killed in the middle of the big file
    assert not (dst / "zz-after.txt").exists()


def resume_the_interrupted(env: dict[str, str], kind: str) -> None:
    jobs = json.loads(sd(env, "job", "list", "--json").stdout)
    (job,) = [j for j in jobs if j["kind"] == kind]
    assert job["state"] == "interrupted"
    done = sd(env, "job", "resume", job["id"])
    assert done.returncode == 0, done.stderr
    records = json.loads(sd(env, "job", "list", "--all", "--json").stdout)
    assert [r["state"] for r in records if r["id"] == job["id"]] == ["completed"]


def test_a_copy_killed_with_sigkill_resumes_to_every_file_once_and_intact(
    tmp_path: Path, env: dict[str, str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    expected = make_source(src)
    kill_in_the_middle(["cp", "--json", str(src), str(dst)], dst, env)
    resume_the_interrupted(env, "copy")
    assert (
        tree_state(dst) == expected
    )  # every file present once, intact, and nothing else (no temp, no "(1)")
    assert tree_state(src) == expected


def test_a_move_across_filesystems_killed_with_sigkill_loses_and_duplicates_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    mount = tmp_path / "usb"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        src, dst = mount / "src", tmp_path / "dst"
        expected = make_source(src)
        kill_in_the_middle(["mv", str(src), str(dst)], dst, env)
        moved, stayed = tree_state(dst), tree_state(src)
        assert set(moved).isdisjoint(stayed) or all(moved[k] == stayed[k] for k in set(moved) & set(stayed))
        assert {k: v for k, v in {**moved, **stayed}.items() if not is_temp(os.path.basename(k))} == expected
        resume_the_interrupted(env, "move")
        assert tree_state(dst) == expected
        assert not src.exists()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_copy_followed_on_a_terminal_draws_a_bar_and_ends_saying_what_it_copied(
    env: dict[str, str], tmp_path: Path
) -> None:
    """With a terminal on stderr `sd cp` draws a progress bar from the job's events until the job ends."""
    import pty
    import threading

    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(os.urandom(32 << 20))
    terminal, side = pty.openpty()
    said: list[bytes] = []

    def drain() -> None:  # what `sd` writes to the terminal, so that it never blocks on a full one
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the other side closed
                return
            if not chunk:
                return
            said.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [*SD, "cp", str(tmp_path / "src" / "big.bin"), f"{tmp_path / 'dst'}/"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=side, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(side)
    reader.join(10)
    os.close(terminal)
    assert done.returncode == 0, b"".join(said).decode(errors="replace")
    assert "━" in done.stdout and "copied 1 file, 32M" in done.stdout, done.stdout
    assert (tmp_path / "dst" / "big.bin").read_bytes() == (tmp_path / "src" / "big.bin").read_bytes()


def _without_root_read_powers() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so root obeys chmod 000."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def sd_unprivileged(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`sd` as a user whom chmod 000 keeps out (tests run as root, and root reads any folder)."""
    return subprocess.run(
        [*SD, *map(os.fsdecode, args)], env=env, capture_output=True, text=True, timeout=120,
        preexec_fn=_without_root_read_powers if os.geteuid() == 0 else None,
    )  # fmt: skip


def test_a_folder_that_may_be_read_but_not_entered_lists_its_names_as_ls_does(tmp_path: Path, env: dict[str, str]) -> None:
    """A folder `drw-r--r--` (its names readable, nothing in it stat-able) showed as "empty directory" in the
    explorer and listed nothing in `sd ls`: each entry's stat failed and the entry was dropped as if gone."""
    folder = tmp_path / "no-search"
    (folder / "sub").mkdir(parents=True)
    (folder / "y.txt").write_text("y")
    os.chmod(folder, 0o644)
    try:
        probe = sd_unprivileged(env, "ls", folder / "y.txt")
        if probe.returncode == 0:
            pytest.skip("this user stats inside a folder without search permission anyway")
        listed = sd_unprivileged(env, "ls", "--json", folder)
        shown = sd_unprivileged(env, "ls", folder)
    finally:
        os.chmod(folder, 0o755)
    assert listed.returncode == 0, listed.stderr
    assert sorted((e["name"], e["kind"]) for e in json.loads(listed.stdout)) == [("sub", "dir"), ("y.txt", "file")]
    # what no one may look at is said not known, as `ls -l` says `?` (it showed 0 B, modified 1970-01-01)
    assert all(e["size"] is None and e["mtime"] is None for e in json.loads(listed.stdout))
    row = next(line.split() for line in shown.stdout.splitlines() if line.strip().startswith("y.txt"))
    assert row[2:] == ["?", "?"], shown.stdout


@pytest.mark.parametrize("json_output", [False, True], ids=["person", "json"])
def test_cp_of_a_tree_with_an_unreadable_folder_and_file_copies_the_rest_and_names_each_one(
    tmp_path: Path, env: dict[str, str], json_output: bool
) -> None:
    tree = tmp_path / "tree"
    for folder in ("a-open", "locked", "z-open"):
        (tree / folder).mkdir(parents=True)
        (tree / folder / "note.txt").write_text(folder)
    (tree / "secret.txt").write_text("no")
    (tree / "top.txt").write_text("top")
    os.chmod(tree / "locked", 0)
    os.chmod(tree / "secret.txt", 0)
    probe = sd_unprivileged(env, "ls", tree / "locked")
    if probe.returncode == 0:
        pytest.skip("this user reads a chmod 000 folder anyway")
    try:
        done = sd_unprivileged(env, "cp", *(["--json"] if json_output else []), tree, tmp_path / "dst")
    finally:
        os.chmod(tree / "locked", 0o755)
        os.chmod(tree / "secret.txt", 0o644)
    assert done.returncode == 1, done.stderr  # not everything was copied
    copied = tree_state(tmp_path / "dst")
    assert sorted(copied) == ["a-open/note.txt", "top.txt", "z-open/note.txt"]  # all that could be read
    assert tree_state(tree)["locked/note.txt"] and (tree / "secret.txt").read_text() == "no"  # nothing lost
    if json_output:
        out = json.loads(done.stdout)
        assert out["state"] == "completed" and sorted(out["result"]["unreadable"]) == [
            str(tree / "locked"), str(tree / "secret.txt")
        ]  # fmt: skip
        return
    assert f"{tree / 'locked'}: permission denied" in done.stderr, done.stderr
    assert f"{tree / 'secret.txt'}: permission denied" in done.stderr, done.stderr
    assert "copied 3 files" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 3, done.stderr


@pytest.mark.parametrize("name", [b"my report.txt", b"caf\xe9 men\xfc.txt", b"it's $HOME.txt", b"tab\there.txt"])
def test_the_restore_command_sd_rm_prints_works_pasted_into_a_shell(
    tmp_path: Path, env: dict[str, str], name: bytes
) -> None:
    path = os.path.join(os.fsencode(tmp_path), name)
    with open(path, "wb") as f:
        f.write(b"keep me")
    removed = sd(env, "rm", "--yes", os.fsdecode(path))
    assert removed.returncode == 0, removed.stderr
    assert not os.path.exists(path)
    said = removed.stdout.strip().splitlines()[-1]
    command = said[said.index("`") + 1 : said.rindex("`")]  # what a person copies from the line
    assert command.startswith("sd trash restore ")
    restored = subprocess.run(
        ["bash", "-c", command.replace("sd ", os.path.join(os.path.dirname(sys.executable), "sd") + " ", 1)],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    assert open(path, "rb").read() == b"keep me"



def test_sd_undo_refuses_a_file_changed_since_and_says_how_to_drop_the_step(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "draft.txt").write_text("draft")
    assert sd(env, "rename", tmp_path / "draft.txt", "final.txt").returncode == 0
    (tmp_path / "final.txt").write_text("edited after the rename")
    refused = sd(env, "undo")
    assert refused.returncode == 1
    assert refused.stderr.startswith("undoing: rename draft.txt to final.txt\n")
    assert "final.txt was changed since; nothing done (`sd undo --forget` drops this step)" in refused.stderr
    assert sd(env, "undo", "--forget").stdout == "dropped from the undo history: rename draft.txt to final.txt\n"
    assert (tmp_path / "final.txt").read_text() == "edited after the rename"
