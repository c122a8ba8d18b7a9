"""SdPath: a user's paths keep every byte of their names in each of the three text forms and in the database."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.index.listing import list_indexed
from sdcore.library import Library
from sdcore.sdpath import InvalidPath, SdPath, display, from_db, split_remote, to_db

DEVICE = uuid.UUID("12345678-1234-5678-1234-567812345678")
BAD = os.fsdecode(b"bad\xff")  # a name that is not UTF-8 on disk

NAMES = [
    "plain.txt",
    "with space.txt",
    "per%cent and #hash?.txt",
    "new\nline",
    "tab\there",
    "ünïcödé ✓ 日本",
    "emoji 😀.png",
    BAD,
    os.fsdecode(b"\xc3\x28 invalid continuation"),
    os.fsdecode(b"\x80\x81\xfe\xff"),
    "x" * 255,
]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_canonical_text_round_trips_every_name(name: str) -> None:
    path = SdPath(DEVICE, f"/home/me/{name}")
    text = str(path)
    assert text.startswith(f"sd://{DEVICE}/home/me/")
    text.encode("ascii")  # printable ASCII only: safe in a terminal, a URL and JSON
    assert "\n" not in text and "\t" not in text
    back = SdPath.parse_canonical(text)
    assert back == path
    assert os.fsencode(back.path) == b"/home/me/" + os.fsencode(name)


def test_canonical_text_of_the_root_and_of_a_non_utf8_name() -> None:
    assert str(SdPath(DEVICE, "/")) == f"sd://{DEVICE}/"
    assert SdPath.parse_canonical(f"sd://{DEVICE}/") == SdPath(DEVICE, "/")
    assert SdPath.parse_canonical(f"sd://{DEVICE}") == SdPath(DEVICE, "/")
    # The undecodable byte is %-escaped as itself, not as the UTF-8 of its surrogate.
    assert str(SdPath(DEVICE, "/" + BAD)) == f"sd://{DEVICE}/bad%FF"


def test_a_percent_escaped_canonical_path_from_elsewhere_parses_to_the_same_bytes() -> None:
    parsed = SdPath.parse_canonical(f"sd://{DEVICE}/a%20b/caf%C3%A9/bad%ff")
    assert parsed.path == "/a b/café/" + BAD


@pytest.mark.parametrize(
    "text",
    ["/abs/path", "relative", "sd://not-a-uuid/x", "http://example.com/x", ""],
)
def test_parse_canonical_refuses_what_is_not_canonical(text: str) -> None:
    with pytest.raises(InvalidPath):
        SdPath.parse_canonical(text)


def test_a_relative_path_is_not_an_sdpath() -> None:
    with pytest.raises(InvalidPath):
        SdPath(DEVICE, "relative/path")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("laptop:/home/me", ("laptop", "/home/me")),
        ("1234abcd:/", ("1234abcd", "/")),
        ("nas:/" + BAD, ("nas", "/" + BAD)),
        ("/home/me", None),
        ("./a:/b", None),
        ("~/a:/b", None),
        ("a/b:/c", None),
        ("host:relative", None),
        (":/x", None),
        (f"sd://{DEVICE}/x", None),
        ("plain-file.txt", None),
    ],
)
def test_split_remote_reads_scp_style_and_nothing_else(text: str, expected: tuple[str, str] | None) -> None:
    assert split_remote(text) == expected


def test_core_resolves_the_three_forms(tmp_path: Path) -> None:
    core = Core(tmp_path / "data")
    me = core.device.id
    assert core.resolve("/x/y") == SdPath(me, "/x/y")
    assert core.resolve(f"sd://{DEVICE}/x/y") == SdPath(DEVICE, "/x/y")
    assert core.resolve(f"{me}:/x/y") == SdPath(me, "/x/y")
    assert core.resolve(f"{core.device.name}:/x") == SdPath(me, "/x")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert core.resolve("rel/" + BAD) == SdPath(me, os.path.join(str(tmp_path), "rel", BAD))
    finally:
        os.chdir(cwd)


def test_resolving_an_unknown_device_says_how_to_find_one(tmp_path: Path) -> None:
    from sdcore.errors import NotFound

    core = Core(tmp_path / "data")
    with pytest.raises(NotFound, match="sd network devices"):
        core.resolve("nosuchdevice:/x")


def test_display_escapes_bytes_and_control_characters_but_keeps_unicode() -> None:
    assert display("/a/" + BAD) == "/a/bad\\xff"
    assert display("new\nline\ttab\rcr\x1b[31m\x7f") == "new\\nline\\ttab\\rcr\\x1b[31m\\x7f"
    assert display("ünïcödé 😀") == "ünïcödé 😀"


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_database_form_is_valid_utf8_and_converts_back_exactly(name: str) -> None:
    stored = to_db(name)
    stored.encode("utf-8")  # SQLite TEXT must be valid UTF-8: no lone surrogates
    assert from_db(stored) == name


def test_names_survive_sqlite_text_columns(tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (name TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(to_db(n),) for n in NAMES])
    back = [from_db(r[0]) for r in conn.execute("SELECT name FROM t ORDER BY rowid")]
    assert back == NAMES


async def test_a_non_utf8_name_survives_index_then_list(tmp_path: Path, library: Library) -> None:
    root = tmp_path / "tree"
    (root / os.fsdecode(b"dir\xfe")).mkdir(parents=True)
    raw_file = os.path.join(os.fsencode(root), b"dir\xfe", b"bad\xff.txt")
    with open(raw_file, "wb") as f:
        f.write(b"hello")
    loc = library.locations.add(str(root), mode="content")
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error

    top = list_indexed(library, str(root))
    assert top is not None and [e.name for e in top] == [os.fsdecode(b"dir\xfe")]
    inner = list_indexed(library, top[0].path.path)
    assert inner is not None and len(inner) == 1
    assert os.fsencode(inner[0].path.path) == raw_file
    assert inner[0].cas_id is not None
    # the listed path opens the very file
    with open(inner[0].path.path, "rb") as f:
        assert f.read() == b"hello"


def test_display_escapes_c1_controls_and_bidirectional_overrides() -> None:
    # U+009B is an 8-bit CSI for some terminals; U+202E shows "exe.txt" as "txt.exe"
    assert display("a\x9b31mb") == "a\\x9b31mb"
    assert display("invoice\u202etxt.exe") == "invoice\\u202etxt.exe"
    assert display("plain name.txt") == "plain name.txt"
