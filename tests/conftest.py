"""Shared fixtures: each test its own home, a Core over a fresh data dir in tmp_path, its default library, and its
API served on the control socket with a client attached."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api.client import RemoteApi
from sdcore.control import ControlServer
from sdcore.core import Core
from sdcore.library import Library
from sdcore.ops import localcopy
from tests.functional import loop_disks
from tests.functional.attach_support import attached


def pytest_configure(config: pytest.Config) -> None:
    """Every `sd` a test starts imports sdcore and sdtui from cached bytecode: where the environment sets
    PYTHONDONTWRITEBYTECODE (some CI images do), each of the suite's hundreds of `sd` start-ups compiled them
    again (a fifth of the CPU of each)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collecting imported (textual, the core, every test module) lives as long as the run: frozen, the
    collector's full passes while the tests run skip it (each explorer a test starts makes several). Measured on
    test_tui_explorer.py (58 tests, -n 0, load ~16, one run each): 82.4 s CPU without, 75.4 s with."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that mount disk images run one after another, on one worker: mounts are the machine's, and a test
    that starts `sd serve` in a mount namespace of its own (`unshare --mount`) copies every disk mounted then, which
    keeps another test's unmounted disk alive there (once, that disk's next mount showed none of the files written
    to its image meanwhile)."""
    for item in items:
        if getattr(getattr(item, "module", None), "make_disk", None) is loop_disks.make_disk:
            item.add_marker(pytest.mark.xdist_group("loop_disks"))


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test (and each `sd` it starts) gets a home of its own, beside its tmp_path rather than in it: the
    default data dir, the trash and the config are never shared by tests running side by side (pytest -n),
    nor with the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("SD_DATA_DIR", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A folder of three small files, a.txt, b.txt and c.txt, each saying its name ("I am a.txt")."""
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(f"I am {name}")
    return folder


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    """A Core with its own data dir (a device of its own), closed after the test."""
    async with Core(tmp_path / "data") as c:
        yield c


@pytest.fixture
def library(core: Core) -> Library:
    """The core's default library (made on first use)."""
    return core.library()


@pytest.fixture
async def served_api(core: Core) -> AsyncIterator[tuple[ControlServer, RemoteApi]]:
    """The core's API served on its control socket, and a client attached to it."""
    async with attached(core) as both:
        yield both


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Copies wait at the start of each file until the test sets the event it yields (or the job stops)."""
    opened = threading.Event()
    real_copy = localcopy.copy_file

    def copy_on_a_slow_disk(src: str, dst: str, tmp: str, **kw):  # type: ignore[no-untyped-def]
        while not opened.is_set():
            if kw["should_stop"]():
                raise localcopy.Stopped
            time.sleep(0.01)
        return real_copy(src, dst, tmp, **kw)

    monkeypatch.setattr(localcopy, "copy_file", copy_on_a_slow_disk)
    yield opened
    opened.set()
