"""A core that stops while front ends are attached ends their sessions quietly: no traceback in the log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sdcore.api import Api
from sdcore.api.client import attach
from sdcore.api.server import serve
from sdcore.control import ControlServer
from sdcore.core import Core


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
