"""Whether the core of a data dir is healthy: it answers on its control socket and its SSH server greets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sdcore.api import wire
from sdcore.api.records import DeviceInfo, Health
from sdcore.errors import SdError
from sdcore.sdpath import display

GREETING_LINES = 16
"""Lines an SSH server may send before its version line (RFC 4253 4.2 allows some); more is not SSH."""
GREETING_BYTES = 255
"""The longest version line RFC 4253 allows; what a server sends is cut to this before it is shown."""


class Unhealthy(SdError):
    """The core, or its SSH server, did not answer as it should; the message says which, in one line."""


@dataclass(frozen=True)
class Answered:
    """A healthy core: what it told of itself, and the version line its SSH server greeted with."""

    health: Health
    greeting: str


async def check(data_dir: str | Path | None = None, timeout: float = 2.0) -> Answered:
    """Ask the core running for `data_dir` (None: the default one) how it is, then read its SSH server's
    greeting, within `timeout` seconds in all; raises Unhealthy with the reason."""
    from sdcore.api.client import attach
    from sdcore.core import default_data_dir

    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    for record in (DeviceInfo, Health):  # all it decodes: an unknown one imports every record, and asyncssh
        wire.register(record)
    where = display(str(data_dir))
    waiting_for = f"the core for {where}"
    try:
        async with asyncio.timeout(timeout):
            try:
                api = await attach(data_dir)
                if api is None:
                    raise Unhealthy(f"no core runs for {where}: start one with `sd serve`")
                try:
                    health: Health = await api.health()
                finally:
                    await api.close()
            except Unhealthy:
                raise
            except SdError as exc:  # another user's socket, or a core too old to tell its health
                raise Unhealthy(f"the core for {where} did not tell its health: {exc}") from None
            if health.ssh is None:
                raise Unhealthy(
                    f"the core for {where} (pid {health.pid}) runs without its SSH server: "
                    "it was started by sdtui or an `sd` command, not by `sd serve`"
                )
            waiting_for = f"the SSH server at {health.ssh}"
            return Answered(health, await _greeting(health.ssh))
    except TimeoutError:
        raise Unhealthy(f"{waiting_for} did not answer within {timeout:g} s") from None


async def _greeting(address: str) -> str:
    """The version line the SSH server at HOST:PORT greets with (`SSH-2.0-...`)."""
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except OSError as exc:
        raise Unhealthy(f"the SSH server at {address} does not answer: {exc.strerror or exc}") from None
    said = ""
    try:
        for _ in range(GREETING_LINES):
            line = await reader.readline()
            if not line:
                raise Unhealthy(f"the SSH server at {address} hung up without greeting" + said)
            text = display(line[:GREETING_BYTES].rstrip(b"\r\n").decode("ascii", "backslashreplace"))
            if line.startswith(b"SSH-2.0-"):
                return text
            if line.startswith(b"SSH-"):
                raise Unhealthy(f"the server at {address} speaks another SSH version: {text}")
            said = said or f" (it said {text[:80]}{'...' if len(text) > 80 else ''})"
        raise Unhealthy(f"what answers at {address} is not an SSH server{said}")
    except (OSError, ValueError) as exc:  # ValueError: a line longer than the stream's limit
        raise Unhealthy(f"the SSH server at {address} broke off its greeting: {exc}") from None
    finally:
        writer.close()
