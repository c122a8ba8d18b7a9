"""Bad input: odd names, links, FIFOs, sockets, vanishing files, unreadable and very deep folders never break a scan."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.errors import NotFound
from sdcore.index import cas
from sdcore.index import indexer as indexer_module
from sdcore.index.hasher import InlineHasher
from sdcore.index.indexer import index_location
from sdcore.index.listing import list_indexed, scan_ephemeral
from sdcore.library import Library, Location


async def index(library: Library, loc: Location, timeout: float = 30) -> dict[str, int]:
    job_id = await index_location(library, loc)
    record = await asyncio.wait_for(library.jobs.wait(job_id), timeout)
    assert record.state == "completed", record.error
    return record.stored_result  # type: ignore[no-any-return]


def listed_tree(library: Library, path: str) -> dict[bytes, Any]:
    """The index below `path` as {name bytes: entry}, walked through listings (as a user browses it)."""
    out: dict[bytes, Any] = {}
    pending = [(path, b"")]
    while pending:
        directory, prefix = pending.pop()
        listing = list_indexed(library, directory)
        assert listing is not None, directory
        for e in listing:
            rel = prefix + os.fsencode(e.name)
            out[rel] = e
            assert os.fsencode(e.path.path) == os.fsencode(directory) + b"/" + os.fsencode(e.name)
            if e.kind == "dir":
                pending.append((e.path.path, rel + b"/"))
    return out


def disk_tree(root: Path) -> dict[bytes, os.stat_result]:
    out: dict[bytes, os.stat_result] = {}
    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, broot)] = os.lstat(full)
    return out


ODD_NAMES = [
    b"bad\xff",
    b"\xc3\x28 half a letter.txt",
    b"new\nline.txt",
    b"carriage\rreturn",
    b"  leading and trailing spaces  ",
    b"tab\tand space .txt",
    b"-starts-with-dash",
    b"%41 not an escape",
    b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt",
    b"x" * 255,
    "é".encode() * 127 + b"z",  # 255 bytes, 128 characters
    b"\xff" * 255,
]


async def test_odd_names_are_indexed_listed_and_stable(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    broot = os.fsencode(root)
    for i, name in enumerate(ODD_NAMES):
        with open(os.path.join(broot, name), "wb") as f:
            f.write(b"%d" % i)
    os.mkdir(os.path.join(broot, b"dir \xfe\n"))
    with open(os.path.join(broot, b"dir \xfe\n", b"inner\xff"), "wb") as f:
        f.write(b"inner")
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    on_disk = disk_tree(root)
    assert (result["found"], result["added"], result["errors"], result["dirs"]) == (len(on_disk), len(on_disk), 0, 2)
    assert result["hashed"] == len(ODD_NAMES) + 1

    seen = listed_tree(library, str(root))
    assert set(seen) == set(on_disk)
    for rel, entry in seen.items():
        assert entry.inode == on_disk[rel].st_ino
        if entry.kind == "file":
            assert entry.cas_id == cas.cas_id(os.fsdecode(os.path.join(broot, rel)))

    # nothing changed: a second index must see every odd name as the same entry
    again = await index(library, loc)
    assert {k: again[k] for k in ("added", "changed", "moved", "removed", "errors", "hashed")} == dict.fromkeys(
        ("added", "changed", "moved", "removed", "errors", "hashed"), 0
    )
    assert {rel: e.entry_id for rel, e in listed_tree(library, str(root)).items()} == {
        rel: e.entry_id for rel, e in seen.items()
    }


async def test_a_renamed_odd_name_is_a_move(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    broot = os.fsencode(root)
    with open(os.path.join(broot, b"before\xff"), "wb") as f:
        f.write(b"data")
    loc = library.locations.add(str(root), mode="content")
    await index(library, loc)
    (before,) = list_indexed(library, str(root)) or []
    os.rename(os.path.join(broot, b"before\xff"), os.path.join(broot, b"after\nname\xfe"))
    result = await index(library, loc)
    assert (result["moved"], result["added"], result["removed"]) == (1, 0, 0)
    (after,) = list_indexed(library, str(root)) or []
    assert after.entry_id == before.entry_id and os.fsencode(after.name) == b"after\nname\xfe"


async def test_links_are_recorded_and_never_followed(library: Library, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(5):
        (outside / f"secret{i}").write_text("not in the location")
    root = tmp_path / "links"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "real.txt").write_text("real")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink(".", root / "sub" / "self")  # a directory loop
    os.symlink("..", root / "sub" / "parent")
    os.symlink("does/not/exist", root / "broken")
    os.symlink(str(outside), root / "out")
    os.symlink("sub/real.txt", root / "to_file")
    os.symlink(os.fsdecode(b"target\xff"), os.path.join(os.fsencode(root), b"link\xfe"))
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    on_disk = disk_tree(root)  # os.walk does not follow links either
    assert (result["found"], result["errors"], result["dirs"]) == (len(on_disk), 0, 2)

    seen = listed_tree(library, str(root))
    assert set(seen) == set(on_disk)
    links = {rel: e for rel, e in seen.items() if e.kind == "symlink"}
    assert {rel: os.fsencode(e.link_target) for rel, e in links.items()} == {
        b"loop_a": b"loop_b", b"loop_b": b"loop_a", b"sub/self": b".", b"sub/parent": b"..",
        b"broken": b"does/not/exist", b"out": os.fsencode(outside), b"to_file": b"sub/real.txt", b"link\xfe": b"target\xff",
    }
    assert all(e.cas_id is None for e in links.values())
    assert library.read().execute("SELECT COUNT(*) FROM entries WHERE name LIKE 'secret%'").fetchone() == (0,)
    root_entry = library.read().execute(
        "SELECT files, size FROM entries WHERE id = ?", (loc.root_id,)
    ).fetchone()
    assert root_entry == (1, 4)  # only sub/real.txt is a file


async def test_fifos_and_sockets_are_recorded_never_opened(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "special"
    root.mkdir()
    os.mkfifo(root / "pipe.txt")  # a FIFO with no writer: opening it to read would hang
    (root / "plain.txt").write_text("plain")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(root)  # a socket path must be short; bind it relative to the folder
    try:
        sock.bind("app.sock")
    finally:
        os.chdir(cwd)
    try:
        loc = library.locations.add(str(root), mode="content")
        result = await index(library, loc, timeout=20)
        assert (result["found"], result["errors"], result["hashed"]) == (3, 0, 1)
        kinds = {e.name: (e.kind, e.cas_id) for e in list_indexed(library, str(root)) or []}
        assert kinds == {"pipe.txt": ("fifo", None), "app.sock": ("socket", None), "plain.txt": ("file", kinds["plain.txt"][1])}
        assert kinds["plain.txt"][1] is not None
        ephemeral = {e.name: e.kind for batch in scan_ephemeral(str(root)) for e in batch}
        assert ephemeral == {"pipe.txt": "fifo", "app.sock": "socket", "plain.txt": "file"}
    finally:
        sock.close()


@pytest.fixture
def vanishing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Paths to delete (or append to) just before the indexer first hashes anything."""
    plan: list[str] = []
    real = cas.identify

    def identify(path: str) -> tuple[str | None, bytes, int]:
        while plan:
            action, target = plan.pop(0).split(":", 1)
            if action == "delete":
                os.unlink(target)
            else:
                with open(target, "ab") as f:
                    f.write(b"more bytes")
        return real(path)

    monkeypatch.setattr(cas, "identify", identify)
    monkeypatch.setattr(indexer_module, "HASH_WHILE_WALKING", 0.0)  # nothing read as the folders are listed
    monkeypatch.setattr(indexer_module, "start_hasher", InlineHasher)  # hashing in this process, where the patch is
    yield plan


async def test_a_file_deleted_between_listing_and_hashing_is_no_crash(
    library: Library, tmp_path: Path, vanishing: list[str]
) -> None:
    root = tmp_path / "v"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / name).write_text(name * 10)
    vanishing.append(f"delete:{root / 'b'}")
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    # gone, not unreadable: the index walks again, which finds it removed
    assert (result["found"], result["added"], result["removed"], result["errors"]) == (2, 3, 1, 0)
    by_name = {e.name: e for e in list_indexed(library, str(root)) or []}
    assert sorted(by_name) == ["a", "c"] and by_name["a"].cas_id and by_name["c"].cas_id
    again = await index(library, loc)
    assert (again["removed"], again["errors"]) == (0, 0)
    assert library.read().execute("SELECT files FROM entries WHERE id = ?", (loc.root_id,)).fetchone() == (2,)


async def test_a_file_that_grows_during_the_scan_is_rehashed_next_time(
    library: Library, tmp_path: Path, vanishing: list[str]
) -> None:
    root = tmp_path / "g"
    root.mkdir()
    (root / "log.txt").write_text("line\n" * 10)
    vanishing.append(f"append:{root / 'log.txt'}")
    loc = library.locations.add(str(root), mode="content")
    await index(library, loc)
    again = await index(library, loc)
    assert (again["changed"], again["hashed"]) == (1, 1)
    (entry,) = list_indexed(library, str(root)) or []
    assert entry.size == (root / "log.txt").stat().st_size
    assert entry.cas_id == cas.cas_id(str(root / "log.txt"))


UNREADABLE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from sdcore.index.indexer import index_location
    from sdcore.library import Libraries

    async def main(base):
        library = Libraries(Path(base) / "data" / "libraries").create("L")
        loc = library.locations.add(os.path.join(base, "tree"), mode="content")
        record = await library.jobs.wait(await index_location(library, loc))
        errors = library.read().execute("SELECT name, error FROM entries WHERE error IS NOT NULL").fetchall()
        names = sorted(r[0] for r in library.read().execute("SELECT name FROM entries WHERE parent_id IS NOT NULL"))
        print(json.dumps({"state": record.state, "error": record.error, "result": record.stored_result,
                          "errors": errors, "names": names}))
        await library.jobs.close()
        library.close()

    asyncio.run(main(sys.argv[1]))
    """
)


def _without_root_read_powers() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so root obeys chmod 000."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_directory_is_an_error_that_does_not_abort_the_scan(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "locked" / "hidden.txt").write_text("x")
    (tree / "open").mkdir()
    (tree / "open" / "seen.txt").write_text("seen")
    (tree / "top.txt").write_text("top")
    (tree / "secret.txt").write_text("no")
    os.chmod(tree / "secret.txt", 0)
    os.chmod(tree / "locked", 0)
    try:
        # Tests run as root, and root reads any folder: the scan runs in a child without that power.
        out = subprocess.run(
            [sys.executable, "-c", UNREADABLE_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60,
            preexec_fn=_without_root_read_powers if os.geteuid() == 0 else None,
        )
        probe = subprocess.run(
            [sys.executable, "-c", f"import os; os.listdir({str(tree / 'locked')!r})"], capture_output=True,
            preexec_fn=_without_root_read_powers if os.geteuid() == 0 else None,
        )
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot make a folder unreadable for this user: {exc}")
    if probe.returncode == 0:
        pytest.skip("this user reads a chmod 000 folder anyway")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["state"] == "completed", report["error"]
    result = report["result"]
    assert result["errors"] == 2  # the folder, and the file that cannot be hashed
    assert [e[0] for e in sorted(report["errors"])] == ["locked", "secret.txt"]
    assert all(e[1] for e in report["errors"])  # with the reason
    assert report["names"] == ["locked", "open", "secret.txt", "seen.txt", "top.txt"]
    assert result["found"] == 5 and result["dirs"] == 3
    os.chmod(tree / "locked", 0o755)


async def test_a_directory_500_levels_deep(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(500):  # one level at a time: resolving a 500-part path each time is slow
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
        f.write("found me")
    os.close(fd)
    rel = "/".join(["d"] * 500)
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    assert (result["dirs"], result["found"], result["errors"], result["hashed"]) == (501, 501, 0, 1)
    listing = list_indexed(library, str(root / rel))
    assert listing is not None and [e.name for e in listing] == ["bottom.txt"]
    assert library.read().execute("SELECT files, size FROM entries WHERE id = ?", (loc.root_id,)).fetchone() == (1, 8)
    os.rename(root / "d", tmp_path / "gone")  # out of the location: as good as deleted, and quick
    again = await index(library, loc)
    assert again["removed"] == 501
    assert library.read().execute("SELECT COUNT(*) FROM entries WHERE location_id = ?", (loc.id,)).fetchone() == (1,)


async def test_an_empty_location(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    expected = {"dirs": 1, "found": 0, "added": 0, "changed": 0, "moved": 0, "removed": 0, "errors": 0, "hashed": 0}
    assert {key: result[key] for key in expected} == expected
    assert list_indexed(library, str(root)) == []
    assert library.locations.get(loc.id).scan_state == "indexed"


async def test_a_path_that_does_not_exist_is_a_clear_error(library: Library, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        library.locations.add(str(tmp_path / "nowhere"))
    with pytest.raises(NotFound, match="nowhere"):
        list(scan_ephemeral(str(tmp_path / "nowhere")))


async def test_a_location_whose_folder_vanished_fails_its_index_clearly(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "usb"
    root.mkdir()
    (root / "f").write_text("f")
    loc = library.locations.add(str(root), mode="content")
    await index(library, loc)
    root.joinpath("f").unlink()
    root.rmdir()
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "failed"
    assert "is not there" in (record.error or "")
    assert library.locations.get(loc.id).scan_state == "failed"
    # the index is kept for when the disk comes back
    assert [e.name for e in list_indexed(library, str(root)) or []] == ["f"]
