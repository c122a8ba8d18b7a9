"""sdtui on a data dir whose core `sd serve` runs: it attaches to that core and is as whole as sdtui alone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.api.client import RemoteApi
from sdcore.control import SOCKET_NAME
from sdcore.sdpath import SdPath
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.tag_picker import TagPickerScreen
from tests.functional.attach_support import SD, sd_serve
from tests.functional.tui_support import (  # noqa: F401  # own_home: an autouse fixture
    answer_prompt,
    app_for,
    explorer,
    index_for_the_app,
    make_tree,
    names,
    own_home,
    settle,
    shown_text,
    wait_for,
)


@pytest.fixture
async def indexed(tmp_path: Path) -> Path:
    """A tree that is a location of the default library, indexed."""
    tree = make_tree(tmp_path)
    await index_for_the_app(tmp_path, tree)
    return tree


@pytest.fixture
def served(tmp_path: Path, indexed: Path) -> Iterator[subprocess.Popen[str]]:
    """`sd serve` on the data dir, in a process of its own."""
    server = sd_serve(tmp_path / "data")
    yield server
    server.kill()
    server.wait()


async def test_sdtui_beside_sd_serve_browses_copies_tags_and_searches(
    tmp_path: Path, indexed: Path, served: subprocess.Popen[str]
) -> None:
    tree = indexed
    app = app_for(tmp_path, tree, other=str(tree / "music"))
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        assert isinstance(app.api, RemoteApi)  # no "a core is already running … stop it first"
        screen = explorer(app)
        assert names(screen.active)[:2] == ["docs", "music"]
        await pilot.press("j", "j", "space", "space", "f5")  # alpha.py, beta.txt
        await wait_for(pilot, lambda: names(screen.inactive) == ["alpha.py", "beta.txt"])
        assert (tree / "music" / "beta.txt").read_text() == "b" * 2000
        await wait_for(pilot, lambda: "copied 2 items to ~/tree/music" in shown_text(screen.query_one("#status")))

        await pilot.press("home", "j", "j", "j")
        assert screen.active.file_list.current is not None and screen.active.file_list.current.name == "beta.txt"
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"work/acme", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in shown_text(
            app.screen.query_one("#status")))  # fmt: skip
        tagged = await app.api.library().tags["work/acme"].files()
        assert [e.name for e in tagged] == ["beta.txt"]

        await answer_prompt(pilot, app, "ctrl+f", "notes")
        await wait_for(pilot, lambda: names(screen.active) == ["~/tree/docs/notes.md"])
    assert served.poll() is None  # the core goes on serving


async def test_the_serving_core_killed_sdtui_says_so_within_2s_takes_it_over_and_the_copy_resumes(
    tmp_path: Path, indexed: Path, served: subprocess.Popen[str]
) -> None:
    tree = indexed
    big = tmp_path / "big"
    big.mkdir()
    block = os.urandom(1 << 20)
    with open(big / "big.bin", "wb") as f:
        for _ in range(384):
            f.write(block)
    app = app_for(tmp_path, big, other=str(tree / "music"))
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        assert isinstance(app.api, RemoteApi)
        said: list[str] = []
        notify = app.notify
        app.notify = lambda message, *a, **kw: (said.append(str(message)), notify(message, *a, **kw))[1]  # type: ignore[method-assign]
        await pilot.press("f5")  # big.bin, copied by the core `sd serve` runs
        arriving = tree / "music"
        await wait_for(pilot, lambda: sum(p.stat().st_size for p in arriving.iterdir() if p.is_file()) > 0, timeout=30)
        served.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await wait_for(pilot, lambda: any("this sdtui runs the core now" in s for s in said), timeout=2)
        assert time.monotonic() - killed < 2
        assert all("stopped" in s for s in said), said
        await wait_for(pilot, lambda: isinstance(app.api, Api) and isinstance(app.screen, ExplorerScreen))
        await settle(pilot, app)
        assert len(said) == 1, said  # said once, by the app: not again by each explorer call the loss cut short
        assert names(explorer(app).active) == ["big.bin"]
        await wait_for(pilot, lambda: (arriving / "big.bin").exists(), timeout=120)  # the cut-off copy resumed here
        assert (arriving / "big.bin").read_bytes() == (big / "big.bin").read_bytes()
        await answer_prompt(pilot, app, "ctrl+f", "notes")  # the library is this process's now
        await wait_for(pilot, lambda: names(explorer(app).active) == ["~/tree/docs/notes.md"])


async def test_two_explorers_on_a_core_that_dies_one_takes_it_over_and_the_other_uses_it(
    tmp_path: Path, indexed: Path, served: subprocess.Popen[str]
) -> None:
    tree = indexed
    first, second = app_for(tmp_path, tree), app_for(tmp_path, tree)
    said: dict[int, list[str]] = {id(first): [], id(second): []}
    for app in (first, second):
        notify = app.notify
        app.notify = lambda message, *a, _app=app, _notify=notify, **kw: (  # type: ignore[method-assign]
            said[id(_app)].append(str(message)), _notify(message, *a, **kw))[1]  # fmt: skip
    async with first.run_test(size=(120, 30)) as one, second.run_test(size=(120, 30)) as two:
        await settle(one, first)
        await settle(two, second)
        assert isinstance(first.api, RemoteApi) and isinstance(second.api, RemoteApi)
        served.send_signal(signal.SIGKILL)
        await wait_for(one, lambda: all(said.values()), timeout=10)
        await wait_for(two, lambda: all(said.values()), timeout=10)
        took = [app for app in (first, second) if any("this sdtui runs the core now" in s for s in said[id(app)])]
        assert len(took) == 1, said  # not both: the other would wait on the library's lock and fail
        other = second if took[0] is first else first
        assert any("now using the core another process took over" in s for s in said[id(other)]), said
        assert isinstance(other.api, RemoteApi)
        await other.api.library().tags["work/acme"].add(SdPath(other.api.device.id, str(tree / "beta.txt")))
        assert [e.name for e in await took[0].api.library().tags["work/acme"].files()] == ["beta.txt"]


async def test_a_lost_core_whose_claimer_does_not_answer_is_said_so_and_not_claimed(
    tmp_path: Path, indexed: Path, served: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sdtui.app.CLAIM_TRIES", 3)  # fewer tries, shorter waits: the same path, sooner
    monkeypatch.setattr("sdcore.api.client.HELLO_TIMEOUT", 0.3)
    app = app_for(tmp_path, indexed)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        remote = app.api
        assert isinstance(remote, RemoteApi)
        said: list[str] = []
        notify = app.notify
        app.notify = lambda message, *a, **kw: (said.append(str(message)), notify(message, *a, **kw))[1]  # type: ignore[method-assign]
        served.send_signal(signal.SIGSTOP)  # it holds the core's claim and its libraries, and answers nothing
        try:
            await remote.close()  # the connection ends: this sdtui tries to take the core over
            await wait_for(pilot, lambda: app.return_code is not None, timeout=10)
        finally:
            served.send_signal(signal.SIGCONT)
    assert app.return_code == 1  # stopped, rather than hang on a library that process holds
    assert len(said) == 1 and "does not answer: sdtui stops" in said[0], said  # not "this sdtui runs the core now"


async def test_an_explorer_started_at_the_same_moment_as_sd_serve_uses_its_core_rather_than_a_second_one(
    tmp_path: Path, indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.app import SdtuiApp

    tree = indexed
    held: list[SdtuiApp] = []
    real_host = SdtuiApp.host_commands
    monkeypatch.setattr(SdtuiApp, "host_commands", lambda self: held.append(self))  # the race, made to happen
    app = app_for(tmp_path, tree)
    said: list[str] = []
    notify = app.notify
    app.notify = lambda message, *a, **kw: (said.append(str(message)), notify(message, *a, **kw))[1]  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        assert not isinstance(app.api, RemoteApi)  # no core served when it looked
        server = subprocess.Popen(
            [SD, "--data-dir", str(tmp_path / "data"), "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # its socket is up before it waits for the library this explorer holds (its "serving" line comes after)
            await wait_for(pilot, lambda: (tmp_path / "data" / SOCKET_NAME).exists(), timeout=30)
            await wait_for(pilot, lambda: bool(held))
            real_host(app)  # now it would serve too, and finds the other one there
            await wait_for(pilot, lambda: isinstance(app.api, RemoteApi) and isinstance(app.screen, ExplorerScreen))
            await settle(pilot, app)
            assert not [s for s in said if "already running" in s], said  # no "stop it first"
            assert names(explorer(app).active)[:2] == ["docs", "music"]
            await app.api.library().tags["work"].add(SdPath(app.api.device.id, str(tree / "beta.txt")))
            assert [e.name for e in await app.api.library().tags["work"].files()] == ["beta.txt"]
            assert server.stdout is not None and server.stdout.readline().startswith("serving ")
        finally:
            server.kill()
            server.wait()
