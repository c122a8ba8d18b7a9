"""`sd --device NAME ...` runs any `sd` command on a paired device's core, over the SSH link to it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.ssh_support import SD, ServedCore, Terminal


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServedCore]:
    """The device "server" runs `sd serve`; this one, "laptop" (tmp_path/laptop), is paired with it."""
    core = ServedCore(tmp_path, trust=getattr(request, "param", "full"))
    (core.home / "photos").mkdir()
    (core.home / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    try:
        yield core
    finally:
        core.stop()


def sd_here(served: ServedCore, *args: str) -> subprocess.CompletedProcess[str]:
    """`sd` on the laptop (its own data dir and home)."""
    env = {**os.environ, "HOME": str(served.tmp / "laptop-home")}
    return subprocess.run(
        [*SD, "--data-dir", str(served.tmp / "laptop"), *args],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_sd_device_adds_a_location_on_the_other_device_and_lists_it(served: ServedCore) -> None:
    photos = str(served.home / "photos")
    added = sd_here(served, "--device", "server", "location", "add", photos, "--mode", "content")
    assert added.returncode == 0, added.stderr
    listed = sd_here(served, "--device=server", "location", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (location,) = json.loads(listed.stdout)
    assert location["path"] == photos and location["mode"] == "content" and location["files"] == 1
    assert sd_here(served, "location", "list", "--json").stdout.strip() == "[]"  # this device's own is untouched
    assert "device laptop from 127.0.0.1" in served.log() and "ended sd location list --json: exit 0" in served.log()


def test_sd_device_passes_the_exit_status_and_errors_through(served: ServedCore) -> None:
    wrong = sd_here(served, "--device", "server", "location", "nosuch")
    assert wrong.returncode == 2 and "No such command 'nosuch'" in wrong.stderr


def test_sd_device_on_a_terminal_gets_a_terminal_there(served: ServedCore) -> None:
    env = {**os.environ, "HOME": str(served.tmp / "laptop-home")}
    term = Terminal([*SD, "--data-dir", str(served.tmp / "laptop"), "--device", "server", "job", "list"], 100, 30, env=env)
    try:
        assert term.wait_exit(60) == 0
        assert "no jobs" in term.text.lower() or "state" in term.text, term.text
    finally:
        term.close()
    assert "started sd job list on a pty (xterm-256color 100x30)" in served.log()


def test_sd_device_names_an_unknown_device_in_one_line(served: ServedCore) -> None:
    unknown = sd_here(served, "--device", "nas", "job", "list")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "nas" in unknown.stderr, unknown.stderr


@pytest.mark.parametrize("served", ["shared"], indirect=True)
def test_sd_device_is_refused_by_a_device_that_only_shares_with_this_one(served: ServedCore) -> None:
    refused = sd_here(served, "--device", "server", "job", "list")
    assert refused.returncode == 1 and "for admins only" in refused.stderr, refused.stderr
