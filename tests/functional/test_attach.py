"""A second front end on a data dir whose core another process runs: it attaches to that core's API and is whole."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.api.client import Disconnected, attach
from sdcore.control import SOCKET_NAME
from sdcore.core import Core
from sdcore.sdpath import SdPath
from tests.functional.attach_support import SD, attached, sd_serve
from tests.functional.slow_disk import SLOW_SD


async def test_a_client_attached_with_another_library_runs_its_copies_in_that_library(tmp_path: Path) -> None:
    async with Core(tmp_path / "data") as core:
        await asyncio.to_thread(core.library)  # the default library, made on first use
        await asyncio.to_thread(core.libraries.create, "Work")
        async with attached(core, library="Work") as (_, api):
            (tmp_path / "a.txt").write_text("report")
            (tmp_path / "to").mkdir()
            here = api.device.id
            job = await api.ops.copy([SdPath(here, str(tmp_path / "a.txt"))], SdPath(here, str(tmp_path / "to")))
            done = await api.library().jobs.wait(job.id)
            assert (done.state, done.result.files, done.result.bytes) == ("completed", 1, len("report"))
            assert job.id in [j.id for j in await api.library("Work").jobs.list()]
            assert job.id not in [j.id for j in await Api(core).library().jobs.list()]


# -- with real processes -------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SD_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def sd(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SD, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


def started(env: dict[str, str], *args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([SD, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
    source = big_file(tmp_path / "big.bin", 24 << 20)  # about 10 s from the slow disk: time to list and monitor
    if not _list_and_monitor_a_foreground_copy(tmp_path, env, source, tmp_path / "dst"):
        pytest.fail("the copy ended before `sd job monitor` could attach")


def _list_and_monitor_a_foreground_copy(tmp_path: Path, env: dict[str, str], source: Path, dst: Path) -> bool:
    dst.mkdir()
    copy = subprocess.Popen([*SLOW_SD, "cp", source, dst, "--verify"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    monitor = None
    try:
        until(lambda: (tmp_path / "data" / SOCKET_NAME).exists() or copy.poll() is not None)
        deadline = time.monotonic() + 60
        while True:  # the socket is served before the copy's job is made: the list may come first
            listed = sd(env, "job", "list")  # no "library is locked" wait: it runs in the copy's own core
            assert listed.returncode == 0, listed.stderr
            if copy.poll() is not None:
                return False
            if "copy" in listed.stdout and "running" in listed.stdout or time.monotonic() > deadline:
                break
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
    assert (dst / "big.bin").read_bytes() == source.read_bytes()
    assert not (tmp_path / "data" / SOCKET_NAME).exists()
    return True


async def test_the_serving_process_killed_the_client_says_so_and_a_rerun_resumes_the_job(
    tmp_path: Path, env: dict[str, str]
) -> None:
    source = big_file(tmp_path / "big.bin", 512 << 20)
    (tmp_path / "dst").mkdir()
    server = sd_serve(tmp_path / "data", env)
    try:
        api = await attach(tmp_path / "data")
        assert api is not None
        lib = api.library()
        job_id = (await api.ops.copy([SdPath(api.device.id, str(source))], SdPath(api.device.id, str(tmp_path / "dst")))).id
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

    server = sd_serve(tmp_path / "data", env)  # a rerun of the core: the cut-off copy resumes
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


async def test_an_attach_given_up_during_the_hello_lets_go_of_its_socket(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(reader)  # a hung core: it takes the connection and never says hello
        await asyncio.sleep(30)

    server = await asyncio.start_unix_server(silent, str(tmp_path / SOCKET_NAME))
    try:
        gc.collect()  # what earlier tests left is not this one's
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(attach(tmp_path), 0.5)  # a caller's timeout, shorter than the hello's
            gc.collect()
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []  # closed, not left to the GC
        reader = await asyncio.wait_for(accepted.get(), 1)
        await reader.read(1 << 16)  # the hello request
        assert await asyncio.wait_for(reader.read(1), 2) == b""  # the client closed its end
    finally:
        server.close()


async def test_a_front_end_attached_with_a_library_sees_other_devices_from_that_librarys_catalogue(
    tmp_path: Path,
) -> None:
    """`sdtui --library Shared` while `sd serve` runs on the default library: an offline device's folder is listed
    from Shared's catalogue of it (the serving core's own library was used: 'cannot reach alpha')."""
    from tests.functional.test_catalogue import device, index, make_photos, sync

    photos = make_photos(tmp_path / "on-alpha")
    async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "here", "here")) as here:
        a = alpha.library()
        await index(a, a.locations.add(str(photos)))
        here.library()  # the default library, which knows nothing of alpha
        sync(a, here.libraries.create("Shared"))
        folder = SdPath(alpha.device.id, str(photos))
    async with Core(tmp_path / "here") as here, attached(here, library="Shared") as (_, api):
        assert [e.name async for batch in api.browse(folder) for e in batch] == ["2024", "notes.txt"]
        offline = await api.offline(folder)
        assert offline is not None and offline.device.name == "alpha"
        assert await api.label(folder) == f"alpha:{photos}"


async def test_a_front_end_attached_after_sd_library_use_gets_the_new_default_library(tmp_path: Path) -> None:
    """`sd library use Work` while `sd serve` runs: an explorer started then shows Work (it showed the old default
    until the core was restarted)."""
    async with Core(tmp_path / "data") as core:
        core.library()  # the first run's default
        work = core.libraries.create("Work")
        async with attached(core) as (_, api):
            assert (await api.library().info()).name == "My Library"
            core.save_settings(default_library=str(work.id))  # what `sd library use Work` does in this core
            later = await attach(core.data_dir)
            assert later is not None
            try:
                assert (await later.library().info()).name == "Work"
            finally:
                await later.close()
