"""A person's data dir (index, tags, keys, received files) is theirs alone: owner-only whatever the umask."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.net.testing import device_network, pair

SD = Path(sys.executable).parent / "sd"


def sd(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sd` as a user with the common umask 022 runs it."""
    proc = subprocess.run(
        [str(SD), "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o022,
        env={**os.environ, "XDG_DATA_HOME": str(data.parent / "xdg")},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`sd serve` on a fresh data dir `tmp_path/data`, started with umask 022; killed after the test."""
    proc = subprocess.Popen(
        [str(SD), "--data-dir", str(tmp_path / "data"), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        umask=0o022,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")},
    )
    assert proc.stdout is not None
    seen = [proc.stdout.readline()]
    while seen[-1] and not seen[-1].startswith("serving "):
        seen.append(proc.stdout.readline())
    assert seen[-1].startswith("serving "), "".join(seen)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def everything(root: Path) -> dict[str, int]:
    """Each path in `root` (and `root` itself, as "."), with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def readable_by_others(root: Path) -> dict[str, str]:
    return {p: oct(m) for p, m in everything(root).items() if m & 0o077}


def a_picture(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir()
    Image.new("RGB", (320, 200), "teal").save(folder / "beach.jpg")
    return folder


def test_a_fresh_data_dir_is_owner_only_from_the_start(tmp_path: Path, serve: subprocess.Popen[str]) -> None:
    pictures = a_picture(tmp_path / "pictures")
    sd(tmp_path / "data", "location", "add", str(pictures), "--mode", "deep")  # carried out by `sd serve`
    sd(tmp_path / "data", "library", "create", "Work")
    data = tmp_path / "data"
    names = set(everything(data))
    library = "libraries/My Library.sdlibrary"
    assert {
        f"{library}/database.db-wal",
        f"{library}/database.db-shm",
        "device.json",
        "control.sock",
    } <= names
    assert any(n.startswith(f"{library}/thumbnails/") and n.endswith(".webp") for n in names)
    assert readable_by_others(data) == {}
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_a_data_dir_an_older_version_left_readable_is_repaired_with_one_warning(
    tmp_path: Path, serve: subprocess.Popen[str]
) -> None:
    data = tmp_path / "data"
    pictures = a_picture(tmp_path / "pictures")
    sd(data, "location", "add", str(pictures), "--mode", "deep")
    serve.send_signal(signal.SIGKILL)  # a core that died keeps its -wal and -shm
    serve.wait(10)
    for path, _ in everything(data).items():  # as the code before this fix made it, with umask 022
        p = data / path
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    assert "libraries/My Library.sdlibrary/database.db-wal" in readable_by_others(data)

    proc = sd(data, "ls", str(pictures))
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "made owner-only: the data dir" in warnings[0] and "device.json (0644)" in warnings[0]
    assert "beach.jpg" in proc.stdout  # and the command did its work
    assert readable_by_others(data) == {}
    assert stat.S_IMODE((data / "device.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "libraries").stat().st_mode) == 0o700

    again = sd(data, "ls", str(pictures))
    assert "warning" not in again.stderr  # repaired once, quiet after


async def test_files_received_by_spacedrop_sit_in_an_owner_only_folder_with_the_senders_mode(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(os.urandom(1000))
    os.chmod(photo, 0o644)
    old = os.umask(0o022)
    try:
        async with (
            device_network(tmp_path / "a", "alpha", auto_accept_drops=True) as a,
            device_network(tmp_path / "b", "beta") as b,
        ):
            await pair(a, b)
            assert await b.drop("alpha", [str(photo)]) == ["photo.jpg"]
    finally:
        os.umask(old)
    inbox = tmp_path / "a" / "spacedrop"
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o700
    received = inbox / "photo.jpg"
    assert stat.S_IMODE(received.stat().st_mode) == 0o644  # the sender's mode: others are kept out by the folder
    assert readable_by_others(tmp_path / "a") == {"spacedrop/photo.jpg": "0o644"}

    os.chmod(tmp_path / "a", 0o755)  # so the check walks the whole data dir
    again = sd(tmp_path / "a", "ls", str(inbox))
    assert again.stderr.count("warning:") == 1 and "spacedrop" not in again.stderr, again.stderr
    assert stat.S_IMODE(received.stat().st_mode) == 0o644


def test_a_data_dir_reached_through_a_symlink_is_made_owner_only_where_it_is(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "sdtui"
    real.mkdir(parents=True)
    os.chmod(real, 0o755)
    (tmp_path / "data").symlink_to(real)
    proc = sd(tmp_path / "data", "ls", str(tmp_path / "disk"))
    assert proc.stderr.count("warning:") == 1 and "could not" not in proc.stderr, proc.stderr
    assert stat.S_IMODE(real.stat().st_mode) == 0o700
    assert readable_by_others(real) == {}
