"""One library across three real `sd serve` processes on 127.0.0.1 (three data dirs = three devices)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.api.client import attach
from sdcore.core import Core
from sdcore.net.testing import device_network, pair
from sdcore.sdpath import SdPath
from tests.functional.ssh_support import SD, ServedCore
from tests.functional.test_net_served import Server, free_port, sd

NAMES = {"a": "alpha", "b": "beta", "c": "gamma"}

pytestmark = pytest.mark.xdist_group("sync_served")  # one worker makes the three servers, once (pyproject.toml)


async def _pair_all(tmp: Path, ports: dict[str, int]) -> None:
    """Each device paired with the two others (full trust), each known at the port its `sd serve` listens on."""
    async with (
        device_network(tmp / "a", "alpha", listen=False) as a,
        device_network(tmp / "b", "beta", listen=False) as b,
        device_network(tmp / "c", "gamma", listen=False) as c,
    ):
        for who, network in (("a", a), ("b", b), ("c", c)):
            await network.start(f"127.0.0.1:{ports[who]}")
        await pair(a, b)
        await pair(a, c)
        await pair(b, c)


class Devices:
    """alpha, beta and gamma serving, sharing the library Photos (made on alpha)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports = {who: free_port() for who in NAMES}
        asyncio.run(_pair_all(tmp, self.ports))
        self.servers = {who: Server(tmp, who, self.ports[who]) for who in NAMES}
        self.photos = tmp / "alpha-photos"
        self.ids: dict[str, str] = {}  # (as `_kept` reads them)
        for server in self.servers.values():
            server.start()

    def sd(self, who: str, *args: str, check: bool = True) -> Any:
        return sd(self.tmp, who, *args, check=check)

    def json(self, who: str, *args: str) -> Any:
        return json.loads(self.sd(who, *args, "--json").stdout)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def db(self, who: str, library: str = "Photos") -> Path:
        [folder] = [f for f in (self.tmp / who / "libraries").glob("*.sdlibrary") if library in f.name]
        return folder / "database.db"

    def shared_state(self, who: str, library: str = "Photos") -> list[Any]:
        """The library's shared tables on that device, read as they are (its `sd serve` holds the library)."""
        return query(self.db(who, library), "SELECT key, hlc, origin, value FROM sync_fields ORDER BY key") + query(
            self.db(who, library), "SELECT uid, target, hlc, origin, removed FROM sync_tagged ORDER BY uid, target, hlc"
        )

    def converged(self, library: str = "Photos") -> bool:
        states = [self.shared_state(who, library) for who in NAMES]
        return bool(states[0]) and states[0] == states[1] == states[2]


def query(db: Path, sql: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if check():
                return time.monotonic() - started
        except sqlite3.OperationalError:  # a database being made, or locked for a moment
            pass
        time.sleep(0.02)
    raise AssertionError(f"not within {within} s: {what}")


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devices]:
    devices = Devices(tmp_path_factory.mktemp("sync"))
    devices.sd("a", "library", "create", "Photos", "--no-use")
    devices.sd("a", "library", "share", "Photos", "beta")
    devices.sd("a", "library", "share", "Photos", "gamma")
    photos = devices.tmp / "alpha-photos"
    photos.mkdir()
    (photos / "harbour.jpg").write_bytes(b"\xff\xd8" + b"h" * 3000)
    (photos / "beach.jpg").write_bytes(b"\xff\xd8" + b"b" * 3000)
    devices.sd("a", "--library", "Photos", "location", "add", str(photos))
    devices.photos = photos
    try:
        yield devices
    finally:
        devices.stop()


def test_a_library_shared_among_three_devices_lists_all_three_online_on_each(devices: Devices) -> None:
    for who in NAMES:
        def all_online(who: str = who) -> bool:
            listed = devices.json(who, "library", "devices", "Photos")
            return sorted(d["name"] for d in listed) == sorted(NAMES.values()) and all(d["online"] for d in listed)

        eventually(all_online, 10, f"{NAMES[who]} lists the three devices online")
    ids = {json.loads(devices.sd(who, "library", "list", "--json").stdout)[0]["id"] for who in ("b", "c")}
    assert len(ids) == 1  # the same library (one id) on beta and gamma


def test_a_library_not_shared_stays_on_its_device(devices: Devices) -> None:
    devices.sd("a", "library", "create", "Diary", "--no-use")
    for who in ("b", "c"):
        assert "Diary" not in [lib["name"] for lib in devices.json(who, "library", "list")]


def test_a_tag_and_a_note_made_on_alpha_reach_beta_and_gamma_within_two_seconds(devices: Devices) -> None:
    harbour = str(devices.photos / "harbour.jpg")
    eventually(lambda: all(_holds(devices, w, "harbour.jpg") for w in "bc"),
               20, "alpha's catalogue on beta and gamma")  # fmt: skip
    devices.sd("a", "--library", "Photos", "tag", "create", "trips/2024")
    devices.sd("a", "--library", "Photos", "tag", "add", "trips/2024", harbour)
    devices.sd("a", "--library", "Photos", "note", harbour, "the old harbour")
    took = eventually(devices.converged, 2, "alpha's tag and note on beta and gamma")
    assert took < 2
    for who in "bc":
        shown = devices.sd(who, "--library", "Photos", "note", f"alpha:{harbour}").stdout
        assert "the old harbour" in shown
        assert "trips/2024" in [t["name"] for t in devices.json(who, "--library", "Photos", "tag", "list")]


def test_beta_lists_and_searches_alphas_files_from_the_catalogue_it_keeps_while_alpha_is_off(devices: Devices) -> None:
    eventually(lambda: all(_holds(devices, w, "harbour.jpg") for w in "bc"), 20, "alpha's catalogue on beta and gamma")
    assert query(devices.db("b"), "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id"
                 " WHERE l.path = ?", str(devices.photos)) == [(0,)]  # fmt: skip  # a file, not rows of its tables
    devices.servers["a"].stop()
    try:
        listed = devices.json("b", "--library", "Photos", "ls", f"alpha:{devices.photos}")
        assert sorted(e["name"] for e in listed) == ["beach.jpg", "harbour.jpg"]
        found = devices.json("b", "--library", "Photos", "search", "harbour")
        assert [(f["device"], f["path"]) for f in found] == [("alpha", str(devices.photos / "harbour.jpg"))]
    finally:
        devices.servers["a"].start()


def test_beta_lists_alphas_tagged_and_favourite_files_as_alphas(devices: Devices) -> None:
    """`sd tag show` and `sd fav` on beta listed alpha's files as plain paths, which on beta name beta's own files
    (the same path on several devices could not be told apart, and `sd cp` of one took beta's)."""
    beach = str(devices.photos / "beach.jpg")
    eventually(lambda: all(_holds(devices, w, "beach.jpg") for w in "bc"),
               20, "alpha's catalogue on beta and gamma")  # fmt: skip
    devices.sd("a", "--library", "Photos", "tag", "create", "sunny")
    devices.sd("a", "--library", "Photos", "tag", "add", "sunny", beach)
    devices.sd("a", "--library", "Photos", "fav", beach)
    eventually(devices.converged, 10, "alpha's tag and favourite on beta and gamma")
    shown = devices.sd("b", "--library", "Photos", "tag", "show", "sunny").stdout
    assert f"alpha:{beach} " in shown, shown
    assert devices.sd("b", "--library", "Photos", "fav").stdout.splitlines() == [f"alpha:{beach}"]
    tagged = devices.json("b", "--library", "Photos", "tag", "show", "sunny")
    assert [(t["device"], t["path"]) for t in tagged] == [("alpha", beach)]
    assert [(f["device"], f["path"]) for f in devices.json("b", "--library", "Photos", "fav")] == [("alpha", beach)]
    assert devices.sd("a", "--library", "Photos", "fav").stdout.splitlines() == [beach]  # its own: as it is
    devices.sd("a", "--library", "Photos", "fav", "--remove", beach)


def test_a_note_on_a_file_outside_every_location_of_beta_makes_its_folder_a_location_there(devices: Devices) -> None:
    """`sd note beta:/srv/inbox/scan.pdf TEXT` (outside beta's locations) was refused: "/srv/inbox/scan.pdf is not in
    any location of library 'Photos'; add its folder with `sd location add DIR`", which on alpha adds alpha's folder.
    As for a file of this device, its folder becomes a location, on beta, said so, and the note is written."""
    inbox = devices.tmp / "beta-inbox"
    inbox.mkdir()
    (inbox / "scan.pdf").write_bytes(b"%PDF-1.4 scan")
    noted = devices.sd("a", "--library", "Photos", "note", f"beta:{inbox / 'scan.pdf'}", "signed")
    assert f"added beta:{inbox} as location 'beta-inbox'" in noted.stderr, noted.stderr
    beta_id = json.loads(devices.sd("b", "device", "show", "--json").stdout)["id"]
    assert [(loc["device_id"], loc["path"]) for loc in devices.json("b", "--library", "Photos", "location", "list")
            if loc["path"] == str(inbox)] == [(beta_id, str(inbox))]  # fmt: skip
    assert devices.sd("b", "--library", "Photos", "note", str(inbox / "scan.pdf")).stdout == "signed\n"
    missing = devices.sd("a", "--library", "Photos", "note", f"beta:{inbox / 'nope.pdf'}", "x", check=False)
    assert missing.returncode == 1 and missing.stderr == f"error: beta:{inbox / 'nope.pdf'} does not exist\n"


def test_gamma_back_from_a_partition_converges_with_the_winners_and_the_losers_in_history(devices: Devices) -> None:
    harbour = str(devices.photos / "harbour.jpg")
    devices.sd("a", "--library", "Photos", "tag", "create", "keep")
    devices.sd("a", "--library", "Photos", "tag", "add", "keep", harbour)
    eventually(devices.converged, 30, "the tag on all three")
    devices.servers["c"].stop()  # gamma is off
    devices.servers["b"].stop()  # and beta edits on its own, apart from alpha: the edits are concurrent
    devices.sd("a", "--library", "Photos", "note", harbour, "written on alpha")
    devices.sd("a", "--library", "Photos", "tag", "rm", "keep", harbour)
    devices.sd("a", "--library", "Photos", "tag", "add", "keep", harbour)  # a new add, which beta has not seen
    devices.sd("b", "--library", "Photos", "tag", "rm", "keep", f"alpha:{harbour}")
    time.sleep(0.05)  # beta's edit is the later one, by any clock
    devices.sd("b", "--library", "Photos", "note", f"alpha:{harbour}", "written on beta")
    os.rename(devices.photos / "beach.jpg", devices.photos / "beach-2024.jpg")  # renamed on its device
    devices.servers["b"].start()
    devices.servers["c"].start()
    eventually(devices.converged, 60, "the three converge")
    eventually(lambda: all(_holds(devices, w, "beach-2024.jpg") for w in "bc"),
               60, "the rename on beta and gamma")  # fmt: skip
    for who in "abc":
        target = harbour if who == "a" else f"alpha:{harbour}"
        assert "written on beta" in devices.sd(who, "--library", "Photos", "note", target).stdout  # the later edit
        history = devices.json(who, "--library", "Photos", "note", target, "--history")
        assert "written on alpha" in [v["text"] for v in history]  # the loser, kept
        tagged = devices.json(who, "--library", "Photos", "tag", "show", "keep")
        assert [t["path"] for t in tagged] == [harbour]  # add-wins: beta's removal had not seen alpha's new add


def _seq(devices: Devices, who: str, of: str, library: str) -> int:
    """How far `who` has the catalogue of device `of` (its watermark)."""
    device_id = json.loads(devices.sd(of, "device", "show", "--json").stdout)["id"]
    rows = query(devices.db(who, library), "SELECT seq FROM catalogue_peers WHERE device_id = ?", device_id)
    return int(rows[0][0]) if rows else 0


def _holds(devices: Devices, who: str, name: str) -> bool:
    """Whether `who` holds alpha's file `name` in the catalogue of alpha it keeps."""
    kept = _kept(devices, who, "a", "Photos")[0]
    return kept.is_file() and bool(query(kept, "SELECT 1 FROM entries WHERE name = ?", name))


def _kept(devices: Devices, who: str, of: str, library: str) -> tuple[Path, Path]:
    """The catalogue file of device `of` that `who` keeps, and the part of it staged while it is fetched."""
    device_id = devices.ids.get(of) or devices.ids.setdefault(of, json.loads(devices.sd(of, "device", "show", "--json").stdout)["id"])
    kept = devices.db(who, library).parent / "catalogues" / f"{device_id}.db"
    return kept, kept.with_name(f"{kept.name}.part")


def test_a_first_sync_cut_by_kill_9_on_either_side_fetches_again_and_ends_right(devices: Devices) -> None:
    files = devices.tmp / "alpha-big"
    files.mkdir()
    for d in range(80):
        (files / f"d{d:02}").mkdir()
        for n in range(500):
            (files / f"d{d:02}" / f"f{n:03}.txt").touch()
    devices.sd("a", "library", "create", "Big", "--no-use")
    devices.sd("a", "--library", "Big", "location", "add", str(files), "--mode", "shallow")
    [(owned,)] = query(devices.db("a", "Big"), "SELECT count(*) FROM entries")
    assert owned > 40_000

    for receiver, killed in (("b", "b"), ("c", "a")):  # kill -9 the receiver, then the sender
        devices.sd("a", "library", "share", "Big", NAMES[receiver])
        kept, part = _kept(devices, receiver, "a", "Big")
        eventually(part.exists, 60, "the fetch under way")
        devices.servers[killed].kill()
        if killed == receiver:  # (the sender's kill may land after its last part: the receiver keeps what it has)
            assert _seq(devices, receiver, "a", "Big") == 0, "the first sync ended before the kill: nothing was cut"
        devices.servers[killed].start()
        eventually(lambda receiver=receiver: _seq(devices, receiver, "a", "Big") > 0, 120,
                   f"{NAMES[receiver]} has alpha's catalogue")  # fmt: skip
        assert query(kept, "SELECT count(*) FROM entries") == [(owned,)] and not part.exists()  # whole, fetched again
        assert query(devices.db(receiver, "Big"), "SELECT count(*) FROM entries") == [(0,)]  # none in its tables
        listed = [e["name"] for e in devices.json(receiver, "--library", "Big", "ls", f"alpha:{files / 'd07'}")]
        assert len(listed) == 500 and "f499.txt" in listed


def test_an_explorer_that_does_not_listen_is_told_of_a_tag_made_on_a_served_device_within_two_seconds(
    tmp_path: Path,
) -> None:
    served = ServedCore(tmp_path)  # `sd serve` on "server"; the explorer's device, "laptop", paired with it
    try:
        took = asyncio.run(_tag_reaches_a_core_with_no_server(served))
    finally:
        served.stop()
    print(f"a tag made on the served device reached the explorer's core in {took:.3f} s")
    assert took < 2


async def _tag_reaches_a_core_with_no_server(served: ServedCore) -> float:
    """Seconds from `sd tag create` on the served device to the tag in the laptop's core, which does not listen (as
    the explorer holds it): the served device cannot dial it, and tells it on the connection the laptop opened."""
    async with Core(served.tmp / "laptop") as laptop:
        laptop.libraries.create("Photos")
        photos = Api(laptop).library("Photos")
        await photos.sharing.share("server")  # (the laptop keeps it in sync from now on, as the explorer does)

        async def tag_there(name: str) -> float:
            made = await asyncio.create_subprocess_exec(
                *SD, "--data-dir", str(served.data_dir), "--library", "Photos", "tag", "create", name, env=served.env,
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert await made.wait() == 0
            started = time.monotonic()
            async with asyncio.timeout(60):
                while name not in {t.name for t in await photos.tags.list()}:
                    await asyncio.sleep(0.02)
            return time.monotonic() - started

        await tag_there("first")  # the server holds the library and its first sync is done
        await asyncio.sleep(1)
        return await tag_there("second")


def test_a_renamed_device_is_shown_by_its_new_name_on_the_others_online_and_offline(devices: Devices) -> None:
    """`sd device rename orchard` on alpha: beta names alpha's files orchard's in `sd search`, `sd dupes --devices`,
    `sd ls orchard:…`, the inspector's same content and what says it is offline, also once alpha is off (though beta's kept file of alpha may
    still call it alpha: no batch has come since; the library's devices table is what names it)."""
    harbour = devices.photos / "harbour.jpg"
    eventually(lambda: _holds(devices, "b", "harbour.jpg"), 20, "alpha's catalogue on beta")
    pier = devices.tmp / "beta-pier"  # a copy of alpha's harbour on beta
    pier.mkdir()
    (pier / "pier.jpg").write_bytes(harbour.read_bytes())
    devices.sd("b", "--library", "Photos", "location", "add", str(pier))
    alpha_id = devices.ids.get("a") or json.loads(devices.sd("a", "device", "show", "--json").stdout)["id"]
    beta_id = json.loads(devices.sd("b", "device", "show", "--json").stdout)["id"]

    def shown() -> dict[str, Any]:
        async def same_content() -> tuple[str, ...]:
            api = await attach(devices.tmp / "b", library="Photos")
            assert api is not None
            try:
                details = await api.library().entries.details(SdPath(uuid.UUID(beta_id), str(pier / "pier.jpg")))
                return () if details is None else details.same_content
            finally:
                await api.close()

        copies = [c for g in devices.json("b", "--library", "Photos", "dupes", "--devices") for c in g["copies"]]
        return {
            "search": [f["device"] for f in devices.json("b", "--library", "Photos", "search", "harbour")],
            "dupes": sorted((c["device_id"] == alpha_id, c["device"]) for c in copies),
            "inspector": asyncio.run(same_content()),
        }

    devices.sd("a", "device", "rename", "orchard")
    try:
        renamed = {"search": ["orchard"], "dupes": [(False, "beta"), (True, "orchard")], "inspector": (f"orchard:{harbour}",)}
        eventually(lambda: shown() == renamed, 20, "beta names alpha's files orchard's")
        devices.servers["a"].stop()
        try:
            assert shown() == renamed
            listed = devices.sd("b", "--library", "Photos", "ls", f"orchard:{devices.photos}").stdout
            assert listed.startswith(f"orchard:{devices.photos}: offline, as of "), listed
            found = devices.sd("b", "--library", "Photos", "search", "harbour").stdout
            assert "orchard (offline)" in found and "alpha" not in found.replace("alpha-photos", ""), found
            copied = devices.sd("b", "--library", "Photos", "cp", f"orchard:{harbour}", str(pier), check=False)
            assert copied.returncode == 1 and "orchard is offline" in copied.stderr, copied.stderr
        finally:
            devices.servers["a"].start()
    finally:
        devices.sd("a", "device", "rename", "alpha")
        devices.sd("b", "--library", "Photos", "location", "remove", str(pier))
        eventually(lambda: shown()["search"] == ["alpha"], 20, "beta names alpha alpha again")
