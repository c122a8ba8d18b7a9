"""One change, one event: a change in a watched location shown in a pane is announced once, by who made it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.events import EntriesChanged
from sdcore.index.indexer import index_location
from sdcore.library import Library

LATE = 1.5
"""Seconds in which a late announcement would arrive (the watchers' debounce is 300 ms at most)."""


@pytest.fixture
async def shown(core: Core, library: Library, tmp_path: Path) -> AsyncIterator[Path]:
    """A location, indexed and watched, whose root a pane shows (its directory watch)."""
    root = tmp_path / "watched"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("bb")
    loc = library.locations.add(str(root), mode="content")
    assert (await library.jobs.wait(await index_location(library, loc))).state == "completed"
    await core.go_live(library)
    await asyncio.wait_for(core.watcher(library).ready.wait(), 5)
    watch = core.watch(core.local_path(str(root)))
    assert watch is not None and await asyncio.to_thread(watch.ready.wait, 5) and watch.error is None
    yield root
    watch.close()


async def told(core: Core, action: Awaitable[object]) -> list[tuple[str, tuple[str, ...]]]:
    """Every EntriesChanged published from the start of `action` until nothing more can come."""
    with core.bus.subscribe(EntriesChanged) as events:
        await action
        await asyncio.sleep(LATE)
        return [(e.directory, e.names) for e in iter(events.get_nowait, None) if isinstance(e, EntriesChanged)]


async def done(library: Library, started: Awaitable[str]) -> None:
    record = await library.jobs.wait(await started)
    assert record.state == "completed", record.error


async def test_a_rename_in_a_watched_shown_location_is_announced_once_with_both_names(
    core: Core, library: Library, shown: Path
) -> None:
    here = core.local_path(str(shown))
    assert await told(core, done(library, ops.rename(library, here.child("a.txt"), "c.txt"))) == [
        (str(shown), ("a.txt", "c.txt"))
    ]
    assert sorted(os.listdir(shown)) == ["b.txt", "c.txt", "sub"]


async def test_mkdir_trash_copy_and_move_into_a_shown_directory_are_each_announced_once(
    core: Core, library: Library, shown: Path, tmp_path: Path
) -> None:
    here = core.local_path(str(shown))
    assert await told(core, done(library, ops.mkdir(library, here.child("new")))) == [(str(shown), ("new",))]
    assert await told(core, done(library, ops.delete(library, [here.child("b.txt")]))) == [(str(shown), ("b.txt",))]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "in.txt").write_text("in")
    source = core.local_path(str(outside / "in.txt"))
    assert await told(core, done(library, ops.copy(library, [source], here))) == [(str(shown), ("in.txt",))]
    moved = await told(core, done(library, ops.move(library, [here.child("a.txt")], here.child("sub"))))
    assert sorted(moved) == [(str(shown), ("a.txt",)), (str(shown / "sub"), ("a.txt",))]


async def test_a_change_by_another_program_is_announced_once_and_a_later_one_again(
    core: Core, library: Library, shown: Path
) -> None:
    async def write(text: str) -> None:
        (shown / "a.txt").write_text(text)

    assert await told(core, write("changed")) == [(str(shown), ("a.txt",))]  # the location watcher or the pane's watch
    assert await told(core, write("changed again, longer")) == [(str(shown), ("a.txt",))]
