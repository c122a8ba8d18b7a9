"""Another device's catalogue as a file of its own (sdcore.sync.catalogue_file): the owner's file of a real indexed
library holds what its catalogue batches carry, and is accepted; a kept file refreshed from the owner's changes is the
file made anew; every file an attacker crafts is refused, saying the rule it breaks, with SQLite in defensive mode."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from sdcore.index.indexer import index_location
from sdcore.library import Library
from sdcore.library.schema import ENTRY_KINDS, OBJECT_KINDS
from sdcore.sync import catalogue_file
from sdcore.sync.catalogue import CatalogueBatch, CatalogueRefused, catalogue_changes
from sdcore.sync.catalogue_file import cas_id_of, check, defend, defensive, make, refresh
from tests.functional.crafted_catalogues import CRAFTED, DEVICE, FINE, SYMLINK, Crafted, tiny


def make_home(root: Path) -> Path:
    """A folder of nested folders, hidden files, a link, odd and non-UTF-8 names, files of equal content."""
    (root / "photos" / "2024" / "summer").mkdir(parents=True)
    (root / "photos" / "2024" / "summer" / "Beach.JPG").write_bytes(b"\xff\xd8\xff" + b"sand" * 100)
    (root / "photos" / "2024" / "winter.jpg").write_bytes(b"\xff\xd8\xff" + b"snow" * 100)
    (root / "photos" / "copy of winter.jpg").write_bytes(b"\xff\xd8\xff" + b"snow" * 100)
    (root / "docs" / ".cache").mkdir(parents=True)
    (root / "docs" / "Été.PDF").write_bytes(b"%PDF-1.4 x")
    (root / "docs" / ".bashrc").write_text("alias ll='ls -l'")
    (root / "docs" / "archive.tar.GZ").write_bytes(b"\x1f\x8b" + b"\0" * 30)
    (root / "docs" / "trailing.").write_text("dot")
    (root / os.fsdecode(b"bad\xffname.txt")).write_text("not UTF-8")
    (root / "link-to-docs").symlink_to("docs")
    (root / "empty").mkdir()
    return root


async def indexed(library: Library, root: Path) -> None:
    """`root` indexed as a location of `library` (added first if it is not one)."""
    found = [x for x in library.locations.list() if x.path == str(root)]
    loc = found[0] if found else library.locations.add(str(root), mode="content")
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


def batches(library: Library) -> tuple[set[tuple], set[tuple]]:
    """Every entry and location the owner's catalogue batches carry from the start (small batches, over the wire's
    packing), as rows."""
    entries: set[tuple] = set()
    locations: set[tuple] = set()
    since = 0
    while True:
        batch = CatalogueBatch.unpack(catalogue_changes(library, since, 7).pack())
        entries |= {tuple(e) for e in batch.entries}
        locations |= {(lo.id, lo.path, lo.name, lo.mode, lo.scan_state, lo.created, lo.last_scanned, lo.root_id,
                       lo.volume_id, lo.volume_path) for lo in batch.locations}  # fmt: skip
        since = batch.up_to
        if batch.complete:
            return entries, locations


def held(path: Path) -> tuple[set[tuple], set[tuple]]:
    """The file's entries in the batches' shape (kinds named; hidden a flag; cas_ids text), and its locations."""
    conn = sqlite3.connect(path)
    entries = {(i, lo, p, n, ENTRY_KINDS[k], None if o is None else OBJECT_KINDS[o], s, f, m, bool(h),
                None if c is None else cas_id_of(c)) for i, lo, p, n, k, o, s, f, m, h, c in
               conn.execute("SELECT * FROM entries")}  # fmt: skip
    locations = set(conn.execute("SELECT * FROM locations"))
    conn.close()
    return entries, locations


def rows(path: Path) -> list[list[tuple]]:
    conn = sqlite3.connect(path)
    found = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("catalogue", "locations", "entries",
                                                                               "directory_paths")]  # fmt: skip
    conn.close()
    return found


async def test_the_owners_file_holds_what_its_catalogue_batches_carry_and_is_accepted(
    library: Library, tmp_path: Path
) -> None:
    await indexed(library, make_home(tmp_path / "home"))
    with library.write() as db:  # as a scan leaves a folder while it looks for where it moved
        db.execute("UPDATE entries SET parent_id = NULL WHERE name = 'docs'")
    out = tmp_path / "catalogue.db"

    make(library, out)
    got = check(out, library.context.device_id)

    entries, locations = batches(library)
    assert held(out) == (entries, locations)
    assert (got.entries, got.locations) == (len(entries), 1) and got.entries > 15
    assert got.head == catalogue_changes(library, 0).head and got.device_id == library.context.device_id
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT kind_code FROM entries WHERE name = 'link-to-docs'").fetchone() == (SYMLINK,)
    cas_ids = {r[0] for r in conn.execute("SELECT printf('%016x', cas_number) FROM entries WHERE cas_number NOT NULL")}
    assert cas_ids == {e[-1] for e in entries if e[-1] is not None} and len(cas_ids) > 5  # SQL writes them back too
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert {"entries_by_parent", "directory_paths_by_path", "locations_by_path"} <= indexes  # the receiver's own
    conn.close()
    with pytest.raises(FileExistsError):
        make(library, out)  # never over a file there: not even one it made


async def test_a_kept_file_refreshed_from_the_owners_changes_is_the_file_made_anew(library: Library, tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    await indexed(library, home)
    other = tmp_path / "other"
    (other / "inside").mkdir(parents=True)
    (other / "inside" / "x.txt").write_text("x")
    await indexed(library, other)
    kept = tmp_path / "kept.db"
    make(library, kept)

    (home / "photos" / "2024").rename(home / "photos" / "twenty-four")  # a folder renamed: every path below changes
    (home / "docs" / "archive.tar.GZ").unlink()
    (home / "docs" / "new.md").write_text("# new")
    (home / "empty" / "deeper").mkdir()
    library.locations.remove(str(other))
    await indexed(library, home)
    refresh(library, kept)

    fresh = tmp_path / "fresh.db"
    make(library, fresh)
    assert rows(kept) == rows(fresh)
    assert any(p == "photos/twenty-four/summer" for _, _, p in rows(kept)[3])
    check(kept, library.context.device_id)


async def test_a_kept_file_ahead_of_the_library_restored_from_a_backup_is_made_again(library: Library, tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    await indexed(library, home)
    kept = tmp_path / "kept.db"
    make(library, kept)
    with sqlite3.connect(kept) as conn:  # numbered past the library's changes: made before the library was restored
        conn.execute("UPDATE catalogue SET head = head + 1000")
    (home / "photos" / "new.jpg").write_bytes(b"new")
    await indexed(library, home)

    refresh(library, kept)

    fresh = tmp_path / "fresh.db"
    make(library, fresh)
    assert rows(kept) == rows(fresh)


@pytest.mark.parametrize("fine", FINE, ids=[f[0] for f in FINE])
def test_a_catalogue_file_that_keeps_every_rule_is_accepted(fine: tuple, tmp_path: Path) -> None:
    what, mutate, loose = fine
    got = check(tiny(tmp_path / "fine.db", mutate, loose), uuid.UUID(DEVICE))
    assert got.device_name == "owner" and got.head == 10


@pytest.mark.parametrize("crafted", CRAFTED, ids=[c.what for c in CRAFTED])
def test_a_crafted_catalogue_file_is_refused_naming_the_rule_it_breaks(crafted: Crafted, tmp_path: Path) -> None:
    path = crafted.make(tmp_path / "crafted.db")
    with pytest.raises(CatalogueRefused, match="^a catalogue file was refused: ") as refusal:
        check(path, uuid.UUID(DEVICE), crafted.limits)
    assert crafted.rule in str(refusal.value) and "\n" not in str(refusal.value)


def test_the_check_runs_with_sqlite_in_defensive_mode() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert not defensive(conn)
    defend(conn)
    assert defensive(conn)
    conn.execute("CREATE TABLE t (a)")
    conn.execute("PRAGMA writable_schema = ON")
    with pytest.raises(sqlite3.OperationalError, match="may not be modified"):  # what defensive mode forbids
        conn.execute("UPDATE sqlite_schema SET sql = sql")
    conn.close()


def test_no_check_runs_when_defensive_mode_cannot_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue_file, "_set_defensive", lambda conn: None)
    with pytest.raises(CatalogueRefused, match="cannot put SQLite in defensive mode"):
        check(tiny(tmp_path / "fine.db"), uuid.UUID(DEVICE))
