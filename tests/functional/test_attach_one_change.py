"""One change reaches a pane once, whether the explorer runs the core or is attached to one: over the socket
the change comes both in the pane's watch and in the events stream, and only the watch applies it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.api.client import RemoteApi
from sdcore.api.server import serve
from sdcore.control import ControlServer
from sdcore.core import Core
from sdtui.widgets.pane import Pane
from tests.functional.tui_support import (  # noqa: F401  # own_home: an autouse fixture
    app_for,
    explorer,
    make_tree,
    names,
    own_home,
    settle,
    wait_for,
)

LATE = 1.5
"""Seconds in which a second application of the change would come (the watchers' debounce is 300 ms at most)."""


@contextlib.asynccontextmanager
async def core_served_elsewhere(data_dir: Path, attached: bool) -> AsyncIterator[None]:
    """With `attached`, a core on the data dir serving its API (as `sd serve` would) for the explorer to attach to."""
    if not attached:
        yield
        return
    async with Core(data_dir) as core:
        control = ControlServer(core.data_dir)
        serve(control, Api(core))
        await control.start()
        try:
            yield
        finally:
            await control.close()


@pytest.mark.parametrize("attached", [False, True], ids=["in-process", "attached"])
async def test_a_change_by_another_program_reaches_the_pane_showing_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attached: bool
) -> None:
    tree = make_tree(tmp_path)
    applied: list[tuple[str, object]] = []
    real_apply, real_refresh = Pane.apply_changes, Pane.refresh_listing

    async def apply_changes(self: Pane, changed: dict[str, object], folder: str = "") -> None:
        applied.append((str(self.id), tuple(sorted(changed))))
        await real_apply(self, changed, folder)  # type: ignore[arg-type]

    def refresh_listing(self: Pane) -> None:
        applied.append((str(self.id), "listed again"))
        real_refresh(self)

    monkeypatch.setattr(Pane, "apply_changes", apply_changes)
    monkeypatch.setattr(Pane, "refresh_listing", refresh_listing)
    async with core_served_elsewhere(tmp_path / "data", attached):
        app = app_for(tmp_path, tree, other=str(tree / "music"))
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            assert isinstance(app.api, RemoteApi) is attached
            screen = explorer(app)
            assert screen.active.watching is not None
            await asyncio.sleep(0.5)  # the pane's watch is set up
            applied.clear()
            (tree / "new.txt").write_text("new")
            await wait_for(pilot, lambda: "new.txt" in names(screen.active))
            await asyncio.sleep(LATE)
            await pilot.pause()
            assert applied == [("left", ("new.txt",))]
