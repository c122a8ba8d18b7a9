"""The library database schema as numbered migrations, run in order when a library opens."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable


def folded_sql(expression: str) -> str:
    """SQL of `expression` as search holds text: folded by `search_fold` (below) unless it is printable ASCII,
    which the trigram index folds itself (a call into Python per row costs a first index half as much again)."""
    return f"CASE WHEN {expression} GLOB '*[^ -~]*' THEN search_fold({expression}) ELSE {expression} END"


def ext_token_sql(expression: str) -> str:
    """SQL of an extension as the search index holds it: a token of its own (U+E000 ext U+E000), so an --ext filter
    is met inside the index."""
    return f"CASE {expression} WHEN '' THEN '' ELSE char(57344) || {expression} || char(57344) END"


# Fixed for good, as USUAL_MODES: every library's virtual columns (migration 32) read the codes back with these lists.
# A name not in them is stored as it is and read as it is: a new kind needs no change here (adding it here needs a
# migration that makes the columns again).
ENTRY_KINDS = ("file", "dir", "symlink", "fifo", "socket", "device", "other")
"""An entry's kind, stored as its place here (`entries.kind_code`: a file's takes no byte of its row)."""
DIR_CODE = ENTRY_KINDS.index("dir")
OBJECT_KINDS = ("code", "text", "image", "document", "audio", "video", "archive", "executable", "font", "database")
"""What a file holds, stored as its place here (`entries.object_code`)."""


def coded_sql(names: tuple[str, ...], expression: str) -> str:
    """SQL of the name `expression` as it is stored: its place in `names` (a name not there, as it is)."""
    cases = " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(names))
    return f"CASE {expression} {cases} ELSE {expression} END"


def named_sql(names: tuple[str, ...], column: str) -> str:
    """SQL of the name stored in `column` (`coded_sql`'s inverse)."""
    cases = " ".join(f"WHEN {code} THEN '{name}'" for code, name in enumerate(names))
    return f"CASE {column} {cases} ELSE {column} END"


def kind_code_sql(expression: str) -> str:
    """`entries.kind_code` for the kind named by `expression` (say '?1': an expression used twice needs a number)."""
    return coded_sql(ENTRY_KINDS, expression)


def object_code_sql(expression: str) -> str:
    """`entries.object_code` for the object kind named by `expression` (NULL stays NULL)."""
    return coded_sql(OBJECT_KINDS, expression)


USUAL_MODES = (0o100644, 0o040755, 0o120777)
"""The mode most files, folders and symlinks have (ENTRY_KINDS' first three): `entries.mode_code` holds 0 for it, and
no byte of the row (0o100644 took 3)."""


def mode_code_sql(mode: str, kind_code: str) -> str:
    """`entries.mode_code` for the mode `mode` of an entry whose `kind_code` is given (both SQL; '?N' numbered)."""
    usual = " ".join(f"WHEN {code} THEN {value}" for code, value in enumerate(USUAL_MODES))
    return f"CASE WHEN {mode} = CASE {kind_code} {usual} END THEN 0 ELSE {mode} END"


def _mode_sql() -> str:
    """`entries.mode` read from its `mode_code` (a NULL mode, not known, stays NULL)."""
    usual = " ".join(f"WHEN {code} THEN {value}" for code, value in enumerate(USUAL_MODES))
    return f"CASE mode_code WHEN 0 THEN CASE kind_code {usual} END ELSE mode_code END"


_ENTRIES_COLUMNS = (
    "id, location_id, parent_id, name, extension, kind_code, object_code, size, files, inode, mtime, mode_code, link_target,"
    " content_id, fingerprint, error"
)


def _entries_coded(conn: sqlite3.Connection) -> None:
    """Migration 32 (issue 18): an entry's kind and object kind stored as small numbers, its mode as 0 when it is the
    usual one, its `hidden` read from its name; the same four columns read as before (virtual: computed when read,
    never stored). 'file', 'code', 0o100644 and `hidden` took 9 bytes of a file's row: a first index 7% smaller.

    The table is made again, its rows packed in order, its indexes and triggers as they were (a library whose bulk
    load was cut off stays without the indexes it lacked).
    """
    kept = conn.execute(
        "SELECT sql FROM sqlite_schema WHERE tbl_name = 'entries' AND type IN ('index', 'trigger') AND sql IS NOT NULL"
        " AND name != 'catalogue_entry_changed' ORDER BY type, rowid"
    ).fetchall()
    # The indexes go first and come back last: the new table takes their pages, then they take the old table's (the
    # file does not grow by a copy of the table).
    for (index,) in conn.execute("SELECT name FROM sqlite_schema WHERE tbl_name = 'entries' AND type = 'index'").fetchall():
        conn.execute(f"DROP INDEX {index}")
    conn.execute(f"""
        CREATE TABLE entries_coded (
            id INTEGER PRIMARY KEY,
            location_id INTEGER NOT NULL,
            parent_id INTEGER,               -- NULL: the location root, or orphaned while a scan looks for its move
            name TEXT NOT NULL,
            extension TEXT NOT NULL DEFAULT '',
            kind_code NOT NULL,              -- ENTRY_KINDS: 0 file, 1 dir, 2 symlink, ... (`kind_code_sql`)
            object_code,                     -- OBJECT_KINDS, or the name of a kind not there (`object_code_sql`)
            size INTEGER NOT NULL DEFAULT 0, -- a directory: the bytes of every file below it
            files INTEGER NOT NULL DEFAULT 0,-- a directory: how many files are below it
            inode INTEGER,
            mtime REAL,
            mode_code INTEGER,               -- 0: USUAL_MODES of its kind; else st_mode (`mode_code_sql`)
            link_target TEXT,
            content_id INTEGER,
            fingerprint INTEGER,             -- a directory: hash of its listing when last scanned (unchanged: skip the diff)
            error TEXT,                      -- why this entry could not be read, if it could not
            kind TEXT GENERATED ALWAYS AS ({named_sql(ENTRY_KINDS, 'kind_code')}) VIRTUAL,
            object_kind TEXT GENERATED ALWAYS AS ({named_sql(OBJECT_KINDS, 'object_code')}) VIRTUAL,
            mode INTEGER GENERATED ALWAYS AS ({_mode_sql()}) VIRTUAL,
            hidden INTEGER GENERATED ALWAYS AS (name GLOB '.*') VIRTUAL
        )""")
    values = (
        _ENTRIES_COLUMNS.replace("kind_code", kind_code_sql("kind"))
        .replace("object_code", object_code_sql("object_kind"))
        .replace("mode_code", mode_code_sql("mode", kind_code_sql("kind")))
    )
    conn.execute(f"INSERT INTO entries_coded ({_ENTRIES_COLUMNS}) SELECT {values} FROM entries ORDER BY id")
    conn.execute("DROP TABLE entries")
    conn.execute("PRAGMA legacy_alter_table = ON")  # the triggers of other tables that name `entries` stay as they are
    try:
        conn.execute("ALTER TABLE entries_coded RENAME TO entries")
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
    for (sql,) in kept:
        conn.execute(sql)
    conn.execute("""
        CREATE TRIGGER catalogue_entry_changed
        AFTER UPDATE OF location_id, parent_id, name, kind_code, object_code, size, files, mtime, content_id ON entries
        WHEN (old.location_id IS NOT new.location_id OR old.parent_id IS NOT new.parent_id OR old.name IS NOT new.name
              OR old.kind_code IS NOT new.kind_code OR old.object_code IS NOT new.object_code OR old.size IS NOT new.size
              OR old.files IS NOT new.files OR old.mtime IS NOT new.mtime OR old.content_id IS NOT new.content_id)
          AND EXISTS (SELECT 1 FROM catalogue_tracking t JOIN locations l ON l.device_id = t.device_id WHERE l.id = new.location_id)
        BEGIN
            INSERT OR REPLACE INTO catalogue_log (entry_id) VALUES (new.id);
        END""")


# Each migration runs once, in its own transaction; append, never edit a released one. A callable is for what SQL
# alone cannot say.
def _catalogues_to_files(conn: sqlite3.Connection) -> None:
    """Migration 35 (issue 16): another device's entries live in its catalogue file only (sdcore.sync.catalogue_store),
    never in the library's tables. Those rows go (entries, their folders' paths, the content ids no other entry uses,
    `catalogue_entries`); the device gets its slot, and the library's tags, notes and favourites on its entries are
    renumbered to their global ids (`slot << 40 | the device's own id`, catalogue_store.global_id), so none is lost:
    they show again once its file is kept. Its watermark goes to 0: the next sync fetches the file. Its locations
    stay (their root, an entry gone, is unset: the file names it)."""
    low_bits = 40  # (catalogue_store.SLOT_BITS, as of this migration)
    devices = [d for (d,) in conn.execute(
        "SELECT device_id FROM catalogue_entries UNION SELECT device_id FROM catalogue_locations ORDER BY 1")]  # fmt: skip
    for device in devices:
        conn.execute("INSERT OR IGNORE INTO catalogue_slots (device_id) VALUES (?)", (device,))
        (slot,) = conn.execute("SELECT slot FROM catalogue_slots WHERE device_id = ?", (device,)).fetchone()
        conn.execute("DROP TABLE IF EXISTS temp.migrated")
        conn.execute(  # each of its entries: the library's id -> its global id (none for an id no global id numbers)
            "CREATE TEMP TABLE migrated AS SELECT entry_id AS id, CASE WHEN origin_id > 0 AND origin_id < 1 << ?2"
            " THEN ?3 << ?2 | origin_id END AS global FROM catalogue_entries WHERE device_id = ?1",
            (device, low_bits, slot),
        )
        conn.execute("CREATE UNIQUE INDEX temp.migrated_by_id ON migrated (id)")
        noted = "SELECT entry_id FROM user_metadata WHERE note IS NOT NULL AND entry_id IN (SELECT id FROM temp.migrated)"
        conn.execute(f"DELETE FROM note_index WHERE rowid IN ({noted})")  # (keyed by entry id: put back below)
        for table in ("tag_assignments", "user_metadata"):
            conn.execute(
                f"UPDATE OR REPLACE {table} SET entry_id = (SELECT global FROM temp.migrated WHERE id = {table}.entry_id)"
                " WHERE entry_id IN (SELECT id FROM temp.migrated WHERE global IS NOT NULL)"
            )
        conn.execute(
            f"INSERT OR REPLACE INTO note_index (rowid, note) SELECT entry_id, {folded_sql('note')} FROM user_metadata"
            " WHERE note IS NOT NULL AND entry_id >= ?1 << ?2 AND entry_id < (?1 + 1) << ?2",
            (slot, low_bits),
        )
        conn.execute("CREATE TEMP TABLE contents AS SELECT DISTINCT content_id AS id FROM entries"
                     " WHERE id IN (SELECT id FROM temp.migrated) AND content_id IS NOT NULL")  # fmt: skip
        for sql in (  # (an entry whose id no global id numbers: the triggers detach its tags and note by its content)
            "DELETE FROM directory_paths WHERE entry_id IN (SELECT id FROM temp.migrated)",
            "DELETE FROM scan_queue WHERE entry_id IN (SELECT id FROM temp.migrated)",
            "DELETE FROM entries WHERE id IN (SELECT id FROM temp.migrated)",
            "DELETE FROM temp.contents WHERE EXISTS (SELECT 1 FROM entries e WHERE e.content_id = contents.id)",
            "DELETE FROM media_data WHERE content_id IN (SELECT id FROM temp.contents)",
            "DELETE FROM content_identities WHERE id IN (SELECT id FROM temp.contents)",
        ):
            conn.execute(sql)
        conn.execute("DROP TABLE temp.contents")
        conn.execute("DROP TABLE temp.migrated")
        conn.execute("DELETE FROM catalogue_entries WHERE device_id = ?", (device,))
        conn.execute("UPDATE locations SET root_id = NULL WHERE device_id = ?", (device,))
        conn.execute("DELETE FROM fts_pause WHERE location_id IN (SELECT id FROM locations WHERE device_id = ?)", (device,))
        conn.execute("UPDATE catalogue_peers SET seq = 0 WHERE device_id = ?", (device,))


MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );
    CREATE TABLE locations (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        mode TEXT NOT NULL,              -- shallow | content | deep
        ignore TEXT NOT NULL DEFAULT '[]',
        scan_state TEXT NOT NULL DEFAULT 'pending',  -- pending | indexing | indexed | paused | failed
        root_id INTEGER,
        created REAL NOT NULL,
        last_scanned REAL,
        UNIQUE (device_id, path)
    );
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        location_id INTEGER NOT NULL,
        parent_id INTEGER,               -- NULL: the location root, or orphaned while a scan looks for its move
        name TEXT NOT NULL,
        extension TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,              -- file | dir | symlink | fifo | socket | device | other
        object_kind TEXT,                -- image | video | audio | document | code | text | archive | ...
        size INTEGER NOT NULL DEFAULT 0, -- a directory: the bytes of every file below it
        files INTEGER NOT NULL DEFAULT 0,-- a directory: how many files are below it
        inode INTEGER,
        mtime REAL,
        mode INTEGER,
        hidden INTEGER NOT NULL DEFAULT 0,
        link_target TEXT,
        content_id INTEGER,
        fingerprint INTEGER,             -- a directory: hash of its listing when last scanned (unchanged: skip the diff)
        error TEXT                       -- why this entry could not be read, if it could not
    );
    CREATE TABLE directory_paths (
        entry_id INTEGER PRIMARY KEY,
        location_id INTEGER NOT NULL,
        path TEXT NOT NULL               -- relative to the location root; '' is the root
    );
    CREATE TABLE content_identities (
        id INTEGER PRIMARY KEY,
        cas_id TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        object_kind TEXT,
        full_hash TEXT
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        state TEXT NOT NULL,             -- queued | running | paused | interrupted | completed | failed | canceled
        checkpoint BLOB,
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        unit TEXT NOT NULL DEFAULT 'items',
        message TEXT NOT NULL DEFAULT '',
        error TEXT,
        result BLOB,
        location_id INTEGER,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE scan_queue (           -- directories a running index job has still to scan
        job_id TEXT NOT NULL,
        entry_id INTEGER NOT NULL,
        PRIMARY KEY (job_id, entry_id)
    ) WITHOUT ROWID;
    """,
    # Secondary indexes: kept apart so a first bulk load could run before them if it must.
    2: """
    CREATE UNIQUE INDEX entries_by_parent ON entries (parent_id, name);
    CREATE INDEX entries_by_inode ON entries (location_id, inode);
    CREATE INDEX entries_by_content ON entries (content_id);
    CREATE UNIQUE INDEX directory_paths_by_path ON directory_paths (location_id, path);
    CREATE INDEX jobs_by_state ON jobs (state);
    """,
    # Tags, notes, favourites and saved searches. A deleted entry's tags and metadata wait in `detached`
    # under its cas_id and come back on the entry that gets that content next (a move the inode missed).
    3: """
    CREATE TABLE tags (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- 'work/clients/acme': '/' nests
        color TEXT,
        created REAL NOT NULL
    );
    CREATE TABLE tag_assignments (
        tag_id INTEGER NOT NULL,
        entry_id INTEGER,                -- on this entry
        cas_id TEXT,                     -- on this content: every copy of it
        created REAL NOT NULL,
        CHECK ((entry_id IS NULL) <> (cas_id IS NULL))
    );
    CREATE UNIQUE INDEX tag_assignments_by_entry ON tag_assignments (entry_id, tag_id) WHERE entry_id IS NOT NULL;
    CREATE UNIQUE INDEX tag_assignments_by_content ON tag_assignments (cas_id, tag_id) WHERE cas_id IS NOT NULL;
    CREATE INDEX tag_assignments_by_tag ON tag_assignments (tag_id);
    CREATE TABLE user_metadata (
        entry_id INTEGER PRIMARY KEY,
        note TEXT,
        favorite INTEGER NOT NULL DEFAULT 0,
        updated REAL NOT NULL
    );
    CREATE TABLE detached (
        cas_id TEXT NOT NULL,
        tag_id INTEGER,                  -- a tag; NULL: the note and favourite
        note TEXT,
        favorite INTEGER,
        detached REAL NOT NULL
    );
    CREATE INDEX detached_by_content ON detached (cas_id);
    CREATE TABLE saved_searches (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        query TEXT NOT NULL,             -- JSON of sdcore.search.Query
        created REAL NOT NULL
    );
    CREATE TABLE file_hashes (           -- full BLAKE3 of a file, valid while its size, inode and ctime hold
        entry_id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,       -- st_ctime_ns: any write or utime changes it
        full_hash TEXT NOT NULL
    );
    CREATE TRIGGER entries_user_data_removed AFTER DELETE ON entries
    WHEN EXISTS (SELECT 1 FROM tag_assignments WHERE entry_id = old.id)
      OR EXISTS (SELECT 1 FROM user_metadata WHERE entry_id = old.id)
      OR EXISTS (SELECT 1 FROM file_hashes WHERE entry_id = old.id)
    BEGIN
        INSERT INTO detached (cas_id, tag_id, detached)
            SELECT c.cas_id, a.tag_id, unixepoch() FROM tag_assignments a, content_identities c
            WHERE a.entry_id = old.id AND c.id = old.content_id;
        INSERT INTO detached (cas_id, note, favorite, detached)
            SELECT c.cas_id, m.note, m.favorite, unixepoch() FROM user_metadata m, content_identities c
            WHERE m.entry_id = old.id AND c.id = old.content_id AND (m.note IS NOT NULL OR m.favorite);
        DELETE FROM tag_assignments WHERE entry_id = old.id;
        DELETE FROM user_metadata WHERE entry_id = old.id;
        DELETE FROM file_hashes WHERE entry_id = old.id;
    END;
    CREATE TRIGGER entries_user_data_found AFTER UPDATE OF content_id ON entries
    WHEN new.content_id IS NOT NULL AND old.content_id IS NOT new.content_id
      AND EXISTS (SELECT 1 FROM detached WHERE cas_id = (SELECT cas_id FROM content_identities WHERE id = new.content_id))
    BEGIN
        INSERT OR IGNORE INTO tag_assignments (tag_id, entry_id, created)
            SELECT d.tag_id, new.id, unixepoch() FROM detached d, content_identities c
            WHERE c.id = new.content_id AND d.cas_id = c.cas_id AND d.tag_id IN (SELECT id FROM tags);
        INSERT OR IGNORE INTO user_metadata (entry_id, note, favorite, updated)
            SELECT new.id, d.note, d.favorite, unixepoch() FROM detached d, content_identities c
            WHERE c.id = new.content_id AND d.cas_id = c.cas_id AND d.tag_id IS NULL LIMIT 1;
        DELETE FROM detached WHERE cas_id = (SELECT cas_id FROM content_identities WHERE id = new.content_id);
    END;
    """,
    # Search: a trigram FTS5 index over each entry's name, its path in the location and its note (rowid =
    # entry id), kept current by triggers. `fts_pause` lets a first bulk load skip them (sdcore.search).
    4: """
    -- ext: U+E000 ext U+E000, a token of its own, so an --ext filter is met inside the index
    CREATE VIRTUAL TABLE search_index USING fts5(name, path, note, ext, tokenize = 'trigram');
    CREATE INDEX entries_by_size ON entries (size);   -- sorted searches walk these and stop at the limit
    CREATE INDEX entries_by_mtime ON entries (mtime);
    CREATE INDEX entries_by_name ON entries (name COLLATE NOCASE);
    CREATE TABLE fts_pause (
        location_id INTEGER PRIMARY KEY,
        from_id INTEGER NOT NULL         -- entries above this id are left to the bulk insert at the end
    );
    CREATE TRIGGER search_entry_added AFTER INSERT ON entries
    WHEN new.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        INSERT INTO search_index (rowid, name, path, ext)
            SELECT new.id, new.name, CASE p.path WHEN '' THEN new.name ELSE p.path || '/' || new.name END,
                   CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END
            FROM directory_paths p WHERE p.entry_id = new.parent_id;
    END;
    CREATE TRIGGER search_entry_moved AFTER UPDATE OF name, parent_id, extension ON entries
    WHEN (old.name IS NOT new.name OR old.parent_id IS NOT new.parent_id OR old.extension IS NOT new.extension)
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
        INSERT INTO search_index (rowid, name, path, note, ext)
            SELECT new.id, new.name, CASE p.path WHEN '' THEN new.name ELSE p.path || '/' || new.name END,
                   (SELECT note FROM user_metadata WHERE entry_id = new.id), CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END
            FROM directory_paths p WHERE p.entry_id = new.parent_id;
    END;
    CREATE TRIGGER search_entry_removed AFTER DELETE ON entries
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
    END;
    CREATE TRIGGER search_directory_moved AFTER UPDATE OF path ON directory_paths
    WHEN old.path IS NOT new.path
    BEGIN
        UPDATE search_index SET path = CASE new.path WHEN '' THEN name ELSE new.path || '/' || name END
            WHERE rowid IN (SELECT id FROM entries WHERE parent_id = new.entry_id);
    END;
    CREATE TRIGGER search_note_added AFTER INSERT ON user_metadata WHEN new.note IS NOT NULL
    BEGIN
        UPDATE search_index SET note = new.note WHERE rowid = new.entry_id;
    END;
    CREATE TRIGGER search_note_changed AFTER UPDATE OF note ON user_metadata WHEN old.note IS NOT new.note
    BEGIN
        UPDATE search_index SET note = new.note WHERE rowid = new.entry_id;
    END;
    CREATE TRIGGER search_note_removed AFTER DELETE ON user_metadata WHEN old.note IS NOT NULL
    BEGIN
        UPDATE search_index SET note = NULL WHERE rowid = old.entry_id;
    END;
    INSERT INTO search_index (rowid, name, path, note, ext)
        SELECT e.id, e.name, CASE p.path WHEN '' THEN e.name ELSE p.path || '/' || e.name END, m.note,
               CASE e.extension WHEN '' THEN '' ELSE char(57344) || e.extension || char(57344) END
        FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id
        LEFT JOIN user_metadata m ON m.entry_id = e.id;
    """,
    # Deep indexing: what is known of an image's content (one row per content, so copies share it).
    6: """
    CREATE TABLE media_data (
        content_id INTEGER PRIMARY KEY,
        width INTEGER,
        height INTEGER,
        taken TEXT,                      -- EXIF date and time taken, as the camera wrote it
        camera TEXT,
        error TEXT                       -- why it could not be read, if it could not
    );
    """,
    # The content phase updates every file's content_id: test first that anything is detached at all (two
    # lookups per file for an empty table cost an eighth of that phase's writing).
    7: """
    DROP TRIGGER entries_user_data_found;
    CREATE TRIGGER entries_user_data_found AFTER UPDATE OF content_id ON entries
    WHEN new.content_id IS NOT NULL AND old.content_id IS NOT new.content_id AND EXISTS (SELECT 1 FROM detached)
      AND EXISTS (SELECT 1 FROM detached WHERE cas_id = (SELECT cas_id FROM content_identities WHERE id = new.content_id))
    BEGIN
        INSERT OR IGNORE INTO tag_assignments (tag_id, entry_id, created)
            SELECT d.tag_id, new.id, unixepoch() FROM detached d, content_identities c
            WHERE c.id = new.content_id AND d.cas_id = c.cas_id AND d.tag_id IN (SELECT id FROM tags);
        INSERT OR IGNORE INTO user_metadata (entry_id, note, favorite, updated)
            SELECT new.id, d.note, d.favorite, unixepoch() FROM detached d, content_identities c
            WHERE c.id = new.content_id AND d.cas_id = c.cas_id AND d.tag_id IS NULL LIMIT 1;
        DELETE FROM detached WHERE cas_id = (SELECT cas_id FROM content_identities WHERE id = new.content_id);
    END;
    """,
    # FTS5 writes its pending terms out whenever they pass `hashsize` (1 MiB by default): building the search
    # index of a 200,000-file location in one transaction took 3.3 s that way, 1.7 s with 32 MiB.
    8: """
    INSERT INTO search_index (search_index, rank) VALUES ('hashsize', 33554432);
    """,
    # Search folds Unicode (search-live): the index holds names, paths and notes as `search_fold` makes them
    # (NFC, case folded), so `café` typed finds `café` written decomposed (as macOS writes it), and `CAFÉ` finds it.
    9: f"""
    DROP TRIGGER search_entry_added;
    CREATE TRIGGER search_entry_added AFTER INSERT ON entries
    WHEN new.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        INSERT INTO search_index (rowid, name, path, ext)
            SELECT new.id, {folded_sql("new.name")},
                   {folded_sql("CASE p.path WHEN '' THEN new.name ELSE p.path || '/' || new.name END")},
                   CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END
            FROM directory_paths p WHERE p.entry_id = new.parent_id;
    END;
    DROP TRIGGER search_entry_moved;
    CREATE TRIGGER search_entry_moved AFTER UPDATE OF name, parent_id, extension ON entries
    WHEN (old.name IS NOT new.name OR old.parent_id IS NOT new.parent_id OR old.extension IS NOT new.extension)
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
        INSERT INTO search_index (rowid, name, path, note, ext)
            SELECT new.id, {folded_sql("new.name")},
                   {folded_sql("CASE p.path WHEN '' THEN new.name ELSE p.path || '/' || new.name END")},
                   {folded_sql("(SELECT note FROM user_metadata WHERE entry_id = new.id)")},
                   CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END
            FROM directory_paths p WHERE p.entry_id = new.parent_id;
    END;
    DROP TRIGGER search_directory_moved;
    CREATE TRIGGER search_directory_moved AFTER UPDATE OF path ON directory_paths
    WHEN old.path IS NOT new.path
    BEGIN
        UPDATE search_index SET path = CASE new.path WHEN '' THEN name ELSE {folded_sql("new.path")} || '/' || name END
            WHERE rowid IN (SELECT id FROM entries WHERE parent_id = new.entry_id);
    END;
    DROP TRIGGER search_note_added;
    CREATE TRIGGER search_note_added AFTER INSERT ON user_metadata WHEN new.note IS NOT NULL
    BEGIN
        UPDATE search_index SET note = {folded_sql("new.note")} WHERE rowid = new.entry_id;
    END;
    DROP TRIGGER search_note_changed;
    CREATE TRIGGER search_note_changed AFTER UPDATE OF note ON user_metadata WHEN old.note IS NOT new.note
    BEGIN
        UPDATE search_index SET note = {folded_sql("new.note")} WHERE rowid = new.entry_id;
    END;
    DELETE FROM search_index;
    INSERT INTO search_index (rowid, name, path, note, ext)
        SELECT e.id, {folded_sql("e.name")}, {folded_sql("CASE p.path WHEN '' THEN e.name ELSE p.path || '/' || e.name END")},
               {folded_sql("m.note")}, CASE e.extension WHEN '' THEN '' ELSE char(57344) || e.extension || char(57344) END
        FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id
        LEFT JOIN user_metadata m ON m.entry_id = e.id
        WHERE NOT EXISTS (SELECT 1 FROM fts_pause f WHERE f.location_id = e.location_id AND e.id > f.from_id)
        ORDER BY e.id;
    """,
    # Sync (issue 16): shared data as an operation log. A tag gets an id that every device knows it by (a rename
    # keeps it); `sdcore.sync.shared` explains the other tables.
    10: """
    ALTER TABLE tags ADD COLUMN uid TEXT;
    CREATE UNIQUE INDEX tags_by_uid ON tags (uid);
    CREATE TABLE sync_ops (              -- every change of shared data, from every device, kept for good
        origin TEXT NOT NULL,            -- the device that made it
        hlc INTEGER NOT NULL,            -- its hybrid logical clock stamp: ms since the epoch << 16 | counter
        kind TEXT NOT NULL,
        body BLOB NOT NULL,              -- msgpack of its fields
        PRIMARY KEY (origin, hlc)
    ) WITHOUT ROWID;
    CREATE TABLE sync_fields (           -- each field's value: the op with the highest (hlc, origin) wins
        key TEXT PRIMARY KEY,            -- 'tag:UID:name', 'note:TARGET', 'fav:TARGET', 'search:NAME'
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL,
        value BLOB                       -- msgpack
    ) WITHOUT ROWID;
    CREATE TABLE sync_history (          -- the ops that wrote each field (or tagged each target): its history
        key TEXT NOT NULL,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL,
        PRIMARY KEY (key, hlc, origin)
    ) WITHOUT ROWID;
    CREATE TABLE sync_tagged (           -- tags on targets, an add-wins set: each add, and whether a removal saw it
        uid TEXT NOT NULL,
        target TEXT NOT NULL,            -- 'e:DEVICE:ENTRY' or 'c:CAS_ID'
        hlc INTEGER NOT NULL,            -- the add's stamp
        origin TEXT NOT NULL,
        removed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (uid, target, hlc, origin)
    ) WITHOUT ROWID;
    """,
    # The catalogue (sdcore.sync.catalogue). Once this device's library is shared, each change of this device's
    # entries and locations gets a number in `catalogue_log` (one row per entry or location: its latest change,
    # or its deletion), which the devices holding the library pull from their watermark. Until then the
    # triggers cost one empty-table lookup per write. Another device's entries are ordinary rows, each mapped
    # to that device's own id for it (`catalogue_entries`, `catalogue_locations`).
    20: """
    CREATE TABLE catalogue_tracking (        -- the device whose changes are numbered (this one, once shared)
        device_id TEXT PRIMARY KEY
    );
    CREATE TABLE catalogue_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a peer's watermark stays meaningful
        entry_id INTEGER,
        location_id INTEGER,
        deleted INTEGER NOT NULL DEFAULT 0,
        CHECK ((entry_id IS NULL) <> (location_id IS NULL))
    );
    CREATE UNIQUE INDEX catalogue_log_by_entry ON catalogue_log (entry_id) WHERE entry_id IS NOT NULL;
    CREATE UNIQUE INDEX catalogue_log_by_location ON catalogue_log (location_id) WHERE location_id IS NOT NULL;
    CREATE TABLE catalogue_entries (
        entry_id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        origin_id INTEGER NOT NULL,
        UNIQUE (device_id, origin_id)
    );
    CREATE TABLE catalogue_locations (
        location_id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        origin_id INTEGER NOT NULL,
        UNIQUE (device_id, origin_id)
    );
    CREATE TABLE catalogue_peers (           -- how far this device has the catalogue of each other device
        device_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        synced REAL NOT NULL                 -- when it last received from it: "offline, as of" this
    );
    CREATE TRIGGER catalogue_entry_added AFTER INSERT ON entries
    WHEN EXISTS (SELECT 1 FROM catalogue_tracking t JOIN locations l ON l.device_id = t.device_id WHERE l.id = new.location_id)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (entry_id) VALUES (new.id);
    END;
    CREATE TRIGGER catalogue_entry_changed
    AFTER UPDATE OF location_id, parent_id, name, kind, object_kind, size, files, mtime, hidden, content_id ON entries
    WHEN (old.location_id IS NOT new.location_id OR old.parent_id IS NOT new.parent_id OR old.name IS NOT new.name
          OR old.kind IS NOT new.kind OR old.object_kind IS NOT new.object_kind OR old.size IS NOT new.size
          OR old.files IS NOT new.files OR old.mtime IS NOT new.mtime OR old.hidden IS NOT new.hidden
          OR old.content_id IS NOT new.content_id)
      AND EXISTS (SELECT 1 FROM catalogue_tracking t JOIN locations l ON l.device_id = t.device_id WHERE l.id = new.location_id)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (entry_id) VALUES (new.id);
    END;
    CREATE TRIGGER catalogue_entry_removed AFTER DELETE ON entries
    WHEN EXISTS (SELECT 1 FROM catalogue_tracking t JOIN locations l ON l.device_id = t.device_id WHERE l.id = old.location_id)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (entry_id, deleted) VALUES (old.id, 1);
    END;
    CREATE TRIGGER catalogue_location_added AFTER INSERT ON locations
    WHEN new.device_id IN (SELECT device_id FROM catalogue_tracking)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (location_id) VALUES (new.id);
    END;
    CREATE TRIGGER catalogue_location_changed AFTER UPDATE ON locations
    WHEN new.device_id IN (SELECT device_id FROM catalogue_tracking)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (location_id) VALUES (new.id);
    END;
    CREATE TRIGGER catalogue_location_removed AFTER DELETE ON locations
    WHEN old.device_id IN (SELECT device_id FROM catalogue_tracking)
    BEGIN
        INSERT OR REPLACE INTO catalogue_log (location_id, deleted) VALUES (old.id, 1);
    END;
    """,
    # Sync: what the shared data says about one device's entries, found by target when its catalogue brings them.
    21: """
    CREATE INDEX sync_tagged_by_target ON sync_tagged (target);
    """,
    # A location on a disk that comes and goes (sdcore.library.volume_locations): the disk's identity, its label,
    # the location's folder inside it ('' its root) and when it was last seen mounted. `path` follows the disk to
    # wherever it is mounted; while it is out, the location is offline (listed and searched from the index).
    22: """
    ALTER TABLE locations ADD COLUMN volume_id TEXT;
    ALTER TABLE locations ADD COLUMN volume_label TEXT;
    ALTER TABLE locations ADD COLUMN volume_path TEXT;
    ALTER TABLE locations ADD COLUMN volume_seen REAL;
    """,
    # Sync: each op signed by its origin device, so a device relaying it cannot change it or pass off its own.
    23: """
    ALTER TABLE sync_ops ADD COLUMN sig BLOB;   -- the origin's Ed25519 signature (NULL: an op made before signing)
    CREATE TABLE sync_keys (                     -- the public key of each origin (its device id is the key's hash)
        device TEXT PRIMARY KEY,
        key BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
    # An entry id is never given again once its entry is deleted: shared data names an entry by its owner's id,
    # so a new entry under an old id would take the old one's tags and notes (see `next_entry_id`).
    24: """
    CREATE TABLE entry_id_floor (id INTEGER NOT NULL);  -- one row: the highest entry id ever deleted
    INSERT INTO entry_id_floor SELECT coalesce(max(id), 0) FROM entries;
    CREATE TRIGGER entry_id_floor_raised AFTER DELETE ON entries
    WHEN old.id > (SELECT id FROM entry_id_floor)
    BEGIN
        UPDATE entry_id_floor SET id = old.id;
    END;
    """,
    # Search over names, plus a small index over folder paths (issue 18): a trigram index over every entry's full path
    # cost index time and space in proportion to the depth of the tree. A word in a folder's path finds the entries
    # of every folder whose path holds it (sdcore.search); renaming a folder rewrites its subfolders' rows only.
    # columnsize=0: relevance is scored in Python, never with bm25, so the column sizes are not kept.
    25: f"""
    DROP TRIGGER search_entry_added;
    DROP TRIGGER search_entry_moved;
    DROP TRIGGER search_directory_moved;
    DROP TABLE search_index;
    CREATE VIRTUAL TABLE search_index USING fts5(name, note, ext, parent UNINDEXED, tokenize = 'trigram', columnsize = 0);
    INSERT INTO search_index (search_index, rank) VALUES ('hashsize', 33554432);
    CREATE VIRTUAL TABLE folder_index USING fts5(path, tokenize = 'trigram', columnsize = 0);
    INSERT INTO folder_index (folder_index, rank) VALUES ('hashsize', 33554432);
    CREATE TRIGGER search_entry_added AFTER INSERT ON entries
    WHEN new.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        INSERT INTO search_index (rowid, name, ext, parent) VALUES (new.id, {folded_sql("new.name")},
            CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END, new.parent_id);
    END;
    CREATE TRIGGER search_entry_moved AFTER UPDATE OF name, parent_id, extension ON entries
    WHEN (old.name IS NOT new.name OR old.parent_id IS NOT new.parent_id OR old.extension IS NOT new.extension)
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        DELETE FROM search_index WHERE rowid = old.id;
        INSERT INTO search_index (rowid, name, note, ext, parent)
            SELECT new.id, {folded_sql("new.name")}, {folded_sql("(SELECT note FROM user_metadata WHERE entry_id = new.id)")},
                   CASE new.extension WHEN '' THEN '' ELSE char(57344) || new.extension || char(57344) END, new.parent_id
            WHERE new.parent_id IS NOT NULL;
    END;
    CREATE TRIGGER search_folder_added AFTER INSERT ON directory_paths
    WHEN new.path != ''
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.entry_id > from_id)
    BEGIN
        INSERT INTO folder_index (rowid, path) VALUES (new.entry_id, {folded_sql("new.path")});
    END;
    CREATE TRIGGER search_folder_moved AFTER UPDATE OF path ON directory_paths
    WHEN old.path IS NOT new.path
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.entry_id > from_id)
    BEGIN
        DELETE FROM folder_index WHERE rowid = old.entry_id;
        INSERT INTO folder_index (rowid, path) SELECT new.entry_id, {folded_sql("new.path")} WHERE new.path != '';
    END;
    CREATE TRIGGER search_folder_removed AFTER DELETE ON directory_paths
    BEGIN
        DELETE FROM folder_index WHERE rowid = old.entry_id;
    END;
    INSERT INTO search_index (rowid, name, note, ext, parent)
        SELECT e.id, {folded_sql("e.name")}, {folded_sql("m.note")},
               CASE e.extension WHEN '' THEN '' ELSE char(57344) || e.extension || char(57344) END, e.parent_id
        FROM entries e LEFT JOIN user_metadata m ON m.entry_id = e.id
        WHERE e.parent_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM fts_pause f WHERE f.location_id = e.location_id AND e.id > f.from_id)
        ORDER BY e.id;
    INSERT INTO folder_index (rowid, path)
        SELECT p.entry_id, {folded_sql("p.path")} FROM directory_paths p
        WHERE p.path != ''
          AND NOT EXISTS (SELECT 1 FROM fts_pause f WHERE f.location_id = p.location_id AND p.entry_id > f.from_id)
        ORDER BY p.entry_id;
    """,
    # Sync: each op of a device numbered 1, 2, 3... by it, the number signed with the op, so a receiver takes an
    # origin's ops without a gap (a relay that sends only an origin's latest op cannot hide the ones before it).
    # NULL: an op made before this (taken as before). (28: a second op of one number is kept too.)
    26: """
    ALTER TABLE sync_ops ADD COLUMN seq INTEGER;
    CREATE UNIQUE INDEX sync_ops_by_seq ON sync_ops (origin, seq) WHERE seq IS NOT NULL;
    """,
    # Search indexes that keep no text of their own and no positions (issue 18: a first index 2x faster to search-index,
    # a third the size). search_index and folder_index are contentless (content='') trigram indexes with detail=none:
    # they tell which rows hold a few trigrams of a word, and the search checks each candidate against the entry's
    # own columns (sdcore.search). A contentless index forgets a row only when told the values it was given, which
    # the triggers take from the old row: so notes (which change apart from the entry) have their own small index.
    27: f"""
    DROP TRIGGER search_entry_added;
    DROP TRIGGER search_entry_moved;
    DROP TRIGGER search_entry_removed;
    DROP TRIGGER search_note_added;
    DROP TRIGGER search_note_changed;
    DROP TRIGGER search_note_removed;
    DROP TRIGGER search_folder_added;
    DROP TRIGGER search_folder_moved;
    DROP TRIGGER search_folder_removed;
    DROP TABLE search_index;
    DROP TABLE folder_index;
    CREATE VIRTUAL TABLE search_index USING fts5(name, ext, tokenize = 'trigram', content = '', columnsize = 0, detail = none);
    INSERT INTO search_index (search_index, rank) VALUES ('hashsize', 33554432);
    CREATE VIRTUAL TABLE folder_index USING fts5(path, tokenize = 'trigram', content = '', columnsize = 0, detail = none);
    INSERT INTO folder_index (folder_index, rank) VALUES ('hashsize', 33554432);
    CREATE VIRTUAL TABLE note_index USING fts5(note, tokenize = 'trigram', columnsize = 0);
    CREATE TRIGGER search_entry_added AFTER INSERT ON entries
    WHEN new.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        INSERT INTO search_index (rowid, name, ext) VALUES (new.id, {folded_sql("new.name")}, {ext_token_sql("new.extension")});
    END;
    CREATE TRIGGER search_entry_moved AFTER UPDATE OF name, parent_id, extension ON entries
    WHEN (old.name IS NOT new.name OR (old.parent_id IS NULL) <> (new.parent_id IS NULL) OR old.extension IS NOT new.extension)
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.id > from_id)
    BEGIN
        INSERT INTO search_index (search_index, rowid, name, ext)
            SELECT 'delete', old.id, {folded_sql("old.name")}, {ext_token_sql("old.extension")} WHERE old.parent_id IS NOT NULL;
        INSERT INTO search_index (rowid, name, ext)
            SELECT new.id, {folded_sql("new.name")}, {ext_token_sql("new.extension")} WHERE new.parent_id IS NOT NULL;
    END;
    CREATE TRIGGER search_entry_removed AFTER DELETE ON entries
    WHEN old.parent_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = old.location_id AND old.id > from_id)
    BEGIN
        INSERT INTO search_index (search_index, rowid, name, ext)
            VALUES ('delete', old.id, {folded_sql("old.name")}, {ext_token_sql("old.extension")});
    END;
    CREATE TRIGGER search_note_added AFTER INSERT ON user_metadata WHEN new.note IS NOT NULL
    BEGIN
        INSERT INTO note_index (rowid, note) VALUES (new.entry_id, {folded_sql("new.note")});
    END;
    CREATE TRIGGER search_note_changed AFTER UPDATE OF note ON user_metadata WHEN old.note IS NOT new.note
    BEGIN
        DELETE FROM note_index WHERE rowid = old.entry_id;
        INSERT INTO note_index (rowid, note) SELECT new.entry_id, {folded_sql("new.note")} WHERE new.note IS NOT NULL;
    END;
    CREATE TRIGGER search_note_removed AFTER DELETE ON user_metadata WHEN old.note IS NOT NULL
    BEGIN
        DELETE FROM note_index WHERE rowid = old.entry_id;
    END;
    CREATE TRIGGER search_folder_added AFTER INSERT ON directory_paths
    WHEN new.path != ''
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.entry_id > from_id)
    BEGIN
        INSERT INTO folder_index (rowid, path) VALUES (new.entry_id, {folded_sql("new.path")});
    END;
    CREATE TRIGGER search_folder_moved AFTER UPDATE OF path ON directory_paths
    WHEN old.path IS NOT new.path
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = new.location_id AND new.entry_id > from_id)
    BEGIN
        INSERT INTO folder_index (folder_index, rowid, path) SELECT 'delete', old.entry_id, {folded_sql("old.path")} WHERE old.path != '';
        INSERT INTO folder_index (rowid, path) SELECT new.entry_id, {folded_sql("new.path")} WHERE new.path != '';
    END;
    CREATE TRIGGER search_folder_removed AFTER DELETE ON directory_paths
    WHEN old.path != ''
      AND NOT EXISTS (SELECT 1 FROM fts_pause WHERE location_id = old.location_id AND old.entry_id > from_id)
    BEGIN
        INSERT INTO folder_index (folder_index, rowid, path) VALUES ('delete', old.entry_id, {folded_sql("old.path")});
    END;
    INSERT INTO search_index (rowid, name, ext)
        SELECT e.id, {folded_sql("e.name")}, {ext_token_sql("e.extension")} FROM entries e
        WHERE e.parent_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM fts_pause f WHERE f.location_id = e.location_id AND e.id > f.from_id)
        ORDER BY e.id;
    INSERT INTO folder_index (rowid, path)
        SELECT p.entry_id, {folded_sql("p.path")} FROM directory_paths p
        WHERE p.path != ''
          AND NOT EXISTS (SELECT 1 FROM fts_pause f WHERE f.location_id = p.location_id AND p.entry_id > f.from_id)
        ORDER BY p.entry_id;
    INSERT INTO note_index (rowid, note)
        SELECT entry_id, {folded_sql("note")} FROM user_metadata WHERE note IS NOT NULL ORDER BY entry_id;
    -- Where each entry that holds tags, a note or a favourite is (its folder and name): what a repair puts them back on
    -- when the entry's own row is lost (sdcore.library.repair; the search index held every name before).
    CREATE TABLE entry_places (
        entry_id INTEGER PRIMARY KEY,
        parent_id INTEGER,
        name TEXT NOT NULL
    );
    CREATE TRIGGER entry_place_tagged AFTER INSERT ON tag_assignments WHEN new.entry_id IS NOT NULL
    BEGIN
        INSERT OR REPLACE INTO entry_places SELECT id, parent_id, name FROM entries WHERE id = new.entry_id;
    END;
    CREATE TRIGGER entry_place_noted AFTER INSERT ON user_metadata
    BEGIN
        INSERT OR REPLACE INTO entry_places SELECT id, parent_id, name FROM entries WHERE id = new.entry_id;
    END;
    CREATE TRIGGER entry_place_moved AFTER UPDATE OF name, parent_id ON entries
    WHEN EXISTS (SELECT 1 FROM entry_places WHERE entry_id = new.id)
    BEGIN
        UPDATE entry_places SET parent_id = new.parent_id, name = new.name WHERE entry_id = new.id;
    END;
    CREATE TRIGGER entry_place_removed AFTER DELETE ON entries
    WHEN EXISTS (SELECT 1 FROM entry_places WHERE entry_id = old.id)
    BEGIN
        DELETE FROM entry_places WHERE entry_id = old.id;
    END;
    INSERT INTO entry_places SELECT id, parent_id, name FROM entries
        WHERE id IN (SELECT entry_id FROM tag_assignments UNION SELECT entry_id FROM user_metadata);
    """,
    # Two ops of one origin may carry one number: a device whose library was restored from a backup numbers its
    # next ops as the ones lost in the restore, which others hold. Both are kept (the number only shows a gap):
    # with the unique index, the new ones were ignored for good wherever the lost ones had arrived first.
    28: """
    DROP INDEX sync_ops_by_seq;
    CREATE INDEX sync_ops_by_seq ON sync_ops (origin, seq) WHERE seq IS NOT NULL;
    """,
    # A library restored from a backup, found by its numbers below what other devices saw (sdcore.sync.highwater):
    # what it had as restored (_from) and what the others may hold (_to). A device asking for its catalogue's changes
    # after a number between them loads it again; its own ops between them are asked back from the others.
    29: """
    CREATE TABLE sync_restores (
        origin TEXT NOT NULL,
        catalogue_from INTEGER NOT NULL,
        catalogue_to INTEGER NOT NULL,
        ops_from INTEGER NOT NULL,
        ops_to INTEGER NOT NULL,
        hlc_from INTEGER NOT NULL,
        hlc_to INTEGER NOT NULL,
        found REAL NOT NULL
    );
    """,
    # Only the entries that have a content id are in its index (issue 18): a shallow index has none, and the entry of a
    # folder never has one. Every query on it compares content_id (= or IN or IS NOT NULL), which rules NULL out:
    # the planner uses the partial index for them all. A library of 200,000 entries: 1.7 MB less, its first index
    # 0.06 s of CPU less.
    30: """
    DROP INDEX IF EXISTS entries_by_content;
    CREATE INDEX entries_by_content ON entries (content_id) WHERE content_id IS NOT NULL;
    """,
    # Which numbers of each origin's ops are held (runs lo..hi): what an asker names (sdcore.sync.oplog.held), so a
    # member holding an op it lacks sends it, whatever the stamps it holds; and two different ops one origin signed
    # with one number or one stamp (an equivocation): the one dropped, as evidence, and the one kept on every device.
    31: """
    CREATE TABLE sync_held (
        origin TEXT NOT NULL,
        lo INTEGER NOT NULL,
        hi INTEGER NOT NULL,
        PRIMARY KEY (origin, lo)
    ) WITHOUT ROWID;
    INSERT INTO sync_held (origin, lo, hi)
        SELECT origin, min(seq), max(seq) FROM (
            SELECT origin, seq, seq - dense_rank() OVER (PARTITION BY origin ORDER BY seq) AS run
            FROM sync_ops WHERE seq IS NOT NULL
        ) GROUP BY origin, run;
    CREATE TABLE sync_conflicts (
        id INTEGER PRIMARY KEY,
        origin TEXT NOT NULL,
        seq INTEGER,                     -- the number both carry (NULL: they share a stamp only)
        hlc INTEGER NOT NULL,            -- the dropped op's stamp
        kept_hlc INTEGER NOT NULL,       -- the kept op's (in sync_ops)
        evidence BLOB,                   -- msgpack [kept, dropped] as signed (the first few of an origin only)
        found REAL NOT NULL,
        UNIQUE (origin, hlc, kept_hlc)
    );
    CREATE TABLE sync_cursors (          -- of each device asked: the last of its conflicts it sent here
        device TEXT PRIMARY KEY,
        conflicts INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    32: _entries_coded,
    # The entries that could not be read (issue 18): a whole location's index starts by clearing its files' errors (they
    # are read again), which read every row of the table (0.01 s of a Linux tree's 0.6 s rescan). Almost none have one:
    # the index is all but empty.
    33: """
    CREATE INDEX entries_with_error ON entries (location_id) WHERE error IS NOT NULL;
    """,
    # The slot of each other device whose catalogue is kept as a file of its own (sdcore.sync.catalogue_store): the
    # library's tables name that device's entries by `slot << 40 | its id`, so a slot never changes and is never given
    # again while the library lives (AUTOINCREMENT: not even after its row is deleted).
    34: """
    CREATE TABLE catalogue_slots (
        slot INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL UNIQUE
    );
    """,
    35: _catalogues_to_files,
    # What each entry of another device's location taken over here (its disk plugged in here, or `sd library migrate`)
    # was on that device: an op made there before it heard of it names the file by that device's id; this device
    # says it again of its own entry (sdcore.sync.shared: `_follow_taken`).
    36: """
    CREATE TABLE taken_entries (
        device_id TEXT NOT NULL,
        origin_id INTEGER NOT NULL,
        entry_id INTEGER NOT NULL,
        PRIMARY KEY (device_id, origin_id)
    ) WITHOUT ROWID;
    """,
}


def next_entry_id(db: sqlite3.Connection) -> int:
    """The id the next new entry gets: above every entry id there is or ever was (in the write transaction `db`)."""
    return int(db.execute("SELECT max(coalesce((SELECT max(id) FROM entries), 0), (SELECT id FROM entry_id_floor)) + 1").fetchone()[0])


def fold(text: str) -> str:
    """Text as the search index holds it and queries are matched: case folded, in one Unicode form (NFC).

    So `café` typed finds `café` written decomposed (as macOS and many archives write names), and `CAFÉ` finds it.
    The library's triggers call it as `search_fold`; search (sdcore.search) folds what is typed with it.
    """
    if not text or text.isascii():  # (None too: a NULL note, from SQL)
        return text.lower() if text else text
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def add_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the schema's triggers call: every connection to a library database needs them."""
    from sdcore.index.kinds import extension_of

    conn.create_function("search_fold", 1, fold, deterministic=True)
    conn.create_function("extension_of", 1, extension_of, deterministic=True)


def migrate(conn: sqlite3.Connection) -> int:
    """Run every migration newer than the database; returns the schema version."""
    add_functions(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number in sorted(n for n in MIGRATIONS if n > version):
        conn.execute("BEGIN")
        try:
            step = MIGRATIONS[number]
            if callable(step):
                step(conn)
            else:
                for statement in _statements(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version


def _statements(script: str) -> list[str]:
    out, current = [], []
    for line in script.splitlines():
        current.append(line)
        if sqlite3.complete_statement("\n".join(current)):
            out.append("\n".join(current))
            current = []
    return [s for s in out if s.strip()]
