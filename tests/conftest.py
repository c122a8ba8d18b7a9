"""Shared fixtures: a Core over a fresh data dir in tmp_path, and its default library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.core import Core
from sdcore.library import Library


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    """A Core with its own data dir (a device of its own), closed after the test."""
    async with Core(tmp_path / "data") as c:
        yield c


@pytest.fixture
def library(core: Core) -> Library:
    """The core's default library (made on first use)."""
    return core.library()
