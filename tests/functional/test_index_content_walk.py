"""A content index's first load reads each file's content identity as the walker lists its folder: the same cas_ids
and kinds as the content phase gives, each file read once, nothing read that is not the file listed."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from sdcore import metadata, tags
from sdcore.index import indexer
from sdcore.index.hasher import identify_listing
from sdcore.index.walker import KIND, IgnoreRules, ProcessWalker, open_dir, scan_dir
from sdcore.library import Library
from sdcore.sdpath import to_db
from tests.functional.test_indexer import PNG, entries, index

# cas_ids of fixed contents, as the algorithm gave them before the walker read any (c76969f): a contract across devices.
# threshold.bin is the largest file hashed whole, big.bin is sampled.
PINNED = {
    "hello.txt": (b"hello world\n", "b2f7e21510e6bb15"),
    "threshold.bin": (random.Random(7).randbytes(102_400), "e86d4d4733ecab45"),
    "big.bin": (random.Random(8).randbytes(1_000_003), "bbaf387130f39783"),
}


def make_tree(root: Path) -> None:
    """Files of every sort the content phase meets: pinned contents, a PNG named .txt, a non-UTF-8 name, an empty
    file, a symlink, a FIFO, copies in folders of their own."""
    for d in ("a", "a/deeper", "b"):
        (root / d).mkdir(parents=True)
        for name, (data, _) in PINNED.items():
            (root / d / name).write_bytes(data)
    (root / "a" / "picture.txt").write_bytes(PNG)
    (root / "b" / "notes").write_bytes(b"plain words, no extension")
    (root / "b" / "empty.txt").write_bytes(b"")
    os.mkfifo(root / "b" / "pipe")
    os.symlink("../a/hello.txt", root / "b" / "link.txt")
    with open(os.path.join(os.fsencode(root / "b"), b"caf\xe9.txt"), "wb") as f:
        f.write(b"non-UTF-8 name")


def content(library: Library, loc: Any) -> dict[str, tuple]:
    return {
        rel: (e["kind"], e["size"], e["cas_id"], e["object_kind"], e["error"])
        for rel, e in entries(library, loc).items()
    }


async def test_a_first_content_index_gives_the_pinned_cas_ids_and_reads_each_file_once(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    make_tree(root)

    def no_second_pass() -> None:
        raise AssertionError("a hashing process was started after the walk: files were read twice over")

    monkeypatch.setattr(indexer, "start_hasher", no_second_pass)
    loc = library.locations.add(str(root), mode="content")
    result = await index(library, loc)
    assert (result["errors"], result["hashed"]) == (0, 3 * 3 + 3)  # the pinned files, the PNG, notes, café
    got = content(library, loc)
    for d in ("a", "a/deeper", "b"):
        for name, (data, cas_id) in PINNED.items():
            assert got[f"{d}/{name}"][1:3] == (len(data), cas_id), f"{d}/{name}"
    assert got["a/picture.txt"][3] == "image"  # its first bytes, not its name
    assert got["b/notes"][3] == "text"
    assert got["b/" + to_db("caf\udce9.txt")][2]  # as the database holds the name
    assert [got[n][2] for n in ("b/empty.txt", "b/pipe", "b/link.txt")] == [None, None, None]


async def test_the_walker_and_the_content_phase_identify_a_tree_alike(
    library: Library, core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    walked = library.locations.add(str(root), mode="content")
    await index(library, walked)

    monkeypatch.setattr(
        indexer, "HASH_WHILE_WALKING", 0.0
    )  # as when the walker's time is up: the content phase reads all
    other = core.libraries.create("Other")
    phased = other.locations.add(str(root), mode="content")
    result = await index(other, phased)
    assert result["hashed"] == 12
    assert content(other, phased) == content(library, walked)


def test_a_file_that_is_not_the_one_listed_is_left_to_the_content_phase(tmp_path: Path) -> None:
    for name in ("same.txt", "grown.txt", "replaced.txt", "gone.txt"):
        (tmp_path / name).write_bytes(b"as listed")
    found = scan_dir(str(tmp_path), "", IgnoreRules(()))
    with open(tmp_path / "grown.txt", "ab") as f:
        f.write(b" and more")
    os.unlink(tmp_path / "replaced.txt")
    os.mkfifo(tmp_path / "replaced.txt")  # a FIFO in its place is never opened for reading (that would wait)
    os.unlink(tmp_path / "gone.txt")
    fd = open_dir(str(tmp_path), "")
    try:
        identified = {f[0]: f[-1] for f in identify_listing(fd, found, math.inf)}
        too_late = {f[0]: f[-1] for f in identify_listing(fd, found, time.monotonic() - 1)}
    finally:
        os.close(fd)
    assert identified["same.txt"] is not None
    assert (identified["grown.txt"], identified["replaced.txt"], identified["gone.txt"]) == (None, None, None)
    assert set(too_late.values()) == {None}


def test_on_a_slow_disk_the_walker_reads_little_and_leaves_the_rest_to_the_content_phase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    for d in range(20):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(20):
            (root / f"d{d}" / f"f{f}.txt").write_text(f"{d}-{f}")
    slow = tmp_path / "slow-disk"  # each read of a file's content waits 50 ms, in the walker's process
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        "import os, time\n_pread = os.pread\n\n\ndef pread(*args):\n    time.sleep(0.05)\n    return _pread(*args)\n\n\n"
        "os.pread = pread\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(slow), os.environ.get("PYTHONPATH")])))
    started = time.monotonic()
    walker = ProcessWalker(str(root), [""], IgnoreRules(()), reading=indexer.HASH_WHILE_WALKING)
    try:
        files = [f for _, found, _ in walker for f in found if f[KIND] == "file"]
    finally:
        walker.close()
    read = sum(1 for f in files if f[-1] is not None)
    # reading them all would take 20 s: about a second's worth is read
    assert len(files) == 400 and 0 < read <= 80, read
    assert time.monotonic() - started < 8


async def test_a_tagged_file_moved_into_a_new_location_keeps_its_tag_and_note(
    library: Library, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "beach.jpg").write_bytes(b"\xff\xd8\xff" + b"sand" * 1000)
    first = library.locations.add(str(old), mode="content")
    await index(library, first)
    entry_id = entries(library, first)["beach.jpg"]["id"]
    tags.create(library, "holiday")
    tags.assign(library, "holiday", [entry_id])
    metadata.set_note(library, entry_id, "the good one")
    os.rename(old / "beach.jpg", new / "beach.jpg")
    await index(library, first)  # gone from here: its tag and note wait for its content

    second = library.locations.add(str(new), mode="content")
    await index(library, second)  # the walker reads its content id with the listing
    moved = entries(library, second)["beach.jpg"]["id"]
    assert [t.tag for t in tags.of(library, moved)] == ["holiday"]
    assert metadata.note(library, moved) == "the good one"
