"""Spacedrop to a real `sd serve`: the sender hears why nothing was taken, and what lands keeps its mode
and a free name; a drop's own connection ending is no lost device."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from sdcore.net.testing import device_network, pair
from tests.functional.ssh_support import free_port

SD = str(Path(sys.executable).parent / "sd")


async def _pair_on_port(tmp_path: Path, port: int) -> None:
    """beta hosts the pairing on the port its `sd serve` will use; alpha joins, so alpha knows where beta is."""
    async with (
        device_network(tmp_path / "a", "alpha", listen=False) as alpha,
        device_network(tmp_path / "b", "beta", listen=False) as beta,
    ):
        await beta.start(f"127.0.0.1:{port}")
        await pair(beta, alpha)


def serve(tmp_path: Path, port: int, *options: str) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [SD, "--data-dir", str(tmp_path / "b"), "serve", "--listen", f"127.0.0.1:{port}", *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    seen = []
    while not (seen and seen[-1].startswith("serving ")):
        seen.append(server.stdout.readline())
        assert seen[-1], f"`sd serve` did not start: {''.join(seen)}"
    return server


def stop(server: subprocess.Popen[str]) -> str:
    server.terminate()
    out, _ = server.communicate(timeout=20)
    return out


def drop(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SD, "--data-dir", str(tmp_path / "a"), "drop", *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_a_headless_server_says_it_has_nobody_to_ask_rather_than_declined(tmp_path: Path) -> None:
    port = free_port()
    asyncio.run(_pair_on_port(tmp_path, port))
    report = tmp_path / "report.txt"
    report.write_text("q3")
    server = serve(tmp_path, port)
    try:
        sent = drop(tmp_path, report, "beta")
    finally:
        stop(server)
    assert sent.returncode == 1
    assert "nobody at beta can accept files" in sent.stderr and "--auto-accept" in sent.stderr, sent.stderr
    assert "declined" not in sent.stderr
    assert not (tmp_path / "b" / "spacedrop").exists()


def test_dropped_files_keep_their_mode_take_a_free_name_and_their_connection_ending_is_no_lost_device(
    tmp_path: Path,
) -> None:
    port = free_port()
    asyncio.run(_pair_on_port(tmp_path, port))
    report, tool = tmp_path / "report.txt", tmp_path / "tool.sh"
    report.write_text("q3")
    tool.write_text("#!/bin/sh\n")
    report.chmod(0o640)
    tool.chmod(0o4755)  # setuid does not travel
    server = serve(tmp_path, port, "--auto-accept")
    try:
        for _ in range(2):
            sent = drop(tmp_path, report, tool, "beta")
            assert sent.returncode == 0, sent.stderr
        time.sleep(0.5)  # time for the server to tell of the connections that ended
    finally:
        said = stop(server)
    landed = tmp_path / "b" / "spacedrop"
    assert sorted(os.listdir(landed)) == ["report (1).txt", "report.txt", "tool (1).sh", "tool.sh"]
    assert {n: (landed / n).stat().st_mode & 0o7777 for n in os.listdir(landed)} == {
        "report.txt": 0o640, "report (1).txt": 0o640, "tool.sh": 0o755, "tool (1).sh": 0o755,
    }  # fmt: skip
    assert "drop from alpha" in said
    assert "disconnected" not in said, said


def test_an_explorer_attached_to_sd_serve_is_asked_and_its_yes_takes_the_files(tmp_path: Path) -> None:
    from sdcore.api.client import attach
    from sdcore.events import DropOffered

    port = free_port()
    asyncio.run(_pair_on_port(tmp_path, port))
    report = tmp_path / "report.txt"
    report.write_text("q4")
    server = serve(tmp_path, port)

    async def attached_person_says_yes() -> list[str]:
        api = await attach(tmp_path / "b")
        assert api is not None
        try:
            events = api.events()
            sender = asyncio.create_task(asyncio.to_thread(drop, tmp_path, report, "beta"))
            async for event in events:
                if isinstance(event, DropOffered):
                    await api.devices.answer(event.drop_id, True)
                    break
            sent = await asyncio.wait_for(sender, 60)
            assert sent.returncode == 0, sent.stderr
            return list(event.names)
        finally:
            await api.close()

    try:
        offered = asyncio.run(asyncio.wait_for(attached_person_says_yes(), 90))
        out = stop(server)
    finally:
        if server.poll() is None:
            server.kill()
    assert offered == ["report.txt"]
    assert (tmp_path / "b" / "spacedrop" / "report.txt").read_text() == "q4"
    assert "asked in the attached explorer" in out
