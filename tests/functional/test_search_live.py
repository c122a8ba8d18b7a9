"""Search agrees with the listing: whatever a user does to a watched location, each entry is found by its name."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import search
from sdcore.core import Core
from sdcore.index.fts import searchable_entries
from sdcore.index.indexer import IndexJob, index_location
from sdcore.library import Library

SETTLE = 15.0  # seconds the watcher may take to bring a whole burst of churn in (a loaded CI machine)


@pytest.fixture
async def live(core: Core, library: Library, tmp_path: Path) -> AsyncIterator[tuple[Library, Path]]:
    root = tmp_path / "home"
    for folder in ("docs", "archive/2019", "music"):
        (root / folder).mkdir(parents=True)
        for i in range(10):
            (root / folder / f"{folder.replace('/', '-')}-item{i:02}.txt").write_text(f"{folder} {i}")
    loc = library.locations.add(str(root), mode="content")
    assert (await library.jobs.wait(await index_location(library, loc))).state == "completed"
    await core.go_live(library)
    await asyncio.wait_for(core.watcher(library).ready.wait(), 5)
    yield library, root


def on_disk(root: Path) -> set[str]:
    out = set()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(directory, name), root))
    return out


def in_index(library: Library) -> dict[str, int]:
    rows = library.read().execute(
        "SELECT e.id, p.path, e.name FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id"
    )
    return {(f"{parent}/{name}" if parent else name): entry_id for entry_id, parent, name in rows}


async def until_index_is_disk(library: Library, root: Path) -> dict[str, int]:
    deadline = time.monotonic() + SETTLE
    while True:
        indexed = in_index(library)
        if set(indexed) == on_disk(root) and not library.read().execute(
            "SELECT 1 FROM entries WHERE parent_id IS NULL AND id NOT IN (SELECT root_id FROM locations)"
        ).fetchone():
            return indexed
        assert time.monotonic() < deadline, f"the index is not the disk after {SETTLE}s: {set(indexed) ^ on_disk(root)}"
        await asyncio.sleep(0.1)


def assert_search_agrees(library: Library, indexed: dict[str, int]) -> None:
    """Each entry is found by its name, at its path; every hit is an entry at the path it is listed under."""
    by_id = {entry_id: rel for rel, entry_id in indexed.items()}
    for rel, entry_id in indexed.items():
        hits = search.find(library, os.path.basename(rel), limit=1000)
        assert entry_id in {h.entry_id for h in hits}, f"{rel} is listed but search does not find it"
        for hit in hits:
            assert by_id.get(hit.entry_id) == hit.relative, f"a ghost hit: {hit.relative} (entry {hit.entry_id})"
    rows = searchable_entries(library.read())
    rows_of = {r[0]: r[1:] for r in library.read().execute("SELECT id, name, extension FROM entries WHERE parent_id IS NOT NULL")}
    want = {i for i in indexed.values() if len(search.fold(rows_of[i][0])) >= 3 or rows_of[i][1]}  # else no trigram
    assert rows == want, f"the search index holds {len(rows)} rows for {len(want)} entries: {rows ^ want}"


async def test_search_finds_every_entry_after_churn_under_a_live_core(live: tuple[Library, Path]) -> None:
    library, root = live
    # folders made and renamed at once (the watcher sees them first under their new name)
    deep = root / "fresh" / "deeper" / "deepest"
    deep.mkdir(parents=True)
    for i in range(50):
        (deep / f"fresh-file{i:02}.txt").write_text(str(i))
    os.rename(root / "fresh", root / "fresh-renamed")
    # an existing folder renamed; files deleted, renamed, appended to
    os.rename(root / "archive", root / "archive-old")
    for i in range(3):
        (root / "docs" / f"docs-item{i:02}.txt").unlink()
    for i in range(3, 6):
        os.rename(root / "docs" / f"docs-item{i:02}.txt", root / "docs" / f"docs-renamed{i:02}.txt")
    with open(root / "music" / "music-item00.txt", "a") as f:
        f.write(" and more")
    # a file moved into a folder made just now; a folder made and removed at once
    (root / "newdir" / "inner").mkdir(parents=True)
    os.rename(root / "music" / "music-item01.txt", root / "newdir" / "inner" / "music-moved01.txt")
    (root / "gone" / "sub").mkdir(parents=True)
    (root / "gone" / "sub" / "gone-file.txt").write_text("x")
    shutil.rmtree(root / "gone")
    await asyncio.sleep(0.5)
    # a second wave on what the first one made
    os.rename(root / "fresh-renamed" / "deeper", root / "docs" / "deeper-moved")
    (root / "docs" / "deeper-moved" / "late-file.txt").write_text("late")
    assert_search_agrees(library, await until_index_is_disk(library, root))


# -- `sd serve`: a headless core is live too ------------------------------------------------------------------------

SD = [str(Path(sys.executable).parent / "sd")]
LIVE_WITHIN = 30.0  # seconds for 4,500 changes to reach the index of a loaded machine (a few on an idle one)


def sd(data: Path, *args: str) -> str:
    done = subprocess.run(
        [*SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def found(data: Path, text: str) -> list[str]:
    return sorted(hit["name"] for hit in json.loads(sd(data, "search", text, "--json", "--limit", "10000")))


async def interrupted_index(data: Path, folder: Path) -> None:
    """A location whose first index was cut off (its core closed while it ran)."""
    async with Core(data) as core:
        library = core.library()
        loc = library.locations.add(str(folder), mode="shallow")
        await library.jobs.start(IndexJob(loc.id))
    assert json.loads(sd(data, "job", "list", "--json"))[0]["state"] == "interrupted"


def serve(data: Path) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [*SD, "--data-dir", str(data), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert server.stdout is not None and "serving" in server.stdout.readline()
    return server


def stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    assert server.wait(30) == 0


def test_sd_serve_keeps_its_index_current(tmp_path: Path) -> None:
    data, home, later = tmp_path / "data", tmp_path / "home", tmp_path / "later"
    (home / "old").mkdir(parents=True)
    for i in range(1000):
        (home / "old" / f"doomed{i:04}.txt").write_text("d")
    for i in range(500):
        (home / "old" / f"before{i:04}.txt").write_text("b")
    sd(data, "location", "add", str(home), "--mode", "content")
    (home / "made-while-no-core-ran.txt").write_text("offline")
    later.mkdir()
    (later / "waiting-file.txt").write_text("w")
    asyncio.run(interrupted_index(data, later))

    server = serve(data)
    try:
        (home / "new").mkdir()
        for i in range(3000):
            (home / "new" / f"fresh{i:04}.txt").write_text("f")
        for i in range(1000):
            (home / "old" / f"doomed{i:04}.txt").unlink()
        for i in range(500):
            os.rename(home / "old" / f"before{i:04}.txt", home / "old" / f"after{i:04}.txt")
        started = time.monotonic()
        while len(json.loads(sd(data, "ls", str(home / "new"), "--json"))) < 3000 or found(data, "doomed"):
            assert time.monotonic() - started < LIVE_WITHIN, "sd serve did not bring the changes into its index"
            time.sleep(0.5)
        assert found(data, "fresh") == [f"fresh{i:04}.txt" for i in range(3000)]
        assert found(data, "after") == [f"after{i:04}.txt" for i in range(500)]
        assert found(data, "before") == []
        assert sorted(e["name"] for e in json.loads(sd(data, "ls", str(home / "old"), "--json"))) == found(data, "after")
        # what changed while no core ran is caught up; the first index cut off is finished
        assert found(data, "made-while-no-core-ran") == ["made-while-no-core-ran.txt"]
        assert found(data, "waiting-file") == ["waiting-file.txt"]
    finally:
        stop(server)


def test_a_location_added_to_a_new_library_while_sd_serve_runs_is_watched(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    server = serve(data)  # a fresh data dir: no library yet
    try:
        sd(data, "location", "add", str(home))  # makes the library, in the server
        for i in range(50):
            (home / f"later{i:02}.txt").write_text("l")
        started = time.monotonic()
        while len(found(data, "later")) < 50:
            assert time.monotonic() - started < LIVE_WITHIN, "the new location is not watched"
            time.sleep(0.5)
    finally:
        stop(server)


# -- a first index that did not finish ------------------------------------------------------------------------------


async def paused_first_index(data: Path, root: Path) -> None:
    from sdcore.index import indexer

    async with Core(data) as core:
        library = core.library()
        loc = library.locations.add(str(root), mode="shallow")
        job_id = await library.jobs.start(IndexJob(loc.id))
        library.jobs.pause(job_id)  # half-way through its first (bulk) load, as Ctrl-C does
        assert (await library.jobs.wait(job_id)).state == "paused"
        assert indexer.BATCH_ENTRIES == 50


def test_search_after_a_paused_first_index_finds_what_is_there_and_says_how_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.index import indexer

    monkeypatch.setattr(indexer, "BATCH_ENTRIES", 50)  # many discovery batches from a small tree
    data, root = tmp_path / "data", tmp_path / "big"
    for d in range(20):
        (root / f"d{d:02}").mkdir(parents=True)
        for f in range(30):
            (root / f"d{d:02}" / f"report{d:02}-{f:02}.txt").write_text(str(f))
    asyncio.run(paused_first_index(data, root))

    done = subprocess.run(
        [*SD, "--data-dir", str(data), "search", "report", "--json", "--limit", "1000"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert 0 < len(hits) < 600, "search finds the files the paused index reached"
    assert all(os.path.exists(hit["path"]) for hit in hits)
    assert "location 'big' is not fully indexed (its first index was paused)" in done.stderr
    assert "`sd location rescan big` finishes it" in done.stderr

    sd(data, "location", "rescan", "big")
    done = subprocess.run(
        [*SD, "--data-dir", str(data), "search", "report", "--json", "--limit", "1000"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert len(json.loads(done.stdout)) == 600 and done.stderr == ""
