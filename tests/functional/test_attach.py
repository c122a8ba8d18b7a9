"""A second front end on a data dir whose core another process runs: it attaches to that core's API and is whole."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.api.client import Disconnected, RemoteApi, attach
from sdcore.api.server import serve
from sdcore.control import SOCKET_NAME, ControlServer
from sdcore.core import Core
from sdcore.sdpath import SdPath
from tests.functional.test_api import STORIES

SD = str(Path(sys.executable).parent / "sd")


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[RemoteApi]:
    """The API of a core over a fresh data dir, reached over its control socket."""
    async with Core(tmp_path / "data") as core:
        control = ControlServer(core.data_dir)
        serve(control, Api(core))
        await control.start()
        api = await attach(core.data_dir)
        assert api is not None
        try:
            yield api
        finally:
            await api.close()
            await control.close()


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__ for s in STORIES])
async def test_story_attached(remote: RemoteApi, tmp_path: Path, story) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    await story(remote, home)


async def test_a_client_attached_with_another_library_runs_its_copies_in_that_library(tmp_path: Path) -> None:
    async with Core(tmp_path / "data") as core:
        await asyncio.to_thread(core.library)  # the default library, made on first use
        await asyncio.to_thread(core.libraries.create, "Work")
        control = ControlServer(core.data_dir)
        serve(control, Api(core))
        await control.start()
        api = await attach(core.data_dir, library="Work")
        assert api is not None
        try:
            (tmp_path / "a.txt").write_text("report")
            (tmp_path / "to").mkdir()
            here = api.device.id
            job_id = await api.ops.copy([SdPath(here, str(tmp_path / "a.txt"))], SdPath(here, str(tmp_path / "to")))
            assert (await api.library().jobs.wait(job_id)).state == "completed"
            assert job_id in [j.id for j in await api.library("Work").jobs.list()]
            assert job_id not in [j.id for j in await Api(core).library().jobs.list()]
        finally:
            await api.close()
            await control.close()


# -- with real processes -------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def sd(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SD, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def started(env: dict[str, str], *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([SD, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def serving(env: dict[str, str]) -> subprocess.Popen[str]:
    server = started(env, "serve", "--listen", "127.0.0.1:0")
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("serving "), line + (server.stderr.read() if server.stderr else "")
    return server


def big_file(path: Path, size: int) -> Path:
    """A file of `size` bytes made quickly (not sparse: a copy of it takes real time)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(block)
    return path


def until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_job_list_and_monitor_while_a_foreground_copy_runs(tmp_path: Path, env: dict[str, str]) -> None:
    source = big_file(tmp_path / "big.bin", 1 << 30)
    for attempt in range(3):  # a copy that ends before the monitor starts (a fast moment) is tried again
        if _list_and_monitor_a_foreground_copy(tmp_path, env, source, tmp_path / f"dst{attempt}"):
            return
    pytest.fail("the copy ended before `sd job monitor` could attach, three times")


def _list_and_monitor_a_foreground_copy(tmp_path: Path, env: dict[str, str], source: Path, dst: Path) -> bool:
    dst.mkdir()
    copy = started(env, "cp", source, dst, "--verify")
    monitor = None
    try:
        until(lambda: (tmp_path / "data" / SOCKET_NAME).exists() or copy.poll() is not None)
        listed = sd(env, "job", "list")  # no "library is locked" wait: it runs in the copy's own core
        assert listed.returncode == 0, listed.stderr
        if copy.poll() is not None:
            return False
        assert "copy" in listed.stdout and "running" in listed.stdout, listed.stdout
        monitor = started(env, "job", "monitor")
        assert monitor.stdout is not None
        seen = [monitor.stdout.readline()]
        while seen[-1] and "%" not in seen[-1] and "completed" not in seen[-1]:
            seen.append(monitor.stdout.readline())  # a first line may tell another phase (planning)
        if not seen[-1]:
            monitor.wait(10)
        said = monitor.stderr.read() if not seen[-1] and monitor.stderr else ""
        if "nothing to watch" in said and copy.wait(300) == 0:
            return False  # the copy ended between the list and the monitor
        assert " copy " in seen[-1] and "%" in seen[-1], (seen, said)  # live progress of the foreground copy
        out, err = copy.communicate(timeout=300)
        assert copy.returncode == 0, err
        rest, said = monitor.communicate(timeout=20)  # the copy's core is gone: the monitor ends, saying why
        assert rest.splitlines()[-1].endswith(" copy completed"), rest
        assert "stopped" in said and monitor.returncode == 1, said
    finally:
        copy.kill()
        copy.wait()
        if monitor is not None:
            monitor.kill()
            monitor.wait()
    assert (dst / "big.bin").stat().st_size == 1 << 30
    assert not (tmp_path / "data" / SOCKET_NAME).exists()
    return True


async def test_the_serving_process_killed_the_client_says_so_and_a_rerun_resumes_the_job(
    tmp_path: Path, env: dict[str, str]
) -> None:
    source = big_file(tmp_path / "big.bin", 512 << 20)
    (tmp_path / "dst").mkdir()
    server = serving(env)
    try:
        api = await attach(tmp_path / "data")
        assert api is not None
        lib = api.library()
        job_id = await api.ops.copy(
            [SdPath(api.device.id, str(source))], SdPath(api.device.id, str(tmp_path / "dst"))
        )
        waiting = asyncio.ensure_future(lib.jobs.wait(job_id))
        events = api.events().__aiter__()
        while True:  # the copy is under way
            event = await asyncio.wait_for(events.__anext__(), 20)
            if getattr(event, "job_id", None) == job_id and getattr(event, "done", 0) > 0:
                break
        server.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(Disconnected, match="stopped"):
            await asyncio.wait_for(waiting, 2)
        with pytest.raises(Disconnected):
            await asyncio.wait_for(events.__anext__(), 2)
        assert isinstance(await asyncio.wait_for(api.wait_lost(), 2), Disconnected)
        assert time.monotonic() - killed < 2
    finally:
        server.kill()
        server.wait()
    assert (tmp_path / "dst" / "big.bin").stat().st_size < 512 << 20 if (tmp_path / "dst" / "big.bin").exists() else True

    server = serving(env)  # a rerun of the core: the cut-off copy resumes
    try:
        api = await attach(tmp_path / "data")
        assert api is not None
        record = await asyncio.wait_for(api.library().jobs.wait(job_id), 120)
        assert record.state == "completed", record
        await api.close()
    finally:
        server.terminate()
        server.wait(20)
    assert (tmp_path / "dst" / "big.bin").read_bytes() == source.read_bytes()
