"""Duplicates: same content proven by a full hash; hard links, empty files and changed files are not duplicates."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import dedup
from sdcore.core import Core
from sdcore.errors import NotFound
from sdcore.index import cas
from sdcore.index.indexer import index_location
from sdcore.library.library import Library

BIG = 300 * 1024  # above cas_id's whole-file limit: sampled
THREADED = (1 << 20) + 7  # from this size BLAKE3 hashes on threads


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Library]:
    async with Core(tmp_path / "data") as core:
        yield core.library()


async def index(library: Library, root: Path) -> None:
    found = library.locations.containing(str(root))
    loc = found[0] if found else library.locations.add(str(root), mode="content")
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def groups(found: dedup.Duplicates) -> set[frozenset[str]]:
    return {frozenset(f.path for f in g.files) for g in found.groups}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    song = os.urandom(50_000)
    write(root / "music/song.mp3", song)
    write(root / "backup/song.mp3", song)
    write(root / "backup/old/song (1).mp3", song)
    write(root / "docs/a.txt", b"same text")
    write(root / "docs/b.txt", b"same text")
    write(root / "docs/unique.txt", b"only one of me")
    return root


async def test_copies_are_grouped_with_the_bytes_they_waste(library: Library, tree: Path) -> None:
    await index(library, tree)
    found = dedup.find(library)
    assert groups(found) == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3")),
        frozenset(str(tree / p) for p in ("docs/a.txt", "docs/b.txt")),
    }
    songs, texts = found.groups  # biggest waste first
    assert (songs.size, songs.wasted) == (50_000, 100_000)
    assert (texts.size, texts.wasted) == (9, 9)
    assert found.wasted == 100_009
    assert songs.full_hash == cas.full_hash(str(tree / "music/song.mp3"))
    assert groups(dedup.find(library, min_size=10_000)) == {frozenset(f.path for f in songs.files)}
    assert groups(dedup.find(library, location=str(tree))) == groups(found)


async def test_hard_links_are_one_file(library: Library, tree: Path) -> None:
    os.link(tree / "docs/unique.txt", tree / "docs/unique-link.txt")
    os.link(tree / "docs/a.txt", tree / "docs/a-link.txt")
    await index(library, tree)
    found = dedup.find(library)
    texts = next(g for g in found.groups if g.size == 9)
    assert len(texts.files) == 2 and texts.wasted == 9  # a.txt (+ its link) and b.txt
    linked = next(f for f in texts.files if f.links)
    assert {linked.path, *linked.links} == {str(tree / "docs/a.txt"), str(tree / "docs/a-link.txt")}
    assert all("unique" not in f.path for g in found.groups for f in g.files)


async def test_empty_files_are_duplicates_only_when_asked(library: Library, tree: Path) -> None:
    write(tree / "empty1", b"")
    write(tree / "sub/empty2", b"")
    await index(library, tree)
    assert all(g.size > 0 for g in dedup.find(library).groups)
    empty = [g for g in dedup.find(library, include_empty=True).groups if g.size == 0]
    assert [{f.path for f in g.files} for g in empty] == [{str(tree / "empty1"), str(tree / "sub/empty2")}]
    assert empty[0].wasted == 0 and empty[0].full_hash == dedup.EMPTY_HASH


async def test_files_with_the_same_cas_id_but_other_bytes_are_not_duplicates(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "near"
    data = bytearray(os.urandom(BIG))
    write(root / "original.bin", bytes(data))
    data[50_000] ^= 0xFF  # outside every sample cas_id reads
    write(root / "near-copy.bin", bytes(data))
    write(root / "true-copy.bin", (root / "original.bin").read_bytes())
    assert cas.cas_id(str(root / "original.bin")) == cas.cas_id(str(root / "near-copy.bin"))
    await index(library, root)
    assert groups(dedup.find(library)) == {frozenset({str(root / "original.bin"), str(root / "true-copy.bin")})}


async def test_files_that_changed_since_they_were_hashed_are_not_reported_identical(library: Library, tree: Path) -> None:
    await index(library, tree)
    grown = tree / "backup/old/song (1).mp3"
    with open(grown, "ab") as f:
        f.write(b"more")
    b = tree / "docs/b.txt"
    stamp = b.stat()
    b.write_bytes(b"SAME TEXT")  # other bytes, same size, and the old mtime put back
    os.utime(b, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    found = dedup.find(library)
    assert groups(found) == {frozenset({str(tree / "music/song.mp3"), str(tree / "backup/song.mp3")})}
    assert set(found.changed) == {str(grown)}


async def test_full_hashes_are_reused_until_a_file_is_touched(library: Library, tree: Path) -> None:
    await index(library, tree)
    first = dedup.find(library)
    kept = dict(library.read().execute("SELECT entry_id, full_hash FROM file_hashes"))
    assert len(kept) == 5
    assert groups(dedup.find(library)) == groups(first)
    a = tree / "docs/a.txt"
    stamp = a.stat()
    a.write_bytes(b"SAME TEXT")  # the mtime is put back, but the ctime moves: the cached hash is not trusted
    os.utime(a, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert all(g.size != 9 for g in dedup.find(library).groups)


async def test_a_shallow_location_is_checked_by_size_and_full_hash(library: Library, tree: Path) -> None:
    write(tree / "docs/c.txt", b"SAME TEXT")  # the size of a.txt and b.txt, other bytes
    library.locations.add(str(tree), mode="shallow")  # no cas_id at all
    await index(library, tree)
    assert library.read().execute("SELECT count(*) FROM entries WHERE content_id IS NOT NULL").fetchone()[0] == 0
    assert groups(dedup.find(library)) == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3")),
        frozenset(str(tree / p) for p in ("docs/a.txt", "docs/b.txt")),
    }


def test_folders_that_are_not_indexed_are_checked_from_disk(tree: Path, tmp_path: Path) -> None:
    os.link(tree / "docs/a.txt", tree / "docs/a-link.txt")
    write(tree / "empty1", b"")
    write(tree / "sub/empty2", b"")
    data = bytearray(os.urandom(BIG))
    write(tree / "big/original.bin", bytes(data))
    data[BIG // 2] ^= 0xFF  # the same size and the same first 4 KiB: only a full read tells them apart
    write(tree / "big/near-copy.bin", bytes(data))
    found = dedup.find_in([str(tree)])
    assert {frozenset(n for f in g.files for n in (f.path, *f.links)) for g in found.groups} == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3")),
        frozenset(str(tree / p) for p in ("docs/a.txt", "docs/a-link.txt", "docs/b.txt")),
    }
    texts = next(g for g in found.groups if g.size == 9)
    assert len(texts.files) == 2 and texts.wasted == 9  # a hard link is the same file
    assert all(f.entry_id is None for g in found.groups for f in g.files)
    assert found.wasted == 100_009
    with_empty = dedup.find_in([str(tree / "sub"), str(tree / "empty1")], include_empty=True)
    assert [g.size for g in with_empty.groups] == [0]
    assert groups(dedup.find_in([str(tree)], min_size=10_000)) == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3"))
    }
    with pytest.raises(NotFound, match="nowhere does not exist"):  # a mistyped folder is no "0 groups"
        dedup.find_in([str(tmp_path / "nowhere")])


def test_a_folder_given_twice_lists_each_file_once(tree: Path) -> None:
    """`sd dupes A A/sub` (or A twice) reaches files twice by the same name: one file, never its own hard link."""
    alone = dedup.find_in([str(tree)])
    assert dedup.find_in([str(tree), str(tree / "backup"), str(tree)]) == alone
    assert all(f.links == () for g in alone.groups for f in g.files)


def test_files_whose_starts_collide_are_told_apart_by_their_full_hash(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash of a file's start only sorts files into candidates (xxh3: collisions can be made on purpose);
    were every start to collide, only files with the same full BLAKE3 are reported."""
    write(tree / "docs/c.txt", b"diff text")  # the size of a.txt and b.txt, other bytes
    big = os.urandom(THREADED)
    write(tree / "big/one.bin", big)
    write(tree / "big/two.bin", big)
    write(tree / "big/other.bin", big[:-1] + bytes([big[-1] ^ 1]))
    honest = groups(dedup.find_in([str(tree)]))
    monkeypatch.setattr(dedup, "xxh3_64_intdigest", lambda data: 0)
    assert groups(dedup.find_in([str(tree)])) == honest == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3")),
        frozenset(str(tree / p) for p in ("docs/a.txt", "docs/b.txt")),
        frozenset(str(tree / p) for p in ("big/one.bin", "big/two.bin")),
    }


def test_from_disk_odd_names_count_and_links_fifos_and_loops_do_not(tree: Path) -> None:
    """A name that is not UTF-8 is a file like any other; a symlink (to a file, or a folder above it) is not
    followed and a FIFO is never opened (reading it would wait forever)."""
    odd = os.fsdecode(os.fsencode(tree / "docs") + b"/copy\xff.txt")
    write(Path(odd), b"same text")
    os.symlink(tree / "docs/a.txt", tree / "docs/link.txt")
    os.symlink(tree, tree / "docs/loop")
    os.mkfifo(tree / "docs/pipe")
    write(tree / "docs/empty", b"")
    found = dedup.find_in([str(tree)], include_empty=True)
    assert groups(found) == {
        frozenset(str(tree / p) for p in ("music/song.mp3", "backup/song.mp3", "backup/old/song (1).mp3")),
        frozenset({str(tree / "docs/a.txt"), str(tree / "docs/b.txt"), odd}),
    }
    assert found.changed == ()


def test_from_disk_a_folder_named_through_a_symlink_is_searched_as_find_h_does(tree: Path, tmp_path: Path) -> None:
    """`sd dupes ~/Photos` where ~/Photos is a link to the disk that holds them: the folder it names is searched
    (it found nothing at all); links inside it are still not followed, and a link to nothing says so."""
    os.symlink(tree, tmp_path / "via-link")
    os.symlink(tree, tree / "docs/loop")
    assert groups(dedup.find_in([str(tmp_path / "via-link")])) == groups(dedup.find_in([str(tree)]))
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(NotFound, match="dangling does not exist"):
        dedup.find_in([str(tmp_path / "dangling")])


def test_from_disk_files_longer_than_their_size_says_are_not_reported(tmp_path: Path) -> None:
    """`sd dupes /proc/self --include-empty`: files of /proc say they are 0 bytes and are not; they are not
    157 copies of one empty file. A file read whole must end where its size says (one grown since is left out)."""
    write(tmp_path / "empty", b"")
    proc = ["/proc/self/status", "/proc/self/cmdline", "/proc/self/environ"]
    found = dedup.find_in([*proc, str(tmp_path / "empty")], include_empty=True)
    assert found.groups == ()
    assert set(found.changed) == set(proc)


@pytest.mark.parametrize(("swap", "size"), [("symlink", THREADED), ("fifo", 9), ("fifo", THREADED)])
async def test_a_file_swapped_after_its_check_is_not_read_through_what_took_its_place(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str, size: int
) -> None:
    """Someone who can write in a location swaps a checked file, before it is hashed, for a symlink to a file
    outside it (its bytes were read and it was reported a copy) or for a FIFO (the hash waited on it for ever, a
    thread of the core hung: `full_hashes` does the same for a paired device that asks)."""
    data = os.urandom(size)
    root = tmp_path / "shared"
    write(root / "a.bin", data)
    write(root / "b.bin", data)
    await index(library, root)
    outside = write(tmp_path / "private/secret.bin", data)
    checked = dedup._distinct_files

    def then_swapped(candidates: list, changed: list[str]) -> dict:
        found = checked(candidates, changed)
        (root / "b.bin").unlink()
        if swap == "symlink":
            os.symlink(outside, root / "b.bin")
        else:
            os.mkfifo(root / "b.bin")
        return found

    monkeypatch.setattr(dedup, "_distinct_files", then_swapped)
    result: list[dedup.Duplicates] = []
    finding = threading.Thread(target=lambda: result.append(dedup.find(library)), daemon=True)
    finding.start()
    finding.join(20)
    if finding.is_alive():  # let it go: a writer opened and closed gives it the end of the FIFO
        os.close(os.open(root / "b.bin", os.O_WRONLY | os.O_NONBLOCK))
        finding.join(20)
        pytest.fail("the hash waited on a FIFO")
    assert result[0].groups == ()
    assert result[0].changed == (str(root / "b.bin"),)
