"""A disk indexed on one device of a library and plugged into another: there it is the same location, taken over
with its entries and tags, and a rescan finds what changed on the disk meanwhile; the first device learns that
the location is the other's now. Two real `sd serve` processes over SSH on 127.0.0.1, each in a mount namespace of
its own (`unshare --mount`: two machines, each with its own mounts), and a real loop-mounted ext4 image."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.net.testing import device_network, pair
from tests.functional.loop_disks import make_disk
from tests.functional.test_net_served import SD, Server, _env, free_port

NAMES = {"a": "alpha", "b": "beta"}


async def _pair(tmp: Path, ports: dict[str, int]) -> None:
    async with device_network(tmp / "a", "alpha", listen=False) as a, device_network(tmp / "b", "beta", listen=False) as b:
        await a.start(f"127.0.0.1:{ports['a']}")
        await b.start(f"127.0.0.1:{ports['b']}")
        await pair(a, b)


class Machines:
    """alpha and beta serving, each in its own mount namespace, sharing the library Photos (made on alpha)."""

    def __init__(self, tmp: Path) -> None:
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
            pytest.skip("two machines' mounts need root, unshare and nsenter (CI runs as root)")
        self.tmp = tmp
        ports = {who: free_port() for who in NAMES}
        asyncio.run(_pair(tmp, ports))
        wrap = ("unshare", "--mount", "--propagation", "private", "--")
        self.servers = {who: Server(tmp, who, ports[who], wrap) for who in NAMES}
        for server in self.servers.values():
            server.start()

    def pid(self, who: str) -> int:
        proc = self.servers[who].proc
        assert proc is not None
        return proc.pid

    def on(self, who: str, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command run on that machine (in its mount namespace; while its `sd serve` is stopped, with no disk)."""
        proc = self.servers[who].proc
        enter = ("nsenter", "--target", str(self.pid(who)), "--mount", "--") if proc and proc.poll() is None else ()
        return subprocess.run([*enter, *argv], capture_output=True, text=True, timeout=60, env=_env(self.tmp, who))

    def sd(self, who: str, *args: str) -> str:
        done = self.on(who, *SD, "--data-dir", str(self.tmp / who), *args)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    def json(self, who: str, *args: str) -> Any:
        return json.loads(self.sd(who, *args, "--json"))

    def db(self, who: str) -> Path:
        [folder] = (self.tmp / who / "libraries").glob("Photos*.sdlibrary")
        return folder / "database.db"

    def query(self, who: str, sql: str, *args: Any) -> list[Any]:
        conn = sqlite3.connect(f"file:{self.db(who)}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    machines = Machines(tmp_path)
    try:
        yield machines
    finally:
        machines.stop()


def eventually(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            found = check()
            if found:
                return found
        except (sqlite3.OperationalError, AssertionError, ValueError):  # a database being made; a command refused
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.1)


def test_a_disk_indexed_on_alpha_and_plugged_into_beta_is_betas_location_with_its_tags(
    machines: Machines, tmp_path: Path
) -> None:
    disk = make_disk(tmp_path / "photos.img", "ext4", "PHOTOS-2019")
    filling = tmp_path / "filling"
    disk.mount(filling)  # the disk as it was bought: 60 photos in two folders
    try:
        for folder in ("2019", "2019/rocks"):
            (filling / folder).mkdir()
            for n in range(30):
                (filling / folder / f"photo-{n}.jpg").write_bytes(b"jpeg %d %s" % (n, folder.encode()))
        (filling / "2019" / "beach.jpg").write_bytes(b"sand" * 100)
    finally:
        disk.umount(filling)
    on_alpha, on_beta = tmp_path / "alpha-media" / "PHOTOS", tmp_path / "beta-media" / "PHOTOS"
    on_alpha.mkdir(parents=True)
    on_beta.mkdir(parents=True)
    machines.sd("a", "library", "create", "Photos", "--no-use")
    machines.sd("a", "library", "share", "Photos", "beta")
    assert machines.on("a", "mount", "-o", "loop", str(disk.image), str(on_alpha)).returncode == 0

    # alpha indexes the disk, tags a photo and writes a note on another
    machines.sd("a", "--library", "Photos", "location", "add", str(on_alpha / "2019"))
    [mine] = machines.json("a", "--library", "Photos", "location", "list")
    assert mine["volume_label"] == "PHOTOS-2019" and mine["volume_id"]
    machines.sd("a", "--library", "Photos", "tag", "create", "summer")
    machines.sd("a", "--library", "Photos", "tag", "add", "summer", str(on_alpha / "2019" / "beach.jpg"))
    machines.sd("a", "--library", "Photos", "note", str(on_alpha / "2019" / "rocks" / "photo-7.jpg"), "the grey one")
    alpha_id = mine["device_id"]

    def kept_names(who: str, of: str) -> set[str]:
        """The names in the catalogue of device `of` kept as a file on `who` (issue 16: not in its tables)."""
        kept = machines.db(who).parent / "catalogues" / f"{of}.db"
        conn = sqlite3.connect(f"file:{kept}?mode=ro", uri=True, timeout=10)
        try:
            return {name for (name,) in conn.execute("SELECT name FROM entries WHERE name != ''")}
        finally:
            conn.close()

    eventually(lambda: "beach.jpg" in kept_names("b", alpha_id) and machines.query("b", "SELECT 1 FROM tag_assignments"), 30,
               "alpha's catalogue and tag on beta")  # fmt: skip
    listed = machines.json("b", "--library", "Photos", "location", "list")
    assert [loc["path"] for loc in listed] == [str(on_alpha / "2019")] and listed[0]["device_id"] == mine["device_id"]
    before = kept_names("b", alpha_id)

    # unplugged from alpha, which is switched off; meanwhile a photo is added to the disk elsewhere; plugged into beta
    # at another place
    assert machines.on("a", "umount", str(on_alpha)).returncode == 0
    machines.servers["a"].stop()
    photo = tmp_path / "lighthouse.jpg"
    photo.write_bytes(b"light")
    subprocess.run(["debugfs", "-w", "-R", f"write {photo} /2019/lighthouse.jpg", str(disk.image)],
                   check=True, capture_output=True)  # fmt: skip
    assert machines.on("b", "mount", "-o", "loop", str(disk.image), str(on_beta)).returncode == 0

    def betas() -> Any:
        [loc] = machines.json("b", "--library", "Photos", "location", "list")
        return loc if loc["device_id"] != alpha_id and loc["path"] == str(on_beta / "2019") else None

    taken = eventually(betas, 30, "beta to take the disk's location over")
    assert taken["id"] == listed[0]["id"] and taken["volume_id"] == mine["volume_id"]
    assert [v["mount_point"] for v in machines.json("b", "volume", "list") if v["id"] == mine["volume_id"]] == [str(on_beta)]

    def rescanned() -> Any:
        jobs = machines.json("b", "--library", "Photos", "job", "list", "--all")
        jobs = [j for j in jobs if j["kind"] == "index" and j["location_id"] == taken["id"]]
        return jobs if jobs and all(j["state"] == "completed" for j in jobs) else None

    [job] = eventually(rescanned, 60, "the rescan on beta")
    written = {k: job["result"][k] for k in ("added", "changed", "moved", "removed")}
    # it walked the disk's 63 entries and wrote the one that is new (hashing it alone); re-indexed from scratch, it
    # would have added 63 (main: it is never taken over)
    assert written == {"added": 1, "changed": 0, "moved": 0, "removed": 0}, job["result"]
    assert job["result"]["found"] == 63 and job["result"]["hashed"] == 1, job["result"]
    after = {name for (name,) in machines.query("b", "SELECT name FROM entries WHERE name != ''")}
    assert after == before | {"lighthouse.jpg"}  # every entry of alpha's kept, as beta's rows (taken from the file)

    tagged = machines.json("b", "--library", "Photos", "tag", "show", "summer")
    assert [t["path"] for t in tagged] == [str(on_beta / "2019" / "beach.jpg")]
    note = machines.sd("b", "--library", "Photos", "note", str(on_beta / "2019" / "rocks" / "photo-7.jpg"))
    assert note.strip() == "the grey one"

    # alpha, off and not told, tags a photo of the disk by its index (its own id for it), then comes back: the tag
    # reaches beta's file, and alpha shows it there once it hears the disk is beta's
    machines.sd("a", "--library", "Photos", "tag", "add", "summer", str(on_alpha / "2019" / "rocks" / "photo-3.jpg"))
    machines.servers["a"].start()
    rock = str(on_beta / "2019" / "rocks" / "photo-3.jpg")
    eventually(lambda: sorted(t["path"] for t in machines.json("b", "--library", "Photos", "tag", "show", "summer"))
               == sorted([str(on_beta / "2019" / "beach.jpg"), rock]), 30, "alpha's late tag on beta's file")  # fmt: skip

    # alpha learns it: the location is beta's (from beta's catalogue), with the new photo and the same tag
    def alpha_lists_betas() -> Any:
        [loc] = machines.json("a", "--library", "Photos", "location", "list")
        return loc if loc["device_id"] != alpha_id else None

    theirs = eventually(alpha_lists_betas, 30, "alpha to list the location as beta's")
    assert theirs["path"] == str(on_beta / "2019") and theirs["volume_id"] == mine["volume_id"]
    shown = machines.sd("a", "--library", "Photos", "location", "list")
    assert f"beta:{on_beta / '2019'}" in shown
    eventually(lambda: "lighthouse.jpg" in kept_names("a", theirs["device_id"]), 30, "beta's rescan on alpha")
    eventually(lambda: sorted(t["path"] for t in machines.json("a", "--library", "Photos", "tag", "show", "summer"))
               == sorted([str(on_beta / "2019" / "beach.jpg"), rock]), 30, "the tags on alpha")  # fmt: skip
    grey = f"beta:{on_beta / '2019' / 'rocks' / 'photo-7.jpg'}"
    eventually(lambda: machines.sd("a", "--library", "Photos", "note", grey).strip() == "the grey one", 30, "the note")
    machines.on("b", "umount", str(on_beta))
