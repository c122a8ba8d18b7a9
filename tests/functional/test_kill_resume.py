"""kill -9 at any moment of `sd cp`, `sd mv` and `sd rm`: nothing half-written under a final name, and the
rerun reports what really happened."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdcore.ops.localcopy import hash_file
from sdcore.ops.names import is_temp

SD = str(Path(sys.executable).parent / "sd")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def sd(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SD, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def tree_state(root: Path) -> dict[str, str]:
    return {
        os.path.relpath(os.path.join(d, n), root): hash_file(os.path.join(d, n))
        for d, _, files in os.walk(root)
        for n in files
    }


def bytes_in(root: Path) -> int:
    """What has arrived under `root`, temporary files included."""
    total = 0
    for d, _, files in os.walk(root):
        for n in files:
            try:
                total += os.lstat(os.path.join(d, n)).st_size
            except FileNotFoundError:
                pass  # renamed into place meanwhile
    return total


def killed_after_growing(proc: subprocess.Popen[bytes], dst: Path, grow: float) -> bool:
    """SIGKILL `proc` once `grow` more bytes arrived under `dst`; False if it ended first."""
    start = bytes_in(dst)
    while proc.poll() is None:
        if bytes_in(dst) - start >= grow and bytes_in(dst) > start:
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.005)
    return False


def jobs(env: dict[str, str]) -> list[dict]:
    return json.loads(sd(env, "job", "list", "--all", "--json").stdout)  # type: ignore[no-any-return]


@pytest.mark.timeout(300)  # twenty `sd` start-ups: well over the usual two minutes on a loaded machine
def test_ten_kills_at_random_moments_of_a_copy_never_leave_a_wrong_file_and_it_ends_identical(
    tmp_path: Path, env: dict[str, str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(495):
        (src / f"f{i:03}.bin").write_bytes(os.urandom(16_384))
    for i in range(5):
        (src / f"big{i}.bin").write_bytes(os.urandom(20 << 20))
    expected = tree_state(src)
    moments = random.Random(13)
    kills = 0
    while kills < 10:
        proc = subprocess.Popen([SD, "cp", src, dst], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # A moment in the copy, not in seconds: whatever the machine's speed, each kill lands mid-copy,
        # after 0 to 12 MB more arrived (from the first byte written up to the middle of a big file).
        if killed_after_growing(proc, dst, moments.uniform(0, 12 << 20)):
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        finals = {rel: digest for rel, digest in tree_state(dst).items() if not is_temp(os.path.basename(rel))} if dst.exists() else {}
        wrong = [rel for rel, digest in finals.items() if expected.get(rel) != digest]
        assert not wrong, f"after kill {kills}: {wrong[:5]} exist under their final name with other content"
        if [j["state"] for j in jobs(env)] == ["completed"]:  # done, maybe just before a kill landed
            break
    else:
        last = sd(env, "cp", src, dst)  # the same command carries the interrupted job on
        assert last.returncode == 0, last.stderr
    assert kills >= 5, "the copy finished too soon to be killed often; make it bigger"
    assert tree_state(dst) == expected  # every file once, intact, no temporary file, nothing else
    assert [j["state"] for j in jobs(env)] == ["completed"]


def test_a_move_across_filesystems_killed_then_carried_on_counts_every_file_moved(
    tmp_path: Path, env: dict[str, str]
) -> None:
    mount = tmp_path / "usb"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.decode().strip()}")
    try:
        src, dst = mount / "src", tmp_path / "dst"
        src.mkdir()
        for i in range(4000):
            (src / f"s{i:04}.bin").write_bytes(os.urandom(4096))
        expected = tree_state(src)
        proc = subprocess.Popen([SD, "mv", src, dst], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (dst.exists() and len(os.listdir(dst)) > 1500):  # batches moved since the last checkpoint
            assert proc.poll() is None and time.monotonic() < deadline, "the move ended before it could be killed"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        again = sd(env, "mv", "--json", src, dst)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["result"]["files"] == 4000  # not only those moved after the kill
        assert tree_state(dst) == expected
        assert not src.exists()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def killed_after_trashing_the_first(env: dict[str, str], *paths: Path) -> None:
    """`sd rm PATHS` killed right after it trashed the first path, before its checkpoint recorded that."""
    script = (
        "import os, sys; from sdcore.jobs.job import JobContext\n"
        "async def killed(self): os._exit(9)\n"
        "JobContext.checkpoint = killed\n"
        "from sdtui.cli import main; sys.argv = ['sd', *sys.argv[1:]]; main()"
    )
    done = subprocess.run([sys.executable, "-c", script, "rm", *map(str, paths)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr


def test_sd_rm_carried_on_after_a_kill_reports_what_it_trashed_itself_as_trashed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a")
    b.write_text("b")
    killed_after_trashing_the_first(env, a, b)
    assert not a.exists() and b.exists()
    again = sd(env, "rm", a, b)
    assert again.returncode == 0, again.stderr
    assert "already gone" not in again.stderr
    assert f"trashed {a}" in again.stdout and f"trashed {b}" in again.stdout
    listed = json.loads(sd(env, "trash", "list", "--json").stdout)
    assert sorted(i["original_path"] for i in listed) == [str(a), str(b)]


def test_a_trash_cut_off_by_a_kill_leaves_no_info_file_without_its_file(tmp_path: Path, env: dict[str, str]) -> None:
    victim = tmp_path / "report.txt"
    victim.write_text("keep me")
    script = (
        "import os, sys; from sdcore.fs import trash\n"
        "os.rename = lambda *a, **k: os._exit(9)  # killed between the .trashinfo and the move itself\n"
        "trash.trash(sys.argv[1])"
    )
    cut = subprocess.run([sys.executable, "-c", script, str(victim)], env=env, capture_output=True, timeout=60)
    assert cut.returncode == 9, cut.stderr
    info = Path(env["XDG_DATA_HOME"]) / "Trash" / "info"
    assert os.listdir(info) == ["report.txt.trashinfo"]  # what the kill left
    assert sd(env, "rm", victim).returncode == 0
    assert os.listdir(info) == ["report.txt.trashinfo"]  # taken over, not a second one beside it
    files = Path(env["XDG_DATA_HOME"]) / "Trash" / "files"
    assert (files / "report.txt").read_text() == "keep me"
    (tmp_path / "report.txt").write_text("a second one")
    assert sd(env, "rm", tmp_path / "report.txt").returncode == 0
    assert sorted(os.listdir(files)) == ["report (1).txt", "report.txt"]  # as a second Spacedrop is named
