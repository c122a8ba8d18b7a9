"""A device paired with `shared` trust, when its owner shares their whole home folder, still cannot reach the
home's data dir of sdtui (the device's SSH key, its trust store): not by its path, not through a symlink or a
hard link it makes in the share, not by renaming a folder above it away; over sd-rpc and over sftp alike."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sdcore.fs import beneath
from sdcore.library import Libraries
from sdcore.net import Network, PermissionDenied
from sdcore.net.testing import device_network, pair

SD = Path(sys.executable).parent / "sd"
NEVER = "this device's data dir: never shared"


@dataclass
class Home:
    """alpha keeps its data dir in `home`/.local/share/sdtui and shares `home` with beta (`shared` trust)."""

    home: Path
    alpha: Network
    beta: Network

    @property
    def data_dir(self) -> Path:
        return self.alpha.device.data_dir

    @property
    def key(self) -> Path:
        return self.data_dir / "device_key"

    @property
    def trust(self) -> Path:
        return self.data_dir / "trust.json"

    async def call(self, method: str, **args: Any) -> Any:
        """beta's request to alpha, paths as bytes."""
        paths = {k: os.fsencode(v) if isinstance(v, Path) else v for k, v in args.items()}
        return await self.beta.link("alpha").call(method, **paths)

    @asynccontextmanager
    async def sftp(self) -> AsyncIterator[asyncssh.SFTPClient]:
        """beta's sftp session on alpha (a stock client with beta's key)."""
        assert self.alpha.port is not None
        async with (
            asyncssh.connect(
                "127.0.0.1",
                self.alpha.port,
                username="sd",
                client_keys=[asyncssh.read_private_key(self.beta.device.data_dir / "device_key")],
                known_hosts=None,
                agent_path=None,
                config=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            yield sftp


@pytest.fixture(params=["openat2", "descriptor walk"])
async def shared_home(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Home]:
    """Each attack twice: names resolved by the kernel, and by the walk made where it has no openat2."""
    if request.param == "descriptor walk":
        monkeypatch.setattr(beneath, "_have_openat2", False)
    home = tmp_path / "home"
    async with (
        device_network(home / ".local" / "share" / "sdtui", "alpha") as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta, host_trust="shared")
        alpha.trust.add_share(str(home))
        (home / "notes.txt").write_text("the owner's notes, shared")
        yield Home(home, alpha, beta)


async def test_a_shared_device_cannot_read_the_private_key_or_look_into_the_data_dir(shared_home: Home) -> None:
    h = shared_home
    with pytest.raises(PermissionDenied, match=f"device_key is in {NEVER}"):
        await h.call("read_open", path=h.key, length=4096)
    for method in ("list_open", "stat"):
        with pytest.raises(PermissionDenied, match=f"sdtui is {NEVER}"):
            await h.call(method, path=h.data_dir)
    with pytest.raises(PermissionDenied, match=NEVER):
        await h.call("full_hash", path=h.key)
    # the rest of the home is the device's, the folder holding the data dir too
    assert (await h.call("read_open", path=h.home / "notes.txt", length=100))[1] == b"the owner's notes, shared"
    assert [e[0] for e in (await h.call("list_open", path=h.data_dir.parent))[1]] == [b"sdtui"]


async def test_a_shared_device_cannot_write_the_trust_store(shared_home: Home) -> None:
    h = shared_home
    before = h.trust.read_bytes()
    (h.home / "mine.json").write_text('{"peers": [], "shares": ["/"]}')
    attempts = [
        h.call("write_file", path=h.trust, data=b'{"peers": [], "shares": ["/"]}'),
        h.call("write_open", path=h.data_dir / "admins.json"),
        h.call("rename", src=h.home / "mine.json", dst=h.trust),
        h.call("rename", src=h.trust, dst=h.home / "theirs.json"),
        h.call("delete", path=h.trust),
        h.call("trash", path=h.trust),
        h.call("mkdir", path=h.data_dir / "libraries" / "evil.sdlibrary", parents=True),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match=NEVER):
            await attempt
    told = await h.call("write_files", files=[[os.fsencode(p), b"{}", None, None] for p in (h.trust, h.data_dir / "admins.json")])
    assert [(ok, error["type"], NEVER in error["message"]) for ok, error in told] == [(False, "PermissionDenied", True)] * 2
    assert h.trust.read_bytes() == before
    assert sorted(p.name for p in h.data_dir.iterdir()) == ["device.json", "device_key", "trust.json"]
    assert h.alpha.trust.shares() == [str(h.home)]


async def test_a_shared_device_cannot_move_a_folder_above_the_data_dir_away(shared_home: Home) -> None:
    """Else it would rename ~/.local away and make a new ~/.local/share/sdtui with a trust store of its own."""
    h = shared_home
    local = h.home / ".local"
    for above in (local, local / "share", h.data_dir):
        for attempt in (
            h.call("rename", src=above, dst=h.home / "old"),
            h.call("delete", path=above),
            h.call("trash", path=above),
        ):
            with pytest.raises(PermissionDenied, match="data dir"):
                await attempt
    with pytest.raises(PermissionDenied, match="holds this device's data dir"):
        await h.call("rename", src=h.home / "notes.txt", dst=local)  # nor put something in its place
    assert h.key.exists() and not (h.home / "old").exists()
    # what else those folders hold is the other device's to change
    await h.call("mkdir", path=local / "share" / "other")
    await h.call("rename", src=local / "share" / "other", dst=h.home / "other")
    assert (h.home / "other").is_dir()


async def test_a_symlink_or_hard_link_made_in_the_share_does_not_lead_into_the_data_dir(shared_home: Home) -> None:
    h = shared_home
    async with h.sftp() as sftp:
        await sftp.symlink(".local/share/sdtui", str(h.home / "door"))  # stays in the share by its name
        await sftp.symlink(".local/share/sdtui/device_key", str(h.home / "key"))
        with pytest.raises(asyncssh.SFTPPermissionDenied, match=NEVER):
            await sftp.link(str(h.key), str(h.home / "hard-key"))
        with pytest.raises(asyncssh.SFTPPermissionDenied, match=NEVER):
            await sftp.link(str(h.home / "door" / "device_key"), str(h.home / "hard-key"))
    assert not (h.home / "hard-key").exists()
    for attempt in (
        h.call("read_open", path=h.home / "key", length=4096),
        h.call("read_open", path=h.home / "door" / "device_key", length=4096),
        h.call("list_open", path=h.home / "door"),
        h.call("write_file", path=h.home / "door" / "trust.json", data=b"{}"),
        h.call("rename", src=h.home / "notes.txt", dst=h.home / "door" / "trust.json"),
    ):
        with pytest.raises(PermissionDenied, match=NEVER):
            await attempt
    # the links themselves are the peer's: it may look at them and remove them
    assert (await h.call("stat", path=h.home / "door"))[1] == "symlink"
    await h.call("delete", path=h.home / "door")
    assert h.data_dir.is_dir() and not (h.home / "door").exists()


async def test_a_hard_link_to_the_key_that_the_owner_made_in_the_share_gives_nothing(shared_home: Home) -> None:
    """A backup made with hard links (`cp -al`) into the shared home: the key is the same file there."""
    h = shared_home
    os.link(h.key, h.home / "backup-key")
    with pytest.raises(PermissionDenied, match=f"backup-key is a hard link to a file of {NEVER}"):
        await h.call("read_open", path=h.home / "backup-key", length=4096)
    async with h.sftp() as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="hard link"):
            await sftp.open(str(h.home / "backup-key"))


async def test_a_hard_link_to_a_trust_store_written_since_the_peer_connected_gives_nothing(shared_home: Home) -> None:
    """The trust store is replaced (a new file) at each change: one written after the peer's session began, then
    hard-linked by its owner into the share, is still the data dir's."""
    h = shared_home
    assert (await h.call("read_open", path=h.home / "notes.txt", length=100))[1]  # the session is under way
    h.alpha.trust.add_share(str(h.home / ".."))  # the trust store written again
    os.link(h.trust, h.home / "backup-trust.json")
    with pytest.raises(PermissionDenied, match="is a hard link to a file of"):
        await h.call("read_open", path=h.home / "backup-trust.json", length=4096)


async def test_a_link_swapped_in_while_requests_are_in_flight_never_leads_into_the_data_dir(shared_home: Home) -> None:
    """The peer swaps `x` between a folder of its own and a link to the data dir as fast as it can, with reads
    of `x/device_key` in flight: what is read is judged where it really is, when it is opened."""
    h = shared_home
    (h.home / "decoy").mkdir()
    (h.home / "decoy" / "device_key").write_text("not the key")
    (h.home / "link").symlink_to(".local/share/sdtui")
    secret = h.key.read_bytes()
    got: list[object] = []
    decoy_read = 0
    for rounds in range(1, 401):  # 40 rounds at least, more until one read landed on the decoy (a loaded machine)
        got += await asyncio.gather(
            h.call("read_open", path=h.home / "x" / "device_key", length=4096),
            h.call("rename", src=h.home / "link", dst=h.home / "x"),
            h.call("read_open", path=h.home / "x" / "device_key", length=4096),
            h.call("rename", src=h.home / "x", dst=h.home / "link"),
            h.call("rename", src=h.home / "decoy", dst=h.home / "x"),
            h.call("read_open", path=h.home / "x" / "device_key", length=4096),
            h.call("rename", src=h.home / "x", dst=h.home / "decoy"),
            return_exceptions=True,
        )
        decoy_read = len([a for a in got if isinstance(a, list) and a[1] == b"not the key"])
        if rounds >= 40 and decoy_read:
            break
    assert not [a for a in got if isinstance(a, list) and a[1] == secret]
    assert decoy_read  # the race was run
    assert {str(a) for a in got if isinstance(a, PermissionDenied)} <= {f"alpha:{h.home}/x/device_key is in {NEVER}"}


async def test_a_home_trash_the_peer_linked_to_the_data_dir_takes_nothing(
    shared_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home trash is ~/.local/share/Trash, beside the data dir: the peer makes it a link to `sdtui` (it stays
    in the share by its name), then trashes its own files, which would land in the data dir."""
    h = shared_home
    monkeypatch.setenv("XDG_DATA_HOME", str(h.home / ".local" / "share"))
    async with h.sftp() as sftp:
        await sftp.symlink("sdtui", str(h.home / ".local" / "share" / "Trash"))
    before = sorted(p.name for p in h.data_dir.iterdir())
    with pytest.raises(PermissionDenied, match=f"Trash is {NEVER}"):
        await h.call("trash", path=h.home / "notes.txt")
    assert sorted(p.name for p in h.data_dir.iterdir()) == before
    assert (h.home / "notes.txt").exists()


async def test_a_library_kept_outside_the_data_dir_is_as_private_as_the_data_dir(shared_home: Home) -> None:
    """`sd library open ~/Libs/Work.sdlibrary`, while the peer is connected, lists a library kept in the shared home:
    its database (the names of every file it indexed, notes, the jobs this device resumes) stays this device's."""
    h = shared_home
    assert (await h.call("read_open", path=h.home / "notes.txt", length=100))[1]  # the session is under way
    work = h.home / "Libs" / "Work.sdlibrary"
    Libraries(h.home / "Libs").create("Work").close()
    Libraries(h.data_dir / "libraries").add_folder(work)
    database = (work / "database.db").read_bytes()
    for attempt in (
        h.call("read_open", path=work / "database.db", length=4096),
        h.call("list_open", path=work),
        h.call("write_file", path=work / "database.db", data=b"a database of the peer's"),
        h.call("delete", path=work / "library.json"),
        h.call("rename", src=work, dst=h.home / "old"),
        h.call("rename", src=h.home / "Libs", dst=h.home / "old"),  # else a Libs/Work.sdlibrary of its own
    ):
        with pytest.raises(PermissionDenied, match="(is|is in|holds) .*a library of"):
            await attempt
    assert (work / "database.db").read_bytes() == database
    assert [e[0] for e in (await h.call("list_open", path=h.home / "Libs"))[1]] == [b"Work.sdlibrary"]


async def test_write_files_plants_nothing_in_a_library_or_the_data_dir_by_any_way_to_it(shared_home: Home) -> None:
    """A WAL or journal planted beside a library's database would be read as its own at the next open: write_files
    is kept out of a library kept in the share, of the data dir's, and of both through a link the peer finds."""
    h = shared_home
    work = h.home / "Libs" / "Work.sdlibrary"
    Libraries(h.home / "Libs").create("Work").close()
    Libraries(h.data_dir / "libraries").add_folder(work)
    (h.home / "to-data").symlink_to(".local/share/sdtui")  # links that stay in the share
    (h.home / "to-work").symlink_to("Libs/Work.sdlibrary")
    before = {p: sorted(os.listdir(p)) for p in (work, h.data_dir, h.data_dir / "libraries")}
    targets = [
        work / "database.db-wal", work / "database.db-journal", work / ".lock", work / "thumbnails" / "x.webp",
        h.data_dir / "admins.json", h.data_dir / "libraries" / "Evil.sdlibrary", h.home / "to-data" / "admins.json",
        h.home / "to-work" / "database.db-wal",
    ]  # fmt: skip
    told = await h.call("write_files", files=[[os.fsencode(p), b"planted", None, None] for p in targets])
    assert [(ok, r["type"]) for ok, r in told] == [(False, "PermissionDenied")] * len(targets)
    assert all(("data dir" in r["message"]) or ("a library of" in r["message"]) for _, r in told), told
    assert {p: sorted(os.listdir(p)) for p in before} == before


async def test_a_library_on_a_drive_plugged_in_while_the_peer_is_connected_is_kept_too(shared_home: Home) -> None:
    """A library listed from a drive that is not plugged in when the peer connects (its folder not there)."""
    h = shared_home
    work = h.home / "Drive" / "Work.sdlibrary"
    Libraries(h.home / "Drive").create("Work").close()
    Libraries(h.data_dir / "libraries").add_folder(work)
    (h.home / "Drive").rename(h.home / "unplugged")
    assert (await h.call("read_open", path=h.home / "notes.txt", length=100))[1]  # the session is under way
    (h.home / "unplugged").rename(h.home / "Drive")
    with pytest.raises(PermissionDenied, match="a library of this device"):
        await h.call("read_open", path=work / "database.db", length=4096)


async def test_sftp_is_kept_out_of_the_data_dir_the_same_way(shared_home: Home) -> None:
    h = shared_home
    before = h.trust.read_bytes()
    async with h.sftp() as sftp:
        refused = [
            sftp.open(str(h.key)),
            sftp.stat(str(h.data_dir)),
            sftp.listdir(str(h.data_dir)),
            sftp.open(str(h.trust), "wb"),
            sftp.open(str(h.data_dir / "admins.json"), "wb"),
            sftp.remove(str(h.trust)),
            sftp.posix_rename(str(h.home / "notes.txt"), str(h.trust)),
            sftp.rename(str(h.home / ".local"), str(h.home / "old")),
            sftp.posix_rename(str(h.home / ".local" / "share"), str(h.home / "old")),
            sftp.rmdir(str(h.data_dir)),
            sftp.chmod(str(h.home / ".local"), 0o777),  # other users of the machine could then move it
            sftp.mkdir(str(h.data_dir / "highwater")),
        ]
        for attempt in refused:
            with pytest.raises(asyncssh.SFTPPermissionDenied, match="data dir"):
                await attempt
        assert "sdtui" in await sftp.listdir(str(h.data_dir.parent))
        assert await (await sftp.open(str(h.home / "notes.txt"))).read() == "the owner's notes, shared"
    assert h.trust.read_bytes() == before and (h.home / ".local").stat().st_mode & 0o777 != 0o777


async def test_sftp_opens_only_files_and_folders_for_a_shared_device(shared_home: Home) -> None:
    """A FIFO or a device in a share (a terminal, with / shared) is not a file to hand another device."""
    h = shared_home
    os.mkfifo(h.home / "queue")
    async with h.sftp() as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="not a file"):
            await sftp.open(str(h.home / "queue"))
        with pytest.raises(asyncssh.SFTPError):  # for writing, with no reader: ENXIO
            await sftp.open(str(h.home / "queue"), "wb")
        assert await (await sftp.open(str(h.home / "notes.txt"))).read() == "the owner's notes, shared"


async def test_a_spacedrop_folder_a_peer_replaced_by_a_link_into_the_data_dir_takes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with (
        device_network(home / ".local" / "share" / "sdtui", "alpha", auto_accept_drops=True) as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta, host_trust="shared")
        alpha.trust.add_share(str(home))
        alpha.spacedrop_dir = home / "Downloads"
        (home / "Downloads").symlink_to(".local/share/sdtui")  # as the peer can make it with sftp
        offered = tmp_path / "admins.json"
        offered.write_text("[]")
        with pytest.raises(PermissionDenied, match=f"Downloads is {NEVER}"):
            await beta.drop("alpha", [str(offered)])
        assert not (alpha.device.data_dir / "admins.json").exists()


async def test_a_file_the_peer_linked_to_the_key_is_not_sent_to_it_by_spacedrop(tmp_path: Path) -> None:
    """The peer makes ~/holiday.jpg a link to the key (an absolute one: it names a place in the share, so it may) and
    asks for the photo: the owner's `sd drop friend ~/holiday.jpg` must not send it the key. The link is judged when
    the file is opened, before the offer: a link swapped in once the peer has the offer changes nothing."""
    home = tmp_path / "home"
    async with (
        device_network(home / ".local" / "share" / "sdtui", "alpha") as alpha,
        device_network(tmp_path / "b", "beta", auto_accept_drops=True) as beta,
    ):
        await pair(alpha, beta, host_trust="shared")
        alpha.trust.add_share(str(home))
        h = Home(home, alpha, beta)
        (home / "photo.jpg").write_bytes(b"a photo")
        async with h.sftp() as sftp:
            await sftp.symlink(str(h.key), str(home / "holiday.jpg"))
        with pytest.raises(PermissionDenied, match=f"device_key is in {NEVER}"):
            await alpha.drop("beta", [str(home / "holiday.jpg")])
        assert not beta.spacedrop_dir.exists() or not any(beta.spacedrop_dir.iterdir())
        assert await alpha.drop("beta", [str(home / "photo.jpg")]) == ["photo.jpg"]  # what the owner names is sent
        assert (beta.spacedrop_dir / "photo.jpg").read_bytes() == b"a photo"


async def test_a_full_trust_device_still_reaches_the_data_dir(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with (
        device_network(home / ".local" / "share" / "sdtui", "alpha") as alpha,
        device_network(tmp_path / "c", "gamma") as gamma,
    ):
        await pair(alpha, gamma, host_trust="full")
        device_json = alpha.device.data_dir / "device.json"
        got = await gamma.link("alpha").call("read_open", path=os.fsencode(device_json), length=4096)
        assert got[1] == device_json.read_bytes()


def _sd(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SD, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60)


def test_sd_share_add_refuses_the_data_dir_and_notes_it_in_a_folder_that_holds_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data_dir = home / ".local" / "share" / "sdtui"
    data_dir.mkdir(parents=True, mode=0o700)
    (data_dir / "libraries").mkdir(mode=0o700)
    for inside in (data_dir, data_dir / "libraries"):
        refused = _sd(data_dir, "share", "add", str(inside))
        assert refused.returncode != 0
        assert "this device's data dir (its keys and paired devices), which is never shared" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    accepted = _sd(data_dir, "share", "add", str(home))
    assert accepted.returncode == 0, accepted.stderr
    assert f"holds this device's data dir {data_dir}, which stays private" in accepted.stdout + accepted.stderr
    assert "run commands as you" not in accepted.stdout + accepted.stderr  # not the user's home
    assert _sd(data_dir, "share", "list").stdout.split() == [str(home)]
    user_home = _sd(data_dir, "share", "add", os.environ["HOME"])  # the home a shell would give ~ for
    assert "may change ~/.ssh/authorized_keys, ~/.bashrc and the like, and so run commands as you" in user_home.stdout


async def test_a_shared_root_gives_neither_the_memory_nor_the_files_of_the_running_server(shared_home: Home) -> None:
    """Sharing / shares /proc too: /proc/self/mem is the memory of the process that holds the device's key (and
    written, its code). The server here runs in this test's process: the peer aims at bytes it knows are there."""
    h = shared_home
    h.alpha.trust.add_share("/")
    secret = h.key.read_bytes()  # the key, in the server's memory as the device holds it
    where = ctypes.cast(secret, ctypes.c_void_p).value
    with pytest.raises(PermissionDenied, match="files of running processes"):
        await h.call("read_open", path=Path("/proc/self/mem"), offset=where, length=len(secret))
    for method in ("list_open", "read_open"):
        with pytest.raises(PermissionDenied, match="files of running processes"):
            await h.call(method, path=Path("/proc/self/environ" if method == "read_open" else "/proc/self"))
    mine = ctypes.create_string_buffer(b"untouched")
    async with h.sftp() as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="files of running processes"):
            async with sftp.open("/proc/self/mem", "r+b") as mem:
                await mem.seek(ctypes.addressof(mine))
                await mem.write(b"rewritten")
    assert mine.value == b"untouched"
    assert (await h.call("read_open", path=h.home / "notes.txt", length=100))[1] == b"the owner's notes, shared"


@pytest.mark.parametrize("layout", ["a chain of symlinks", "'..' after a symlink"])
async def test_a_data_dir_named_through_symlinks_is_kept_whatever_the_links(tmp_path: Path, layout: str) -> None:
    """SD_DATA_DIR=~/sd/data with ~/sd -> dots and ~/dots -> real (dotfiles kept behind links), or
    SD_DATA_DIR=~/sd/../data with ~/sd -> deep/sd (the kernel's '..' is the real folder's parent, not ~)."""
    home = tmp_path / "home"
    (home / "real").mkdir(parents=True)
    if layout == "a chain of symlinks":
        (home / "dots").symlink_to("real")
        (home / "sd").symlink_to("dots")
        named, real, link = home / "sd" / "data", home / "real" / "data", home / "dots"
    else:
        (home / "real" / "sd").mkdir()
        (home / "sd").symlink_to("real/sd")
        named, real, link = Path(f"{home}/sd/../data"), home / "real" / "data", home / "real"
    async with (
        device_network(named, "alpha") as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta, host_trust="shared")
        alpha.trust.add_share(str(home))
        assert (real / "device_key").exists()
        h = Home(home, alpha, beta)
        with pytest.raises(PermissionDenied, match=NEVER):
            await h.call("read_open", path=real / "device_key", length=4096)
        (home / "evil" / "data").mkdir(parents=True)
        (home / "evil" / "data" / "trust.json").write_text('{"peers": [], "shares": ["/"]}')
        with pytest.raises(PermissionDenied, match="holds this device's data dir"):
            await h.call("rename", src=link, dst=home / "old")  # and then a link of its own in its place
        assert alpha.trust.shares() == [str(home)]


def _levels_down(dir_fd: int, count: int) -> int:
    """A descriptor of a new folder `count` levels below the open folder `dir_fd` (d/d/.../d), which it closes."""
    for _ in range(count):
        os.mkdir("d", dir_fd=dir_fd)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
        os.close(dir_fd)
        dir_fd = below
    return dir_fd


async def test_a_folder_linked_deeper_than_any_real_path_is_refused_not_walked(shared_home: Home) -> None:
    """Symlinks of 2,000 levels each, made by the peer (mkdir, rename, symlink), lead 80,000 folders deep from a
    path of a few names: judging whether such a folder is in the data dir must not walk 80,000 folders up for each
    request. A folder more than 1,024 deep is refused; here two links of 600 levels."""
    h = shared_home
    deep = h.home / "deep"
    deep.mkdir()
    levels = "/".join(["d"] * 600)
    middle = _levels_down(os.open(deep, os.O_RDONLY | os.O_DIRECTORY), 600)
    os.symlink(levels, "l1", dir_fd=middle)
    (deep / "l0").symlink_to(levels)
    bottom = _levels_down(middle, 600)
    os.close(os.open("end.txt", os.O_WRONLY | os.O_CREAT, dir_fd=bottom))
    os.close(bottom)
    try:
        for method, args in (("read_open", {"length": 100}), ("list_open", {}), ("stat", {})):
            with pytest.raises(PermissionDenied, match="folders deep"):
                await h.call(method, path=deep / "l0" / "l1" / "end.txt", **args)
        assert sorted(e[0] for e in (await h.call("list_open", path=deep / "l0"))[1]) == [b"d", b"l1"]
    finally:
        shutil.rmtree(deep / levels / "d")  # rmtree recurses: 1,200 levels at once are beyond Python's limit
        shutil.rmtree(deep)


async def test_thousands_of_refused_opens_leave_no_descriptor_open_on_the_server(shared_home: Home) -> None:
    """Every refusal closes what it opened to judge the request (the folder, the file, the FIFO): a peer asking
    again and again for the key, the trust store through a link it made, or a FIFO holds nothing on the server."""
    h = shared_home
    os.mkfifo(h.home / "queue")
    (h.home / "to-key").symlink_to(".local/share/sdtui/device_key")
    await h.call("read_open", path=h.home / "notes.txt", length=16)  # the session's own descriptors, opened once
    before = len(os.listdir("/proc/self/fd"))
    refused = 0
    async with h.sftp() as sftp:
        for _ in range(250):
            for path in (h.key, h.home / "to-key", h.trust):
                with pytest.raises(PermissionDenied):
                    await h.call("read_open", path=path, length=16)
                refused += 1
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(str(h.home / "queue"))
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(str(h.home / "to-key"))
            refused += 2
    assert refused == 1250
    assert len(os.listdir("/proc/self/fd")) <= before + 2  # (the sftp session, gone with it, may leave a moment)
