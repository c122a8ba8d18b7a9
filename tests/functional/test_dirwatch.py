"""Core.watch: a shown directory outside every location publishes its changes as events."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sdcore.core import Core
from sdcore.events import EntriesChanged, Subscription


async def next_change(events: Subscription, timeout: float = 3.0) -> EntriesChanged:
    event = await asyncio.wait_for(events.__anext__(), timeout)
    assert isinstance(event, EntriesChanged)
    return event


async def nothing_within(events: Subscription, seconds: float) -> bool:
    try:
        await asyncio.wait_for(events.__anext__(), seconds)
    except TimeoutError:
        return True
    return False


async def test_a_watched_directory_names_what_changed_in_it_and_nothing_below(
    core: Core, tmp_path: Path
) -> None:
    shown = tmp_path / "usb"
    (shown / "sub").mkdir(parents=True)
    with core.bus.subscribe(EntriesChanged) as events:
        watch = core.watch(core.local_path(str(shown)))
        assert watch is not None
        assert await asyncio.to_thread(watch.ready.wait, 5) and watch.error is None
        (shown / "a.txt").write_text("x")
        event = await next_change(events)
        assert (event.device_id, event.directory, event.names) == (
            core.device.id,
            str(shown),
            ("a.txt",),
        )
        (shown / "a.txt").rename(shown / "b.txt")
        assert (await next_change(events)).names == ("a.txt", "b.txt")
        (shown / "sub" / "deep.txt").write_text("x")  # not recursive: a subdirectory is its own pane
        assert await nothing_within(events, 0.6)
        watch.close()
        await asyncio.sleep(0.2)
        (shown / "c.txt").write_text("x")
        assert await nothing_within(events, 0.6)


async def test_a_watched_directory_that_goes_away_asks_for_a_new_listing(core: Core, tmp_path: Path) -> None:
    shown = tmp_path / "shown"
    shown.mkdir()
    with core.bus.subscribe(EntriesChanged) as events:
        watch = core.watch(core.local_path(str(shown)))
        assert watch is not None and await asyncio.to_thread(watch.ready.wait, 5)
        shown.rename(tmp_path / "elsewhere")
        event = await next_change(events)
        assert event.directory == str(shown) and event.names == ()  # no names: list it again


async def test_a_directory_that_cannot_be_watched_says_why_and_the_core_still_closes(
    tmp_path: Path,
) -> None:
    async with Core(tmp_path / "data") as core:
        watch = core.watch(core.local_path(str(tmp_path / "gone")))
        assert watch is not None and await asyncio.to_thread(watch.ready.wait, 5)
        assert watch.error is not None and "cannot be watched" in watch.error
        alive = core.watch(core.local_path(str(tmp_path)))
        assert alive is not None
    assert alive.closed


async def test_a_directory_with_a_name_that_is_not_utf8_is_watched_and_reading_its_files_is_no_change(
    core: Core, tmp_path: Path
) -> None:
    shown = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(shown)
    odd = shown + b"/r\xe9sum\xe9.txt"
    with open(odd, "wb") as f:
        f.write(b"cv")
    with core.bus.subscribe(EntriesChanged) as events:
        watch = core.watch(core.local_path(os.fsdecode(shown)))
        assert watch is not None and await asyncio.to_thread(watch.ready.wait, 5) and watch.error is None
        for _ in range(3):  # the explorer previews it
            with open(odd, "rb") as f:
                f.read()
        assert await nothing_within(events, 0.6)  # a read is no change
        with open(shown + b"/new\xff.txt", "wb") as f:
            f.write(b"new")
        event = await next_change(events)  # and the watch goes on
        assert event.directory == os.fsdecode(shown) and event.names == (os.fsdecode(b"new\xff.txt"),)
