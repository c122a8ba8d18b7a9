"""The high-water mark: a library's own numbers kept outside it as they leave; a library found below it (restored
from a backup) numbers on past it, once, and says so once."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from pathlib import Path

from sdcore.library.context import LibraryContext
from sdcore.library.library import Library, create_folder
from sdcore.library.schema import next_entry_id
from sdcore.sync import highwater, oplog
from sdcore.sync.highwater import Mark


def open_library(folder: Path, marks: Path, device: uuid.UUID) -> Library:
    return Library(folder, dataclasses.replace(LibraryContext.this_device_only(device), marks=marks))


def test_a_library_put_back_from_a_copy_numbers_on_past_what_left_it_and_says_so_once(tmp_path: Path) -> None:
    device = uuid.uuid4()
    me = str(device)
    folder, marks = create_folder(tmp_path, "Photos"), tmp_path / "data" / "highwater"
    library = open_library(folder, marks, device)
    with library.write() as db:
        library.sync.set_search(db, "first", None)  # one op of this device (numbered 1)
    library.close()
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)

    library = open_library(folder, marks, device)
    with library.write() as db:
        for n in range(3):
            library.sync.set_search(db, f"later-{n}", None)
        db.execute("INSERT INTO entry_id_floor (id) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM entry_id_floor)")
        db.execute("UPDATE entry_id_floor SET id = 500")  # ids up to 500 were given
        db.execute("INSERT INTO catalogue_log (location_id) VALUES (1), (2), (3)")
    assert library.restored is None
    highwater.seen(library)  # ...and sent to another device
    seen = highwater.mark_of(library)
    assert (seen.entry_id, seen.catalogue, seen.op_seq) == (500, 3, 4)
    highwater.seen(library)
    assert highwater.mark_of(library) == seen  # only ever raised
    library.close()

    shutil.rmtree(folder)
    shutil.copytree(backup, folder)
    library = open_library(folder, marks, device)
    assert library.restored is None  # reading alone changes nothing
    with library.write() as db:
        assert library.restored is not None and "restored from a backup" in library.restored
        assert next_entry_id(db) == 501
        assert oplog.next_seq(db, me) == 5
        library.sync.set_search(db, "after-restore", None)
        assert oplog.last_seq(db, me) == 5  # numbered past the ops the others hold, never as one of them
        db.execute("INSERT INTO catalogue_log (location_id) VALUES (1)")
        assert db.execute("SELECT max(seq) FROM catalogue_log").fetchone()[0] == 4
    conn = library.read()
    assert highwater.restarted(conn, 3) and not highwater.restarted(conn, 0) and not highwater.restarted(conn, 4)
    marks_sent = oplog.watermarks(conn)
    highwater.own_watermark(conn, marks_sent)
    first_stamp = conn.execute("SELECT hlc FROM sync_ops WHERE origin = ? AND seq = 1", (me,)).fetchone()[0]
    assert marks_sent == {me: first_stamp}  # its ops 2-4 are asked back from the devices that hold them
    library.close()

    library = open_library(folder, marks, device)
    with library.write():
        pass
    assert library.restored is None  # said once: its numbers are past the mark now
    library.close()
    assert highwater.mark_in(marks, library.id) == Mark(500, 3, 4, seen.hlc)
