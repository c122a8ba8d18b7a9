"""The indexer: a user adds a folder, sees it indexed, and re-indexing keeps the index in step with the disk."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sdcore import search
from sdcore.core import Core
from sdcore.events import EntriesChanged
from sdcore.index import cas, indexer, walker
from sdcore.index.indexer import index_location, refresh
from sdcore.index.listing import list_indexed, scan_ephemeral
from sdcore.library import Library, Location

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n" + b"x" * 100


async def index(library: Library, loc: Location, scope: str = "recursive") -> dict[str, int]:
    record = await library.jobs.wait(await index_location(library, loc, scope=scope))
    assert record.state == "completed", record.error
    return record.stored_result  # type: ignore[no-any-return]


def entries(library: Library, loc: Location) -> dict[str, dict[str, Any]]:
    """Every entry of a location by its path relative to the location ('' is the root)."""
    rows = library.read().execute(
        "SELECT e.id, p.path, e.name, e.kind, e.size, e.files, e.inode, e.content_id, c.cas_id, e.object_kind,"
        " e.link_target, e.hidden, e.error, e.parent_id FROM entries e"
        " LEFT JOIN directory_paths p ON p.entry_id = e.parent_id"
        " LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.location_id = ?",
        (loc.id,),
    )
    out = {}
    for id_, parent, name, kind, size, files, inode, content_id, cas_id, object_kind, link, hidden, error, pid in rows:
        rel = "" if pid is None and id_ == loc.root_id else (f"{parent}/{name}" if parent else name)
        assert rel not in out, f"two entries for {rel!r}"
        out[rel] = {
            "id": id_, "kind": kind, "size": size, "files": files, "inode": inode, "content_id": content_id,
            "cas_id": cas_id, "object_kind": object_kind, "link_target": link, "hidden": hidden, "error": error,
        }
    return out


def disk(root: Path) -> dict[str, os.stat_result]:
    """What is on disk below `root`, by relative path, without following links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = os.lstat(full)
    return out


def make_tree(root: Path) -> None:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "photos").mkdir()
    (root / "a.txt").write_text("hello")
    (root / ".hidden").write_text("secret")
    (root / "docs" / "b.md").write_text("# notes\n" * 10)
    (root / "docs" / "c.txt").write_text("same content")
    (root / "docs" / "deep" / "d.bin").write_bytes(os.urandom(200_000))
    (root / "docs" / "deep" / "empty").write_bytes(b"")
    (root / "photos" / "pic.txt").write_bytes(PNG)  # a PNG with the wrong name
    (root / "photos" / "copy.txt").write_text("same content")
    (root / "photos" / "paper.bin").write_bytes(PDF)


def audit(library: Library) -> None:
    """Record every write to the index tables (a rewrite of a row with the same values counts too)."""
    with library.write() as db:
        db.execute("CREATE TABLE audit (what TEXT)")
        for table in ("entries", "directory_paths", "content_identities"):
            for op in ("INSERT", "UPDATE", "DELETE"):
                db.execute(
                    f"CREATE TRIGGER audit_{table}_{op} AFTER {op} ON {table} "
                    f"BEGIN INSERT INTO audit VALUES ('{op} {table}'); END"
                )


def audited(library: Library) -> list[str]:
    return [r[0] for r in library.read().execute("SELECT what FROM audit")]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    make_tree(root)
    return root


async def test_first_index_counts_match_the_tree(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    result = await index(library, loc)
    on_disk = disk(tree)
    dirs = [p for p, st in on_disk.items() if os.path.isdir(tree / p)]
    nonempty = [p for p, st in on_disk.items() if os.path.isfile(tree / p) and st.st_size > 0]
    expected = {
        "dirs": len(dirs) + 1, "found": len(on_disk), "added": len(on_disk), "changed": 0, "moved": 0,
        "removed": 0, "errors": 0, "hashed": len(nonempty),
    }
    assert {key: result[key] for key in expected} == expected
    indexed = entries(library, loc)
    assert set(indexed) == set(on_disk) | {""}
    for rel, st in on_disk.items():
        assert indexed[rel]["inode"] == st.st_ino
    assert indexed[".hidden"]["hidden"] and not indexed["a.txt"]["hidden"]
    assert library.locations.get(loc.id).scan_state == "indexed"
    assert library.locations.get(loc.id).last_scanned is not None
    assert library.read().execute("SELECT COUNT(*) FROM scan_queue").fetchone() == (0,)


async def test_a_first_index_of_a_shared_library_numbers_every_entry_and_keeps_its_triggers(
    library: Library, tree: Path, tmp_path: Path
) -> None:
    from sdcore.sync.catalogue import start_tracking

    start_tracking(library)  # shared: each change of this device's entries gets a number other devices pull from
    loc = library.locations.add(str(tree), mode="shallow")
    await index(library, loc)  # a first load: its rows go in with the insert triggers taken away, then put back
    db = library.read()
    ids = {r[0] for r in db.execute("SELECT id FROM entries WHERE location_id = ?", (loc.id,))}
    assert ids <= {r[0] for r in db.execute("SELECT entry_id FROM catalogue_log WHERE entry_id IS NOT NULL")}
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'")}
    assert {"search_entry_added", "catalogue_entry_added"} <= triggers
    (tree / "made after.txt").write_text("later")  # the triggers work again: numbered and searchable
    await refresh(library, [str(tree)])
    made = db.execute("SELECT id FROM entries WHERE name = 'made after.txt'").fetchone()[0]
    assert db.execute("SELECT 1 FROM catalogue_log WHERE entry_id = ?", (made,)).fetchone()
    assert [h.entry_id for h in search.find(library, "made after")] == [made]


async def test_directory_sizes_and_counts_are_aggregated(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="shallow")
    await index(library, loc)
    indexed = entries(library, loc)

    def expect(sub: str) -> tuple[int, int]:
        files = [p for p in (tree / sub).rglob("*") if p.is_file() and not p.is_symlink()]
        return sum(p.stat().st_size for p in files), len(files)

    for rel in ("", "docs", "docs/deep", "photos"):
        assert (indexed[rel]["size"], indexed[rel]["files"]) == expect(rel), rel
    assert indexed[""]["files"] == 9

    (tree / "docs" / "deep" / "d.bin").unlink()
    (tree / "photos" / "more.txt").write_bytes(b"x" * 1234)
    await index(library, loc)
    indexed = entries(library, loc)
    for rel in ("", "docs", "docs/deep", "photos"):
        assert (indexed[rel]["size"], indexed[rel]["files"]) == expect(rel), rel


async def test_content_mode_gives_cas_ids_and_kinds_by_magic_bytes(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    indexed = entries(library, loc)
    for rel, e in indexed.items():
        if e["kind"] == "file":
            assert e["cas_id"] == cas.cas_id(str(tree / rel)), rel
    assert indexed["docs/deep/empty"]["cas_id"] is None and indexed["docs/deep/empty"]["content_id"] is None
    assert indexed["photos/pic.txt"]["object_kind"] == "image"  # the bytes win over the name
    assert indexed["photos/paper.bin"]["object_kind"] == "document"
    assert indexed["a.txt"]["object_kind"] == "text"
    assert indexed["docs/b.md"]["object_kind"] == "text"
    # the same content is one content identity
    assert indexed["docs/c.txt"]["content_id"] == indexed["photos/copy.txt"]["content_id"] is not None
    distinct = {e["cas_id"] for e in indexed.values() if e["cas_id"]}
    assert library.read().execute("SELECT COUNT(*) FROM content_identities").fetchone() == (len(distinct),)
    # listings carry them too
    listed = {e.name: e for e in list_indexed(library, str(tree / "photos")) or []}
    assert listed["pic.txt"].cas_id == indexed["photos/pic.txt"]["cas_id"]
    assert listed["pic.txt"].object_kind == "image"


async def test_shallow_mode_computes_no_content_ids(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="shallow")
    result = await index(library, loc)
    assert result["hashed"] == 0
    indexed = entries(library, loc)
    assert all(e["cas_id"] is None for e in indexed.values())
    assert library.read().execute("SELECT COUNT(*) FROM content_identities").fetchone() == (0,)
    assert indexed["photos/pic.txt"]["object_kind"] == "text"  # from the name only: nothing was read


async def test_a_first_index_is_searchable_before_its_secondary_indexes_are_made(
    library: Library, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sorting indexes and the like are made after the search index is committed: a search meanwhile finds the files."""
    from sdcore.index.indexer import IndexJob
    from sdcore.library.bulk import SECONDARY_INDEXES

    seen: list[tuple[list[str], set[str]]] = []
    make_indexes = IndexJob._make_indexes

    def looking_first(job: IndexJob, db: sqlite3.Connection, loc: Location) -> None:
        reader = library.read()  # another connection: sees what is committed
        made = {r[0] for r in reader.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        seen.append(([hit.relative for hit in search.find(library, "pic")], made))
        make_indexes(job, db, loc)

    monkeypatch.setattr(IndexJob, "_make_indexes", looking_first)
    loc = library.locations.add(str(tree), mode="shallow")
    await index(library, loc)
    assert len(seen) == 1
    found, made = seen[0]
    assert found == ["photos/pic.txt"]
    assert not made & {"entries_by_size", "entries_by_mtime", "entries_by_name"}
    made = {r[0] for r in library.read().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert set(SECONDARY_INDEXES) <= made


async def test_a_shallow_index_keeps_no_content_index_rows(library: Library, tmp_path: Path) -> None:
    """entries_by_content holds only entries that have a content id: a shallow index adds none to it."""
    root = tmp_path / "many"
    root.mkdir()
    for i in range(3000):
        (root / f"f{i}.txt").write_text(str(i))
    loc = library.locations.add(str(root), mode="shallow")
    await index(library, loc)
    db = library.read()
    pages = db.execute("SELECT count(*) FROM dbstat WHERE name = 'entries_by_content'").fetchone()[0]
    assert pages == 1  # its root page, empty (it held a row for each of the 3,000)
    plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN SELECT id FROM entries WHERE content_id = 7"))
    assert "entries_by_content" in plan


async def test_a_first_index_leaves_the_entries_pages_full(library: Library, tmp_path: Path) -> None:
    """Folders' rows grow after they are written (fingerprint, totals): on pages shared with files, each growth split a
    full page into half-empty ones (11% of the table unused on the Linux source; here 14% of the entries are folders,
    whose growth is a larger share of rows made small by migration 32: 5.4%, 3.0% before it)."""
    root = tmp_path / "many"
    for d in range(400):
        folder = root / f"folder {d:03}" / "inner"
        folder.mkdir(parents=True)
        for f in range(12):
            (folder.parent / f"file {f:02}.txt").write_text("x" * f)
    loc = library.locations.add(str(root), mode="shallow")
    await index(library, loc)
    used, unused = library.read().execute("SELECT sum(pgsize), sum(unused) FROM dbstat WHERE name = 'entries'").fetchone()
    assert unused / used < 0.06, unused / used


async def test_extensions_and_kinds_of_odd_names(library: Library, tmp_path: Path) -> None:
    from sdcore.index.kinds import extension_of, kind_from_extension

    root = tmp_path / "odd"
    root.mkdir()
    names = [".bashrc", "..foo.txt", "...", "a.", "a..", ".a.", "x.TXT", "y.Txt", "z.tar.GZ", "noext", "été.JPG", "a.jpg.", "..x"]
    for name in names:
        (root / name).write_text(name)
    loc = library.locations.add(str(root), mode="shallow")
    await index(library, loc)
    rows = dict(library.read().execute("SELECT name, extension || '|' || coalesce(object_kind, '') FROM entries WHERE parent_id IS NOT NULL"))
    assert rows == {n: f"{extension_of(n)}|{kind_from_extension(extension_of(n)) or ''}" for n in names}


async def test_reindex_with_nothing_changed_writes_nothing(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    audit(library)
    result = await index(library, loc)
    assert (result["found"], result["dirs"]) == (len(before) - 1, 4)  # everything looked at, nothing written
    assert {k: result[k] for k in ("added", "changed", "moved", "removed", "errors", "hashed")} == dict.fromkeys(
        ("added", "changed", "moved", "removed", "errors", "hashed"), 0
    )
    assert audited(library) == []
    assert entries(library, loc) == before


async def test_reindex_finds_a_new_file(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    (tree / "docs" / "deep" / "new.txt").write_text("brand new")
    result = await index(library, loc)
    assert (result["added"], result["changed"], result["moved"], result["removed"], result["hashed"]) == (1, 0, 0, 0, 1)
    after = entries(library, loc)
    assert set(after) - set(before) == {"docs/deep/new.txt"}
    assert after["docs/deep/new.txt"]["cas_id"] == cas.cas_id(str(tree / "docs/deep/new.txt"))
    assert all(after[rel]["id"] == before[rel]["id"] for rel in before)


async def test_reindex_resets_and_rehashes_a_changed_file(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    (tree / "a.txt").write_text("hello, world")  # another size
    st = (tree / "docs" / "b.md").stat()
    (tree / "docs" / "b.md").write_text("# NOTES\n" * 10)  # the same size, another mtime
    os.utime(tree / "docs" / "b.md", (st.st_atime, st.st_mtime + 10))
    audit(library)
    result = await index(library, loc)
    assert (result["changed"], result["added"], result["removed"], result["hashed"]) == (2, 0, 0, 2)
    after = entries(library, loc)
    for rel in ("a.txt", "docs/b.md"):
        assert after[rel]["id"] == before[rel]["id"]
        assert after[rel]["cas_id"] == cas.cas_id(str(tree / rel)) != before[rel]["cas_id"]
    assert after["a.txt"]["size"] == len("hello, world")
    assert "UPDATE entries" in audited(library)
    assert after[""]["size"] == before[""]["size"] + len(", world")


@pytest.mark.parametrize("small", [False, True])
async def test_a_rescan_finds_every_kind_of_change_in_folders_whose_own_time_is_put_back(
    library: Library, tree: Path, small: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rescan skips a folder whose listing is as it was: that must never hide a change. Each change here is made in a
    folder whose modification time is then put back, as a copy tool or an unpacked archive may leave it, and in a
    folder a level down from the one that changed (so the folders above are skipped or not as they should be).
    `small`: as in a huge tree, most folders are opened by their path (not in their parent's descriptor) and what
    the library knows of them is read a batch at a time."""
    if small:
        monkeypatch.setattr(walker, "HELD", 1)
        monkeypatch.setattr(indexer, "KNOWN_FOLDERS", 0)
    loc = library.locations.add(str(tree), mode="shallow")
    (tree / "docs" / "deep" / "was-a-folder").mkdir()
    (tree / "docs" / "deep" / "was-a-folder" / "inner.txt").write_text("in a folder")
    (tree / "photos" / "link").symlink_to("pic.txt")
    await index(library, loc)
    folders = [tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())]
    times = {p: p.stat().st_mtime_ns for p in folders}
    (tree / "docs" / "deep" / "d.bin").write_bytes(os.urandom(100))  # another size, in place
    st = (tree / "docs" / "b.md").stat()
    os.utime(tree / "docs" / "b.md", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # only its time
    os.chmod(tree / "docs" / "c.txt", 0)  # its permissions lost
    (tree / "photos" / "new.txt").write_text("added")
    (tree / "photos" / "paper.bin").unlink()
    os.rename(tree / "photos" / "copy.txt", tree / "photos" / "renamed.txt")
    os.rename(tree / "a.txt", tree / "docs" / "deep" / "moved.txt")
    shutil.rmtree(tree / "docs" / "deep" / "was-a-folder")
    (tree / "docs" / "deep" / "was-a-folder").write_text("a file now")
    (tree / "photos" / "link").unlink()
    (tree / "photos" / "link").symlink_to("new.txt")
    for path, ns in times.items():
        if path.exists():
            os.utime(path, ns=(ns, ns))
    result = await index(library, loc)
    assert result["moved"] == 2  # a.txt and copy.txt keep their entries
    rows = library.read().execute(
        "SELECT p.path, e.name, e.kind, e.size, e.inode, e.mtime, e.mode, e.link_target FROM entries e"
        " JOIN directory_paths p ON p.entry_id = e.parent_id WHERE e.location_id = ?",
        (loc.id,),
    )
    indexed = {f"{parent}/{name}" if parent else name: tuple(rest) for parent, name, *rest in rows}
    on_disk = {
        rel: ("dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file",
              0 if stat.S_ISDIR(st.st_mode) else st.st_size, st.st_ino, st.st_mtime, st.st_mode,
              os.readlink(tree / rel) if stat.S_ISLNK(st.st_mode) else None)
        for rel, st in disk(tree).items()
    }  # fmt: skip
    # folders' sizes are their totals; compare them apart
    assert {k: v[:1] + v[2:] for k, v in indexed.items()} == {k: v[:1] + v[2:] for k, v in on_disk.items()}
    assert {k: v[1] for k, v in indexed.items() if v[0] != "dir"} == {k: v[1] for k, v in on_disk.items() if v[0] != "dir"}
    os.chmod(tree / "docs" / "c.txt", 0o644)


async def test_swapped_files_of_the_same_size_and_time_get_their_own_content_ids(library: Library, tmp_path: Path) -> None:
    """`cp -p` or an unpacked archive gives files equal size and mtime; swapping their names must not swap ids."""
    root = tmp_path / "swap"
    root.mkdir()
    (root / "a.txt").write_text("AAAA")
    (root / "b.txt").write_text("BBBB")
    for name in ("a.txt", "b.txt"):
        os.utime(root / name, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    loc = library.locations.add(str(root), mode="content")
    await index(library, loc)
    os.rename(root / "a.txt", root / "tmp")
    os.rename(root / "b.txt", root / "a.txt")
    os.rename(root / "tmp", root / "b.txt")
    await index(library, loc)
    after = entries(library, loc)
    for name in ("a.txt", "b.txt"):
        assert after[name]["inode"] == (root / name).stat().st_ino
        assert after[name]["cas_id"] == cas.cas_id(str(root / name)), name


async def test_reindex_finds_a_moved_file_and_keeps_its_entry(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    os.rename(tree / "a.txt", tree / "docs" / "deep" / "moved.txt")
    result = await index(library, loc)
    assert (result["moved"], result["added"], result["removed"], result["hashed"]) == (1, 0, 0, 0)
    after = entries(library, loc)
    assert "a.txt" not in after
    assert after["docs/deep/moved.txt"]["id"] == before["a.txt"]["id"]
    assert after["docs/deep/moved.txt"]["cas_id"] == before["a.txt"]["cas_id"]

    os.rename(tree / "docs" / "deep" / "moved.txt", tree / "docs" / "deep" / "moved.md")
    await index(library, loc)
    row = library.read().execute(
        "SELECT id, extension FROM entries WHERE name = 'moved.md'"
    ).fetchone()
    assert row == (before["a.txt"]["id"], "md")  # a rename changes what the file is taken for


async def test_a_file_moved_and_then_edited_while_unwatched_is_taken_for_a_new_file(library: Library, tree: Path) -> None:
    # Only inode, size and time tell a moved file from a new one on a reused inode; an edit changes two of them.
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    os.rename(tree / "a.txt", tree / "photos" / "a.txt")
    with open(tree / "photos" / "a.txt", "a") as f:
        f.write(", and more")
    result = await index(library, loc)
    assert (result["moved"], result["added"], result["removed"], result["hashed"]) == (0, 1, 1, 1)
    after = entries(library, loc)
    assert after["photos/a.txt"]["id"] != before["a.txt"]["id"]
    assert after["photos/a.txt"]["cas_id"] == cas.cas_id(str(tree / "photos" / "a.txt")) != before["a.txt"]["cas_id"]


async def test_a_moved_directory_keeps_its_id_and_its_childrens_paths_follow(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    (tree / "archive").mkdir()
    os.rename(tree / "docs", tree / "archive" / "papers")
    result = await index(library, loc)
    assert (result["moved"], result["removed"]) == (1, 0)
    assert result["added"] == 1  # archive/
    after = entries(library, loc)
    assert not any(rel == "docs" or rel.startswith("docs/") for rel in after)
    for rel in ("docs", "docs/b.md", "docs/deep", "docs/deep/d.bin", "docs/deep/empty"):
        new_rel = "archive/papers" + rel[len("docs"):]
        assert after[new_rel]["id"] == before[rel]["id"], rel
    listed = list_indexed(library, str(tree / "archive" / "papers" / "deep"))
    assert listed is not None and sorted(e.name for e in listed) == ["d.bin", "empty"]
    assert listed[0].path.path == str(tree / "archive" / "papers" / "deep" / listed[0].name)
    assert list_indexed(library, str(tree / "docs" / "deep")) is None
    assert after["archive"]["size"] == before["docs"]["size"]


async def test_a_deleted_directory_goes_with_its_subtree(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    shutil.rmtree(tree / "docs")
    (tree / "photos" / "copy.txt").unlink()
    result = await index(library, loc)
    gone = [rel for rel in before if rel == "docs" or rel.startswith("docs/")] + ["photos/copy.txt"]
    assert result["removed"] == len(gone) == 7
    assert (result["added"], result["moved"]) == (0, 0)
    after = entries(library, loc)
    assert set(after) == set(before) - set(gone)
    paths = {r[0] for r in library.read().execute("SELECT path FROM directory_paths WHERE location_id = ?", (loc.id,))}
    assert paths == {"", "photos"}
    assert after[""]["files"] == before[""]["files"] - 5


async def test_scope_current_indexes_one_level(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="shallow")
    result = await index(library, loc, scope="current")
    assert result["dirs"] == 1
    assert set(entries(library, loc)) == {"", "a.txt", ".hidden", "docs", "photos"}
    assert list_indexed(library, str(tree / "docs")) == []  # known as a folder, not read yet
    result = await index(library, loc)
    assert set(entries(library, loc)) == set(disk(tree)) | {""}


async def test_ignore_rules_decide_what_is_indexed_not_what_a_listing_shows(library: Library, tree: Path) -> None:
    (tree / ".git" / "objects").mkdir(parents=True)
    (tree / ".git" / "objects" / "ab").write_text("blob")
    (tree / "docs" / ".git").mkdir()
    (tree / "scratch.tmp").write_text("tmp")
    (tree / "build" / "cache").mkdir(parents=True)
    (tree / "build" / "cache" / "x.o").write_text("obj")
    (tree / "build" / "out.bin").write_text("out")
    loc = library.locations.add(str(tree), mode="shallow", ignore=[".git", "*.tmp", "build/cache"])
    result = await index(library, loc)
    indexed = entries(library, loc)
    assert not any(".git" in rel.split("/") for rel in indexed)
    assert "scratch.tmp" not in indexed and "build/cache" not in indexed
    assert "build/out.bin" in indexed and "docs/b.md" in indexed
    assert result["errors"] == 0
    # a listing still shows every name: from the index, with what the rules kept out of it read from the disk
    listed = list_indexed(library, str(tree)) or []
    assert [e.name for e in listed] == sorted(os.listdir(tree))
    assert {e.name for e in listed if e.entry_id is None} == {".git", "scratch.tmp"}
    assert [(e.name, e.entry_id is None) for e in list_indexed(library, str(tree / "build")) or []] == [
        ("cache", True), ("out.bin", False)
    ]
    assert [e.name for e in list_indexed(library, str(tree / "docs")) or []] == [".git", "b.md", "c.txt", "deep"]
    shown = {e.name for batch in scan_ephemeral(str(tree)) for e in batch}
    assert {".git", "scratch.tmp", "build"} <= shown
    shown = {e.name for batch in scan_ephemeral(str(tree / "build")) for e in batch}
    assert shown == {"cache", "out.bin"}


async def test_scan_ephemeral_lists_without_writing(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="shallow")
    audit(library)
    flat = [e for batch in scan_ephemeral(str(tree), batch_size=2) for e in batch]
    assert sorted(e.name for e in flat) == sorted(os.listdir(tree))
    deep = [e for batch in scan_ephemeral(str(tree), recursive=True) for e in batch]
    assert sorted(os.path.relpath(e.path.path, tree) for e in deep) == sorted(disk(tree))
    by_name = {e.name: e for e in flat}
    assert by_name["docs"].kind == "dir" and by_name["a.txt"].size == 5 and by_name["a.txt"].cas_id is None
    assert audited(library) == []
    assert entries(library, loc).keys() == {""}


async def test_reindex_publishes_entries_changed_for_the_directories_that_changed(
    core: Core, library: Library, tree: Path
) -> None:
    loc = library.locations.add(str(tree), mode="shallow")
    await index(library, loc)
    (tree / "photos" / "new.png").write_bytes(PNG)
    with core.bus.subscribe(EntriesChanged) as events:
        await index(library, loc)
        seen = []
        while (event := events.get_nowait()) is not None:
            seen.append(event)
    assert [(e.directory, e.names) for e in seen] == [(str(tree / "photos"), ("new.png",))]
    assert seen[0].device_id == core.device.id and seen[0].library_id == library.id


async def test_the_first_file_in_an_empty_location_is_announced(core: Core, library: Library, tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    loc = library.locations.add(str(root), mode="shallow")
    await index(library, loc)

    async def announced(action: Any) -> list[tuple[str, tuple[str, ...]]]:
        with core.bus.subscribe(EntriesChanged) as events:
            await action
            await asyncio.sleep(0.05)  # events from the writer thread arrive through the loop
            return [(e.directory, e.names) for e in iter(events.get_nowait, None)]  # type: ignore[attr-defined]

    (root / "first.txt").write_text("first")
    assert await announced(index(library, loc)) == [(str(root), ("first.txt",))]  # a rescan
    (root / "first.txt").unlink()
    await index(library, loc)
    (root / "second.txt").write_text("second")
    assert await announced(refresh(library, [str(root)])) == [(str(root), ("second.txt",))]  # the watcher's way
    assert [e.name for e in list_indexed(library, str(root)) or []] == ["second.txt"]


async def test_refresh_updates_one_directory_now(library: Library, tree: Path) -> None:
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    before = entries(library, loc)
    (tree / "photos" / "fresh.txt").write_text("fresh")
    (tree / "newdir" / "inner").mkdir(parents=True)
    os.rename(tree / "a.txt", tree / "newdir" / "inner" / "a.txt")
    await refresh(library, [str(tree / "photos"), str(tree / "newdir" / "inner")])
    after = entries(library, loc)
    assert "photos/fresh.txt" in after
    assert after["newdir/inner/a.txt"]["id"] == before["a.txt"]["id"]  # a move into a new folder keeps the entry
    assert "a.txt" not in after
    assert library.jobs.list() and all(r.kind == "index" for r in library.jobs.list())  # refresh adds no job


async def test_refresh_indexes_a_folder_moved_in_from_outside_whole(library: Library, tree: Path, tmp_path: Path) -> None:
    """A watcher sees one event for a folder moved in; everything inside it must still be indexed."""
    loc = library.locations.add(str(tree), mode="content")
    await index(library, loc)
    album = tmp_path / "Downloads" / "album"
    (album / "disc 2").mkdir(parents=True)
    (album / "01.mp3").write_bytes(b"ID3" + b"\0" * 50)
    (album / "disc 2" / "02.mp3").write_bytes(b"ID3" + b"\1" * 50)
    os.rename(album, tree / "album")
    (tree / "album" / "disc 2" / "nested").mkdir()
    os.rename(tree / "a.txt", tree / "album" / "disc 2" / "nested" / "a.txt")  # and a move into it
    before = entries(library, loc)
    await refresh(library, [str(tree)])
    after = entries(library, loc)
    assert {"album", "album/01.mp3", "album/disc 2", "album/disc 2/02.mp3", "album/disc 2/nested"} <= set(after)
    assert after["album/disc 2/nested/a.txt"]["id"] == before["a.txt"]["id"]
    assert after["album/disc 2/02.mp3"]["object_kind"] == "audio"
    assert after["album"]["files"] == 3
    assert set(after) == set(disk(tree)) | {""}


async def test_a_refresh_beside_an_unfinished_first_index_does_not_break_it(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher refreshes a folder while the location's first (bulk) index is paused half-way."""
    from sdcore.index import indexer

    monkeypatch.setattr(indexer, "BATCH_ENTRIES", 50)  # many discovery batches from a small tree
    root = tmp_path / "big"
    for d in range(10):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(30):
            (root / f"d{d}" / f"f{f}.txt").write_text(str(f))
    loc = library.locations.add(str(root), mode="shallow")
    job_id = await library.jobs.start(indexer.IndexJob(loc.id))
    library.jobs.pause(job_id)  # stops after its first batch
    assert (await library.jobs.wait(job_id)).state == "paused"
    scanned = [d for d in range(10) if list_indexed(library, str(root / f"d{d}"))]
    unscanned = [d for d in range(10) if d not in scanned]
    assert unscanned, "the first index finished before it could be paused"
    for d in range(10):
        (root / f"d{d}" / "new.txt").write_text("new")
    await refresh(library, [str(root / f"d{d}") for d in range(10)])

    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    duplicates = library.read().execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM entries GROUP BY parent_id, name HAVING COUNT(*) > 1)"
    ).fetchone()
    assert duplicates == (0,)
    assert set(entries(library, loc)) == set(disk(root)) | {""}  # the refresh and the load together: all of it
    audit(library)
    again = await index(library, loc)  # and consistent: a rescan finds nothing to add or remove
    assert (again["added"], again["removed"], again["changed"], again["moved"]) == (0, 0, 0, 0)
    assert not [what for what in audited(library) if not what.startswith("UPDATE")]  # folder mtimes, at most
    assert {h.relative for h in search.find(library, "new.txt", limit=1000)} >= {f"d{d}/new.txt" for d in range(10)}


def comparable(library: Library, loc: Location) -> set[tuple]:
    return {(rel, e["kind"], e["size"], e["files"], e["cas_id"], e["object_kind"]) for rel, e in entries(library, loc).items()}


@pytest.mark.parametrize("stop_in", ["discovery", "content"])
async def test_a_paused_index_resumes_to_the_same_result(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_in: str
) -> None:
    from sdcore.index import indexer

    monkeypatch.setattr(indexer, "BATCH_ENTRIES", 40)
    monkeypatch.setattr(indexer, "CONTENT_BATCH_MIN", 40)
    monkeypatch.setattr(indexer, "CONTENT_BATCH_MAX", 40)
    if stop_in == "content":  # else the walker reads every file as it lists it (and is stopped in that)
        monkeypatch.setattr(indexer, "HASH_WHILE_WALKING", 0.0)
    root = tmp_path / "big"
    for d in range(8):
        (root / f"d{d}" / "sub").mkdir(parents=True)
        for f in range(25):
            (root / f"d{d}" / f"f{f}.txt").write_text(f"{d}-{f}" * f)
            (root / f"d{d}" / "sub" / f"g{f}.bin").write_bytes(bytes([d, f]) * (f + 1))
    library = core.library()
    reference = core.libraries.create("Reference")
    ref_loc = reference.locations.add(str(root), mode="content")
    await index(reference, ref_loc)

    loc = library.locations.add(str(root), mode="content")
    job_id = await library.jobs.start(indexer.IndexJob(loc.id))
    while library.jobs.is_running(job_id) and library.jobs.job(job_id).phase != stop_in:
        await asyncio.sleep(0.001)
    library.jobs.pause(job_id)
    paused = await library.jobs.wait(job_id)
    assert paused.state == "paused"
    assert library.locations.get(loc.id).scan_state == "paused"
    assert await index_location(library, loc) == job_id  # indexing again resumes the paused job
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert comparable(library, loc) == comparable(reference, ref_loc)
    assert library.read().execute("SELECT COUNT(*) FROM scan_queue").fetchone() == (0,)


async def test_on_a_slow_disk_the_content_phase_still_reports_progress_every_second_or_so(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.events import JobProgress
    from sdcore.index import indexer
    from sdcore.index.hasher import InlineHasher

    class SlowDisk(InlineHasher):  # 200 files a second, in this process
        def result(self):  # type: ignore[no-untyped-def]
            time.sleep(0.005 * len(self._files))
            return super().result()

    monkeypatch.setattr(indexer, "start_hasher", SlowDisk)
    monkeypatch.setattr(indexer, "HASH_WHILE_WALKING", 0.0)  # every file read by the content phase
    root = tmp_path / "slow"
    root.mkdir()
    for f in range(700):
        (root / f"f{f}.txt").write_text(str(f))
    library = core.library()
    loc = library.locations.add(str(root), mode="content")
    moments: list[float] = []
    with core.bus.subscribe(JobProgress) as events:

        async def watch() -> None:  # as the UI does: events as they come (unread ones coalesce)
            async for event in events:
                if isinstance(event, JobProgress) and event.unit == "files" and event.message == "content":
                    moments.append(event.done)

        watching = asyncio.create_task(watch())
        record = await library.jobs.wait(await library.jobs.start(indexer.IndexJob(loc.id)))
        await asyncio.sleep(0.1)
        watching.cancel()
    assert record.state == "completed", record.error
    assert len(moments) >= 3 and moments[-1] == 700  # the bar moved along the way (3.5 s of hashing), not only at the end


async def test_a_canceled_index_leaves_a_usable_library(library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdcore.index import indexer

    monkeypatch.setattr(indexer, "BATCH_ENTRIES", 40)
    root = tmp_path / "big"
    for d in range(8):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(40):
            (root / f"d{d}" / f"f{f}.txt").write_text(str(f))
    loc = library.locations.add(str(root), mode="shallow")
    job_id = await library.jobs.start(indexer.IndexJob(loc.id))
    library.jobs.cancel(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "canceled"
    assert library.read().execute("SELECT COUNT(*) FROM scan_queue").fetchone() == (0,)
    assert library.locations.get(loc.id).scan_state == "pending"
    result = await index(library, loc)  # a new job, from what is there
    assert set(entries(library, loc)) == set(disk(root)) | {""}
    assert result["removed"] == 0
    indexes = {r[0] for r in library.read().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"entries_by_parent", "entries_by_inode", "entries_by_content"} <= indexes


async def test_a_library_reopened_by_another_core_sees_the_same_index(tmp_path: Path, tree: Path) -> None:
    data = tmp_path / "data"
    async with Core(data) as core:
        library = core.library()
        loc = library.locations.add(str(tree), mode="content")
        await index(library, loc)
        first = entries(library, loc)
    db = next((data / "libraries").glob("*.sdlibrary")) / "database.db"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    async with Core(data) as core:
        library = core.library()
        assert entries(library, library.locations.get(loc.id)) == first


async def test_a_file_s_row_holds_its_name_and_a_few_numbers(library: Library, tmp_path: Path) -> None:
    """The index's size is mostly its rows (issue 18: under 2x the paths as text): a file's kind, what it holds and the
    usual mode are stored as numbers SQLite writes in no byte, its `hidden` is read from its name."""
    root = tmp_path / "src"
    root.mkdir()
    for i in range(2000):
        (root / f"f{i:04}.py").write_text("x")
    loc = library.locations.add(str(root), mode="shallow")
    await index(library, loc)
    db = library.read()
    payload, rows = db.execute("SELECT sum(payload), sum(ncell) FROM dbstat WHERE name = 'entries' AND pagetype = 'leaf'").fetchone()
    # f0001.py: 8 bytes of name, 2 of extension, 8 of mtime, a few of inode and parent, a byte a column: 38 (50 before)
    assert payload / rows < 42, payload / rows
    assert db.execute("SELECT DISTINCT kind, object_kind, mode, hidden FROM entries WHERE name = 'f0001.py'").fetchall() == [
        ("file", "code", os.stat(root / "f0001.py").st_mode, 0)
    ]


def as_schema_31_left_it(database: Path) -> None:
    """The entries table of a closed library as the code before migration 32 wrote it: kinds, object kinds, modes and
    `hidden` stored as they read."""
    from sdcore.library.schema import MIGRATIONS, _statements

    old_trigger = next(
        statement for script in MIGRATIONS.values() if isinstance(script, str) for statement in _statements(script)
        if "CREATE TRIGGER catalogue_entry_changed" in statement
    )  # fmt: skip
    columns = (
        "id, location_id, parent_id, name, extension, kind, object_kind, size, files, inode, mtime, mode, hidden,"
        " link_target, content_id, fingerprint, error"
    )
    conn = sqlite3.connect(database, isolation_level=None)
    kept = conn.execute(
        "SELECT sql FROM sqlite_schema WHERE tbl_name = 'entries' AND sql IS NOT NULL AND type != 'table'"
        " AND name NOT IN ('catalogue_entry_changed', 'entries_with_error')"  # (the latter made by migration 33)
    ).fetchall()
    conn.execute("PRAGMA legacy_alter_table = ON")
    conn.execute("BEGIN")
    conn.execute("ALTER TABLE entries RENAME TO entries_32")
    conn.execute(
        "CREATE TABLE entries (id INTEGER PRIMARY KEY, location_id INTEGER NOT NULL, parent_id INTEGER, name TEXT NOT NULL,"
        " extension TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL, object_kind TEXT, size INTEGER NOT NULL DEFAULT 0,"
        " files INTEGER NOT NULL DEFAULT 0, inode INTEGER, mtime REAL, mode INTEGER, hidden INTEGER NOT NULL DEFAULT 0,"
        " link_target TEXT, content_id INTEGER, fingerprint INTEGER, error TEXT)"
    )
    conn.execute(f"INSERT INTO entries ({columns}) SELECT {columns} FROM entries_32")
    conn.execute("DROP TABLE entries_32")
    conn.execute("DROP TABLE catalogue_slots")  # (made by migration 34)
    conn.execute("DROP TABLE taken_entries")  # (made by migration 36)
    for (sql,) in [*kept, (old_trigger,)]:
        conn.execute(sql)
    conn.execute("PRAGMA user_version = 31")
    conn.execute("COMMIT")
    conn.close()
    meta = database.parent / "library.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "schema": 31}))


async def test_a_library_indexed_before_kinds_became_numbers_reads_the_same_after(tmp_path: Path) -> None:
    """Migration 32 makes the entries table again (kinds, object kinds and the usual mode as numbers): every entry reads
    as it did, with its tags and note, search finds the same, and a rescan finds nothing changed."""
    from sdcore import metadata, tags
    from sdcore.library import entries as library_entries
    from sdcore.library.schema import MIGRATIONS

    root = tmp_path / "odd"
    (root / "private" / ".cache").mkdir(parents=True)
    (root / "private").chmod(0o700)
    (root / "a.py").write_text("print(1)")
    (root / "a.py").chmod(0o600)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "photo.png").write_bytes(PNG)
    (root / ".profile").write_text("x")
    (root / "private" / ".cache" / "notes.md").write_text("# notes")
    (root / "data.QQQ").write_bytes(b"\x00\x01")
    os.mkfifo(root / "pipe")
    (root / "link").symlink_to("a.py")
    (root / "dangling").symlink_to("nowhere")
    with open(os.path.join(os.fsencode(root), b"bad\xffname.txt"), "w") as odd:
        odd.write("bad")
    columns = (
        "id, location_id, parent_id, name, extension, kind, object_kind, size, files, inode, mtime, mode, hidden,"
        " link_target, content_id, fingerprint, error"
    )

    def state(library: Library) -> tuple[list[tuple], list[tuple], list[str]]:
        db = library.read()
        return (
            db.execute(f"SELECT {columns} FROM entries ORDER BY id").fetchall(),
            db.execute("SELECT * FROM tag_assignments ORDER BY entry_id").fetchall() + db.execute("SELECT entry_id, note FROM user_metadata").fetchall(),
            [hit.relative for text in ("a", "notes", "bad", "private") for hit in search.find(library, text)],
        )

    async with Core(tmp_path / "data") as core:
        library = core.library()
        loc = library.locations.add(str(root), mode="content")
        await index(library, loc)
        tags.create(library, "work")
        tags.assign(library, "work", [library_entries.entry_at(library, str(root / "a.py")), library_entries.entry_at(library, str(root / "private"))])
        metadata.set_note(library, library_entries.entry_at(library, str(root / "run.sh")), "runs it")
        before = state(library)
        schema = library.read().execute("SELECT type, name FROM sqlite_schema WHERE tbl_name = 'entries' ORDER BY 1, 2").fetchall()
        database = library.folder / "database.db"
    as_schema_31_left_it(database)
    with sqlite3.connect(database) as old:
        assert old.execute("SELECT DISTINCT typeof(kind), typeof(mode) FROM entries").fetchall() == [("text", "integer")]

    async with Core(tmp_path / "data") as core:
        library = core.library()
        db = library.read()
        assert db.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
        assert state(library) == before
        assert len(before[0]) == 13 and {row[5] for row in before[0]} == {"file", "dir", "fifo", "symlink"}
        assert db.execute("SELECT type, name FROM sqlite_schema WHERE tbl_name = 'entries' ORDER BY 1, 2").fetchall() == schema
        # stored as numbers: 0 for a file, its kind 'code' and the usual mode 0o100644
        assert db.execute("SELECT kind_code, object_code, mode_code FROM entries WHERE name = 'notes.md'").fetchone() == (0, 1, 0)
        assert (await index(library, library.locations.get(loc.id)))["changed"] == 0
        assert state(library) == before


WALKS_UNDER_A_LOW_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from sdcore.index.walker import IgnoreRules, ProcessWalker, Walker

def report(walked):
    print(len(walked), [rel for rel, listing, _ in walked if isinstance(listing, OSError)])

report(list(Walker(sys.argv[1], [""], IgnoreRules([]), True)))
report(list(ProcessWalker(sys.argv[1], [""], IgnoreRules([]))))
walks = [iter(Walker(sys.argv[1], [""], IgnoreRules([]), True)) for _ in range(5)]  # rescans of 5 locations at once
walked = []
while walks:
    for walk in [*walks]:
        try:
            walked.append(next(walk))
        except StopIteration:
            walks.remove(walk)
report(walked)
"""


def test_a_wide_tree_is_walked_whole_under_a_low_limit_of_open_files(tmp_path: Path) -> None:
    """`ulimit -n 64` (or a core with many files open): a walk holds folders open to read their folders by name, and
    holding one per folder of a wide tree took every descriptor left (43 of 100 folders 'Too many open files'); five
    rescans at once in the core (each holding its quarter of the limit) did the same (under the usual 1024: 492 of
    the 3,005 folders of five locations of 601 folders)."""
    root = tmp_path / "wide"
    for i in range(100):
        (root / f"d{i}" / "inner").mkdir(parents=True)
    run = subprocess.run([sys.executable, "-c", WALKS_UNDER_A_LOW_LIMIT, str(root)], capture_output=True, text=True)
    assert run.stdout.splitlines() == ["201 []", "201 []", "1005 []"], run.stderr


KILLED_MIGRATING = """
import os, signal, sqlite3, sys
from sdcore.library.schema import migrate

class KilledAfter:
    '''The library's connection, the process killed (kill -9) once the migration ran the statement named.'''
    def __init__(self, conn, statement):
        self.conn, self.statement = conn, statement
    def __getattr__(self, name):
        return getattr(self.conn, name)
    def execute(self, sql, *args):
        cursor = self.conn.execute(sql, *args)
        if sql.lstrip().startswith(self.statement):
            os.kill(os.getpid(), signal.SIGKILL)
        return cursor

conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
migrate(KilledAfter(conn, sys.argv[2]))
"""


@pytest.mark.parametrize("statement", ["INSERT INTO entries_coded", "DROP TABLE entries", "ALTER TABLE", "CREATE TRIGGER catalogue_entry_changed"])
async def test_a_migration_killed_midway_leaves_the_library_as_it_was_and_it_migrates_on_the_next_open(
    tmp_path: Path, tree: Path, statement: str
) -> None:
    """kill -9 (or a power cut) while migration 32 makes the entries table again: the next open finds the library as
    it was before (never half-migrated: no entries table, or one without its triggers) and migrates it whole.
    A guard: the migration runs in one transaction (passes on the current code)."""
    from sdcore import tags
    from sdcore.library import entries as library_entries
    from sdcore.library.schema import MIGRATIONS

    async with Core(tmp_path / "data") as core:
        library = core.library()
        loc = library.locations.add(str(tree), mode="content")
        await index(library, loc)
        tags.create(library, "work")
        tagged = library_entries.entry_at(library, str(tree / "docs" / "b.md"))
        tags.assign(library, "work", [tagged])
        before = entries(library, loc)
        schema = library.read().execute("SELECT type, name, sql FROM sqlite_schema ORDER BY 1, 2").fetchall()
        database = library.folder / "database.db"
    as_schema_31_left_it(database)
    killed = subprocess.run([sys.executable, "-c", KILLED_MIGRATING, str(database), statement], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    with sqlite3.connect(database) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 31
        assert old.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    async with Core(tmp_path / "data") as core:
        library = core.library()
        assert library.read().execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
        assert library.read().execute("SELECT type, name, sql FROM sqlite_schema ORDER BY 1, 2").fetchall() == schema
        assert entries(library, library.locations.get(loc.id)) == before
        assert [t.entry_id for t in tags.entries(library, "work")] == [tagged]
        assert (await index(library, library.locations.get(loc.id)))["changed"] == 0
