"""Shared data across devices: three libraries (three devices) in one process exchange operations and agree."""

from __future__ import annotations

import dataclasses
import functools
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgpack
import pytest

from sdcore import metadata, search, tags
from sdcore.index.indexer import index_location
from sdcore.library import entries
from sdcore.library.context import LibraryContext
from sdcore.library.library import Library, create_folder
from sdcore.sync import hlc, oplog, protocol, signing
from sdcore.sync.catalogue import CatalogueBatch, apply_catalogue, catalogue_changes, catalogue_watermark
from sdcore.sync.oplog import BadOp, Op, content_target, make

A, B, C = (str(uuid.UUID(int=n)) for n in (0xA, 0xB, 0xC))
FILES = ("a.txt", "b.txt", "c.txt", "same1.bin", "same2.bin")


def device(folder: Path, device_id: str) -> Library:
    return Library(folder, LibraryContext.this_device_only(uuid.UUID(device_id)))


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[tuple[Library, Library, Library]]:
    """Devices A, B and C holding one library: A's folder of files indexed, copied to B and C (as sharing does)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in FILES:
        (home / name).write_text("same content" if name.startswith("same") else f"text of {name}")
    folder = create_folder(tmp_path / "a", "Shared")
    a = device(folder, A)
    location = a.locations.add(str(home), mode="content")
    assert (await a.jobs.wait(await index_location(a, location))).state == "completed"
    a.close()
    copies = [folder]
    for name in ("b", "c"):
        copies.append(tmp_path / name / folder.name)
        shutil.copytree(folder, copies[-1], ignore=shutil.ignore_patterns(".lock"))
    trio = (device(copies[0], A), device(copies[1], B), device(copies[2], C))
    yield trio
    for library in trio:
        library.close()


def entry(library: Library, name: str) -> int:
    location = library.locations.list()[0]
    return entries.entry_at(library, f"{location.path}/{name}", location.device_id)


def exchange(giver: Library, taker: Library, limit: int = 1000) -> int:
    """What a pull does: the taker asks for what it lacks (by watermarks and numbers held), in batches, and applies
    it with the ops the giver kept in conflicts it found since the last pull."""
    total = 0
    cursor = protocol.shared_data(taker)
    sender = str(giver.context.device_id)
    while True:
        kept, up_to = oplog.kept_in_conflicts(giver.read(), cursor.cursor(sender), limit, 1 << 30)
        batch = kept + giver.sync.ops_since(taker.sync.watermarks(), limit, numbers=taker.sync.held())
        if not batch:
            return total
        new = taker.sync.apply([Op.unpack(msgpack.unpackb(msgpack.packb(op.pack()))) for op in batch])
        cursor.set_cursor(sender, up_to, [op.pack() for op in batch])
        total += new
        if not new:
            return total


def converge(*devices: Library) -> None:
    for _ in range(2):
        for giver in devices:
            for taker in devices:
                if giver is not taker:
                    exchange(giver, taker)


def tag_names(library: Library) -> dict[str, str | None]:
    return {t.name: t.color for t in tags.list(library)}


def tagged(library: Library, name: str) -> set[str]:
    try:
        found = tags.entries(library, name)
    except Exception:
        return set()
    return {entries.paths_of(library, [t.entry_id])[t.entry_id].rpartition("/")[2] for t in found}


# -- the clock --------------------------------------------------------------------------------------------


def test_the_clock_never_goes_back_when_the_wall_clock_does() -> None:
    wall = [1_000_000.0]
    clock = hlc.Clock(wall=lambda: wall[0])
    first = clock.tick()
    wall[0] -= 3600  # an NTP step back by an hour
    second = clock.tick()
    assert second > first
    assert hlc.millis(second) == hlc.millis(first)  # the counter moved, not the time


def test_a_stamp_seen_from_another_device_orders_the_next_local_edit_after_it() -> None:
    behind = hlc.Clock(wall=lambda: 1_000_000.0 - 3600)  # an hour behind
    ahead = hlc.Clock(wall=lambda: 1_000_000.0)
    seen = ahead.tick()
    behind.observe(seen)
    assert behind.tick() > seen


def test_a_stamp_a_week_ahead_is_refused() -> None:
    clock = hlc.Clock(wall=lambda: 1_000_000.0)
    with pytest.raises(hlc.ClockSkew):
        clock.observe(hlc.encode(int((1_000_000.0 + 7 * 86400) * 1000), 0))
    assert clock.tick() < hlc.encode(int(1_000_001 * 1000), 0)  # it did not pull ours along


# -- what a peer may send ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("not a list", "list of origin"),
        ([A, 1, "tag+"], "list of origin"),
        (["laptop", 1, "note", b""], "not a device id"),
        ([A, -5, "note", b""], "not a stamp"),
        ([A, 2**70, "note", b""], "not a stamp"),
        ([A, 1, "drop table", b""], "unknown kind"),
        ([A, 1, "note", "text"], "not bytes"),
        ([A, 1, "note", b"\xc1"], "not msgpack"),
        ([A, 1, "note", msgpack.packb({"target": f"e:{A}:1", "value": "x" * 10_000_000})], "not bytes of at most"),
        ([A, 1, "note", msgpack.packb({"target": f"e:{A}:1", "value": "x" * 70_000})], "at most 65536 characters"),
        ([A, 1, "note", msgpack.packb({"target": "c:abc", "value": "x"})], "not an entry"),
        ([A, 1, "note", msgpack.packb({"target": "../../etc", "value": "x"})], "not an entry or a content"),
        ([A, 1, "note", msgpack.packb({"target": f"e:{A}:1", "value": "x", "extra": 1})], "carries"),
        ([A, 1, "tag", msgpack.packb({"uid": "0" * 32, "field": "name", "value": "evil\x1b[2J"})], "control character"),
        ([A, 1, "tag", msgpack.packb({"uid": "0" * 32, "field": "name", "value": " work/ "})], "not written as"),
        ([A, 1, "tag", msgpack.packb({"uid": "0" * 32, "field": "owner", "value": "x"})], "no field"),
        ([A, 1, "tag", msgpack.packb({"uid": "'; --", "field": "name", "value": "x"})], "names no tag"),
        ([A, 1, "tag-", msgpack.packb({"uid": "0" * 32, "target": "c:ab", "seen": [[A, 1]] * 5000})], "at most 4096"),
        ([A, 1, "fav", msgpack.packb({"target": f"e:{A}:1", "value": "yes"})], "true or false"),
        ([A, 1, "search", msgpack.packb({"name": "x\n", "value": None})], "plain text"),
        ([A, 1, "search", msgpack.packb({"name": "x", "value": "[1, 2]"})], "a search's JSON"),
        ([A, 1, "search", msgpack.packb({"name": "x", "value": '{"limit": {"a": 1}, "sort": 5}'})], "a search's JSON"),
        ([A, 1, "search", msgpack.packb({"name": "x", "value": "[" * 16_000})], "a search's JSON"),  # (RecursionError)
    ],
)
def test_an_operation_a_peer_sends_is_checked_field_by_field(raw: object, complaint: str) -> None:
    with pytest.raises(BadOp, match=complaint):
        Op.unpack(raw)


def test_a_valid_operation_crosses_the_wire_unchanged() -> None:
    op = make(A, 12345, "tag+", uid="0" * 32, target=content_target("abcdef"))
    assert Op.unpack(msgpack.unpackb(msgpack.packb(op.pack()))) == op
    numbered = make(A, 12345, "tag+", 7, uid="0" * 32, target=content_target("abcdef"))
    assert Op.unpack(msgpack.unpackb(msgpack.packb(numbered.pack()))) == numbered
    assert numbered.signed_part(A) != op.signed_part(A)  # the number is signed
    with pytest.raises(BadOp, match="number is an integer"):
        Op.unpack([*op.pack(), None, 0])


def test_an_operation_from_before_numbers_is_taken_and_signed_as_it_was() -> None:
    old = [A, 12345, "tag+", msgpack.packb({"uid": "0" * 32, "target": "c:ab"}), bytes(64)]  # as a device before sent it
    op = Op.unpack(old)
    assert op.seq is None and op.pack() == old
    assert op.signed_part(A) == msgpack.packb(["sdtui sync", "op", A, A, 12345, "tag+", old[3]])


async def test_an_origins_operations_are_taken_without_a_gap_only(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    tags.create(a, "x")
    tags.assign(a, "x", [entry(a, name) for name in FILES])
    batch = a.sync.ops_since({}, 1000)
    assert [op.seq for op in batch] == list(range(1, len(batch) + 1))
    assert b.sync.apply(batch[2:]) == 0 and A not in b.sync.watermarks()  # the first two missing: nothing taken
    assert b.sync.apply(batch[:1] + batch[3:]) == 1  # the first; the rest waits for the second
    assert b.sync.apply(batch) == len(batch) - 1
    assert a.sync.digest() == b.sync.digest()


async def test_a_device_restored_from_a_backup_still_gets_its_new_edits_to_the_others(
    trio: tuple[Library, Library, Library], tmp_path: Path
) -> None:
    a, b, c = trio
    tags.create(a, "kept")
    exchange(a, b)
    exchange(a, c)
    folder = a.folder
    a.close()
    backup = tmp_path / "backup" / folder.name
    shutil.copytree(folder, backup, ignore=shutil.ignore_patterns(".lock"))
    a = device(folder, A)
    tags.create(a, "lost in the restore")  # reaches b only; c is away
    exchange(a, b)
    a.close()
    shutil.rmtree(folder)
    shutil.copytree(backup, folder)
    a = device(folder, A)  # a's library restored from the backup: it numbers its next op as the lost one was
    try:
        tags.create(a, "made after the restore")
        assert exchange(a, c) == 1  # c, away before, takes a's new op numbered as the lost one (it holds neither)
        assert exchange(a, b) == 0  # b holds the lost op of that number, earlier: a's new one is dropped there
        assert oplog.conflicts(b.read()) == {A: 1}
        assert exchange(b, a) == 1  # a gets the lost op back (b says which it kept), and makes its change again
        converge(a, b, c)  # c drops a's op of that number too (told by a or b), and takes both changes
        for library in (a, b, c):
            assert {"lost in the restore", "made after the restore"} <= set(tag_names(library))
        assert a.sync.digest() == b.sync.digest() == c.sync.digest()
    finally:
        a.close()


async def test_a_batch_of_new_tags_reads_the_tag_names_once_not_once_per_tag(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    stamp = hlc.encode(int(time.time() * 1000), 0)
    ops = [make(A, stamp + n, "tag", n + 1, uid=f"{n:032x}", field="name", value=f"t{n}") for n in range(300)]
    scans = []
    with b.write() as db:
        db.set_trace_callback(lambda sql: scans.append(sql) if "'tag:%:name'" in sql else None)
    try:
        assert b.sync.apply(ops) == 300
    finally:
        with b.write() as db:
            db.set_trace_callback(None)
    # before: every tag name read again for each new tag (8,000 new tags from a member took 32 s of CPU, 2,000 took 2)
    assert len(scans) <= 2
    assert len(tags.list(b)) == 300


def pull(giver: Library, taker: Library, limit: int) -> None:
    """What the sync service's pull does: batches until one brings nothing new."""
    while batch := giver.sync.ops_since(taker.sync.watermarks(), limit):
        if not taker.sync.apply(batch):
            break


async def test_a_member_numbering_its_ops_against_their_time_cannot_stall_the_sync_of_others(
    trio: tuple[Library, Library, Library],
) -> None:
    a, b, _ = trio
    stamp = hlc.encode(int(time.time() * 1000) - 60_000, 0)
    # a hostile c: its op 1 stamped last, its ops 2, 3... stamped long before it (so, oldest of all, they come first)
    hostile = [make(C, stamp + (500 if n == 1 else n), "search", n, name=f"junk {n}", value=None) for n in range(1, 80)]
    b.sync.apply(hostile)
    tags.create(b, "from b")
    pull(b, a, limit=50)
    # before: b took c's ops (numbered without a gap) and served them, oldest first, 50 a time: a refused them all
    # (op 1 missing), at every pull, and never got b's own tag
    assert "from b" in tag_names(a)
    assert a.sync.digest() == b.sync.digest()


async def test_keys_of_devices_whose_operations_waited_do_not_open_the_cap_on_non_members(
    trio: tuple[Library, Library, Library], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _, b, _ = trio
    monkeypatch.setattr(oplog, "MAX_STRANGERS", 3)
    made_up = [signing.Signer(Ed25519PrivateKey.generate()) for _ in range(6)]  # a hostile member's inventions
    keys = {s.device_id: s.public_key for s in made_up}
    stamp = hlc.encode(int(time.time() * 1000), 0)

    def op(signer: signing.Signer, seq: int) -> Op:
        made = make(signer.device_id, stamp + seq, "search", seq, name=f"junk {seq}", value=None)
        return dataclasses.replace(made, sig=signer.sign(made.signed_part(b.id)))

    for group in (made_up[:3], made_up[3:]):  # their ops 2, without an op 1: they wait, their keys were kept
        assert b.sync.receive([op(s, 2) for s in group], A, keys) == 0
    b.sync.receive([op(s, 1) for s in made_up], A, keys)  # then their ops 1, from devices now "known"
    held = set(oplog.origins(b.read()))
    assert len(held) <= 3, len(held)  # before: 6 (past the cap, its asks refused everywhere once past 256)
    assert {d for (d,) in b.read().execute("SELECT device FROM sync_keys")} <= held | {str(b.context.device_id)}


async def test_devices_not_members_may_add_little_here_however_many_they_are(
    trio: tuple[Library, Library, Library], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.sync import shared

    _, b, _ = trio
    monkeypatch.setattr(shared, "MAX_HELD_BYTES_STRANGERS", 3000, raising=False)
    stamp = hlc.encode(int(time.time() * 1000), 0)
    made_up = [str(uuid.UUID(int=0xD00 + n)) for n in range(10)]  # devices a hostile member made up
    ops = [make(d, stamp + 100 * i + n, "search", n + 1, name=f"junk {n}", value=None) for i, d in enumerate(made_up) for n in range(30)]
    b.sync.apply(ops)
    held = b.read().execute("SELECT total(length(body)) FROM sync_ops WHERE origin != ?", (str(b.context.device_id),)).fetchone()[0]
    assert held <= 3000, held  # before: 16 MiB each, 128 of them (here all 10 * 30 ops, 6,200 bytes)


async def test_a_devices_quota_counts_the_bytes_its_operations_take_here_not_their_bodies_alone(
    trio: tuple[Library, Library, Library], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.sync import shared

    _, b, _ = trio
    monkeypatch.setattr(shared, "QUOTA_BYTES", 200_000)
    stamp = hlc.encode(int(time.time() * 1000), 0)
    tiny = [make(A, stamp + n, "tag+", n + 1, uid="0" * 32, target=f"e:{A}:{n}") for n in range(2000)]  # 91 bytes each

    def used() -> int:
        conn = b.read()
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])

    before = used()
    b.sync.apply(tiny)
    assert used() - before <= 1.2 * 200_000  # before: 2000 ops of 182 KB of bodies, 1.3 MB on disk
    assert b.read().execute("SELECT count(*) FROM sync_ops WHERE origin = ?", (A,)).fetchone()[0] > 200


def steps(library: Library, work: Callable[[], object]) -> int:
    """SQLite's work (virtual machine steps, in thousands) for `work` on the library's connections of this thread."""
    count = [0]
    with library.write() as db:
        connections = [db, library.read()]
    for conn in connections:
        conn.set_progress_handler(lambda: count.__setitem__(0, count[0] + 1), 1000)
    try:
        work()
    finally:
        for conn in connections:
            conn.set_progress_handler(None, 0)
    return count[0]


async def test_a_long_log_is_not_read_whole_for_a_local_edit_or_a_pull(trio: tuple[Library, Library, Library]) -> None:
    _, b, c = trio
    stamp = hlc.encode(int(time.time() * 1000), 0)
    for library, n in ((b, 30_000), (c, 300)):  # ops of b and of a, as if made and synced over the years
        with library.write() as db:
            db.executemany(
                "INSERT INTO sync_ops (origin, hlc, kind, body, seq) VALUES (?, ?, 'search', x'80', ?)",
                [(origin, stamp + i, i + 1) for origin in (A, str(library.context.device_id)) for i in range(n)],
            )
    costs = [
        (steps(d, lambda d=d: search.save(d, "edit", search.Query("x"))), steps(d, d.sync.watermarks)) for d in (b, c)
    ]
    # before: the number of a device's next op, and the watermarks asked with at each pull, read every op held
    assert costs[0][0] < costs[1][0] + 20 and costs[0][1] < costs[1][1] + 20, costs


# -- merge rules ------------------------------------------------------------------------------------------


async def test_a_tag_and_a_note_made_on_one_device_appear_on_another(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    tags.create(a, "work/acme", "orange")
    tags.assign(a, "work/acme", [entry(a, "a.txt")])
    metadata.set_note(a, entry(a, "a.txt"), "signed copy")
    metadata.set_favorite(a, [entry(a, "b.txt")])
    search.save(a, "texts", search.Query("txt"))
    exchange(a, b)
    assert tag_names(b) == {"work": None, "work/acme": "orange"}
    assert tagged(b, "work/acme") == {"a.txt"}
    assert metadata.note(b, entry(b, "a.txt")) == "signed copy"
    assert search.find(b, "signed") and metadata.favorites(b) == [entry(b, "b.txt")]
    assert [s.name for s in search.saved(b)] == ["texts"]
    assert a.sync.digest() == b.sync.digest()


async def test_the_same_note_edited_on_two_devices_keeps_the_later_and_the_history_keeps_both(
    trio: tuple[Library, Library, Library],
) -> None:
    a, b, c = trio
    metadata.set_note(a, entry(a, "a.txt"), "draft")
    converge(a, b, c)
    metadata.set_note(a, entry(a, "a.txt"), "from A")
    metadata.set_note(b, entry(b, "a.txt"), "from B")  # later: B wins
    converge(a, b, c)
    for device_ in trio:
        assert metadata.note(device_, entry(device_, "a.txt")) == "from B"
    history = c.sync.note_history(entry(c, "a.txt"))
    assert [(v.value, v.origin, v.current) for v in history] == [("draft", A, False), ("from A", A, False), ("from B", B, True)]


async def test_a_tag_added_on_one_device_while_removed_on_another_stays(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "keep")
    tags.assign(a, "keep", [entry(a, "a.txt")])
    converge(a, b, c)
    tags.remove(b, "keep", [entry(b, "a.txt")])  # B took it off...
    tags.assign(a, "keep", [entry(a, "b.txt")])
    tags.remove(a, "keep", [entry(a, "a.txt")])
    tags.assign(a, "keep", [entry(a, "a.txt")])  # ...while A took it off and put it back: A's new add stays
    converge(c, b, a)
    assert {tuple(sorted(tagged(d, "keep"))) for d in trio} == {("a.txt", "b.txt")}
    events = [(e.tag, e.added, e.origin) for e in c.sync.tag_history(entry(c, "a.txt"))]
    assert events[0] == ("keep", True, A) and ("keep", False, B) in events and events[-1] == ("keep", True, A)


async def test_a_removal_that_saw_every_add_takes_the_tag_off_everywhere(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "old")
    tags.assign(a, "old", [entry(a, "a.txt")])
    converge(a, b, c)
    tags.remove(c, "old", [entry(c, "a.txt")])
    converge(a, b, c)
    assert all(tagged(d, "old") == set() for d in trio)


async def test_a_content_tag_reaches_every_copy_on_every_device(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    tags.create(b, "dup")
    tags.assign(b, "dup", [entry(b, "same1.bin")], content=True)
    exchange(b, a)
    assert tagged(a, "dup") == {"same1.bin", "same2.bin"}


async def test_a_tag_renamed_on_one_device_and_recoloured_on_another_gets_both(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "photos/2024", "blue")
    tags.assign(a, "photos/2024", [entry(a, "a.txt")])
    converge(a, b, c)
    tags.rename(a, "photos", "pictures")
    tags.recolor(b, "photos/2024", "red")
    converge(a, b, c)
    for device_ in trio:
        assert tag_names(device_) == {"pictures": None, "pictures/2024": "red"}
        assert tagged(device_, "pictures/2024") == {"a.txt"}


async def test_two_devices_making_one_tag_name_make_one_tag(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "Work", "blue")
    tags.create(b, "work", "green")  # later: its spelling and colour win
    tags.assign(a, "Work", [entry(a, "a.txt")])
    tags.assign(b, "work", [entry(b, "b.txt")])
    converge(a, b, c)
    for device_ in trio:
        assert tag_names(device_) == {"work": "green"}
        assert tagged(device_, "work") == {"a.txt", "b.txt"}


async def test_a_rename_onto_a_name_made_elsewhere_keeps_both_tags_apart(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "draft")
    converge(a, b, c)
    tags.create(b, "final")
    tags.assign(b, "final", [entry(b, "b.txt")])
    time.sleep(0.002)  # a later millisecond: within one, the two names are concurrent and either may keep it
    tags.rename(a, "draft", "final")  # A did not know B's
    tags.assign(a, "final", [entry(a, "a.txt")])
    converge(a, b, c)
    names = {tuple(sorted(tag_names(d))) for d in trio}
    assert len(names) == 1
    (shown,) = names
    assert shown[0] == "final" and shown[1].startswith("final (")  # B's named "final" first: it keeps the name
    assert {tuple(sorted(tagged(d, "final"))) for d in trio} == {("b.txt",)}


async def test_a_deleted_tag_goes_everywhere_and_its_assignments_stay_in_the_history(
    trio: tuple[Library, Library, Library],
) -> None:
    a, b, c = trio
    tags.create(a, "tmp")
    tags.assign(a, "tmp", [entry(a, "a.txt")])
    converge(a, b, c)
    tags.delete(b, "tmp")
    converge(a, b, c)
    assert all("tmp" not in tag_names(d) for d in trio)
    assert [(e.tag, e.added) for e in a.sync.tag_history(entry(a, "a.txt"))] == [("tmp", True), ("tmp", False)]


async def test_a_favourite_and_a_saved_search_follow_the_last_writer(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    metadata.set_favorite(a, [entry(a, "c.txt")])
    search.save(b, "Mine", search.Query("a"))
    converge(a, b, c)
    metadata.set_favorite(b, [entry(b, "c.txt")], False)
    search.save(a, "mine", search.Query("b"), replace=True)
    search.forget(c, "Mine")  # the last word
    converge(a, b, c)
    assert all(metadata.favorites(d) == [] and search.saved(d) == [] for d in trio)


async def test_applying_a_batch_twice_or_backwards_changes_nothing_more(trio: tuple[Library, Library, Library]) -> None:
    a, b, c = trio
    tags.create(a, "x")
    for name in FILES:
        tags.assign(a, "x", [entry(a, name)])
        metadata.set_note(a, entry(a, name), f"note {name}")
    tags.remove(a, "x", [entry(a, "b.txt")])
    tags.rename(a, "x", "y")
    batch = a.sync.ops_since({}, 1000)
    assert b.sync.apply(batch) == len(batch)
    assert b.sync.apply(batch) == 0
    assert c.sync.apply(list(reversed(batch))) == len(batch)
    assert a.sync.digest() == b.sync.digest() == c.sync.digest()
    assert tagged(c, "y") == set(FILES) - {"b.txt"}
    assert metadata.note(c, entry(c, "c.txt")) == "note c.txt"


async def test_a_device_an_hour_behind_still_orders_edits_as_they_were_made(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    b.sync._clock = hlc.Clock(0, wall=lambda: time.time() - 3600)  # B's clock is an hour behind
    metadata.set_note(a, entry(a, "a.txt"), "A first")
    exchange(a, b)
    metadata.set_note(b, entry(b, "a.txt"), "B after seeing A")  # stamped after A's, though B's clock says earlier
    exchange(b, a)
    assert metadata.note(a, entry(a, "a.txt")) == "B after seeing A"


async def test_ops_from_a_clock_a_week_ahead_wait_until_they_are_sane(trio: tuple[Library, Library, Library]) -> None:
    _, b, _ = trio
    week_ahead = hlc.encode(int((time.time() + 7 * 86400) * 1000), 0)
    target = b.sync.target_of(b.read(), entry(b, "a.txt"))
    future = make(C, week_ahead, "note", target=target, value="from the future")
    later = make(C, week_ahead + 1, "note", target=target, value="later still")
    assert b.sync.apply([later, future]) == 0
    assert metadata.note(b, entry(b, "a.txt")) is None
    assert C not in b.sync.watermarks()
    assert b.sync.clock.tick() < week_ahead


async def test_shared_data_made_before_the_log_is_adopted(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    with a.write() as db:  # as a library from before sync holds it: rows, no ops
        db.execute("INSERT INTO tags (name, color, created) VALUES ('legacy', 'red', 0)")
        db.execute("INSERT INTO user_metadata (entry_id, note, favorite, updated) VALUES (?, 'old note', 1, 0)", (entry(a, "c.txt"),))
    a.sync._adopted = False
    exchange(a, b)
    assert tag_names(b) == {"legacy": "red"}
    assert metadata.note(b, entry(b, "c.txt")) == "old note" and metadata.favorites(b) == [entry(b, "c.txt")]


async def test_an_op_about_an_entry_not_known_yet_shows_once_the_entry_arrives(
    trio: tuple[Library, Library, Library],
) -> None:
    a, _, c = trio
    report = entry(c, "c.txt")
    with c.write() as db:  # C's catalogue has not brought c.txt yet
        stored = ", ".join(column[1] for column in db.execute("PRAGMA table_info(entries)"))  # (not the virtual ones)
        row = db.execute(f"SELECT {stored} FROM entries WHERE id = ?", (report,)).fetchone()
        db.execute("DELETE FROM entries WHERE id = ?", (report,))
    tags.create(a, "later")
    tags.assign(a, "later", [entry(a, "c.txt")])
    metadata.set_note(a, entry(a, "c.txt"), "arrives later")
    exchange(a, c)
    assert tagged(c, "later") == set() and a.sync.digest() == c.sync.digest()  # held, not shown
    with c.write() as db:  # the catalogue brings it
        db.execute(f"INSERT INTO entries ({stored}) VALUES ({','.join('?' * len(row))})", row)
        c.sync.reapply_pending(db, A, [report, 999_999])
    assert tagged(c, "later") == {"c.txt"} and metadata.note(c, report) == "arrives later"
    assert search.find(c, "arrives")


async def test_a_tag_made_before_the_catalogue_brings_its_file_shows_when_it_does_and_follows_a_rename(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "draft.txt").write_text("words")
    a = device(create_folder(tmp_path / "a", "Shared"), A)
    b = device(create_folder(tmp_path / "b", "Shared"), B)  # knows nothing of A's files yet
    location = a.locations.add(str(home), mode="content")
    assert (await a.jobs.wait(await index_location(a, location))).state == "completed"
    tags.create(a, "work")
    tags.assign(a, "work", [entry(a, "draft.txt")])
    metadata.set_note(a, entry(a, "draft.txt"), "for monday")
    exchange(a, b)  # the ops come first: held
    assert tags.entries(b, "work") == [] and search.find(b, "monday") == []

    def catalogue() -> None:
        while True:
            batch = catalogue_changes(a, catalogue_watermark(b, uuid.UUID(A)))
            apply_catalogue(b, uuid.UUID(A), CatalogueBatch.unpack(batch.pack()))
            if batch.complete:
                return

    catalogue()
    assert tagged(b, "work") == {"draft.txt"} and metadata.note(b, entry(b, "draft.txt")) == "for monday"
    (home / "draft.txt").rename(home / "final.txt")
    assert (await a.jobs.wait(await index_location(a, location))).state == "completed"
    catalogue()
    assert tagged(b, "work") == {"final.txt"} and metadata.note(b, entry(b, "final.txt")) == "for monday"
    for library in (a, b):
        library.close()


# -- convergence under random partitions ------------------------------------------------------------------


def random_edit(rng: random.Random, library: Library) -> None:
    names = ["red", "work", "work/acme", "later"]
    ids = [entry(library, n) for n in FILES]
    action = rng.choice(["create", "tag", "tag", "untag", "note", "fav", "rename", "recolor", "search", "delete"])
    try:
        if action == "create":
            tags.create(library, rng.choice(names), rng.choice([None, "red", "blue"]))
        elif action == "tag":
            name = rng.choice(names)
            if name not in tag_names(library):
                tags.create(library, name)
            tags.assign(library, name, rng.sample(ids, 2), content=rng.random() < 0.2)
        elif action == "untag":
            tags.remove(library, rng.choice(list(tag_names(library)) or ["none"]), rng.sample(ids, 2))
        elif action == "note":
            metadata.set_note(library, rng.choice(ids), rng.choice([None, "one", "two", f"n{rng.random()}"]))
        elif action == "fav":
            metadata.set_favorite(library, [rng.choice(ids)], rng.random() < 0.6)
        elif action == "rename":
            tags.rename(library, rng.choice(list(tag_names(library)) or ["none"]), rng.choice(names + ["other"]))
        elif action == "recolor":
            tags.recolor(library, rng.choice(list(tag_names(library)) or ["none"]), rng.choice([None, "teal"]))
        elif action == "search":
            if rng.random() < 0.7:
                search.save(library, rng.choice(["s1", "S1", "s2"]), search.Query(rng.choice(["a", "b"])), replace=True)
            else:
                search.forget(library, rng.choice(["s1", "s2"]))
        elif action == "delete":
            tags.delete(library, rng.choice(list(tag_names(library)) or ["none"]), recursive=True)
    except (tags.TagError, tags.NotFound, tags.AlreadyExists):
        pass  # what a person might type wrongly: refused, nothing written


@pytest.mark.parametrize("seed", range(20))
async def test_three_devices_end_equal_whatever_they_did_apart(seed: int, trio: tuple[Library, Library, Library]) -> None:
    rng = random.Random(seed)
    if seed % 2:  # C's clock an hour behind
        trio[2].sync._clock = hlc.Clock(0, wall=lambda: time.time() - 3600)
    for _ in range(80):
        if rng.random() < 0.7:
            random_edit(rng, rng.choice(trio))
        else:  # a link that is up for a moment: one pull, maybe cut short
            giver, taker = rng.sample(trio, 2)
            batch = giver.sync.ops_since(taker.sync.watermarks(), rng.randint(1, 20))
            taker.sync.apply(batch)
    converge(*trio)
    digests = {d.sync.digest() for d in trio}
    assert len(digests) == 1, f"seed {seed}"
    shown = {(tuple(sorted(tag_names(d).items(), key=str)), tuple(sorted(map(str, metadata.favorites(d))))) for d in trio}
    assert len(shown) == 1, f"seed {seed}: what the devices show differs"
    notes = {tuple(metadata.note(d, entry(d, n)) for n in FILES) for d in trio}
    assert len(notes) == 1, f"seed {seed}: notes differ"
    assigned = {tuple(sorted((n, tuple(sorted(tagged(d, n)))) for n in tag_names(d))) for d in trio}
    assert len(assigned) == 1, f"seed {seed}: tagged files differ"


@pytest.mark.parametrize("seed", range(12))
async def test_devices_given_two_different_histories_of_one_device_end_equal(
    seed: int, trio: tuple[Library, Library, Library], tmp_path: Path
) -> None:
    """D's library is restored from a backup with no mark of what it had numbered: it numbers its next changes as
    the lost ones were (two histories under one set of numbers, as a lying device would sign them). Whatever part of
    each the others get, in whatever order, with their own edits between: all four end with the same state, one op
    of each of D's numbers everywhere, and none of D's changes after the restore lost."""
    rng = random.Random(seed)
    a, b, c = trio
    D = str(uuid.UUID(int=0xD))
    folder = tmp_path / "d" / a.folder.name
    shutil.copytree(a.folder, folder, ignore=shutil.ignore_patterns(".lock"))
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    histories = []
    for _ in range(2):  # the lost history, then the one made after the restore
        d = device(folder, D)
        for _ in range(rng.randint(3, 12)):
            random_edit(rng, d)
        histories.append(d.sync.ops_since({}, 10_000))
        d.close()
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    d = device(folder, D)  # D as restored, with the second history: what it holds now
    d.sync.apply(histories[1])
    try:
        for library in trio:
            for history in rng.sample(histories, 2):
                cut = rng.randint(0, len(history))
                library.sync.apply(rng.sample(history[:cut], cut))  # (in any order: what waits comes again)
            if rng.random() < 0.5:
                random_edit(rng, library)
        for _ in range(5):
            giver, taker = rng.sample([a, b, c, d], 2)
            exchange(giver, taker, rng.randint(1, 5))
        for _ in range(3):
            converge(a, b, c, d)
        assert len({x.sync.digest() for x in (a, b, c, d)}) == 1, f"seed {seed}"
        shown = {tuple(sorted(tag_names(x).items(), key=str)) for x in (a, b, c, d)}
        assert len(shown) == 1, f"seed {seed}: the tags shown differ"
        for x in (a, b, c, d):
            numbers = [s for (s,) in x.read().execute("SELECT seq FROM sync_ops WHERE origin = ? ORDER BY seq", (D,))]
            assert len(numbers) == len(set(numbers)), f"seed {seed}: two ops of one number of D"
        kept = {(op.kind, op.body) for op in d.sync.ops_since({}, 10_000) if op.origin == D}
        assert {(op.kind, op.body) for op in histories[1]} <= kept, f"seed {seed}: a change D made after the restore lost"
    finally:
        d.close()


async def test_undoing_a_removal_that_lost_a_conflict_costs_what_it_saw_not_the_files_whole_history(
    trio: tuple[Library, Library, Library],
) -> None:
    """A member signing two removals with one number, the later sent first, makes every device undo it: on a file
    tagged and untagged 4,000 times, that read the file's whole history (each time: a lying member's cheap way to
    make others work), now only the adds the removal saw."""
    _, b, c = trio
    stamp = hlc.encode(int(time.time() * 1000), 0)
    target = content_target("ab" * 16)
    cost = {}
    for library, churn in ((b, 40), (c, 4000)):
        history = [make(A, stamp + n, "tag+" if n % 2 == 0 else "tag-", n + 1, uid="1" * 32, target=target,
                        **({} if n % 2 == 0 else {"seen": [[A, stamp + n - 1]]})) for n in range(churn)]  # fmt: skip
        library.sync.apply(history)
        add = make(A, stamp + churn, "tag+", churn + 1, uid="1" * 32, target=target)
        liar = [make(A, stamp + churn + 1 + n, "tag-", churn + 2, uid="1" * 32, target=target, seen=[[A, add.hlc]]) for n in range(2)]
        library.sync.apply([add, liar[1]])
        cost[churn] = steps(library, lambda library=library, liar=liar: library.sync.apply([liar[0]]))  # type: ignore[misc]
        assert oplog.conflicts(library.read()) == {A: 1}
    assert cost[4000] <= 2 * cost[40] + 5, cost  # before: 92,000 steps vs 1,000 (the 4,000 ops read and unpacked)


async def test_an_asker_says_which_numbers_it_holds_and_gets_exactly_the_others(trio: tuple[Library, Library, Library]) -> None:
    a, b, _ = trio
    stamp = hlc.encode(int(time.time() * 1000), 0)
    ops = [make(B, stamp + n, "search", n, name=f"s{n}", value=None) for n in range(1, 41)]
    a.sync.apply(ops)
    with b.write() as db:  # b holds 1-5, 7 and 30-40 (as a restored device might: its own numbers past a gap)
        for op in ops[:5] + ops[6:7] + ops[29:]:
            oplog.insert(db, op)
    assert b.sync.held()[B] == [5, [[7, 7], [30, 40]]]
    assert b.sync.watermarks()[B] == ops[-1].hlc  # by time alone, b lacks nothing
    assert a.sync.ops_since(b.sync.watermarks(), 1000) == []
    lacking = a.sync.ops_since(b.sync.watermarks(), 1000, numbers=b.sync.held())
    assert [op.seq for op in lacking] == [6, *range(8, 30)]
    assert [op.seq for op in a.sync.ops_since(b.sync.watermarks(), 5, numbers=b.sync.held())] == [6, 8, 9, 10, 11]


async def test_a_member_cannot_make_two_devices_differ_for_good_by_ops_that_conflict_in_a_chain(
    trio: tuple[Library, Library, Library],
) -> None:
    """A lying member signs X and Y with one number (Y earlier: it wins) and Z without a number with Y's stamp (Z
    ranks before Y), X and Z not in conflict; b gets X, Z, Y (Y loses to Z: b keeps X and Z), c gets Y, X, Z (X
    loses to Y, then Y to Z: c keeps Z only). A later op puts both watermarks past X, and c holds X's number (Y
    had it): X never went to c, whose notes' history differed from b's for good."""
    _, b, c = trio
    h = hlc.encode(int(time.time() * 1000), 0)
    note = functools.partial(make, A, kind="note", target=f"e:{A}:1")
    y = note(h, seq=1, value="y")
    x = note(h + 10, seq=1, value="x")
    z = next(z for n in range(100) if oplog.rank(z := note(h, value=f"z{n}")) < oplog.rank(y))
    later = make(A, h + 20, "search", name="later", value=None)
    for library, order in ((b, (x, z, y)), (c, (y, x, z))):
        for op in (*order, later):
            library.sync.apply([op])
    converge(b, c)
    assert b.sync.digest() == c.sync.digest()  # before: b held X, c did not


async def test_the_runs_of_numbers_held_follow_ops_kept_and_dropped(trio: tuple[Library, Library, Library]) -> None:
    _, b, _ = trio
    rng = random.Random(7)
    want: set[int] = set()
    with b.write() as db:
        for _ in range(400):
            n = rng.randint(1, 60)
            if rng.random() < 0.6:
                oplog.insert(db, make(B, n, "search", n, name=f"s{n}", value=None))
                want.add(n)
            elif n in want:
                oplog.delete(db, make(B, n, "search", n, name=f"s{n}", value=None))
                want.discard(n)
            runs = db.execute("SELECT lo, hi FROM sync_held WHERE origin = ? ORDER BY lo", (B,)).fetchall()
            assert [n for lo, hi in runs for n in range(lo, hi + 1)] == sorted(want)
            assert all(b_lo > a_hi + 1 for (_, a_hi), (b_lo, _) in zip(runs, runs[1:], strict=False))  # apart, never adjacent


async def test_a_conflict_costs_the_same_however_many_its_origin_signed_before(trio: tuple[Library, Library, Library]) -> None:
    """Each conflict counted the evidence kept of its origin (every conflict of it read): a lying member signing
    tens of thousands of conflicting ops an hour, within its quota, made each new one cost all those before."""
    _, b, c = trio
    h = hlc.encode(int(time.time() * 1000), 0)
    cost = {}
    for library, before in ((b, 50), (c, 20_000)):
        library.sync.apply([make(A, h, "search", 1, name="kept", value=None)])
        with library.write() as db:  # (the conflicts found before, as found: the first 16 with their evidence)
            db.executemany(
                "INSERT INTO sync_conflicts (origin, seq, hlc, kept_hlc, evidence, found) VALUES (?, NULL, ?, ?, ?, 0)",
                [(A, h - 2 * n - 2, h - 2 * n - 1, b"x" if n < oplog.EVIDENCE_KEPT else None) for n in range(before)],
            )
        liar = make(A, h + 1, "search", 1, name="dropped", value=None)
        cost[before] = steps(library, lambda library=library, liar=liar: library.sync.apply([liar]))  # type: ignore[misc]
        assert oplog.conflicts(library.read())[A] == before + 1
    assert cost[20_000] <= 2 * cost[50] + 5, cost


async def test_undoing_an_add_that_lost_a_conflict_keeps_the_removals_that_saw_it(trio: tuple[Library, Library, Library]) -> None:
    """A member signs an add and, with its number but earlier, a search (which wins), then a removal of that add.
    b took the add and its removal, then the search: undoing the add deleted its row of the add-wins set, with the
    removal's mark on it; c, which took the search first, never holds the add but keeps the mark: the two differed
    for good (and would show the tag differently were the add ever taken again)."""
    _, b, c = trio
    h = hlc.encode(int(time.time() * 1000), 0)
    target = f"e:{A}:1"
    add = make(A, h + 5, "tag+", 1, uid="1" * 32, target=target)
    rival = make(A, h, "search", 1, name="earlier", value=None)
    removal = make(A, h + 6, "tag-", 2, uid="1" * 32, target=target, seen=[[A, add.hlc]])
    for library, order in ((b, (add, removal, rival)), (c, (rival, removal, add))):
        for op in order:
            library.sync.apply([op])
    converge(b, c)
    assert b.sync.digest() == c.sync.digest()  # before: b had lost the removal's mark on the add


async def test_undoing_a_removal_forgets_its_mark_on_an_add_not_held_though_another_op_has_its_stamp(
    trio: tuple[Library, Library, Library],
) -> None:
    """A removal names the adds it saw by origin and stamp; a lying member's removal names a stamp it gave a note.
    Undoing the removal (it lost a conflict) kept its mark on that 'add' as if the add were held (an op of that stamp
    is: the note), where a device that dropped the removal on arrival never had it: the two differed for good."""
    _, b, c = trio
    h = hlc.encode(int(time.time() * 1000), 0)
    target = f"e:{A}:1"
    note = make(A, h + 5, "note", target=target, value="v")
    removal = make(A, h + 3, "tag-", 1, uid="1" * 32, target=target, seen=[[A, note.hlc]])
    rival = make(A, h, "search", 1, name="earlier", value=None)
    for library, order in ((b, (note, removal, rival)), (c, (rival, note, removal))):
        for op in order:
            library.sync.apply([op])
    converge(b, c)
    assert b.sync.digest() == c.sync.digest()  # before: b kept a row of the add-wins set for the note's stamp


async def test_a_devices_quota_counts_the_marks_its_removals_leave_here(
    trio: tuple[Library, Library, Library], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A removal names up to 4,096 adds it saw, each a row of the add-wins set here (~130 bytes, where its name in the
    op's body is ~48): a member's removals naming adds made up took ~3 times the byte quota."""
    from sdcore.sync import shared

    _, b, _ = trio
    monkeypatch.setattr(shared, "QUOTA_BYTES", 200_000)
    stamp = hlc.encode(int(time.time() * 1000), 0)
    removals = [
        make(A, stamp + n * 1000, "tag-", n + 1, uid="0" * 32, target=f"e:{A}:{n}", seen=[[A, stamp + n * 1000 - k - 1] for k in range(200)])
        for n in range(200)
    ]  # fmt: skip

    def used() -> int:
        conn = b.read()
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])

    before = used()
    b.sync.apply(removals)
    assert used() - before <= 1.2 * 200_000, used() - before
    assert b.read().execute("SELECT count(*) FROM sync_ops WHERE origin = ?", (A,)).fetchone()[0] >= 2  # (each ~100 kB counted)


@pytest.mark.parametrize("holding_its_rival", [False, True])
async def test_a_kept_op_an_asker_refuses_does_not_stop_the_conflicts_after_it_reaching_it(
    holding_its_rival: bool, trio: tuple[Library, Library, Library], monkeypatch: pytest.MonkeyPatch
) -> None:
    """c holds the dropped op of a conflict b found; the kept op comes only with b's conflicts (c holds its number,
    and a later stamp). A lying member first makes a conflict of a device it made up, whose kept op c refuses for
    good (its room for devices not members is full): c's cursor of b's conflicts never moved past it, and no
    conflict found after it (beyond one answer's worth: here 1) ever reached c. c holds no op that one would make it
    drop: its cursor moves on; holding one (the made-up device's dropped op), it drops it though the kept op waits."""
    from sdcore.sync import shared

    _, b, c = trio
    monkeypatch.setattr(shared, "MAX_HELD_BYTES_STRANGERS", 3000, raising=False)
    h = hlc.encode(int(time.time() * 1000), 0)
    made_up, filler = str(uuid.UUID(int=0xE01)), str(uuid.UUID(int=0xE02))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sdcore.sync.members import Members

    for library in (b, c):  # (A a member: its ops count in a room of their own)
        Members(library.folder, library.id, signing.Signer(Ed25519PrivateKey.generate())).add(uuid.UUID(A), "a")
    made_up_dropped = make(made_up, h + 2, "search", 1, name="dropped", value=None)
    if holding_its_rival:
        c.sync.apply([made_up_dropped])
    c.sync.apply([make(filler, h + n, "search", n + 1, name=f"junk {n}", value=None) for n in range(30)])  # c's room full
    b.sync.apply([made_up_dropped])
    b.sync.apply([make(made_up, h + 1, "search", 1, name="kept", value=None)])
    dropped, kept = (make(A, h + d, "note", 1, target=f"e:{A}:1", value=v) for d, v in ((4, "dropped"), (3, "kept")))
    c.sync.apply([dropped])
    b.sync.apply([dropped])
    b.sync.apply([kept])
    assert list(oplog.conflicts(b.read()).values()) == [1, 1]
    for _ in range(3):
        exchange(b, c, limit=1)
    assert oplog.get(c.read(), A, kept.hlc) is not None  # c never got A's kept op: c shows "dropped", b "kept"


async def test_saying_which_numbers_are_held_reads_the_runs_it_names_not_every_one(trio: tuple[Library, Library, Library]) -> None:
    """Conflicts a lying member signs can leave a gap in its numbers held for each: a pull read every run of them."""
    _, b, c = trio
    for library, gaps in ((b, 40), (c, 20_000)):
        with library.write() as db:
            oplog.insert(db, make(A, 1, "search", 1, name="first", value=None))
            db.executemany("INSERT INTO sync_held (origin, lo, hi) VALUES (?, ?, ?)", [(A, 2 * n + 1, 2 * n + 1) for n in range(1, gaps)])
    assert c.sync.held()[A] == [1, [[2 * n + 1, 2 * n + 1] for n in range(1, oplog.MAX_RANGES)] + [[39_999, 39_999]]]
    assert steps(c, c.sync.held) <= steps(b, b.sync.held) + 5  # before: 100k steps vs 0k


@pytest.mark.parametrize("seed", [58, 96, 455, *range(8)])
async def test_devices_given_a_liars_conflicting_ops_in_any_order_end_equal(seed: int, trio: tuple[Library, Library, Library]) -> None:
    """A member signs notes, tag adds and removals with numbers and stamps it gives twice (or none), and gives each
    device some of them in its own order; after syncing, and the liar sending all of them to all, the devices that
    are not it hold the same state (seed 96 fails with the undo of a removal before this branch; the liar's own device,
    whose changes it makes again, may stay apart: a gap it left in its own numbers)."""
    rng = random.Random(seed)
    h = hlc.encode(int(time.time() * 1000), 0)
    target = f"e:{A}:1"
    ops: list[Op] = []
    for n in range(rng.randint(3, 8)):
        seq, stamp, kind = rng.choice([None, 1, 2, 3, 1, 2]), h + rng.randint(0, 6), rng.choice(["note", "tag+", "tag-"])
        if kind == "note":
            ops.append(make(A, stamp, "note", seq, target=target, value=f"v{n}"))
        elif kind == "tag+":
            ops.append(make(A, stamp, "tag+", seq, uid="1" * 32, target=target))
        else:
            adds = [o for o in ops if o.kind == "tag+"]
            seen = [[A, o.hlc] for o in rng.sample(adds, min(len(adds), 2))]
            ops.append(make(A, stamp, "tag-", seq, uid="1" * 32, target=target, seen=seen))
    for library in trio:
        for op in rng.sample(ops, len(ops)):
            if rng.random() < 0.8:
                library.sync.apply([op])
    for _ in range(4):
        converge(*trio)
    for library in trio:
        library.sync.apply(rng.sample(ops, len(ops)))
    for _ in range(4):
        converge(*trio)
    _, b, c = trio
    assert b.sync.digest() == c.sync.digest(), f"seed {seed}"
