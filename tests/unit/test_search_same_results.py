"""Search finds exactly what a plain scan of the names, paths and notes finds, whatever its index is made of."""

from __future__ import annotations

import os
import random
import unicodedata
from pathlib import Path

import pytest

from sdcore import metadata, search
from sdcore.core import Core
from sdcore.index.indexer import index_location, refresh
from sdcore.library import entries
from sdcore.library.library import Library

FOLDERS = [
    "photos/2019/beach trip", "photos/2020/summer", "photos/photos", "docs/invoices/old", "docs/Ablage für Rechnungen",
    "music/the beach boys", "code/sdtui/sdcore/index", "code/sdtui/tests", "x/y/z/deep/deeper/deepest", "Straße",
    "alpha.beta/gamma-delta", "notes", "a", "ab", "abc",
]  # fmt: skip
NAMES = [
    "beach.jpg", "sunbeach.JPG", "invoice-2019.pdf", "Invoice final.PDF", "report.txt", "café menu.txt", "ÆRØ.md",
    "straße.txt", "photos.zip", "index.py", "test_index.py", "summer-of-2019.mov", "a", "ab.c", ".hidden", "notes.md",
    "deep thoughts.txt", "2019", "été.doc", "x.y.z", "beach", "trip.log", "ümlaut Ü.txt", "budget (copy).xlsx",
]  # fmt: skip


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def make_tree(root: Path, rng: random.Random) -> None:
    for folder in FOLDERS:
        (root / nfd(folder)).mkdir(parents=True, exist_ok=True)
    for folder in ["", *FOLDERS]:
        for name in rng.sample(NAMES, 6):
            path = root / nfd(folder) / (nfd(name) if rng.random() < 0.3 else name)
            if not path.exists():
                path.write_text(name)


def scan(root: Path, notes: dict[str, str]) -> dict[str, str]:
    """Every entry's path in the location -> the text a search looks in: its path and its note (a plain walk)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            out[rel] = search.fold(rel) + "\n" + search.fold(notes.get(rel, ""))
    return out


def queries(found: dict[str, str], rng: random.Random) -> list[str]:
    """Pieces of real names and paths (across a '/' too), in other cases and forms, pairs of them, and misses."""
    rels = sorted(found)
    out = ["beach", "2019/bea", "/", "s/", "/s", "photos/photos", "deep", "ü", "UE", "é", "zz", "ab c", "index py",
           "beach 2019", "sdcore/index/test", "für", "STRASSE", "notes notes", "qqq", "a", "trip beach photos"]  # fmt: skip
    while len(out) < 100:
        rel = rng.choice(rels)
        n = rng.randint(1, 9)
        start = rng.randrange(max(1, len(rel) - n + 1))
        piece = rel[start : start + n].strip()
        if not piece or " " in piece:
            continue
        piece = rng.choice([piece, piece.upper(), nfd(piece), unicodedata.normalize("NFC", piece)])
        if rng.random() < 0.3:
            other = rng.choice(rels)
            piece += " " + os.path.basename(other)[: rng.randint(1, 5)].strip(" ")
        out.append(piece)
    return out


def expected(found: dict[str, str], text: str) -> set[str]:
    terms = [search.fold(t) for t in text.split()]
    return {rel for rel, haystack in found.items() if all(t in haystack for t in terms)}


def hits(library: Library, text: str, **filters: object) -> set[str]:
    return {h.relative for h in search.find(library, text, limit=100_000, **filters)}  # type: ignore[arg-type]


def check(library: Library, found: dict[str, str], rng: random.Random) -> None:
    for text in queries(found, rng):
        want = expected(found, text)
        assert hits(library, text) == want, text
        if rng.random() < 0.25:  # a sort walks another path through the index: the same matches
            assert hits(library, text, sort=rng.choice(["name", "size", "date"])) == want, text
        if rng.random() < 0.25:
            ext = rng.choice(["txt", "pdf", "jpg", "md"])
            with_ext = {rel for rel in want if os.path.basename(rel).lower().rsplit(".", 1)[-1] == ext and "." in rel}
            assert hits(library, text, ext=ext) == with_ext, (text, ext)


async def test_search_finds_what_a_plain_scan_of_names_paths_and_notes_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(18)
    root = tmp_path / "tree"
    make_tree(root, rng)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        loc = library.locations.add(str(root))
        record = await library.jobs.wait(await index_location(library, loc))  # a first index: the bulk load
        assert record.state == "completed", record.error
        check(library, scan(root, {}), rng)

        # Then files and folders change under a watching index (its triggers): renamed, moved, deleted, noted.
        os.rename(root / "photos" / "2019", root / "photos" / "Holiday 2019 ÆRØ")
        os.rename(root / "docs" / "invoices", root / "code" / "sdtui" / "invoices moved")
        os.rename(root / "beach.jpg" if (root / "beach.jpg").exists() else root / "notes", root / "renamed beach")
        for gone in [p for p in (root / "notes").glob("*") if p.is_file()] if (root / "notes").exists() else []:
            gone.unlink()
        (root / "x" / "y" / "z" / "new folder").mkdir()
        (root / "x" / "y" / "z" / "new folder" / "fresh zebra.txt").write_text("z")
        await refresh(library, [str(root / "photos"), str(root / "docs"), str(root / "code" / "sdtui"), str(root)])
        await refresh(library, [str(root / "x" / "y" / "z"), str(root / "notes")])
        record = await library.jobs.wait(await index_location(library, loc))  # and a rescan finds the rest
        assert record.state == "completed", record.error
        found = scan(root, {})
        notes = {}
        for rel in rng.sample(sorted(found), 12):
            notes[rel] = rng.choice(["for the zeppelin meeting", nfd("Überweisung im März"), "beach notes", "2019"])
            metadata.set_note(library, entries.entry_at(library, str(root / rel)), notes[rel])
        check(library, scan(root, notes), rng)
        # The other ways through the indexes: entries' own matches walked with their folders checked, and sorts that
        # sort every match instead of walking the sort order.
        monkeypatch.setattr(search, "FOLDER_DRIVEN", 0)
        monkeypatch.setattr(search, "WALK_BUDGET", 1)
        check(library, scan(root, notes), rng)
