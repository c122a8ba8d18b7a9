"""A headless core's own needs: `sd health` for probes, and a pairing code at first start (SD_PAIR_ON_START=1)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import typer

from sdtui.cli.common import chosen

PAIR_ON_START = "SD_PAIR_ON_START"


def register(app: typer.Typer) -> None:
    """Add `health` to the main `sd` app."""
    app.command("health")(health)


def health(
    timeout: float = typer.Option(2.0, "--timeout", min=0.1, help="Seconds to wait for both answers."),
) -> None:
    """Exit 0 when the core for the data dir answers and so does its SSH server (for container health checks)."""
    from sdcore.api.health import Unhealthy, check

    try:
        answered = asyncio.run(check(chosen().data_dir, timeout))
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    h = answered.health
    print(
        f"healthy: {h.device.name} (pid {h.pid}), its SSH server at {h.ssh} greets with {answered.greeting}"
    )


def pair_on_start(net: Any, say: Any) -> None:
    """With SD_PAIR_ON_START=1 and no device paired yet, say a pairing code (`kubectl logs` shows it)."""
    if os.environ.get(PAIR_ON_START) != "1" or net.trust.peers():
        return
    code = net.pair_generate("full")
    logging.getLogger("sdcore.net.admin").info(
        "a pairing code was shown at start (%s=1), valid 10 minutes", PAIR_ON_START
    )
    say(f"pairing code (no device is paired yet): {code}")
    say(f"on your device run:  sd network pair join {code} --host HOST:{net.port}")
    say(
        "  (HOST: this server as your device reaches it) the code works once, for 10 minutes; for a new one run "
        "`sd network pair generate` beside this server (kubectl exec POD -- sd network pair generate)"
    )
