"""Search: substrings of names, paths and notes, filters, sorts, odd input, and an index that stays current."""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import metadata, search, tags
from sdcore.api import parse_size
from sdcore.core import Core
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.index.fts import fts_paused, pause_fts, searchable_entries
from sdcore.index.indexer import index_location, refresh
from sdcore.library import entries
from sdcore.library.library import Library
from sdcore.search import Query, SearchError


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[Library]:
    async with Core(tmp_path / "data") as core:
        yield core.library()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    for rel, data in {
        "docs/invoice.pdf": b"%PDF-1.4 " + b"i" * 5000,
        "docs/invoice-old.pdf": b"%PDF-1.4 " + b"o" * 100,
        "docs/report.txt": b"quarterly",
        "docs/my invoices/march.txt": b"m" * 10,
        "photos/2019/beach.jpg": b"\xff\xd8\xff" + b"b" * 20000,
        "photos/2019/beach party.png": b"\x89PNG\r\n\x1a\n" + b"p" * 300,
        "photos/2020/sunbeach.jpg": b"\xff\xd8\xff" + b"s" * 70000,
        "music/the beach boys.mp3": b"ID3" + b"x" * 1000,
        "photos/beach-trip/notes.md": b"n" * 100,
        "beach": b"a file named like the query",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


async def index(library: Library, root: Path) -> None:
    found = library.locations.containing(str(root))
    loc = found[0] if found else library.locations.add(str(root))
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


def names(hits: list[search.Hit]) -> list[str]:
    return [h.name for h in hits]


async def test_any_substring_of_a_name_or_path_matches(library: Library, home: Path) -> None:
    await index(library, home)
    assert set(names(search.find(library, "VOIC"))) == {"invoice.pdf", "invoice-old.pdf", "my invoices", "march.txt"}
    assert set(names(search.find(library, "2019/bea"))) == {"beach.jpg", "beach party.png"}
    assert set(names(search.find(library, "beach 2020"))) == {"sunbeach.jpg"}  # every word must match
    hit = search.find(library, "sunbeach")[0]
    assert hit.path == str(home / "photos/2020/sunbeach.jpg")
    assert (hit.relative, hit.kind, hit.object_kind, hit.size) == ("photos/2020/sunbeach.jpg", "file", "image", 70003)


async def test_a_file_with_every_word_in_its_name_comes_first_however_many_folders_hold_the_words(
    library: Library, tmp_path: Path
) -> None:
    root = tmp_path / "work"
    (root / "projects alpha").mkdir(parents=True)
    for i in range(search.RELEVANCE_CANDIDATES + 100):  # more matches across a folder and a name than are scored
        (root / "projects alpha" / f"beta-{i}.txt").write_text("b")
    (root / "misc").mkdir()
    (root / "misc" / "alpha beta plan.txt").write_text("p")
    await index(library, root)
    assert names(search.find(library, "alpha beta", limit=5))[0] == "alpha beta plan.txt"
    assert names(search.find(library, "beta alpha", limit=5))[0] == "alpha beta plan.txt"


async def test_relevance_puts_exact_then_prefix_then_word_then_path_matches_first(library: Library, home: Path) -> None:
    await index(library, home)
    hits = names(search.find(library, "beach"))
    assert hits[0] == "beach"  # the exact name
    assert hits[1:4] == ["beach.jpg", "beach-trip", "beach party.png"]  # starts with it, shorter first
    assert hits[4:6] == ["the beach boys.mp3", "sunbeach.jpg"]  # ...then starting a later word, then anywhere
    assert hits[6:] == ["notes.md"]  # only its folder matches: after every name match
    assert names(search.find(library, "party beach")) == ["beach party.png"]

    assert names(search.find(library, "2019 beach")) == ["beach.jpg", "beach party.png"]  # one word in the folder


async def test_name_matches_are_not_crowded_out_by_path_matches(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "crowd"
    for rel in ("beach-stuff/sub/x.txt", "beach-stuff/sub/y.txt", "a/b/c/beach.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    await index(library, root)
    monkeypatch.setattr(search, "RELEVANCE_CANDIDATES", 2)  # more matches than are scored
    assert names(search.find(library, "beach", limit=2)) == ["beach.txt", "beach-stuff"]


async def test_fts_syntax_in_a_query_is_searched_as_text(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    odd = ['say "hi".txt', "star*gazer.md", "-v2 draft.doc", "a:b.txt", "(copy) 1.txt", "NEAR far.txt", "x OR y.txt",
           "it's.txt", "{name} - col.txt", "^caret.txt"]
    for name in odd:
        (root / name).write_text(name)
    await index(library, root)
    for query, expected in [
        ('"hi"', 'say "hi".txt'), ('"', 'say "hi".txt'), ("star*", "star*gazer.md"),
        ("-v2", "-v2 draft.doc"), ("-", "-v2 draft.doc"), ("a:b", "a:b.txt"), (":", "a:b.txt"),
        ("(copy)", "(copy) 1.txt"), ("(", "(copy) 1.txt"), ("NEAR", "NEAR far.txt"), ("NEAR(", None),
        ("x OR y", "x OR y.txt"), ("it's", "it's.txt"), ("{name}", "{name} - col.txt"), ("^caret", "^caret.txt"),
        ("'; DROP TABLE entries; --", None), ('"unbalanced', None), ("AND", None), ("NOT", None),
    ]:
        found = names(search.find(library, query))
        if expected is None:
            assert found == [], query
        else:
            assert expected in found, query
            assert all(all(t.casefold() in n.casefold() for t in query.split()) for n in found), query
    assert len(search.find(library, "txt")) == 8  # still there: nothing was dropped
    assert len(search.find(library, "*")) == len(odd)  # * and ? make a glob of the name: a lone * is every name


async def test_an_empty_query_needs_a_filter_and_then_lists_what_matches(library: Library, home: Path) -> None:
    await index(library, home)
    for empty in ("", "   ", "\0"):
        with pytest.raises(SearchError, match="nothing to search for"):
            search.find(library, empty)
    assert set(names(search.find(library, "", ext="pdf"))) == {"invoice.pdf", "invoice-old.pdf"}
    assert set(names(search.find(library, "", kind="dir"))) == {"docs", "my invoices", "photos", "2019", "2020", "music", "beach-trip"}


async def test_filters_combine(library: Library, home: Path, tmp_path: Path) -> None:
    await index(library, home)
    other = tmp_path / "other"
    other.mkdir()
    (other / "beach.jpg").write_bytes(b"\xff\xd8\xff other")
    (other / "jpg-list.txt").write_text("a name with jpg in it is no .jpg")
    (other / "main.c").write_text("int main;")
    await index(library, other)
    assert sorted(names(search.find(library, "", ext="jpg"))) == ["beach.jpg", "beach.jpg", "sunbeach.jpg"]
    assert names(search.find(library, "", ext="c")) == ["main.c"]
    in_index = "SELECT count(*) FROM search_index WHERE search_index MATCH ?"  # met inside the index itself
    assert library.read().execute(in_index, (search._ext_facets(("JPG", "c")),)).fetchone()[0] == 4
    assert names(search.find(library, "mai", ext=["c", "h"])) == ["main.c"]
    assert len(search.find(library, "beach", ext="jpg")) == 3
    assert names(search.find(library, "beach", ext=".JPG", location=str(other))) == ["beach.jpg"]
    assert set(names(search.find(library, "beach", kind="image", min_size=10_000))) == {"beach.jpg", "sunbeach.jpg"}
    assert names(search.find(library, "beach", kind="image", min_size=10_000, max_size=30_000)) == ["beach.jpg"]
    assert set(names(search.find(library, "", kind=["audio", "document"]))) == {"the beach boys.mp3", "invoice.pdf", "invoice-old.pdf"}
    old = home / "docs" / "invoice-old.pdf"
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    await refresh(library, [str(home / "docs")])
    assert names(search.find(library, "invoice", ext="pdf", modified_before="30d")) == ["invoice-old.pdf"]
    assert names(search.find(library, "invoice", ext="pdf", modified_after="30d")) == ["invoice.pdf"]
    assert names(search.find(library, "invoice", ext="pdf", modified_after=time.strftime("%Y-%m-%d"))) == ["invoice.pdf"]
    tags.create(library, "work/acme")
    tags.assign(library, "work/acme", [entries.entry_at(library, str(home / "docs" / "report.txt"))])
    assert names(search.find(library, "", tags="work")) == ["report.txt"]
    assert names(search.find(library, "rep", tags=["work/acme"], ext="txt")) == ["report.txt"]
    assert search.find(library, "invoice", tags="work") == []
    assert len(search.find(library, "beach", ext="tar.jpg")) == 3  # the last extension is the one kept
    with pytest.raises(SearchError, match="no kind 'imagez'; use one of .*image"):
        search.find(library, "beach", kind="imagez")
    with pytest.raises(NotFound, match="no tag"):
        search.find(library, "x", tags="nope")
    with pytest.raises(NotFound, match="no location"):
        search.find(library, "x", location="nowhere")


async def test_sorts_and_limit(library: Library, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await index(library, home)
    by_size = search.find(library, "beach", kind="file", sort="size")
    assert [h.size for h in by_size] == sorted((h.size for h in by_size), reverse=True)
    assert names(search.find(library, "beach", kind="file", sort="size", reverse=True))[0] == "beach"
    assert names(search.find(library, "beach", kind="file", sort="name")) == sorted(names(by_size))
    newest = home / "photos" / "2019" / "beach party.png"
    os.utime(newest, (time.time() + 100,) * 2)
    await refresh(library, [str(newest.parent)])
    assert names(search.find(library, "beach", sort="date"))[0] == "beach party.png"
    assert len(search.find(library, "beach", limit=2)) == 2
    walked = {sort: names(search.find(library, "a", sort=sort)) for sort in ("size", "date", "name")}
    monkeypatch.setattr(search, "WALK_BUDGET", 2)  # too few rows walked in order: every match is sorted instead
    assert {sort: names(search.find(library, "a", sort=sort)) for sort in walked} == walked
    assert len(walked["name"]) > 2 and walked["name"] == sorted(walked["name"], key=str.casefold)
    with pytest.raises(SearchError, match="sort by"):
        search.find(library, "beach", sort="colour")
    with pytest.raises(SearchError, match="at least 1"):
        search.find(library, "beach", limit=0)


async def test_short_queries_still_find_names(library: Library, home: Path) -> None:
    await index(library, home)
    assert set(names(search.find(library, "mp"))) == {"the beach boys.mp3"}
    assert "march.txt" in names(search.find(library, "ch", ext="txt"))
    assert names(search.find(library, "xq")) == []


async def test_like_wildcards_and_backslashes_typed_are_matched_as_text(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "wild"
    root.mkdir()
    for name in ("100% done.txt", "1000 done.txt", "a_b.txt", "axb.txt", "back\\slash.txt", "ab_ abXcd _cd.txt",
                 "ab_cd.txt", "café_%.txt"):  # fmt: skip
        (root / name).write_text(name)
    await index(library, root)
    # (short words are checked on every name; longer ones on the names their trigrams find: "ab_ abXcd _cd" has them)
    assert set(names(search.find(library, "%"))) == {"100% done.txt", "café_%.txt"}
    assert set(names(search.find(library, "_"))) == {"a_b.txt", "ab_ abXcd _cd.txt", "ab_cd.txt", "café_%.txt"}
    assert names(search.find(library, "0%")) == ["100% done.txt"]
    assert names(search.find(library, "done 0%")) == ["100% done.txt"]
    assert names(search.find(library, "\\")) == ["back\\slash.txt"]
    assert names(search.find(library, "ab_cd")) == ["ab_cd.txt"]
    assert names(search.find(library, "É_%")) == ["café_%.txt"]  # (not ASCII: folded in Python)


async def test_words_whose_first_letters_meet_in_a_name_but_not_the_words_find_nothing(
    library: Library, tmp_path: Path
) -> None:
    root = tmp_path / "near"
    (root / "mike").mkdir(parents=True)
    for name in ("mikado novel.txt", "mikes novels.txt", "novice mikado.txt"):  # the words' first trigrams, not the words
        (root / name).write_text(name)
    (root / "mike" / "november.txt").write_text("n")  # one word in the folder, one in the name
    await index(library, root)
    assert names(search.find(library, "mike november")) == ["november.txt"]
    assert names(search.find(library, "mikes november")) == []
    assert names(search.find(library, "mikado november")) == []
    assert names(search.find(library, "mikado novel")) == ["mikado novel.txt"]
    assert names(search.find(library, "novel mikes")) == ["mikes novels.txt"]


async def test_a_word_in_no_file_beside_a_common_one_ends_the_search_at_once(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "many"
    for k in range(20):
        (root / f"alpha-{k}").mkdir(parents=True)
        for i in range(100):
            (root / f"alpha-{k}" / f"alpha {i}.txt").write_bytes(b"a" * i)
    await index(library, root)
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    def cost(text: str, **filters: Any) -> tuple[int, list[str]]:  # SQLite's steps (of 1,000 instructions), and names
        steps[0] = 0
        library.read().set_progress_handler(step, 1000)
        try:
            found = names(search.find(library, text, **filters))
            return steps[0], found
        finally:
            library.read().set_progress_handler(None, 1000)

    one_word, found = cost("alpha")
    assert len(found) == 100
    for text, filters in [("alpha zzzz", {}), ("zzzz alpha", {}), ("alpha zzzz", {"sort": "size"}), ("alp zzz", {})]:
        steps_taken, found = cost(text, **filters)
        assert found == [], text
        assert steps_taken * 5 < one_word, (text, filters, steps_taken, one_word)  # (it read every 'alpha' and checked it)


async def test_the_index_stays_current_as_files_change(library: Library, home: Path) -> None:
    await index(library, home)
    docs = home / "docs"
    (docs / "contract-zebra.odt").write_text("new")
    await refresh(library, [str(docs)])
    assert names(search.find(library, "zebra")) == ["contract-zebra.odt"]
    os.rename(docs / "contract-zebra.odt", docs / "contract-giraffe.odt")
    await refresh(library, [str(docs)])
    assert search.find(library, "zebra") == []
    assert names(search.find(library, "giraffe")) == ["contract-giraffe.odt"]
    os.rename(home / "photos" / "2019", home / "photos" / "summer-of-2019")
    await index(library, home)
    assert {h.relative for h in search.find(library, "summer-of")} == {
        "photos/summer-of-2019", "photos/summer-of-2019/beach.jpg", "photos/summer-of-2019/beach party.png",
    }
    (docs / "contract-giraffe.odt").unlink()
    await refresh(library, [str(docs)])
    assert search.find(library, "giraffe") == []
    assert searchable_entries(library.read()) == searchable(library)


def searchable(library: Library) -> set[int]:
    """The entries the search index must hold: each with a folder and a trigram in its name or extension."""
    rows = library.read().execute("SELECT id, name, extension FROM entries WHERE parent_id IS NOT NULL")
    return {entry_id for entry_id, name, ext in rows if len(search.fold(name)) >= 3 or ext}


async def test_names_that_are_not_utf8_are_found_and_kept(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "bytes"
    root.mkdir()
    raw = os.fsencode(str(root)) + b"/caf\xe9-menu.txt"
    with open(raw, "wb") as f:
        f.write(b"x")
    await index(library, root)
    hit = search.find(library, "menu")[0]
    assert os.fsencode(hit.path) == raw
    assert entries.entry_at(library, hit.path) == hit.entry_id
    assert hit.device_id == library.context.device_id  # a DeviceId, as in an SdPath


async def test_a_paused_bulk_load_is_indexed_in_one_go_at_the_end(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "bulk"
    root.mkdir()
    loc = library.locations.add(str(root))
    insert = (
        "INSERT INTO entries (location_id, parent_id, name, extension, kind_code, size) VALUES (?, ?, ?, 'txt', 'file', 1)"
    )
    with library.write() as db, fts_paused(db, loc.id):
        db.executemany(insert, [(loc.id, loc.root_id, f"bulk-{i}.txt") for i in range(500)])
        assert searchable_entries(db) == set()  # no trigger ran
    assert len(search.find(library, "bulk-", limit=1000)) == 500
    # A load spread over transactions (and a crash) keeps its mark until it is resumed, or until no job
    # is left to resume it: then the next search indexes what the load left.
    with library.write() as db:
        pause_fts(db, loc.id)
        db.executemany(insert, [(loc.id, loc.root_id, f"later-{i}.txt") for i in range(10)])
    with library.write() as db:
        db.execute(insert, (loc.id, loc.root_id, "later-x.txt"))
    assert library.read().execute("SELECT count(*) FROM fts_pause").fetchone()[0] == 1
    assert len(search.find(library, "later-")) == 11
    assert library.read().execute("SELECT count(*) FROM fts_pause").fetchone()[0] == 0
    with library.write() as db:  # after the pause: triggers again
        db.execute(insert, (loc.id, loc.root_id, "after.txt"))
    assert names(search.find(library, "after")) == ["after.txt"]


async def test_a_first_index_loads_the_search_index(library: Library, home: Path) -> None:
    await index(library, home)
    assert searchable_entries(library.read()) == searchable(library)
    assert library.read().execute("SELECT count(*) FROM fts_pause").fetchone()[0] == 0


async def test_saved_searches_keep_their_filters(library: Library, home: Path) -> None:
    await index(library, home)
    query = Query("beach", ext=("jpg",), modified_after="7d", sort="size")
    search.save(library, "Recent beach", query)
    with pytest.raises(AlreadyExists, match="exists already"):
        search.save(library, "recent BEACH", query)
    [kept] = search.saved(library)
    assert kept.name == "Recent beach" and kept.query == query
    assert names(search.run(library, search.get_saved(library, "recent beach").query)) == ["sunbeach.jpg", "beach.jpg"]
    search.forget(library, "Recent beach")
    assert search.saved(library) == []
    with pytest.raises(NotFound, match="sd search --saved"):
        search.get_saved(library, "Recent beach")


def test_sizes_and_dates_are_read_like_people_write_them() -> None:
    assert parse_size("1500") == 1500
    assert parse_size("10k") == 10240
    assert parse_size("1.5M") == 1572864
    assert parse_size("2GiB") == 2 * 1024**3
    assert abs(search.parse_when("2d") - (time.time() - 2 * 86400)) < 5
    assert search.parse_when("2024-05-01") == time.mktime((2024, 5, 1, 0, 0, 0, 0, 0, -1))
    with pytest.raises(SdError, match="not a size"):
        parse_size("ten megs")
    for huge in ("99999999999999999999", "9" * 400 + "T"):  # SQLite's overflow, float infinity: 'unexpected error'
        with pytest.raises(SdError, match="more than any file holds"):
            parse_size(huge)
    with pytest.raises(SearchError, match="not a date"):
        search.parse_when("yesterday-ish")


async def test_notes_are_searched_with_names(library: Library, home: Path) -> None:
    await index(library, home)
    report = entries.entry_at(library, str(home / "docs" / "report.txt"))
    metadata.set_note(library, report, "for the zeppelin meeting")
    assert names(search.find(library, "zeppelin")) == ["report.txt"]
    assert names(search.find(library, "zeppelin", ext="pdf")) == []


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


async def test_unicode_forms_and_cases_are_one_to_search(library: Library, tmp_path: Path) -> None:
    root = tmp_path / "intl"
    (root / nfd("Ablage für Rechnungen")).mkdir(parents=True)  # decomposed, as macOS and many archives write it
    (root / nfd("Ablage für Rechnungen") / nfd("café menu.txt")).write_text("m")
    (root / "straße.txt").write_text("s")
    (root / "ÆRØ.txt").write_text("a")
    (root / "été.txt").write_text("e")
    await index(library, root)
    assert names(search.find(library, "café")) == [nfd("café menu.txt")]  # typed composed (NFC)
    assert names(search.find(library, "CAFÉ MENU")) == [nfd("café menu.txt")]
    assert names(search.find(library, "für rechnungen")) == [nfd("Ablage für Rechnungen"), nfd("café menu.txt")]
    assert names(search.find(library, nfd("STRASSE"))) == ["straße.txt"]
    assert names(search.find(library, "ærø")) == ["ÆRØ.txt"]
    assert names(search.find(library, "ÉT")) == ["été.txt"]  # a short word, looked for row by row
    assert names(search.find(library, "été", sort="name")) == ["été.txt"]  # a sorted search walks the index
    metadata.set_note(library, entries.entry_at(library, str(root / "straße.txt")), nfd("ÜBERWEISUNG im März"))
    assert names(search.find(library, "überweisung märz")) == ["straße.txt"]


async def test_an_index_written_before_unicode_folding_is_rebuilt_when_the_library_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.library.schema import MIGRATIONS

    root = tmp_path / "intl"
    root.mkdir()
    # (the migrations that made the search index over names and folder paths, then over no text of its own)
    names_and_folders = {
        n: script for n, script in MIGRATIONS.items() if isinstance(script, str) and "CREATE VIRTUAL TABLE folder_index" in script
    }
    for number in names_and_folders:  # a library of the code before the search index over names
        monkeypatch.delitem(MIGRATIONS, number)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        loc = library.locations.add(str(root))
        with library.write() as db:  # as schema 8 left it: the names as they are on disk
            db.execute(
                "INSERT INTO entries (location_id, parent_id, name, extension, kind_code) VALUES (?, ?, ?, 'txt', 'file')",
                (loc.id, loc.root_id, nfd("Café.txt")),
            )
            db.execute("UPDATE search_index SET name = ?, path = ?", (nfd("Café.txt"), nfd("Café.txt")))
            db.execute("PRAGMA user_version = 8")
        unfolded = library.read().execute("SELECT count(*) FROM search_index WHERE search_index MATCH '\"café\"'")
        assert unfolded.fetchone()[0] == 0
    for later in [n for n in MIGRATIONS if n > 9]:  # their tables are there: only 9 runs again, then the new index
        monkeypatch.setitem(MIGRATIONS, later, "")
    for number, script in names_and_folders.items():
        monkeypatch.setitem(MIGRATIONS, number, script)
    async with Core(tmp_path / "data") as core:
        assert names(search.find(core.library(), "CAFÉ")) == [nfd("Café.txt")]
