"""Who serves a data dir's core: one process at a time, even when two claim it at once; stopping ends quietly."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.api.client import attach
from sdcore.api.server import serve
from sdcore.control import SOCKET_NAME, ControlServer
from sdcore.core import Core
from sdcore.errors import CoreRunning


async def test_stopping_a_core_with_an_explorer_attached_logs_no_traceback(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with Core(tmp_path / "data") as core:
            control = ControlServer(core.data_dir)
            serve(control, Api(core))
            await control.start()
            client = await attach(core.data_dir)
            assert client is not None
            assert (await client.library().info()).name  # the session is up
            await control.close()  # `sd serve` stopped with Ctrl-C
            await asyncio.sleep(0.1)  # the sessions' done callbacks run
            await client.close()
    finally:
        loop.set_exception_handler(None)
    assert not reported, [c.get("message") for c in reported]



async def test_two_front_ends_that_claim_a_lost_core_at_once_do_not_both_serve_it(tmp_path: Path) -> None:
    # the serving process died: two explorers attached to it both take the core over; the first has claimed it
    # and is still opening its socket when the second looks (no socket yet: it must not serve the core too)
    data = tmp_path / "data"
    data.mkdir()
    first = os.open(data, os.O_RDONLY | os.O_DIRECTORY)  # the claim is a lock on the data dir
    fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
    second = ControlServer(data)
    with pytest.raises(CoreRunning):
        await second.start()
    assert not (data / SOCKET_NAME).exists()
    os.close(first)  # the first stopped: the core is free to take
    await second.start()
    await second.close()
