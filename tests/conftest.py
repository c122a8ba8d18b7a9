"""Shared fixtures: each test its own home, a Core over a fresh data dir in tmp_path, and its default library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.core import Core
from sdcore.library import Library


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
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    """A Core with its own data dir (a device of its own), closed after the test."""
    async with Core(tmp_path / "data") as c:
        yield c


@pytest.fixture
def library(core: Core) -> Library:
    """The core's default library (made on first use)."""
    return core.library()
