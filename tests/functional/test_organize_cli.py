"""A user organizes a folder from the shell: `sd tag`, `sd note`, `sd fav`, `sd search` and `sd dupes`."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdtui.cli import app


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    for rel, data in {
        "work/acme/invoice-2024.pdf": b"%PDF-1.4 acme invoice",
        "work/acme/contract.docx": b"PK\x03\x04 contract",
        "photos/beach.jpg": b"\xff\xd8\xff" + b"sand" * 5000,
        "photos/backup/beach.jpg": b"\xff\xd8\xff" + b"sand" * 5000,
        "notes/todo.txt": b"buy milk",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


class Sd:
    """`sd --data-dir DIR ...` in this process."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> tuple[str, str]:
        result = self.runner.invoke(app, ["--data-dir", str(self.data), *args])
        assert (result.exit_code == 0) == ok, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        if not ok:
            assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), result.stderr
        return result.stdout, result.stderr

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json")[0])


@pytest.fixture
def sd(tmp_path: Path, home: Path) -> Sd:
    sd = Sd(tmp_path / "data")
    sd("location", "add", str(home))
    return sd


def test_a_user_tags_notes_and_finds_files(sd: Sd, home: Path) -> None:
    invoice = str(home / "work/acme/invoice-2024.pdf")
    sd("tag", "create", "work/clients/acme", "--color", "#0af")
    assert "exists already" in sd("tag", "create", "work/clients/ACME", ok=False)[1]
    sd("tag", "add", "work/clients/acme", invoice, str(home / "work/acme/contract.docx"))
    (home / "work/acme/new-quote.pdf").write_bytes(b"%PDF quote")  # not indexed yet: indexed on the spot
    _, err = sd("tag", "add", "work/clients/acme", str(home / "work/acme/new-quote.pdf"))
    assert "indexed" in err
    shown = sd.json("tag", "show", "work")
    assert {r["path"] for r in shown} == {invoice, str(home / "work/acme/contract.docx"), str(home / "work/acme/new-quote.pdf")}
    listed = {t["name"]: t for t in sd.json("tag", "list")}
    assert listed["work/clients/acme"]["entries"] == 3 and listed["work/clients/acme"]["color"] == "#0af"
    sd("tag", "rename", "work/clients", "work/customers")
    sd("tag", "rm", "work/customers/acme", str(home / "work/acme/contract.docx"))
    assert len(sd.json("tag", "show", "work/customers/acme")) == 2

    assert sd("note", invoice)[0].strip() == f"no note on {invoice}"  # said, not an empty line
    sd("note", invoice, "paid in March, ref ZX-81")
    assert sd("note", invoice)[0].strip() == "paid in March, ref ZX-81"
    assert [h["path"] for h in sd.json("search", "zx-81")] == [invoice]
    sd("fav", invoice)
    assert [f["path"] for f in sd.json("fav")] == [invoice]
    assert [h["path"] for h in sd.json("search", "--fav")] == [invoice]

    hits = sd.json("search", "inv", "--ext", "pdf,docx", "--tag", "work", "--max-size", "1k", "--modified-after", "1d")
    assert [h["path"] for h in hits] == [invoice]
    assert [h["name"] for h in sd.json("search", "beach", "--kind", "image", "--sort", "name", "--limit", "1")] == ["beach.jpg"]
    sd("search", "invoice", "--ext", "pdf", "--save", "Invoices")
    assert [s["name"] for s in sd.json("search", "--saved")] == ["Invoices"]
    assert [h["path"] for h in sd.json("search", "--run", "invoices")] == [invoice]
    out, _ = sd("search", "beach")
    assert "beach.jpg" in out


def test_a_tag_is_recoloured_and_its_colour_taken_off(sd: Sd) -> None:
    sd("tag", "create", "work/urgent", "--color", "#0af")
    assert "tag work/urgent is now red" in sd("tag", "color", "work/urgent", "red")[0]
    assert {t["name"]: t["color"] for t in sd.json("tag", "list")}["work/urgent"] == "red"
    assert "without colour" in sd("tag", "color", "work/urgent", "none")[0]
    assert {t["name"]: t["color"] for t in sd.json("tag", "list")}["work/urgent"] is None
    assert "not a colour" in sd("tag", "color", "work/urgent", "plaid", ok=False)[1]
    assert "no tag named" in sd("tag", "color", "work/later", "red", ok=False)[1]


def test_the_command_an_error_suggests_runs_as_it_reads_whatever_the_name(sd: Sd, home: Path) -> None:
    """A name with a space, a quote and a `$` (a tag name may come from a paired device): the suggested command,
    split as a shell splits it, makes exactly that tag (it read `sd tag create summer 'n' $HOME`: three words, and
    the shell expands $HOME)."""
    name = "summer 'n' $HOME"
    said = sd("tag", "add", name, str(home / "notes/todo.txt"), ok=False)[1]
    suggested = said.split("`")[1]
    assert shlex.split(suggested)[:3] == ["sd", "tag", "create"]
    sd(*shlex.split(suggested)[1:])
    assert name in [t["name"] for t in sd.json("tag", "list")]  # type: ignore[union-attr]


def test_bad_input_gets_a_clear_message(sd: Sd, home: Path, tmp_path: Path) -> None:
    sd("tag", "create", "t")
    assert "does not exist" in sd("tag", "add", "t", str(home / "nope.txt"), ok=False)[1]
    assert "no tag named" in sd("tag", "add", "missing", str(home / "notes/todo.txt"), ok=False)[1]
    assert "nothing to search for" in sd("search", "", ok=False)[1]
    assert "not a size" in sd("search", "x", "--min-size", "big", ok=False)[1]
    assert "not a date" in sd("search", "x", "--modified-after", "soonish", ok=False)[1]
    assert "cannot sort" in sd("search", "x", "--sort", "mood", ok=False)[1]
    for odd in ('"', "*zzz*", "-x", "a:b", "(", ")", "NEAR", 'NEAR("a" "b")', "x AND", "^"):
        assert json.loads(sd("search", "--json", "--", odd)[0]) == [], odd  # `--`: a query may start with '-'
    assert "not a colour" in sd("tag", "create", "u", "--color", "plaid", ok=False)[1]
    assert "no saved search" in sd("search", "--run", "nothing", ok=False)[1]


def test_dupes_reports_groups_and_waste(sd: Sd, home: Path) -> None:
    os.link(home / "notes/todo.txt", home / "notes/todo-link.txt")
    (home / "empty-a").write_bytes(b"")
    (home / "empty-b").write_bytes(b"")
    sd("location", "rescan", str(home))
    report = sd.json("dupes")
    assert [sorted(f["path"] for f in g["files"]) for g in report["groups"]] == [
        [str(home / "photos/backup/beach.jpg"), str(home / "photos/beach.jpg")]
    ]
    assert report["wasted"] == 20003 and report["changed"] == []
    with_empty = sd.json("dupes", "--include-empty")
    assert len(with_empty["groups"]) == 2
    assert sd.json("dupes", "--min-size", "1M")["groups"] == []
    out, _ = sd("dupes")
    assert "2 copies" in out and "1 group," in out
    from_disk = sd.json("dupes", str(home / "photos"))  # folders straight from disk: the same answer
    assert [sorted(f["path"] for f in g["files"]) for g in from_disk["groups"]] == [
        sorted(f["path"] for f in report["groups"][0]["files"])
    ]


def test_tagging_a_file_outside_every_location_adds_its_folder_and_says_so(sd: Sd, tmp_path: Path) -> None:
    outside = tmp_path / "downloads" / "ticket.pdf"
    outside.parent.mkdir()
    outside.write_bytes(b"%PDF ticket")
    sd("tag", "create", "travel")
    _, err = sd("tag", "add", "travel", str(outside))
    assert f"added {outside.parent} as location 'downloads'" in err and f"indexed {outside}" in err
    assert [r["path"] for r in sd.json("tag", "show", "travel")] == [str(outside)]
    assert "does not exist" in sd("tag", "add", "travel", str(tmp_path / "elsewhere" / "nope.pdf"), ok=False)[1]
    assert sorted(loc["path"] for loc in sd.json("location", "list")) == sorted([str(outside.parent), str(tmp_path / "home")])


def test_tagging_the_content_of_a_file_outside_every_location_tags_each_copy(sd: Sd, home: Path, tmp_path: Path) -> None:
    """README's `sd tag add --content keep ~/Photos/beach.jpg`, on a file outside every location: its folder was added
    (shallow) and then the command failed, "'beach.jpg' has no content identity yet"."""
    outside = tmp_path / "Photos" / "beach.jpg"
    outside.parent.mkdir()
    outside.write_bytes((home / "photos/beach.jpg").read_bytes())
    (outside.parent / "empty.txt").write_bytes(b"")
    sd("tag", "create", "keep")
    assert sd("tag", "add", "--content", "keep", str(outside))[0] == "tagged 1 content with keep\n"
    copies = [str(outside), str(home / "photos/beach.jpg"), str(home / "photos/backup/beach.jpg")]
    assert sorted(r["path"] for r in sd.json("tag", "show", "keep")) == sorted(copies)
    assert "no content identity" in sd("tag", "add", "--content", "keep", str(outside.parent / "empty.txt"), ok=False)[1]  # as before


def test_reading_the_note_or_tags_of_a_path_that_does_not_exist_is_an_error(sd: Sd, home: Path, tmp_path: Path) -> None:
    """`sd note ~/work/acme/contrat.pdf` (a typo) printed "no note on ..." and exited 0, as for a file without one."""
    for typo in (str(home / "work/acme/contrat.pdf"), str(tmp_path / "nowhere" / "contract.pdf")):
        for args in (("note", typo), ("note", typo, "--history"), ("tag", "history", typo)):
            assert sd(*args, ok=False)[1] == f"error: {typo} does not exist\n"
    assert sd("note", str(home / "work/acme/contract.docx"))[0] == f"no note on {home / 'work/acme/contract.docx'}\n"


def test_reading_the_note_or_history_of_a_file_outside_every_location_adds_nothing(sd: Sd, tmp_path: Path) -> None:
    outside = tmp_path / "downloads" / "ticket.pdf"
    outside.parent.mkdir()
    outside.write_bytes(b"%PDF ticket")
    before = sd.json("location", "list")
    assert sd("note", str(outside)) == (f"no note on {outside}\n", "")
    assert sd("note", str(outside), "--history")[0].strip() == f"no note was ever written on {outside}"
    assert sd("tag", "history", str(outside))[0].strip() == f"no tag was ever put on {outside}"
    assert sd.json("note", str(outside), "--history") == []
    assert sd.json("location", "list") == before
    _, err = sd("note", str(outside), "to print")  # writing does add its folder, and says so
    assert f"added {outside.parent} as location 'downloads'" in err
    assert sd("note", str(outside))[0].strip() == "to print"


def test_an_overwritten_note_is_listed_and_put_back(sd: Sd, home: Path) -> None:
    todo = str(home / "notes/todo.txt")
    sd("note", todo, "buy milk")
    sd("note", todo, "buy oat milk")
    sd("note", todo, "--clear")
    versions = sd.json("note", todo, "--history")
    assert [(v["number"], v["text"], v["current"]) for v in versions] == [
        (1, "buy milk", False), (2, "buy oat milk", False), (3, None, True)
    ]
    table, hint = sd("note", todo, "--history")
    assert table.index("(cleared)") < table.index("buy oat milk") < table.index("buy milk")  # newest first
    assert "--restore N" in hint
    assert "put back note 2" in sd("note", todo, "--restore", "2")[0]
    assert sd("note", todo)[0].strip() == "buy oat milk"
    assert sd.json("search", "oat")[0]["name"] == "todo.txt"
    assert "no version 9; pick 1 to 4" in sd("note", todo, "--restore", "9", ok=False)[1]
    assert "a note is at most 65,536 characters" in sd("note", todo, "x" * 70_000, ok=False)[1]
    assert sd("note", todo)[0].strip() == "buy oat milk"  # nothing lost


def test_the_tags_a_file_had_are_listed_with_who_took_them_off(sd: Sd, home: Path) -> None:
    beach = str(home / "photos/beach.jpg")
    sd("tag", "create", "holiday")
    sd("tag", "add", "holiday", beach)
    sd("tag", "add", "--content", "holiday", beach)
    sd("tag", "rm", "holiday", beach)
    changes = sd.json("tag", "history", beach)
    assert [(c["tag"], c["added"], c["content"]) for c in changes] == [
        ("holiday", True, False), ("holiday", True, True), ("holiday", False, False)
    ]
    assert "-holiday" in sd("tag", "history", beach)[0]
    assert "no tag was ever put on" in sd("tag", "history", str(home / "notes/todo.txt"))[0]


def test_dupes_of_a_folder_from_disk_says_which_folders_it_could_not_read(sd: Sd, tmp_path: Path) -> None:
    """A folder past PATH_MAX (or one without permission) cannot be opened by its path: the copies in it were left
    out and the report said '0 groups' as if the whole tree had been seen."""
    root = tmp_path / "deep"
    (root / "near").mkdir(parents=True)
    (root / "near" / "a.txt").write_bytes(b"same")
    (root / "near" / "b.txt").write_bytes(b"same")
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 folders of 250 characters: past PATH_MAX (4,096 bytes), made each in the last
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        for name in ("x.bin", "y.bin"):
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            with open(os.open(name, os.O_WRONLY, dir_fd=fd), "wb") as f:
                f.write(b"deep copy")
    finally:
        os.close(fd)
    report = sd.json("dupes", str(root))
    assert [sorted(f["path"] for f in g["files"]) for g in report["groups"]] == [[str(root / "near/a.txt"), str(root / "near/b.txt")]]
    (unread,) = report["changed"]
    assert unread.startswith(str(root / ("d" * 250))) and unread.endswith("/") and len(unread) > 4096
    _, err = sd("dupes", str(root))
    assert "1 folder could not be read" in err
