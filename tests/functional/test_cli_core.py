"""The `sd` command as a user runs it: first run, libraries, locations, listings, jobs and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BAD = b"bad\xff.txt"
SD = str(Path(sys.executable).parent / "sd")  # this environment's sd, activated or not


def sd(data: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `sd --data-dir DATA ...` with stdin closed: it must never ask a question."""
    return subprocess.run(
        [SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=timeout, errors="surrogateescape",
    )


def sd_json(data: Path, *args: str) -> Any:
    out = sd(data, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_clear_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    for word in words:
        assert word in lines[0], lines[0]


def library_state(data: Path) -> dict[str, str]:
    """A digest of every file of every library folder (the lock file names its holder, so it is left out)."""
    out = {}
    for path in sorted((data / "libraries").rglob("*")):
        if path.is_file() and path.name != ".lock":
            out[str(path.relative_to(data))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "Documents"
    (root / "projects").mkdir(parents=True)
    (root / "projects" / "plan.md").write_text("# plan\n")
    (root / "notes.txt").write_text("notes")
    (root / "picture.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    with open(os.path.join(os.fsencode(root), BAD), "wb") as f:
        f.write(b"odd name")
    return root


def test_first_run_makes_a_device_and_a_default_library_without_asking(tmp_path: Path) -> None:
    first = sd_json(tmp_path / "first", "library", "list")  # even when listing them is the first thing asked
    assert [(lib["name"], lib["default"]) for lib in first] == [("My Library", True)]
    data = tmp_path / "fresh"
    assert sd_json(data, "location", "list") == []
    device = json.loads((data / "device.json").read_text())
    shown = sd_json(data, "device", "show")
    assert shown["id"] == device["id"] and shown["name"] == device["name"]
    libraries = sd_json(data, "library", "list")  # a later run finds the same library, and no other
    assert [(lib["name"], lib["default"]) for lib in libraries] == [("My Library", True)]
    searched = sd(data, "search", "invoice")  # nothing indexed yet: say so, rather than only an empty table
    assert searched.returncode == 0 and "no location yet" in searched.stderr and "sd location add" in searched.stderr


def test_library_create_list_rename_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert sd(data, "library", "create", "Work").returncode == 0
    assert sd(data, "library", "create", "Photos").returncode == 0
    assert_clear_error(sd(data, "library", "create", "Work"), "exists")
    assert sd(data, "library", "rename", "Photos", "Pictures").returncode == 0
    listed = sd_json(data, "library", "list")
    assert sorted(lib["name"] for lib in listed) == ["Pictures", "Work"]
    assert [lib["name"] for lib in listed if lib["default"]] == ["Work"]  # the first one made
    assert sd(data, "library", "delete", "Pictures", "--yes").returncode == 0
    assert not (data / "libraries" / "Pictures.sdlibrary").exists()
    assert_clear_error(sd(data, "library", "rename", "Nope", "X"), "no library", "sd library create")


def test_add_a_location_then_list_it_from_the_index(tmp_path: Path, tree: Path) -> None:
    data = tmp_path / "data"
    added = sd_json(data, "location", "add", str(tree), "--mode", "content")
    assert added["state"] == "completed"
    assert (added["found"], added["dirs"], added["hashed"], added["errors"]) == (5, 2, 4, 0)
    (loc,) = sd_json(data, "location", "list")
    assert (loc["path"], loc["mode"], loc["state"], loc["files"]) == (str(tree), "content", "indexed", 4)
    assert loc["size"] == sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())

    listed = sd_json(data, "ls", str(tree))
    by_name = {os.fsencode(e["name"]): e for e in listed}
    assert set(by_name) == {b"projects", b"notes.txt", b"picture.txt", BAD}
    assert all("entry_id" in e for e in listed)  # read from the index
    assert by_name[b"picture.txt"]["object_kind"] == "image"
    assert by_name[b"projects"]["kind"] == "dir" and by_name[b"projects"]["files"] == 1
    odd = by_name[BAD]
    assert odd["cas_id"] and os.fsencode(odd["path"]) == os.fsencode(tree) + b"/" + BAD
    # the index, not the disk: a file made since is not listed until it is indexed
    (tree / "later.txt").write_text("later")
    assert "later.txt" not in {e["name"] for e in sd_json(data, "ls", str(tree))}
    assert [e["name"] for e in sd_json(data, "ls", str(tree / "projects"))] == ["plan.md"]

    jobs = sd_json(data, "job", "list")
    assert jobs == []  # nothing unfinished
    (job,) = sd_json(data, "job", "list", "--all")
    assert (job["kind"], job["state"], job["result"]["found"]) == ("index", "completed", 5)


def test_a_removed_location_leaves_its_files_and_is_listed_no_more(tmp_path: Path, tree: Path) -> None:
    data = tmp_path / "data"
    sd_json(data, "location", "add", str(tree), "--mode", "shallow")
    before = sorted(p.name for p in tree.rglob("*"))
    removed = sd(data, "location", "remove", str(tree))
    assert removed.returncode == 0 and "its files are untouched" in removed.stdout, removed.stderr
    assert sd_json(data, "location", "list") == []
    assert sorted(p.name for p in tree.rglob("*")) == before
    assert_clear_error(sd(data, "location", "remove", str(tree)), "no location")


def test_ignore_a_folder_then_rescan_and_quick_scan_one_folder_into_the_index(tmp_path: Path, tree: Path) -> None:
    data = tmp_path / "data"
    sd_json(data, "location", "add", str(tree), "--mode", "shallow")
    assert sd(data, "location", "ignore", "Documents").stdout == "(nothing ignored)\n"
    told = sd(data, "location", "ignore", "Documents", "projects")
    assert told.returncode == 0 and "ignores projects; `sd location rescan 1` applies it" in told.stdout, told.stderr
    assert sd(data, "location", "ignore", "Documents").stdout == "projects\n"
    rescanned = sd_json(data, "location", "rescan", "Documents")
    assert (rescanned["state"], rescanned["removed"]) == ("completed", 2)  # the folder and its plan.md
    assert sd_json(data, "location", "list")[0]["ignore"] == ["projects"]

    (tree / "later.txt").write_text("later")
    counts = sd_json(data, "index", "quick-scan", str(tree))  # this folder, one level, into the index
    assert counts["added"] == 1
    assert "later.txt" in {e["name"] for e in sd_json(data, "ls", str(tree))}
    assert_clear_error(sd(data, "index", "quick-scan", str(tmp_path)), "is in no location", "--ephemeral")
    assert_clear_error(sd(data, "location", "rescan", "nowhere"), "no location", "sd location list")


def test_ls_keeps_a_non_utf8_name_escaped_in_json(tmp_path: Path, tree: Path) -> None:
    out = sd(tmp_path / "data", "ls", str(tree), "--json")
    assert out.returncode == 0, out.stderr
    assert "bad\\udcff.txt" in out.stdout  # ASCII JSON: the byte travels as an escaped surrogate
    out.stdout.encode("ascii")
    names = [os.fsencode(e["name"]) for e in json.loads(out.stdout)]
    assert BAD in names
    # and people see it escaped, never dropped
    table = sd(tmp_path / "data", "ls", str(tree))
    assert table.returncode == 0 and "bad\\xff.txt" in table.stdout


def test_outside_a_location_ls_and_quick_scan_read_the_disk_and_write_nothing(tmp_path: Path, tree: Path) -> None:
    data = tmp_path / "data"
    indexed = tmp_path / "indexed"
    indexed.mkdir()
    assert sd(data, "location", "add", str(indexed), "--mode", "shallow").returncode == 0
    before = library_state(data)

    listed = sd_json(data, "ls", str(tree))
    assert {os.fsencode(e["name"]) for e in listed} == {b"projects", b"notes.txt", b"picture.txt", BAD}
    assert not any("entry_id" in e or "cas_id" in e for e in listed)
    scanned = sd_json(data, "index", "quick-scan", str(tree), "--ephemeral")
    assert {os.fsencode(e["name"]) for e in scanned} == {b"projects", b"notes.txt", b"picture.txt", BAD}
    deep = sd_json(data, "index", "quick-scan", str(tree), "--ephemeral", "--scope", "recursive")
    assert "plan.md" in {e["name"] for e in deep}

    assert library_state(data) == before
    assert [loc["path"] for loc in sd_json(data, "location", "list")] == [str(indexed)]
    # a quick ephemeral scan does not even make a data dir
    untouched = tmp_path / "untouched"
    assert len(sd_json(untouched, "index", "quick-scan", str(tree), "--ephemeral")) == 4
    assert not untouched.exists()


def test_quick_scan_json_is_what_ls_json_gives_for_every_kind_of_entry(tmp_path: Path, tree: Path) -> None:
    """quick-scan writes its JSON by hand (for speed); a script must get the same objects as from `sd ls --json`."""
    (tree / ".hidden").write_text("h")
    (tree / "link").symlink_to("notes.txt")
    (tree / "broken").symlink_to("nowhere")
    os.mkfifo(tree / "fifo")
    (tree / 'say "hi"\\ \u00e9t\u00e9\n.txt').write_text("quoted")

    listed = sorted(sd_json(tmp_path / "data", "ls", str(tree), "--all"), key=lambda e: e["name"])
    scanned = sorted(sd_json(tmp_path / "data", "index", "quick-scan", str(tree), "--ephemeral"), key=lambda e: e["name"])
    assert len(scanned) == 9
    assert scanned == listed


def test_quick_scan_of_a_folder_written_in_pieces_is_whole_and_escaped(tmp_path: Path, tree: Path) -> None:
    """quick-scan writes a big folder 2,000 entries at a time: the pieces join into one JSON list, one line each."""
    for i in range(4100):
        (tree / f"f{i:04d}.c").touch()
    (tree / "new\nline and space.md").write_text("x")
    listed = sorted(sd_json(tmp_path / "data", "ls", str(tree), "--all"), key=lambda e: e["name"])
    scanned = sd_json(tmp_path / "data", "index", "quick-scan", str(tree), "--ephemeral", "--json")
    assert len(scanned) == 4105 and sorted(scanned, key=lambda e: e["name"]) == listed
    plain = sd(tmp_path / "data", "index", "quick-scan", str(tree), "--ephemeral")
    lines = plain.stdout.splitlines()
    assert len(lines) == 4105 and plain.stderr == "4,105 entries\n", plain.stderr
    assert f"{tree}/new\\nline and space.md" in lines and f"{tree}/bad\\xff.txt" in lines and f"{tree}/projects/" in lines


def test_a_path_that_does_not_exist_is_a_one_line_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = str(tmp_path / "no such folder")
    assert_clear_error(sd(data, "ls", missing), "no such folder", "does not exist")
    assert_clear_error(sd(data, "ls", missing, "--json"), "does not exist")
    assert_clear_error(sd(data, "location", "add", missing), "does not exist")
    out = sd(data, "index", "quick-scan", missing, "--ephemeral", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    assert_clear_error(sd(data, "job", "resume", "nosuchjob"), "no job")


def test_a_new_user_sees_no_library_warnings(tmp_path: Path) -> None:
    """cryptography's DSA deprecation, raised inside asyncssh, is not the user's business."""
    data = tmp_path / "data"
    for _ in range(2):  # the first run makes the device key, the second reads it
        out = sd(data, "network", "devices")
        assert out.returncode == 0 and out.stderr == "", out.stderr


def test_a_damaged_library_is_a_clear_error_and_is_not_touched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert sd(data, "library", "create", "Fragile").returncode == 0
    folder = data / "libraries" / "Fragile.sdlibrary"
    for leftover in ("database.db-wal", "database.db-shm"):
        (folder / leftover).unlink(missing_ok=True)
    junk = b"this is not a database\n" * 1000
    (folder / "database.db").write_bytes(junk)
    assert_clear_error(sd(data, "location", "list"), "Fragile", "damaged", "backup")
    assert (folder / "database.db").read_bytes() == junk
